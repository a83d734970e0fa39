"""The default checklists, written from the company's rules: plain data, importing nothing.

运输机动车辆规范 (the van) and 快递从业人员基本要求 (the courier's conduct). Migration
0011 inserts TEMPLATES_0011 into a fresh database, and migration 0026 publishes the
safety revision of the vehicle checks (SAFETY_ITEMS critical) as their next version;
`checklists.seed_defaults()` adds any that are missing as DEFAULT_TEMPLATES, the
templates as they stand now (the demo seed, tests). Afterwards they are edited like
any template (a new version). Never change what shipped (TEMPLATES_0011, which
migration 0011 reads): a change is a new version, published by a migration.
"""

# The vehicle items that are safety items: a failed one grounds the van (critical), whatever the template
# version answered says (docs/decisions.md, "Issue 21: checks before work"). 车辆技术状况良好 covers the van's
# brakes, steering, lights and tyres; 安全设备完好有效 its safety equipment. The rest of the van check is its
# appearance and cleanliness (and a reading), which never make driving it unsafe.
SAFETY_ITEMS = ("technical_condition", "safety_equipment")


def _pass_fail(code: str, zh: str, en: str, severity: str = "minor", photo: bool = True,
               required: bool = True) -> dict:
    """A pass/fail item."""
    return {"code": code, "label_zh": zh, "label_en": en, "type": "pass_fail", "severity": severity,
            "required": required, "photo_required_on_failure": photo}


_VEHICLE_ITEMS = [
    _pass_fail("body_clean", "车身及保险杠光亮，无明显划痕", "Body and bumpers bright, no obvious scratches"),
    {"code": "paint_loss_cm2", "label_zh": "单处掉漆面积", "label_en": "Paint loss at a single point",
     "type": "number", "min": 0, "max": 1, "unit": "cm²", "severity": "minor", "required": True,
     "photo_required_on_failure": True},
    _pass_fail("lettering_intact", "线条及车门字样清晰完整", "Lines and door lettering clear and intact"),
    _pass_fail("hood_decal", "引擎盖中心贴标平整，无卷边、无破损",
               "Hood-centre decal flat, no curled edges, no damage"),
    _pass_fail("interior_clean", "仪表台、内饰板、顶棚及后隔板完好清洁，无灰尘",
               "Dashboard, interior panels, headliner and rear partition intact and clean, no dust"),
    _pass_fail("technical_condition", "车辆技术状况良好", "Technical condition good", severity="major"),
    _pass_fail("safety_equipment", "安全设备完好有效", "Safety equipment working", severity="critical"),
    {"code": "odometer", "label_zh": "里程表读数", "label_en": "Odometer", "type": "number", "min": 0,
     "unit": "km", "severity": "minor", "required": True, "photo_required_on_failure": False},
]

# As migration 0011 inserted them (version 1): never change.
TEMPLATES_0011 = [
    {"kind": "vehicle.pre_trip", "name": "车辆出车检查 Vehicle pre-trip check", "items": _VEHICLE_ITEMS},
    {"kind": "vehicle.post_trip", "name": "车辆收车检查 Vehicle post-trip check", "items": _VEHICLE_ITEMS},
    {"kind": "conduct.pre_shift", "name": "上岗前仪容检查 Conduct before the shift", "items": [
        _pass_fail("uniform", "按规定穿着工装", "Uniform worn as required", photo=False),
        {"code": "hair", "label_zh": "长发束起", "label_en": "Hair tied back where it applies", "type": "choice",
         "choices": ["tied", "not_applicable", "not_tied"], "failing_choices": ["not_tied"], "severity": "minor",
         "required": True, "photo_required_on_failure": False},
        _pass_fail("tidy", "仪容整洁", "Tidy appearance", photo=False),
        _pass_fail("shoe_covers", "携带鞋套", "Shoe covers carried", photo=False),
        _pass_fail("water_cup", "携带水杯", "Water cup carried", photo=False),
        _pass_fail("id_badge", "佩戴工牌", "ID badge worn", severity="major", photo=False),
    ]},
    {"kind": "conduct.stop", "name": "每站服务规范 Conduct at each stop", "items": [
        _pass_fail("greeting", "使用规范用语问候", "Greeted with the standard phrases", photo=False),
        _pass_fail("inspection_invited", "请客户验视", "Asked the customer to inspect", photo=False),
        _pass_fail("published_fees_only", "仅收取公示费用", "Charged only published fees", severity="major",
                   photo=False),
        _pass_fail("no_dispute", "未与客户发生争执", "No dispute with the customer", severity="major", photo=False),
    ]},
]


def _with_safety(items: list[dict]) -> list[dict]:
    """Items with every safety item critical."""
    return [dict(item, severity="critical") if item["code"] in SAFETY_ITEMS else item for item in items]


# The default templates as they stand now: TEMPLATES_0011 with the safety revision (migration 0026).
DEFAULT_TEMPLATES = [dict(spec, items=_with_safety(spec["items"])) for spec in TEMPLATES_0011]

# The spot check and mystery-shopper visit (联合稽查), from the company's rules for couriers at the door
# (快递从业人员基本要求, 收寄验视 and 签收 rules): filled in by quality staff, never on a handheld. Migration
# 0032 inserts it as version 1: never change; a change is a new version.
INSPECTION_TEMPLATE_0032 = {"kind": "inspection", "name": "联合稽查 Spot check / mystery shopper", "items": [
    _pass_fail("uniform_badge", "按规定穿着工装并佩戴工牌", "Uniform worn and ID badge shown", severity="minor",
               photo=False),
    _pass_fail("inspection_offered", "签收前请客户验视", "Customer offered inspection before signing",
               severity="major", photo=False),
    _pass_fail("stayed_for_inspection", "客户验视完毕前未离开", "Did not leave before the inspection was done",
               severity="major", photo=False),
    _pass_fail("polite_phrases", "使用规范服务用语", "Used the standard polite phrases", photo=False),
    _pass_fail("cod_after_acceptance", "客户验收后再收取货款", "COD collected only after acceptance",
               severity="major", photo=False),
    _pass_fail("published_fees_only", "仅收取公示费用", "Charged only published fees", severity="critical",
               photo=False),
    _pass_fail("parcel_handling", "轻拿轻放，无抛扔踩踏", "Parcels handled with care, never thrown or stepped on",
               severity="major", photo=False),
    {"code": "remarks", "label_zh": "稽查备注", "label_en": "Inspector's remarks", "type": "text",
     "severity": "minor", "required": False, "photo_required_on_failure": False},
]}

DEFAULT_TEMPLATES.append(INSPECTION_TEMPLATE_0032)
