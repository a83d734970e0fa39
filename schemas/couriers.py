"""Couriers, devices and enrollments on the wire."""
from marshmallow import fields, validate

from schemas.common import CODE, PageOut, PageQuery, PatchSchema, Schema, identifier, phone, text
from schemas.vocab import (APPEAL_STATUSES, COMPLAINT_CATEGORIES, SEVERITIES, VIOLATION_CODES, VIOLATION_SOURCES,
                           VIOLATION_STATUSES)


class CourierIn(Schema):
    """A new courier."""

    name = text(100)
    phone = phone(required=True)
    employee_no = identifier(32, **CODE)
    depot = identifier(32, required=False, load_default=None, **CODE,
                       metadata={"description": "The depot (station) code the courier works out of"})


class CourierPatch(PatchSchema):
    """Fields dispatch may change on a courier."""

    name = text(100, required=False)
    phone = phone()
    active = fields.Boolean()
    depot = identifier(32, required=False, allow_none=True, **CODE)


class CourierOut(Schema):
    """A courier as dispatch sees it."""

    id = fields.String()
    name = fields.String()
    phone = fields.String()
    employee_no = fields.String()
    depot = fields.String(allow_none=True)
    active = fields.Boolean()
    grade = fields.String()
    version = fields.Integer()
    created_at = fields.AwareDateTime()


class CourierQuery(PageQuery):
    """Filters for listing couriers."""

    active = fields.Boolean(load_default=None)


class CourierPage(PageOut):
    """A page of couriers."""

    items = fields.List(fields.Nested(CourierOut))


class AppealStateOut(Schema):
    """The courier's appeal of a violation as they see it: theirs, and quality's word once decided."""

    id = fields.String()
    status = fields.String(metadata={"enum": list(APPEAL_STATUSES)})
    reason = fields.String()
    device_time = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class ConductViolationOut(Schema):
    """A violation as the courier sees it on their handheld: what, when, how bad; never a customer's words."""

    status = fields.String(metadata={"enum": list(VIOLATION_STATUSES),
                                     "description": "appealed: their appeal is open; voided: it no longer counts"})
    decision_reason = fields.String(allow_none=True)
    appeal = fields.Nested(AppealStateOut, allow_none=True)

    id = fields.Integer()
    code = fields.String(metadata={"enum": list(VIOLATION_CODES)})
    severity = fields.String(metadata={"enum": list(SEVERITIES)})
    source = fields.String(metadata={"enum": list(VIOLATION_SOURCES)})
    task_id = fields.String(allow_none=True)
    occurred_at = fields.AwareDateTime()
    complaint_category = fields.Function(
        lambda v: v.evidence.get("category") if v.source == "complaint" else None,
        metadata={"enum": [*COMPLAINT_CATEGORIES, None], "nullable": True})


class CourierSelfOut(Schema):
    """A courier's own record, as their handheld holds it: their grade with its reasons, their newest violations."""

    id = fields.String()
    name = fields.String()
    employee_no = fields.String()
    grade = fields.String()
    grade_score = fields.Function(lambda c: (c.grade_detail or {}).get("score"))
    grade_reasons = fields.Function(lambda c: (c.grade_detail or {}).get("reasons", []))
    grade_window = fields.Function(lambda c: (c.grade_detail or {}).get("window"))
    grade_as_of = fields.Function(lambda c: (c.grade_detail or {}).get("computed_at"))
    violations = fields.List(fields.Nested(ConductViolationOut), attribute="recent_violations")
    version = fields.Integer()


class EnrollmentOut(Schema):
    """A one-time enrollment code; shown once."""

    code = fields.String()
    courier_id = fields.String()
    expires_at = fields.AwareDateTime()
    qr_png = fields.String(metadata={"description": "URL of the QR code as PNG"})
    qr_svg = fields.String(metadata={"description": "URL of the QR code as SVG"})


class EnrollIn(Schema):
    """A handheld presenting an enrollment code."""

    code = text(32)
    device_name = text(100)


class EnrollOut(Schema):
    """The device's identity and token; the token is shown once."""

    device_id = fields.String()
    courier_id = fields.String()
    token = fields.String()


class DeviceOut(Schema):
    """A device as dispatch sees it (never its token)."""

    id = fields.String()
    courier_id = fields.String()
    name = fields.String()
    enrolled_at = fields.AwareDateTime()
    revoked_at = fields.AwareDateTime(allow_none=True)
    last_seq = fields.Integer()
    last_seen_at = fields.AwareDateTime(allow_none=True)
    rejected_ops = fields.Integer(metadata={"description": "Ops of this device rejected since it enrolled"})
    noisy = fields.Boolean(metadata={"description": "rejected_ops is beyond FIELDOPS_DEVICE_REJECTIONS_ALERT: "
                                                    "a broken app or a token in the wrong hands"})


class DeviceList(Schema):
    """A courier's devices."""

    items = fields.List(fields.Nested(DeviceOut))


class DeviceQuery(PageQuery):
    """Filters for every courier's devices."""

    noisy = fields.Boolean(load_default=None, metadata={
        "description": "true: only devices with rejections beyond the alert; false: only the others"})
    courier_id = text(32, required=False, load_default=None)


class DevicePage(PageOut):
    """A page of devices."""

    items = fields.List(fields.Nested(DeviceOut))


QR_FORMATS = validate.OneOf(["png", "svg"])
