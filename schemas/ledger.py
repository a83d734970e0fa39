"""The cash ledger on the wire: remittances, corrections, a courier's day."""
from marshmallow import fields

from schemas.common import Day, Schema, integer, money, text
from schemas.limits import MAX_MONEY
from schemas.vocab import LEDGER_KINDS, PAYMENT_METHODS

# A ledger day is at most this old: the books of an older day are closed (a correction then is a business
# decision outside the handheld's world); never a day not yet begun.
LEDGER_MAX_AGE_DAYS = 366


def _ledger_day(**kw) -> Day:
    """The depot-local day an entry is booked on (the service checks it against today)."""
    return Day(metadata={"description": f"Depot-local day: begun, and at most {LEDGER_MAX_AGE_DAYS} days ago"},
               **kw)


class RemittanceIn(Schema):
    """Cash the courier handed in at the depot, in fen, for a depot-local day."""

    date = _ledger_day(required=True)
    amount = money(minimum=1, required=True)
    note = text(300, required=False, load_default=None)


class CorrectionIn(Schema):
    """A correction of what was collected (signed fen), with why; it may name the entry it corrects."""

    date = _ledger_day(required=True)
    amount = money(minimum=-MAX_MONEY, required=True,
                   metadata={"description": "Signed fen; not 0", "not": {"enum": [0]}})
    note = text(300)
    corrects_id = integer(minimum=1, maximum=2_147_483_647, load_default=None, allow_none=True)


class CashQuery(Schema):
    """Which depot-local day."""

    date = Day(required=True)


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


# The columns of its CSV export (?format=csv), in order.
LEDGER_CSV_COLUMNS = ("id", "date", "courier_id", "kind", "amount", "method", "task_id", "op_id", "corrects_id", "note",
                  "created_by", "device_time", "created_at")
