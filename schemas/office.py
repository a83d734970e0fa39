"""The office's views on the wire: a courier's day, a depot's cash, the ledger's entries."""
from marshmallow import fields, validate

from schemas.appointments import ContactAttemptOut
from schemas.checklists import SubmissionOut
from schemas.common import CsvQuery, Day, PageOut, PageQuery, Schema, integer, text
from schemas.couriers import CourierOut
from schemas.grades import GradeOut
from schemas.ledger import CashOut, LedgerEntryOut
from schemas.limits import MAX_INT32
from schemas.tasks import TaskOut
from schemas.violations import ViolationOut
from schemas.vocab import LEDGER_KINDS


class DayQuery(Schema):
    """Which depot-local day."""

    date = Day(required=True, metadata={"description": "Depot-local date"})


class DayAttemptOut(ContactAttemptOut):
    """A contact attempt, with its task."""

    task_id = fields.String()


class ShiftOut(Schema):
    """A shift on a van (device times)."""

    id = fields.Integer()
    vehicle_id = fields.String()
    status = fields.String(metadata={"enum": ["open", "ended", "abandoned"]})
    started_at = fields.AwareDateTime()
    start_odometer = fields.Integer()
    ended_at = fields.AwareDateTime(allow_none=True)
    end_odometer = fields.Integer(allow_none=True)
    flags = fields.List(fields.String())


class CourierDayOut(Schema):
    """A courier's depot-local day in one answer; cash in fen (difference = collected + corrections - remitted)."""

    courier = fields.Nested(CourierOut)
    date = fields.Date()
    tasks = fields.List(fields.Nested(TaskOut))
    attempts = fields.List(fields.Nested(DayAttemptOut))
    cash = fields.Nested(CashOut)
    violations = fields.List(fields.Nested(ViolationOut))
    grade = fields.Nested(GradeOut)
    shifts = fields.List(fields.Nested(ShiftOut))
    checks = fields.List(fields.Nested(SubmissionOut))


class _Figures(Schema):
    """A day's cash figures in fen."""

    collected = fields.Integer(metadata={"description": "Cash payments collected"})
    collected_qr = fields.Integer(metadata={"description": "QR payments (paid to the company, not cash)"})
    remitted = fields.Integer()
    corrections = fields.Integer()
    difference = fields.Integer(metadata={"description": "collected + corrections - remitted"})


class DepotCourierCashOut(_Figures):
    """A courier of the depot: the day's figures and remittances."""

    courier_id = fields.String()
    name = fields.String()
    employee_no = fields.String()
    remittances = fields.List(fields.Nested(LedgerEntryOut))


class DepotCashOut(Schema):
    """Every courier of a depot on a depot-local day, and the depot's totals, in fen."""

    depot = fields.String()
    date = fields.Date()
    couriers = fields.List(fields.Nested(DepotCourierCashOut))
    totals = fields.Nested(_Figures)


class LedgerQuery(PageQuery, CsvQuery):
    """The ledger's entries of a depot-local day, by courier, depot and kind."""

    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)
    day = Day(data_key="date", required=True, metadata={"description": "Depot-local date"})
    courier_id = text(32, required=False, load_default=None)
    depot = text(32, required=False, load_default=None)
    kind = text(16, required=False, load_default=None, validate=validate.OneOf(LEDGER_KINDS))


class LedgerPage(PageOut):
    """A page of ledger entries, oldest first."""

    items = fields.List(fields.Nested(LedgerEntryOut))
