"""Tasks on the wire: what dispatch creates and reads, and the parts a courier's view shares (schemas.handheld)."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import (CsvQuery, Day, PageOut, PageQuery, Schema, Time, check_payable, full_match, identifier,
                            integer, money, phone, text)
from schemas.limits import MAX_MONEY
from schemas.vocab import ATTEMPT_FAILURES, PROMISE_STATES, TASK_KINDS, TASK_STATUSES

WAYBILL = {"pattern": r"[A-Za-z0-9\-]{4,40}", "pattern_error": "Waybill: 4-40 letters, digits or dashes."}
MAX_IMPORT_TASKS = 5000  # per import, JSON or CSV
PRODUCT_CODE = {"pattern": r"[a-z0-9][a-z0-9_]{0,31}", "pattern_error": "A product code: a-z, 0-9 and _ only."}


class RecipientIn(Schema):
    """Who receives (or hands over) the parcels, and where."""

    name = text(100)
    phone = phone(required=True)
    address = text(300)
    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))


class ParcelIn(Schema):
    """A parcel and how many pieces it holds."""

    parcel_no = text(40)
    description = text(200, required=False, min_len=0, load_default="")
    count = integer(minimum=1, maximum=10_000, load_default=1)


class DeclaredParcelIn(ParcelIn):
    """A parcel of a manifest, with what its sender declared and insured (a claim's rule reads them)."""

    declared_value = money(load_default=None, allow_none=True, metadata={
        "description": "What the sender declared the parcel worth, in fen (required when insured)"})
    insured = fields.Boolean(load_default=False, metadata={
        "description": "The sender paid for declared-value insurance: a claim is paid up to the declared value"})

    @validates_schema
    def _insured_declares(self, data, **_kw):
        """An insured parcel is insured for a value: it must declare one above zero."""
        if data.get("insured") and not data.get("declared_value"):
            raise ValidationError("An insured parcel declares its value (fen, above zero).",
                                  field_name="declared_value")


class FeeIn(Schema):
    """A published fee, in fen."""

    code = text(32, metadata={"description": "A published fee code (delivery, insurance, ...; cod_service only "
                                             "with a COD amount)"})
    amount = money(required=True)


class WindowIn(Schema):
    """The appointment window; both ends carry a time zone."""

    start = Time(required=True)
    end = Time(required=True, metadata={"description": "After start"})

    @validates_schema
    def _end_after_start(self, data, **_kw):
        """A window must not end before it starts."""
        if "start" in data and "end" in data and data["end"] <= data["start"]:
            raise ValidationError("Window end must be after its start.", field_name="end")


class TaskIn(Schema):
    """A task as dispatch creates it (amounts in fen)."""

    waybill_no = identifier(40, **WAYBILL)
    kind = text(16, validate=validate.OneOf(TASK_KINDS))
    recipient = fields.Nested(RecipientIn, required=True)
    parcels = fields.List(fields.Nested(DeclaredParcelIn), required=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "Each parcel_no once"})
    cod_amount = money(load_default=0, metadata={
        "description": f"In fen; 0 for a pickup; with the fees at most {MAX_MONEY} (the amount due is one payment)"})
    fees = fields.List(fields.Nested(FeeIn), load_default=list, validate=validate.Length(max=20), metadata={
        "description": f"Each fee code once; together at most {MAX_MONEY} fen"})
    window = fields.Nested(WindowIn, required=True)
    gift_description = text(200, required=False, load_default=None, allow_none=True,
                            metadata={"description": "An enclosed gift the courier must tell the customer about"})
    service_product = text(32, required=False, load_default=None, allow_none=True, **PRODUCT_CODE, metadata={
        "description": "An active service product's code (GET /api/v1/admin/service-products); with collected_at "
                       "it gives the task its promised time. A delivery without it has an unknown promise."})
    collected_at = Time(load_default=None, allow_none=True, metadata={
        "description": "When the parcels were collected (揽收), with a time zone; not later than now. Required "
                       "with service_product. The promised time is computed from both, never taken as given."})

    @validates_schema
    def _amount_due_payable(self, data, **_kw):
        """COD plus fees is paid at once: a task whose amount due no payment can carry could never be handed over."""
        check_payable(fees=data.get("fees", []), cod_amount=data.get("cod_amount", 0))


class TaskImportIn(Schema):
    """Many tasks at once; all are stored or none."""

    tasks = fields.List(fields.Nested(TaskIn), required=True,
                        validate=validate.Length(min=1, max=MAX_IMPORT_TASKS))


class TaskImportOut(Schema):
    """What an import stored."""

    created = fields.Integer()
    ids = fields.List(fields.String())


class AssignIn(Schema):
    """Give a task to a courier."""

    courier_id = text(32)


class CancelIn(Schema):
    """Cancel a task, saying why."""

    reason = text(300)


class GiftIn(Schema):
    """The enclosed gift the courier must tell the customer about; null clears it."""

    gift_description = text(200, required=True, allow_none=True)


class NoteIn(Schema):
    """A free-text note on a task, optionally with photos already uploaded."""

    text = text(2000, multiline=True)
    photos = fields.List(fields.String(validate=full_match(r"[0-9a-f]{64}", "Not a SHA-256 in hex.")),
                         load_default=list, validate=validate.Length(max=10))


class RecipientOut(Schema):
    """The recipient as dispatch sees it."""

    name = fields.String(attribute="recipient_name")
    phone = fields.String(attribute="recipient_phone")
    address = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)


class CourierRecipientOut(RecipientOut):
    """The recipient as a courier sees it: the phone the service decided they may see (masked once finished)."""

    phone = fields.String(attribute="recipient_phone_for_courier")


class ParcelOut(Schema):
    """A parcel."""

    parcel_no = fields.String()
    description = fields.String()
    count = fields.Integer()


class DeclaredParcelOut(ParcelOut):
    """A parcel as dispatch sees it: with its declared value and insurance."""

    declared_value = fields.Integer(allow_none=True)
    insured = fields.Boolean()


class FeeOut(Schema):
    """A fee charged, in fen."""

    code = fields.String()
    amount = fields.Integer()


class WindowOut(Schema):
    """The appointment window."""

    start = fields.AwareDateTime(attribute="window_start")
    end = fields.AwareDateTime(attribute="window_end")


class NoteOut(Schema):
    """A note on a task."""

    at = fields.AwareDateTime()
    device_time = fields.AwareDateTime(allow_none=True)
    actor_kind = fields.String()
    actor_id = fields.String(allow_none=True)
    text = fields.String()
    photos = fields.Function(lambda event: (event.data or {}).get("photos", []))


class PromiseOut(Schema):
    """A task's promise: its product, collection, promised time and day, and where it stands."""

    service_product = fields.String(allow_none=True)
    name_zh = fields.String(allow_none=True)
    name_en = fields.String(allow_none=True)
    collected_at = fields.AwareDateTime(allow_none=True)
    promised_at = fields.AwareDateTime(allow_none=True)
    promise_date = fields.Date(allow_none=True, metadata={"description": "The depot-local day the promise falls on"})
    state = fields.String(metadata={"enum": list(PROMISE_STATES), "description": (
        "unknown (no product or collection), on_track, at_risk (open, within FIELDOPS_PROMISE_AT_RISK_MINUTES), "
        "breached (past it, not delivered), kept or missed (delivered by it or after), closed (refused, "
        "cancelled)")})
    at_risk = fields.Boolean(metadata={"description": "at_risk or breached"})


_recipient_out = RecipientOut()


_window_out = WindowOut()


class TaskOut(Schema):
    """A task as dispatch sees it."""

    id = fields.String()
    waybill_no = fields.String()
    kind = fields.String()
    status = fields.String()
    version = fields.Integer()
    recipient = fields.Function(lambda task: _recipient_out.dump(task))
    parcels = fields.List(fields.Nested(DeclaredParcelOut))
    cod_amount = fields.Integer()
    fees = fields.List(fields.Nested(FeeOut))
    window = fields.Function(lambda task: _window_out.dump(task))
    service_date = fields.Date()
    courier_id = fields.String(allow_none=True)
    needs_review = fields.Boolean()
    arrived_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True, metadata={
        "enum": list(ATTEMPT_FAILURES), "description": "Why the day's attempt failed, while the task is failed"})
    gift_description = fields.String(allow_none=True)
    pin_required = fields.Boolean()
    return_of_id = fields.String(allow_none=True)
    promise = fields.Nested(PromiseOut, allow_none=True, attribute="promise_view", metadata={
        "description": "The service product's promise; null for a task without product or collection (unknown)"})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TaskEventOut(Schema):
    """One entry of a task's history."""

    id = fields.Integer()
    at = fields.AwareDateTime()
    device_time = fields.AwareDateTime(allow_none=True)
    kind = fields.String()
    actor_kind = fields.String()
    actor_id = fields.String(allow_none=True)
    text = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)


RECEIPT_LINK = {"type": "object", "nullable": True, "properties": {
    "number": {"type": "string"},
    "url": {"type": "string", "nullable": True,
            "description": "The public receipt page (null if its address cannot be recovered)"}}}


def _receipt_of(task) -> dict | None:
    """A finished handover's receipt as services.handover.with_receipts gave it (null before one is issued)."""
    handover = task.__dict__.get("handover")
    return None if handover is None else handover.__dict__.get("receipt")


class TaskDetailOut(TaskOut):
    """A task with its full history and, once handed over, its receipt."""

    history = fields.List(fields.Nested(TaskEventOut), attribute="events")
    receipt = fields.Function(_receipt_of, metadata={
        **RECEIPT_LINK, "description": "The sealed receipt of its handover: number and public page (the one "
                                       "GET /dispatch/tasks/{id}/handover shows); null until it is handed over"})


class TaskQuery(PageQuery, CsvQuery):
    """Filters for the dispatch task list."""

    q = text(40, required=False, load_default=None, metadata={"description": (
        "Search: a waybill prefix (SF12), a recipient's surname (王, 欧阳, smith: a Chinese name's first character "
        "or compound surname, a Latin name's last word, any case) or the last four digits of their phone (5678); "
        "a term matches any of these it can be")})
    status = text(16, required=False, load_default=None, validate=validate.OneOf(TASK_STATUSES))
    courier_id = text(32, required=False, load_default=None)
    date = Day(load_default=None, metadata={"description": "Depot-local service date"})
    waybill_no = identifier(40, required=False, load_default=None)
    needs_review = fields.Boolean(load_default=None)
    at_risk = fields.Boolean(load_default=None, metadata={
        "description": "true: open tasks within FIELDOPS_PROMISE_AT_RISK_MINUTES of their promised time or past it"})


# The task list as CSV (server.csvout): TaskOut's fields, nested ones dotted.
TASK_CSV_COLUMNS = ("id", "waybill_no", "kind", "status", "service_date", "courier_id", "recipient.name",
                    "recipient.phone", "recipient.address", "window.start", "window.end", "cod_amount",
                    "needs_review", "arrived_at", "finished_at", "failure_reason", "cancel_reason", "promise.state",
                    "promise.promised_at", "created_at", "updated_at")


class TaskPage(PageOut):
    """A page of tasks."""

    items = fields.List(fields.Nested(TaskOut))


class ArriveIn(Schema):
    """The courier is at the stop; where the handheld says it is."""

    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
