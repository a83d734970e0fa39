"""Parcel scans on the wire: the handheld's parcel.scan, upstream's batch, the journey, lost parcels."""
from marshmallow import fields, validate

from schemas.common import ANY_DATE_TIME_PATTERN, PageOut, PageQuery, Schema, integer, text
from schemas.limits import MAX_INT32
from schemas.vocab import LOST_STATES, SCAN_EVENTS, SCAN_SOURCES

MAX_UPSTREAM_SCANS = 500  # per POST /integrations/scans


class ScanIn(Schema):
    """parcel.scan: a parcel of the op's task (entity_id) seen at a point of its journey."""

    parcel_no = text(40)
    event = text(24, validate=validate.OneOf(SCAN_EVENTS))
    note = text(500, required=False, load_default=None, allow_none=True)


class UpstreamScanIn(Schema):
    """One scan from an upstream system, under its own event id (a retry sends the same id and body)."""

    event_id = text(64, metadata={"description": "Unique per upstream system; makes a retry idempotent"})
    parcel_no = text(40)
    event = text(24, validate=validate.OneOf(SCAN_EVENTS))
    # Any time with its zone is kept, a clock off by decades flagged, not refused (docs/decisions.md), as a
    # device's clock is (device_now).
    occurred_at = fields.AwareDateTime(required=True, metadata={
        "pattern": ANY_DATE_TIME_PATTERN, "description": "When it happened, with its zone (any year: a wrong clock "
                                                         "is kept and flagged)"})
    note = text(500, required=False, load_default=None, allow_none=True)


class UpstreamScansIn(Schema):
    """A batch of upstream scans."""

    scans = fields.List(fields.Nested(UpstreamScanIn), required=True,
                        validate=validate.Length(min=1, max=MAX_UPSTREAM_SCANS))


class UpstreamScanResult(Schema):
    """What became of one upstream scan: recorded (again: the same answer), conflict, or rejected."""

    event_id = fields.String()
    status = fields.String(metadata={"enum": ["recorded", "conflict", "rejected"]})
    code = fields.String(allow_none=True, metadata={"description": "event_id_reused | unknown_parcel"})
    scan_id = fields.Integer(allow_none=True)


class UpstreamScansOut(Schema):
    """One result per scan sent, in order."""

    results = fields.List(fields.Nested(UpstreamScanResult))


class JourneyItemOut(Schema):
    """One event of the journey (the same event told again within the dedup window is folded into it)."""

    id = fields.Integer()
    parcel_no = fields.String()
    task_id = fields.String()
    event = fields.String(metadata={"enum": list(SCAN_EVENTS)})
    source = fields.String(metadata={"enum": list(SCAN_SOURCES)})
    also_from = fields.List(fields.String(metadata={"enum": list(SCAN_SOURCES)}))
    note = fields.String(allow_none=True)
    effective_time = fields.DateTime()
    reported_time = fields.DateTime(allow_none=True)
    received_at = fields.DateTime()
    clock_suspect = fields.Boolean()
    courier_id = fields.String(allow_none=True)


class LostParcelOut(Schema):
    """A parcel and its lost state."""

    id = fields.Integer()
    task_id = fields.String()
    parcel_no = fields.String()
    lost_state = fields.String(allow_none=True, metadata={"enum": list(LOST_STATES)})
    lost_state_at = fields.DateTime(allow_none=True)
    lost_state_by = fields.String(allow_none=True)


class JourneyOut(Schema):
    """A task's parcels and their journey."""

    task_id = fields.String()
    waybill_no = fields.String()
    parcels = fields.List(fields.Nested(LostParcelOut))
    journey = fields.List(fields.Nested(JourneyItemOut))


class LostQuery(PageQuery):
    """Parcels in a lost state, oldest first."""

    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)
    state = text(16, required=False, load_default=None, validate=validate.OneOf(LOST_STATES))


class LostPage(PageOut):
    """A page of parcels in a lost state."""

    items = fields.List(fields.Nested(LostParcelOut))


class LostStateIn(Schema):
    """Dispatch's word on a suspected parcel."""

    state = text(16, validate=validate.OneOf(("lost", "found")))
