"""The cash ledger on the wire: remittances, corrections, a courier's day."""
from marshmallow import fields

from schemas.common import Schema, integer, money, text
from schemas.limits import MAX_MONEY
from schemas.vocab import LEDGER_KINDS, PAYMENT_METHODS


class RemittanceIn(Schema):
    """Cash the courier handed in at the depot, in fen, for a depot-local day."""

    date = fields.Date(required=True)
    amount = money(minimum=1, required=True)
    note = text(300, required=False, load_default=None)


class CorrectionIn(Schema):
    """A correction of what was collected (signed fen), with why; it may name the entry it corrects."""

    date = fields.Date(required=True)
    amount = money(minimum=-MAX_MONEY, required=True)
    note = text(300)
    corrects_id = integer(minimum=1, maximum=2_147_483_647, load_default=None, allow_none=True)


class CashQuery(Schema):
    """Which depot-local day."""

    date = fields.Date(required=True)


class LedgerEntryOut(Schema):
    """One ledger entry."""

    id = fields.Integer()
    courier_id = fields.String()
    date = fields.Date(attribute="day")
    kind = fields.String(metadata={"enum": list(LEDGER_KINDS)})
    amount = fields.Integer()
    method = fields.String(allow_none=True, metadata={"enum": list(PAYMENT_METHODS)})
    task_id = fields.String(allow_none=True)
    op_id = fields.String(allow_none=True)
    corrects_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class CashOut(Schema):
    """A courier's day in fen: difference = collected + corrections - remitted (the cash still to hand in)."""

    courier_id = fields.String()
    date = fields.Date()
    collected = fields.Integer(metadata={"description": "Cash payments collected"})
    collected_qr = fields.Integer(metadata={"description": "QR payments (paid to the company, not cash)"})
    remitted = fields.Integer()
    corrections = fields.Integer()
    difference = fields.Integer()
    entries = fields.List(fields.Nested(LedgerEntryOut))
