"""The office's vocabularies in words: each enumerated value the office pages show, in Chinese and English.

One key per value, `word.<vocabulary>.<value>`, registered with the console's texts; templates say
`{{ word('exception_kind', e.kind) }}`. The values come from schemas.vocab (a test asserts each vocabulary here
has a zh and en word for every value, so a new kind cannot reach a page raw). A value with no word (it should not
happen) is shown as recorded rather than failing the page.
"""
from schemas.vocab import (ALTERNATE_PLACES, APPOINTMENT_VIA, CHECKLIST_KINDS, CONFLICT_REASONS, CONFLICT_STATUSES,
                           CONTACT_OUTCOMES, DISPATCH_EXCEPTIONS, EXCEPTION_STATUSES, GRADE_REASONS, LEDGER_KINDS,
                           OP_LOG_STATUSES, PAYMENT_METHODS, REFUSAL_REASONS, REVIEW_REASONS, SCAN_NOTES, SCAN_SOURCES,
                           SEVERITIES, SHIFT_STATUSES, STAFF_ROLES, VEHICLE_KINDS, VERIFY_METHODS, CONFLICT_RESOLUTIONS,
                           ITEM_CONDITIONS, TASK_STATUSES, VIOLATION_CODES, VIOLATION_STATUSES, WINDOW_DECIDERS,
                           WINDOW_OUTCOMES)
from server.console import bp
from server.console.i18n import has_text, register, t
from server.services import labels as label_service
from server.services.claims import RULE_INSURED, RULE_UNINSURED

# vocabulary name -> (its values, {value: (zh, en)})
WORDS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, str]]]] = {
    "exception_kind": (DISPATCH_EXCEPTIONS, {
        "damage": ("货物破损", "Damaged parcel"), "discrepancy": ("货物不符", "Parcel discrepancy"),
        "refusal": ("客户拒收", "Refused by the customer"), "not_at_address": ("未在地址投递", "Not at the address"),
        "pin_mismatch": ("收件码不符", "Wrong handover PIN"), "pin_locked": ("收件码已锁定", "PIN locked"),
        "amount_mismatch": ("收款金额不符", "Amount mismatch"), "gift_not_disclosed": ("未告知赠品", "Gift not disclosed"),
        "work_without_shift_check": ("未做班前检查就作业", "Worked without a shift check"),
        "grounded_vehicle_used": ("使用了停运车辆", "Used a van off the road"),
        "not_attempted": ("承诺时段未上门", "Promised window not attempted"),
        "wrong_number": ("电话号码错误", "Wrong phone number"), "customer_absent": ("客户不在", "Customer absent"),
        "address_unknown": ("找不到地址", "Address not found"), "refused": ("客户拒绝", "Customer refused"),
        "window_review": ("预约时段待复核", "Window under review")}),
    "exception_status": (EXCEPTION_STATUSES, {
        "open": ("待处理", "Open"), "acknowledged": ("已受理", "Acknowledged"), "resolved": ("已解决", "Resolved")}),
    "grade_reason": (GRADE_REASONS, {
        "violations": ("违规", "Violations"), "on_time_rate": ("准时率", "On-time rate"),
        "low_ratings": ("低分评价", "Low ratings"), "critical_violation": ("严重违规（等级不高于 B）",
                                                                      "Critical violation (grade at most B)"),
        "override": ("人工设定等级", "Set by hand"), "override_lifted": ("人工等级已撤销", "Override lifted"),
        "override_ended": ("人工等级已到期", "Override ended"), "violation_voided": ("违规已撤销", "Violation voided")}),
    "violation": (VIOLATION_CODES, {
        "late_without_notice": ("迟到未提前通知", "Late without notice"),
        "left_before_inspection": ("未等验货就离开", "Left before the inspection"),
        "private_surcharge": ("私自加收费用", "Private surcharge"), "gift_not_disclosed": ("未告知赠品", "Gift not disclosed"),
        "conduct_item_failed": ("行为规范检查未通过", "Conduct check item failed"),
        "complaint_upheld": ("投诉成立", "Complaint upheld"),
        "work_without_shift_check": ("未做班前检查就作业", "Worked without a shift check"),
        "grounded_vehicle_used": ("使用了停运车辆", "Used a van off the road"),
        "inspection_item_failed": ("稽查项目未通过", "Inspection item failed")}),
    "violation_status": (VIOLATION_STATUSES, {
        "open": ("待确认", "Open"), "appealed": ("申诉中", "Appealed"), "upheld": ("已确认", "Upheld"),
        "voided": ("已撤销", "Voided")}),
    "severity": (SEVERITIES, {"critical": ("严重", "critical"), "major": ("较重", "major"), "minor": ("轻微", "minor")}),
    "attempt_outcome": (CONTACT_OUTCOMES, {
        "reached": ("已联系上", "Reached"), "no_answer": ("无人接听", "No answer"),
        "wrong_number": ("电话号码错误", "Wrong number"), "refused": ("客户拒绝", "Refused"),
        "address_unknown": ("找不到地址", "Address not found")}),
    "ledger_kind": (LEDGER_KINDS, {
        "payment": ("收款", "Payment"), "remittance": ("上缴", "Remittance"), "correction": ("更正", "Correction")}),
    "payment_method": (PAYMENT_METHODS, {"cash": ("现金", "cash"), "qr": ("扫码", "QR")}),
    # A task's status, as the task page, the search and a courier's day show it (one vocabulary in the console).
    "task_status": (TASK_STATUSES, {
        "unassigned": ("未分派", "unassigned"), "assigned": ("已分派", "assigned"), "arrived": ("已到达", "arrived"),
        "delivered": ("已签收", "delivered"), "refused": ("已拒收", "refused"), "failed": ("投递失败", "failed"),
        "collected": ("已揽收", "collected"), "cancelled": ("已取消", "cancelled")}),
    "shift_status": (SHIFT_STATUSES, {"open": ("进行中", "Open"), "ended": ("已结束", "Ended"),
                                      "abandoned": ("未正常结束", "Never ended")}),
    "check_kind": (CHECKLIST_KINDS, {
        "conduct.pre_shift": ("班前行为规范检查", "Pre-shift conduct check"),
        "conduct.stop": ("站点行为规范检查", "Conduct check at a stop"),
        "vehicle.pre_trip": ("出车前车辆检查", "Pre-trip van check"),
        "vehicle.post_trip": ("收车后车辆检查", "Post-trip van check"), "inspection": ("质检稽查", "Inspection")}),
    "vehicle_kind": (VEHICLE_KINDS, {"van": ("厢式货车", "Van"), "truck": ("卡车", "Truck"),
                                     "tricycle": ("三轮车", "Tricycle"), "ebike": ("电动自行车", "E-bike")}),
    "claim_rule": ((RULE_INSURED, RULE_UNINSURED), {
        RULE_INSURED: ("保价：按声明价值赔付", "Insured: up to the declared value"),
        RULE_UNINSURED: ("未保价：按运费倍数赔付", "Uninsured: a multiple of the fees paid")}),
    "verify_method": (VERIFY_METHODS, {
        "id_check": ("核验身份证件", "ID checked"), "pin": ("收件码", "Handover PIN"),
        "known_recipient": ("熟悉的收件人", "Known recipient"), "proxy": ("代收人", "Proxy")}),
    "item_condition": (ITEM_CONDITIONS, {"ok": ("完好", "OK"), "damaged": ("破损", "damaged"), "missing": ("缺失", "missing")}),
    "conflict_resolution": (CONFLICT_RESOLUTIONS, {
        "field_fact_stands": ("以现场记录为准", "The field's fact stands"),
        "dispatch_stands": ("以调度记录为准", "Dispatch's record stands"),
        "followed_up": ("已跟进处理", "Followed up")}),
    # A task's timeline (issue 25's walk): what became of an op, why it is a conflict, why a window is under review,
    # how a window was decided, who scanned a parcel and why, how a handover went.
    "op_status": (OP_LOG_STATUSES, {
        "applied": ("已生效", "applied"), "rejected": ("被拒绝", "rejected"), "conflict": ("冲突", "conflict"),
        "duplicate": ("重复提交", "duplicate")}),
    "conflict_reason": (CONFLICT_REASONS, {
        "reassigned": ("任务已改派给别人", "Reassigned to another courier"),
        "cancelled_by_dispatch": ("调度已取消任务", "Cancelled by dispatch"),
        "stale_version": ("调度已修改任务", "Changed by dispatch since")}),
    "conflict_status": (CONFLICT_STATUSES, {"open": ("待处理", "open"), "resolved": ("已处理", "resolved")}),
    "review_reason": (REVIEW_REASONS, {
        "clock_suspect": ("设备时钟可疑", "Device clock suspect"),
        "location_unknown": ("地址没有坐标", "Stop without coordinates"),
        "late_sync": ("记录同步太晚", "Synced after the decision")}),
    "window_outcome": (WINDOW_OUTCOMES, {
        "kept": ("按时", "kept"), "late": ("迟到", "late"), "missed": ("错过", "missed"),
        "not_attempted": ("承诺时段未上门", "not attempted"), "replaced": ("已被新时段取代", "replaced"),
        "review": ("待复核", "under review")}),
    "window_decider": (WINDOW_DECIDERS, {
        "arrival": ("到达", "the arrival"), "sweep": ("时段结束自动判定", "the end-of-window sweep"),
        "replacement": ("改约", "a new window"), "notice": ("迟到通知", "a late notice"),
        "wait": ("等候客户", "the wait"), "dispatch": ("调度复核", "dispatch"), "migration": ("数据迁移", "migration")}),
    "appointment_via": (APPOINTMENT_VIA, {
        "phone": ("电话", "phone"), "in_person": ("当面", "in person"), "customer_link": ("客户链接", "customer link"),
        "dispatch": ("调度", "dispatch")}),
    "scan_source": (SCAN_SOURCES, {
        "handheld": ("手持终端", "handheld"), "upstream": ("上游系统", "upstream system"),
        "handover": ("交接", "handover")}),
    "scan_note": (SCAN_NOTES, {"inspection": ("验货发现问题", "found at the inspection")}),
    "refusal_reason": (REFUSAL_REASONS, {
        "damaged": ("货物破损", "damaged"), "quality": ("质量问题", "quality"), "wrong_item": ("货不对板", "wrong item"),
        "other": ("其他", "other")}),
    "alternate_place": (ALTERNATE_PLACES, {
        "locker": ("快递柜", "locker"), "station": ("代收点", "station"), "neighbour": ("邻居", "neighbour")}),
    "staff_role": (STAFF_ROLES, {
        "admin": ("管理员", "Admin"), "dispatcher": ("调度员", "Dispatcher"), "quality": ("质检", "Quality"),
        "maintenance": ("车辆维护", "Maintenance"), "integration": ("系统对接", "Integration")}),
}

register({lang: {f"word.{vocab}.{value}": pair[i] for vocab, (_, words) in WORDS.items()
                 for value, pair in words.items()} for i, lang in enumerate(("zh", "en"))})


@bp.app_template_global()
def word(vocabulary: str, value: str | None) -> str:
    """A vocabulary value in the page language (as recorded if it has no word; '' for none)."""
    if value is None:
        return ""
    key = f"word.{vocabulary}.{value}"
    return t(key) if has_text(key) else str(value)


@bp.app_template_global()
def labels(kind: str, ids) -> dict[str, str]:
    """Names for a set of ids in one query: kind "courier" (names), "task" (waybills) or "vehicle" (plates).
    A template asks once for a whole list: `{% set names = labels('courier', rows|map(attribute='courier_id')) %}`."""
    return {"courier": label_service.courier_names, "task": label_service.waybills,
            "vehicle": label_service.plates}[kind](list(ids))
