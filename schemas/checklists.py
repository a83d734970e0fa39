"""Checklists on the wire: templates (quality staff), submissions and shifts (handheld ops), defects (maintenance)."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import NewestFirstQuery, PageOut, PageQuery, Schema, full_match, integer, text
from schemas.vehicles import VehicleOut
from schemas.vocab import (ANSWER_TYPES, CHECKLIST_KINDS, DEFECT_STATUSES, SEVERITIES, TEMPLATE_STATUSES)

SHA256 = full_match(r"[0-9a-f]{64}", "Not a SHA-256 in hex.")
ITEM_CODE = {"pattern": r"[a-z][a-z0-9_]{0,31}", "pattern_error": "1-32 of a-z, 0-9, _; starting with a letter."}
MAX_ITEMS = 100
# Number items: readings (an odometer in km, an area in cm²) stay within this.
MAX_READING = 10_000_000


def _sha256(**kw) -> fields.String:
    """An attachment's name: its SHA-256 in lower-case hex."""
    return fields.String(validate=SHA256, **kw)


def _reading(**kw) -> fields.Float:
    """A number item's reading or limit."""
    return fields.Float(validate=validate.Range(-MAX_READING, MAX_READING), **kw)


class ItemIn(Schema):
    """One item of a checklist."""

    code = text(32, **ITEM_CODE)
    label_zh = text(200)
    label_en = text(200)
    type = text(16, validate=validate.OneOf(ANSWER_TYPES))
    required = fields.Boolean(load_default=True)
    severity = text(16, required=False, load_default="minor", validate=validate.OneOf(SEVERITIES))
    photo_required_on_failure = fields.Boolean(load_default=False)
    min = _reading(load_default=None, allow_none=True, metadata={"description": "Number items only"})
    max = _reading(load_default=None, allow_none=True, metadata={"description": "Number items only; not below min"})
    unit = text(16, required=False, load_default=None, allow_none=True,
                metadata={"description": "Number items only"})
    choices = fields.List(text(32), load_default=None, allow_none=True, validate=validate.Length(min=2, max=20),
                          metadata={"description": "Choice items only, and required for them; all different"})
    failing_choices = fields.List(text(32), load_default=None, allow_none=True, validate=validate.Length(max=20),
                                  metadata={"description": "Choice items only; each one of the choices"})

    @validates_schema
    def _fits_type(self, data, **_kw):
        """Limits and units only on numbers; choices on choice items; failing choices among the choices."""
        errors: dict[str, list[str]] = {}
        number = data.get("type") == "number"
        for key in ("min", "max", "unit"):
            if data.get(key) is not None and not number:
                errors[key] = ["Only number items have limits and a unit."]
        if number and data.get("min") is not None and data.get("max") is not None and data["min"] > data["max"]:
            errors["max"] = ["Must not be below min."]
        choices = data.get("choices")
        if data.get("type") == "choice":
            if not choices:
                errors["choices"] = ["A choice item lists its choices."]
            elif len(set(choices)) != len(choices):
                errors["choices"] = ["Choices must differ."]
            elif not set(data.get("failing_choices") or ()) <= set(choices):
                errors["failing_choices"] = ["Must be among the choices."]
        else:
            for key in ("choices", "failing_choices"):
                if data.get(key) is not None:
                    errors[key] = ["Only choice items have choices."]
        if errors:
            raise ValidationError(errors)


class _Items(Schema):
    """A version's items: at least one, codes unique."""

    items = fields.List(fields.Nested(ItemIn), required=True, validate=validate.Length(min=1, max=MAX_ITEMS),
                        metadata={"description": "Each item code once"})

    @validates_schema
    def _unique_codes(self, data, **_kw):
        """Each item code once."""
        codes = [item["code"] for item in data.get("items", [])]
        if len(set(codes)) != len(codes):
            raise ValidationError({"items": ["Item codes must be unique."]})


class TemplateIn(_Items):
    """A new template; its items become version 1 at once."""

    kind = text(32, validate=validate.OneOf(CHECKLIST_KINDS))
    name = text(100)


class VersionIn(_Items):
    """The items of a new version (it replaces the current one for every device)."""


class ItemOut(Schema):
    """An item as published."""

    code = fields.String()
    label_zh = fields.String()
    label_en = fields.String()
    type = fields.String(metadata={"enum": list(ANSWER_TYPES)})
    required = fields.Boolean()
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    photo_required_on_failure = fields.Boolean()
    min = fields.Float(allow_none=True)
    max = fields.Float(allow_none=True)
    unit = fields.String(allow_none=True)
    choices = fields.List(fields.String(), allow_none=True)
    failing_choices = fields.List(fields.String(), allow_none=True)


class VersionOut(Schema):
    """A published version."""

    number = fields.Integer()
    published_at = fields.AwareDateTime()
    superseded_at = fields.AwareDateTime(allow_none=True)
    items = fields.List(fields.Nested(ItemOut))


class TemplateOut(Schema):
    """A template with its current items (what a handheld holds)."""

    id = fields.String()
    kind = fields.String(metadata={"enum": list(CHECKLIST_KINDS)})
    name = fields.String()
    status = fields.String(metadata={"enum": list(TEMPLATE_STATUSES)})
    current = fields.Integer(metadata={"description": "The version number to submit against"})
    items = fields.List(fields.Nested(ItemOut), attribute="current_items")
    retired_at = fields.AwareDateTime(allow_none=True)
    version = fields.Integer()


class TemplateDetailOut(TemplateOut):
    """A template with every version it had."""

    versions = fields.List(fields.Nested(VersionOut))


class TemplateQuery(PageQuery):
    """Filters for listing templates."""

    kind = text(32, required=False, load_default=None, validate=validate.OneOf(CHECKLIST_KINDS))
    status = text(16, required=False, load_default=None, validate=validate.OneOf(TEMPLATE_STATUSES))


class TemplatePage(PageOut):
    """A page of templates."""

    items = fields.List(fields.Nested(TemplateOut))


class AnswerIn(Schema):
    """One answer: the value fits the item's type (true/false, a number, a choice, text); photo items send photo."""

    item = text(32)
    value = fields.Raw(load_default=None, allow_none=True)
    photo = _sha256(load_default=None, allow_none=True)


class ChecklistSubmitIn(Schema):
    """checklist.submit: a filled-in checklist (a create op: entity_id is the device's UUID for it)."""

    template_id = text(32)
    template_version = integer(minimum=1, maximum=1_000_000, required=True)
    vehicle_id = text(32, required=False, load_default=None, allow_none=True)
    task_id = text(32, required=False, load_default=None, allow_none=True)
    answers = fields.List(fields.Nested(AnswerIn), required=True, validate=validate.Length(max=MAX_ITEMS))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    signature = _sha256(load_default=None, allow_none=True)
    acknowledged_report_id = text(36, required=False, load_default=None, allow_none=True, metadata={
        "description": "vehicle.pre_trip: the van's last report the driver was shown (its last_report.id)"})


def submission_attachments(payload: dict) -> list[str]:
    """The files a submission names: answers' photos and the signature."""
    shas = [answer["photo"] for answer in payload["answers"] if answer.get("photo")]
    return shas + ([payload["signature"]] if payload.get("signature") else [])


class ShiftStartIn(Schema):
    """shift.start: the op's entity is the van; the odometer as read."""

    vehicle_id = text(32, required=False, load_default=None, allow_none=True)
    odometer = integer(maximum=MAX_READING, required=True)
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))


class ShiftEndIn(ShiftStartIn):
    """shift.end: the op's entity is the van; the odometer as read."""


class SubmissionOut(Schema):
    """A checklist as submitted."""

    id = fields.String()
    template_id = fields.String()
    template_version = fields.Integer()
    kind = fields.String()
    courier_id = fields.String()
    vehicle_id = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True)
    answers = fields.List(fields.Dict())
    failed = fields.List(fields.String())
    lat = fields.Float()
    lon = fields.Float()
    signature = fields.String(allow_none=True)
    acknowledged_id = fields.String(allow_none=True, metadata={"description": "The report this check acknowledged"})
    flags = fields.List(fields.String())
    device_time = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()
    version = fields.Integer()


class DefectOut(Schema):
    """A defect and, once closed, its certificate (who, when, note, photos)."""

    id = fields.Integer()
    vehicle_id = fields.String()
    submission_id = fields.String()
    item = fields.String()
    label = fields.String()
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    status = fields.String(metadata={"enum": list(DEFECT_STATUSES)})
    value = fields.Dict()
    reported_by = fields.String()
    reported_at = fields.AwareDateTime()
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    note = fields.String(allow_none=True)
    photos = fields.List(fields.String())


class ReportOut(Schema):
    """A vehicle check with its defects and who acknowledged it: driver, mechanic, next driver."""

    id = fields.String()
    kind = fields.String()
    courier_id = fields.String()
    device_time = fields.AwareDateTime()
    failed = fields.List(fields.String())
    flags = fields.List(fields.String())
    acknowledged_id = fields.String(allow_none=True)
    acknowledged_by = fields.String(allow_none=True, metadata={
        "description": "The next driver's pre-trip check that acknowledged this report"})
    defects = fields.List(fields.Nested(DefectOut))


class VehicleHandheldOut(VehicleOut):
    """The courier's van as the handheld holds it: open defects and the last report to acknowledge."""

    defects = fields.List(fields.Nested(DefectOut), attribute="open_defect_list")
    last_report = fields.Nested(ReportOut, allow_none=True)


class VehicleDetailOut(VehicleHandheldOut):
    """A van for dispatch and maintenance: status, open defects, last reports."""

    last_reports = fields.List(fields.Nested(ReportOut))


class DefectQuery(NewestFirstQuery):
    """The maintenance queue's filters (newest first)."""

    status = text(16, required=False, load_default="open", validate=validate.OneOf(DEFECT_STATUSES))
    severity = text(16, required=False, load_default=None, validate=validate.OneOf(SEVERITIES))
    vehicle_id = text(32, required=False, load_default=None)


class DefectPage(PageOut):
    """A page of defects."""

    items = fields.List(fields.Nested(DefectOut))


class RepairIn(Schema):
    """A certified repair."""

    note = text(2000, multiline=True)
    photos = fields.List(_sha256(), load_default=list, validate=validate.Length(max=10))


class NoRepairIn(Schema):
    """Maintenance judged the defect needs no repair, and says why."""

    reason = text(2000, multiline=True)
