"""Claims (理赔) on the wire: opening one, its steps and corrections, the dispatch list, the customer's form."""
from marshmallow import ValidationError, fields, post_load, validate

from schemas.common import NewestFirstQuery, PageOut, Schema, integer, money, text
from schemas.customer_links import PageForm
from schemas.limits import MAX_INT32
from schemas.vocab import CLAIM_ENTRY_KINDS, CLAIM_KINDS, CLAIM_ORIGINS, CLAIM_STATUSES

_ORIGIN_ID = {"description": "The handover exception's id (exception, refusal) or the complaint's id; none for "
                             "dispatch"}


class ClaimIn(Schema):
    """A claim as the office opens it: from an exception, a refusal, a complaint, or by dispatch for a task."""

    origin = text(16, validate=validate.OneOf([o for o in CLAIM_ORIGINS if o != "customer"]))
    origin_id = text(9, required=False, load_default=None, allow_none=True, pattern=r"[0-9]{1,9}",
                     pattern_error="An exception or complaint id (digits).", metadata=_ORIGIN_ID)
    task_id = text(32, required=False, load_default=None,
                   metadata={"description": "Required for origin dispatch; else the origin's task (checked)"})
    parcel_no = text(40, required=False, load_default=None,
                     metadata={"description": "The parcel claimed for; may be left out when the origin or the task "
                                              "names exactly one"})
    kind = text(16, required=False, load_default=None, validate=validate.OneOf(CLAIM_KINDS),
                metadata={"description": "Default: the exception's (damage; a discrepancy is a loss)"})
    description = text(2000, multiline=True)
    claimed_amount = money(required=True, minimum=1, metadata={"description": "In fen"})


class ClaimAssessIn(Schema):
    """The actual loss the assessor found; the rule computes the amount."""

    loss_amount = money(required=True, metadata={"description": "The actual loss found, in fen"})
    note = text(2000, required=False, load_default=None, multiline=True)


class ClaimRejectIn(Schema):
    """Why the claim is rejected."""

    reason = text(2000, multiline=True)


class ClaimPayIn(Schema):
    """The payment's reference (bank transfer, voucher)."""

    reference = text(64)


class ClaimCorrectIn(Schema):
    """A correction of an amount an entry fixed (an assessment, a payment, or a correction of them)."""

    entry_id = integer(minimum=1, maximum=MAX_INT32, required=True)
    amount = money(required=True, metadata={"description": "The right amount, in fen"})
    reason = text(2000, multiline=True)


class ClaimQuery(NewestFirstQuery):
    """Filters for the claim list, newest first."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(CLAIM_STATUSES))
    origin = text(16, required=False, load_default=None, validate=validate.OneOf(CLAIM_ORIGINS))
    task_id = text(32, required=False, load_default=None)
    overdue = fields.Boolean(load_default=None, metadata={
        "description": "true: the next step (assessment, approval, payment) is past due; false: the others"})


class ClaimEntryOut(Schema):
    """A step or a correction, as recorded (never changed)."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(CLAIM_ENTRY_KINDS)})
    at = fields.AwareDateTime()
    actor_kind = fields.String()
    actor_id = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    corrects_id = fields.Integer(allow_none=True)
    due_at = fields.AwareDateTime(allow_none=True)
    late = fields.Boolean()
    data = fields.Dict(allow_none=True, metadata={"description": "The rule and its inputs, a reference, a reason"})


class ClaimSummaryOut(Schema):
    """A claim as the list shows it."""

    id = fields.Integer()
    task_id = fields.String()
    parcel_no = fields.String()
    origin = fields.String(metadata={"enum": list(CLAIM_ORIGINS)})
    origin_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(CLAIM_KINDS)})
    description = fields.String()
    claimed_amount = fields.Integer()
    status = fields.String(metadata={"enum": list(CLAIM_STATUSES)})
    opened_at = fields.AwareDateTime()
    opened_by = fields.String(allow_none=True)
    opened_by_kind = fields.String()
    due_at = fields.AwareDateTime(allow_none=True, metadata={"description": "When the next step is due"})
    overdue = fields.Boolean()
    late_steps = fields.Integer()
    assessed_at = fields.AwareDateTime(allow_none=True)
    rule = fields.String(allow_none=True)
    first_assessed_amount = fields.Integer(allow_none=True)
    amount = fields.Integer(allow_none=True, metadata={"description": "Owed: as assessed, as corrected"})
    approved_at = fields.AwareDateTime(allow_none=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    paid_amount = fields.Integer(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    rejected_at = fields.AwareDateTime(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    corrections = fields.Integer()


class ClaimOut(ClaimSummaryOut):
    """A claim with every entry and the evidence it rests on."""

    entries = fields.List(fields.Nested(ClaimEntryOut), metadata={"description": "Oldest first"})
    evidence = fields.Dict(metadata={"description": "inspection (items, photos), exception, receipt {number, url}, "
                                                    "complaint; each null when there is none; scans: the parcel's journey "
                                                    "(event, source, effective_time, received_at)"})


class ClaimPage(PageOut):
    """A page of claims."""

    items = fields.List(fields.Nested(ClaimSummaryOut))


class ClaimForm(PageForm):
    """The customer's claim from the receipt page."""

    parcel_no = text(40, required=False, load_default=None)
    kind = text(16, validate=validate.OneOf(CLAIM_KINDS))
    description = text(1000, multiline=True)
    claimed_yuan = text(12, pattern=r"[0-9]{1,7}(\.[0-9]{1,2})?", pattern_error="An amount in yuan, e.g. 120.50.")

    @post_load
    def _in_fen(self, data, **_kw):
        """The amount as people type it (yuan, two decimals at most) in fen."""
        whole, _, cents = data.pop("claimed_yuan").partition(".")
        data["claimed_amount"] = int(whole) * 100 + int((cents + "00")[:2])
        if not data["claimed_amount"]:
            raise ValidationError("Claim an amount above zero.", field_name="claimed_yuan")
        return data
