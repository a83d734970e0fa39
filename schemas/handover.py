"""The handover on the wire: the ops a handheld pushes, the state a task carries, dispatch's timeline and exceptions."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import CsvQuery, Day, PageOut, PageQuery, Schema, check_payable, full_match, integer, money, text
from schemas.limits import MAX_INT32
from schemas.render import renderer
from schemas.tasks import RECEIPT_LINK, FeeIn, ParcelIn
from schemas.vocab import (ALTERNATE_PLACES, AUTHORIZATION_VIA, DISPATCH_EXCEPTIONS, EXCEPTION_STATUSES,
                           ITEM_CONDITIONS, PAYMENT_METHODS, REFUSAL_REASONS, VERIFY_METHODS)

_SHA256 = full_match(r"[0-9a-f]{64}", "Not a SHA-256 in hex.")


def _sha256(**kw) -> fields.String:
    """An attachment named by its SHA-256 (uploaded before the op that names it)."""
    return fields.String(validate=_SHA256, **kw)


def _photos() -> fields.List:
    """Up to ten photos, already uploaded."""
    return fields.List(_sha256(), load_default=list, validate=validate.Length(max=10))


class _Located(Schema):
    """Where the handheld says the step happened (optional)."""

    lat = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))


class VerifyRecipientIn(_Located):
    """pod.verify_recipient: who takes the parcel, how they were checked; the PIN when the task requires one."""

    method = text(16, validate=validate.OneOf(VERIFY_METHODS))
    name = text(100)
    relation = text(100, required=False, load_default=None)
    pin = fields.String(load_default=None, allow_none=True, validate=full_match(r"[0-9]{6}", "Six digits."))

    @validates_schema
    def _proxy_names_relation(self, data, **_kw):
        """Someone taking the parcel for the recipient says who they are to them."""
        if data.get("method") == "proxy" and not data.get("relation"):
            raise ValidationError("A proxy says their relation to the recipient.", field_name="relation")


class InspectedItemIn(Schema):
    """One parcel as the customer counted and found it."""

    parcel_no = text(40)
    counted = integer(maximum=10_000, required=True)
    condition = text(16, validate=validate.OneOf(ITEM_CONDITIONS))


class InspectIn(_Located):
    """pod.inspect: the customer counts and inspects; damaged or missing items need a photo."""

    items = fields.List(fields.Nested(InspectedItemIn), required=True, validate=validate.Length(min=1, max=200))
    customer_accepted = fields.Boolean(required=True)
    photos = _photos()

    @validates_schema
    def _parcels_once(self, data, **_kw):
        """Each parcel is counted once (a repeated parcel_no would hide a discrepancy)."""
        numbers = [item["parcel_no"] for item in data.get("items", [])]
        if len(numbers) != len(set(numbers)):
            raise ValidationError("Each parcel_no may appear once.", field_name="items")


class CollectPaymentIn(_Located):
    """pod.collect_payment: exactly the COD amount plus the task's published fees, in fen."""

    amount = money(minimum=1, required=True)
    method = text(8, validate=validate.OneOf(PAYMENT_METHODS))


class SignIn(Schema):
    """pod.sign: the recipient's signature (uploaded first), where it was given, the gift told."""

    signature = _sha256(required=True)
    signer_name = text(100)
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    gift_disclosed = fields.Boolean(load_default=False)


class RefuseIn(_Located):
    """pod.refuse: the customer refuses after inspecting; no payment; a return task follows."""

    reason = text(16, validate=validate.OneOf(REFUSAL_REASONS))
    note = text(500, required=False, multiline=True, load_default=None)
    photos = _photos()


class AuthorizationIn(Schema):
    """The customer's consent to an alternate place: on the customer page, or reached by phone (a reference)."""

    via = text(16, validate=validate.OneOf(AUTHORIZATION_VIA))
    reference = text(100, required=False, min_len=0, load_default="")


class DeliverAlternateIn(_Located):
    """pod.deliver_alternate: a locker, station or neighbour, with the customer's consent."""

    place = text(16, validate=validate.OneOf(ALTERNATE_PLACES))
    authorization = fields.Nested(AuthorizationIn, required=True)
    photos = _photos()


class PaymentIn(Schema):
    """A payment taken at a pickup."""

    amount = money(minimum=1, required=True)
    method = text(8, validate=validate.OneOf(PAYMENT_METHODS))


class PickupCollectIn(_Located):
    """pickup.collect: parcels taken, published fees, their payment if made, the customer's signature."""

    parcels = fields.List(fields.Nested(ParcelIn), required=True, validate=validate.Length(min=1, max=200))
    fees = fields.List(fields.Nested(FeeIn), load_default=list, validate=validate.Length(max=20))
    payment = fields.Nested(PaymentIn, load_default=None, allow_none=True)
    signature = _sha256(required=True)
    signer_name = text(100)

    @validates_schema
    def _fees_once(self, data, **_kw):
        """A fee code may appear once."""
        codes = [fee["code"] for fee in data.get("fees", [])]
        if len(codes) != len(set(codes)):
            raise ValidationError("A fee code may appear once.", field_name="fees")

    @validates_schema
    def _fees_payable(self, data, **_kw):
        """The fees charged are paid at once: more than one payment carries is never a pickup's."""
        check_payable(fees=data.get("fees", []))


class PinOut(Schema):
    """What the handheld checks a PIN against offline: PBKDF2-HMAC-SHA256(pin, salt as text, iterations), hex."""

    algorithm = fields.Constant("pbkdf2_sha256")
    salt = fields.String(attribute="pin_salt")
    hash = fields.String(attribute="pin_hash")
    iterations = fields.Integer(attribute="pin_iterations")


class HandoverStateOut(Schema):
    """Where a task's handover stands: the handheld continues from here after a restart."""

    recipient_verified = fields.Boolean()
    verify_method = fields.String(allow_none=True)
    inspection = fields.String(allow_none=True, metadata={"enum": ["accepted", "refused"]})
    items = fields.List(fields.Dict(), allow_none=True)
    discrepancy = fields.Boolean()
    paid = fields.Function(lambda h: h.paid_amount is not None)
    paid_amount = fields.Integer(allow_none=True)
    paid_method = fields.String(allow_none=True)
    signed = fields.Boolean()
    outcome = fields.String(allow_none=True, metadata={"enum": ["delivered", "refused", "collected"]})
    alternate_place = fields.String(allow_none=True)
    not_at_address = fields.Boolean()
    consent_place = fields.Function(lambda h: h.consent_place if h.consent_withdrawn_at is None else None,
                                    metadata={"description": "The alternate place the customer consented to on "
                                              "their page (null when none, or withdrawn)"})
    consent_note = fields.Function(lambda h: h.consent_note if h.consent_withdrawn_at is None else None)
    pin = fields.Function(lambda h: _pin_out(h) if h.pin_hash else None)
    # The sealed receipt of a completed handover: its number and public page (the QR the customer scans),
    # as services.receipts.link dumps it for every face (services.handover.with_receipts sets it).
    receipt = fields.Function(lambda h: h.__dict__.get("receipt"), metadata={
        "type": "object", "nullable": True, "properties": {
            "number": {"type": "string"},
            "url": {"type": "string", "nullable": True,
                    "description": "The public receipt page (null if its address cannot be recovered)"}}})


_pin_out = renderer(PinOut())  # schemas.render: this schema's dump, faster (a push dumps every task it touched)


class PinIssuedOut(Schema):
    """The handover PIN, shown to dispatch this once (give it to the customer or the upstream system)."""

    task_id = fields.String()
    pin = fields.String()


class HandoverStepOut(Schema):
    """One step of the timeline, accepted or rejected."""

    id = fields.Integer()
    kind = fields.String()
    outcome = fields.String()
    code = fields.String(allow_none=True)
    courier_id = fields.String(allow_none=True)
    op_id = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    clock_suspect = fields.Boolean()
    data = fields.Dict()


def _attachment_links(data: dict) -> list[dict]:
    """The signature and photos of a handover with their download links for staff."""
    handover = data["handover"]
    if handover is None:
        return []
    shas = sorted(set(handover.photos or []) | ({handover.signature_sha256} if handover.signature_sha256 else set()))
    return [{"sha256": sha, "role": "signature" if sha == handover.signature_sha256 else "photo",
             "url": f"/api/v1/dispatch/attachments/{sha}"} for sha in shas]


class HandoverOut(Schema):
    """A task's whole handover for dispatch: the state, every step, the signature and photos."""

    task_id = fields.Function(lambda data: data["task"].id)
    waybill_no = fields.Function(lambda data: data["task"].waybill_no)
    status = fields.Function(lambda data: data["task"].status)
    pin_required = fields.Function(lambda data: data["task"].pin_required)
    gift_description = fields.Function(lambda data: data["task"].gift_description)
    state = fields.Function(lambda data: _state_out.dump(data["handover"]) if data["handover"] else None)
    receipt = fields.Function(lambda data: data["handover"].__dict__.get("receipt") if data["handover"] else None,
                              metadata={**RECEIPT_LINK, "description": "The receipt of the finished handover (as "
                                        "state.receipt): its number and public page; null before one is issued"})
    signature_sha256 = fields.Function(lambda data: data["handover"].signature_sha256 if data["handover"] else None)
    attachments = fields.Function(_attachment_links)
    steps = fields.List(fields.Nested(HandoverStepOut))


class _DispatchStateOut(HandoverStateOut):
    """The state as dispatch sees it (the PIN's hash is the handheld's business)."""

    class Meta:
        """Dispatch does not need the hash."""

        exclude = ("pin",)

    signer_name = fields.String(allow_none=True)
    refusal_reason = fields.String(allow_none=True)
    authorization = fields.Dict(allow_none=True)
    distance_m = fields.Float(allow_none=True)
    consent_at = fields.AwareDateTime(allow_none=True)
    consent_withdrawn_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime(allow_none=True)
    completed_received_at = fields.AwareDateTime(allow_none=True)


_state_out = _DispatchStateOut()


class ExceptionFilter(Schema):
    """Which exceptions: of a depot-local day or every day, of one kind, in one status, of one courier."""

    day = Day(data_key="date", required=False, load_default=None,
              metadata={"description": "Depot-local date (unset: every day)"})
    kind = text(24, required=False, load_default=None, validate=validate.OneOf(DISPATCH_EXCEPTIONS))
    status = text(16, required=False, load_default=None, validate=validate.OneOf(EXCEPTION_STATUSES))
    courier_id = text(32, required=False, load_default=None)


class ExceptionQuery(ExceptionFilter, PageQuery, CsvQuery):
    """The exceptions queue, a page at a time."""

    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)


class ExceptionOut(Schema):
    """Something at a door or a window dispatch must act on, and where it stands in the queue."""

    id = fields.Integer()
    task_id = fields.String()
    courier_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(DISPATCH_EXCEPTIONS)})
    date = fields.Date(attribute="day")
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    op_id = fields.String(allow_none=True)
    detail = fields.Dict()
    status = fields.String(attribute="queue_status", metadata={"enum": list(EXCEPTION_STATUSES)})
    acknowledged_by = fields.String(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolution_note = fields.String(allow_none=True)


class ExceptionResolveIn(Schema):
    """How the exception was resolved."""

    note = text(500)


class ExceptionPage(PageOut):
    """A page of exceptions, oldest first."""

    items = fields.List(fields.Nested(ExceptionOut))


# The columns of its CSV export (?format=csv), in order.
EXCEPTION_CSV_COLUMNS = ("id", "date", "kind", "status", "task_id", "detail.waybill_no", "courier_id", "occurred_at",
               "recorded_at", "op_id", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at",
               "resolution_note")
