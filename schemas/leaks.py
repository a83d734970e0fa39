"""Information-leak incidents (信息泄露事件) on the wire: reporting one, correcting it, notifications, decisions."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import Day, NewestFirstQuery, PageOut, PatchSchema, Schema, Time, integer, text
from schemas.limits import MAX_INT32
from schemas.vocab import LEAK_AUDIENCES, LEAK_CHANNELS, LEAK_DATA_KINDS, LEAK_SOURCES, LEAK_STATUSES

_KINDS = {"description": f"What data went out, each one of: {', '.join(LEAK_DATA_KINDS)} (kept sorted, each once)"}


def _data_kinds(**kw) -> fields.List:
    """One to all of the data kinds, each from the vocabulary (an unknown one is named by its index)."""
    return fields.List(text(16, validate=validate.OneOf(LEAK_DATA_KINDS)),
                       validate=validate.Length(min=1, max=len(LEAK_DATA_KINDS)), metadata=_KINDS, **kw)


class LeakIn(Schema):
    """An incident as the office reports it; quality decides whether it is a leak."""

    source = text(16, validate=validate.OneOf([s for s in LEAK_SOURCES if s != "auto"]),
                  metadata={"description": "How it was found (auto: only the service itself)"})
    occurred_at = Time(load_default=None, allow_none=True,
                       metadata={"description": "When it happened; null: not known. Not in the future"})
    occurred_approximate = fields.Boolean(load_default=False,
                                          metadata={"description": "occurred_at is an estimate"})
    discovered_at = Time(required=True, metadata={"description": "When it was found; not before occurred_at, "
                                                                 "not in the future. leak_incidents counts by it"})
    data_kinds = _data_kinds(required=True)
    people_affected = integer(minimum=0, maximum=MAX_INT32, load_default=None, allow_none=True,
                              metadata={"description": "How many people's data; null: not known yet"})
    description = text(4000, multiline=True)
    responsible_staff_id = text(32, required=False, load_default=None, allow_none=True)
    responsible_courier_id = text(32, required=False, load_default=None, allow_none=True)


class LeakPatch(PatchSchema):
    """A correction of what the register says (quality, admin)."""

    occurred_at = Time(allow_none=True)
    occurred_approximate = fields.Boolean()
    discovered_at = Time()
    data_kinds = _data_kinds()
    people_affected = integer(minimum=0, maximum=MAX_INT32, allow_none=True)
    description = text(4000, required=False, multiline=True)
    responsible_staff_id = text(32, required=False, allow_none=True)
    responsible_courier_id = text(32, required=False, allow_none=True)


class LeakNotifyIn(Schema):
    """Whom the company told, when and how."""

    audience = text(16, validate=validate.OneOf(LEAK_AUDIENCES))
    notified_at = Time(required=True, metadata={"description": "Not in the future, not before discovered_at"})
    channel = text(16, validate=validate.OneOf(LEAK_CHANNELS))
    note = text(2000, required=False, load_default=None, allow_none=True, multiline=True)


class LeakConfirmIn(Schema):
    """Quality's confirmation, with a note if they like."""

    note = text(2000, required=False, load_default=None, allow_none=True, multiline=True)


class LeakDismissIn(Schema):
    """Why it was no leak."""

    note = text(2000, multiline=True)


class LeakResolveIn(Schema):
    """How and when the leak was resolved."""

    resolution = text(4000, multiline=True)
    resolved_at = Time(load_default=None, allow_none=True,
                       metadata={"description": "Default now; not in the future, not before discovered_at"})


class LeakQuery(NewestFirstQuery):
    """Filters for the register, newest first."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(LEAK_STATUSES))
    source = text(16, required=False, load_default=None, validate=validate.OneOf(LEAK_SOURCES))
    start = Day(load_default=None, data_key="from",
                metadata={"description": "First depot-local date of discovery (inclusive)"})
    end = Day(load_default=None, data_key="to", metadata={"description": "Last depot-local date of discovery"})

    @validates_schema
    def _in_order(self, data, **_kw):
        """from is not after to."""
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("Must not be after to.", field_name="from")


class LeakNotificationOut(Schema):
    """One telling, as recorded."""

    id = fields.Integer()
    audience = fields.String(metadata={"enum": list(LEAK_AUDIENCES)})
    notified_at = fields.AwareDateTime()
    channel = fields.String(metadata={"enum": list(LEAK_CHANNELS)})
    note = fields.String(allow_none=True)
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String(allow_none=True)


class LeakOut(Schema):
    """An incident with everyone told of it."""

    id = fields.Integer()
    status = fields.String(metadata={"enum": list(LEAK_STATUSES)})
    source = fields.String(metadata={"enum": list(LEAK_SOURCES)})
    occurred_at = fields.AwareDateTime(allow_none=True)
    occurred_approximate = fields.Boolean()
    discovered_at = fields.AwareDateTime()
    data_kinds = fields.List(fields.String(metadata={"enum": list(LEAK_DATA_KINDS)}))
    people_affected = fields.Integer(allow_none=True)
    description = fields.String()
    detail = fields.Dict(allow_none=True, metadata={
        "description": "What the service saw, for an automatic incident: cause link_addresses (link_kind, link_id, "
                       "task_id, addresses, limit) or export_rows (staff_id, rows, what, window_minutes, limit)"})
    responsible_staff_id = fields.String(allow_none=True)
    responsible_courier_id = fields.String(allow_none=True)
    opened_at = fields.AwareDateTime()
    opened_by = fields.String(allow_none=True, metadata={"description": "Null: opened by the service itself"})
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_note = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolution = fields.String(allow_none=True)
    notifications = fields.List(fields.Nested(LeakNotificationOut), metadata={"description": "Oldest first"})


class LeakPage(PageOut):
    """A page of incidents."""

    items = fields.List(fields.Nested(LeakOut))
