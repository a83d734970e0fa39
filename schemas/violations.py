"""Conduct violations, their appeals, and inspections (spot checks, mystery shoppers) on the wire."""
from marshmallow import fields, validate

from schemas.checklists import MAX_ITEMS, MAX_READING, AnswerIn, _sha256
from schemas.common import CsvQuery, NewestFirstQuery, PageOut, Schema, Time, integer, text, text_pattern
from schemas.couriers import ConductViolationOut
from schemas.limits import MAX_INT32
from schemas.vocab import (APPEAL_OUTCOMES, APPEAL_STATUSES, INSPECTION_KINDS, SEVERITIES, VIOLATION_CODES,
                           VIOLATION_SOURCES, VIOLATION_STATUSES)

MAX_PHOTOS = 10


class ViolationQuery(NewestFirstQuery):
    """A courier's violations, newest first."""


class ReviewQuery(NewestFirstQuery, CsvQuery):
    """Quality's list of violations, newest first, by status, courier, code and a suspect clock."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(VIOLATION_STATUSES))
    courier_id = text(32, required=False, load_default=None)
    code = text(32, required=False, load_default=None, validate=validate.OneOf(VIOLATION_CODES))
    clock_suspect = fields.Boolean(load_default=None, metadata={
        "description": "true: recorded on a device clock the sync engine flagged"})


class AppealOut(Schema):
    """A courier's appeal of a violation and, once decided, quality's word."""

    id = fields.String()
    violation_id = fields.Integer()
    reason = fields.String()
    photos = fields.List(fields.String())
    status = fields.String(metadata={"enum": list(APPEAL_STATUSES)})
    device_time = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    version = fields.Integer()


class ViolationOut(Schema):
    """A violation with its evidence, its status and its appeal."""

    id = fields.Integer()
    courier_id = fields.String()
    code = fields.String(metadata={"enum": list(VIOLATION_CODES)})
    severity = fields.String(metadata={"enum": list(SEVERITIES), "description": "What it weighs in the grade"})
    task_id = fields.String(allow_none=True)
    source = fields.String(metadata={"enum": list(VIOLATION_SOURCES)})
    evidence = fields.Dict()
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    status = fields.String(metadata={"enum": list(VIOLATION_STATUSES),
                                     "description": "voided: it weighs nothing in the grade"})
    clock_suspect = fields.Boolean(metadata={"description": "Recorded on a device clock the sync engine flagged"})
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True, metadata={"description": "The staff member; null for a rule"})
    decision_reason = fields.String(allow_none=True)
    appeal = fields.Nested(AppealOut, allow_none=True)


class ViolationPage(PageOut):
    """A page of violations, newest first."""

    items = fields.List(fields.Nested(ViolationOut))


class AppealIn(Schema):
    """violation.appeal: a create op (entity_id is the device's UUID for the appeal) naming the courier's violation."""

    violation_id = integer(minimum=1, maximum=MAX_INT32, required=True)
    reason = text(2000, multiline=True)
    photos = fields.List(_sha256(), load_default=list, validate=validate.Length(max=MAX_PHOTOS))


class AppealDecisionIn(Schema):
    """Quality's decision on an appeal: the violation is upheld (it stands) or voided (it leaves the grade)."""

    outcome = text(16, validate=validate.OneOf(APPEAL_OUTCOMES))
    reason = text(2000, multiline=True)


class ReasonIn(Schema):
    """A staff decision's reason."""

    reason = text(2000, multiline=True)


class InspectionAnswerIn(AnswerIn):
    """One answer of an inspection: what its item's type takes (true/false, a number, a choice, text)."""

    value = fields.Raw(load_default=None, allow_none=True, metadata={"oneOf": [
        {"type": "boolean"}, {"type": "number", "minimum": -MAX_READING, "maximum": MAX_READING},
        {"type": "string", "pattern": text_pattern(blank=True)}]})


class InspectionIn(Schema):
    """A spot check or mystery-shopper visit: an inspection checklist about a courier, a van or a stop."""

    kind = text(16, validate=validate.OneOf(INSPECTION_KINDS))
    template_id = text(32)
    template_version = integer(minimum=1, maximum=1_000_000, required=False, load_default=None,
                               metadata={"description": "Default: the template's current version"})
    courier_id = text(32, required=False, load_default=None)
    vehicle_id = text(32, required=False, load_default=None)
    task_id = text(32, required=False, load_default=None, metadata={"description": "The stop inspected"})
    inspected_at = Time(required=True, metadata={"description": "When it happened; not in the future"})
    inspector = text(100, required=False, load_default=None, metadata={
        "description": "Who inspected (a mystery shopper's name); default: the caller"})
    notes = text(4000, required=False, load_default=None, multiline=True)
    photos = fields.List(_sha256(), load_default=list, validate=validate.Length(max=MAX_PHOTOS))
    answers = fields.List(fields.Nested(InspectionAnswerIn), required=True, validate=validate.Length(max=MAX_ITEMS))


class InspectionOut(Schema):
    """An inspection as recorded, with the violations its failed items made."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(INSPECTION_KINDS)})
    template_id = fields.String()
    template_version = fields.Integer()
    courier_id = fields.String()
    vehicle_id = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True)
    inspector = fields.String()
    inspected_at = fields.AwareDateTime()
    notes = fields.String(allow_none=True)
    photos = fields.List(fields.String())
    answers = fields.List(fields.Dict())
    failed = fields.List(fields.String())
    violation_ids = fields.List(fields.Integer())
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String()


class InspectionQuery(NewestFirstQuery):
    """Inspections newest first, by courier and kind."""

    courier_id = text(32, required=False, load_default=None)
    kind = text(16, required=False, load_default=None, validate=validate.OneOf(INSPECTION_KINDS))


class InspectionPage(PageOut):
    """A page of inspections, newest first."""

    items = fields.List(fields.Nested(InspectionOut))


class OwnViolationPage(PageOut):
    """A page of the courier's own violations as their handheld shows them."""

    items = fields.List(fields.Nested(ConductViolationOut))


# The columns of its CSV export (?format=csv), in order.
VIOLATION_CSV_COLUMNS = ("id", "courier_id", "code", "severity", "task_id", "source", "status", "clock_suspect",
                     "occurred_at", "recorded_at", "decided_at", "decided_by", "decision_reason", "appeal.status",
                     "appeal.reason")
