"""The cash ledger: what each courier collected, remitted and had corrected, per depot-local day, in fen.

Entries are only ever added: a payment is never edited, a mistake is set
right by a correction (a new, audited entry that names what it corrects).
"""
from datetime import date, datetime

from sqlalchemy import func, select

from schemas.ledger import LEDGER_MAX_AGE_DAYS
from server.auth import Actor
from server.clock import filed_at, local_date, utcnow
from server.errors import NotFound, ValidationFailed
from server.extensions import db
from server.models import Courier, LedgerEntry
from server.services.common import audit, get_or_404


def record_payment(*, courier_id: str, task_id: str, op_id: str | None, amount: int, method: str,
                   device_time: datetime | None) -> None:
    """A payment collected at a handover, on the depot-local day it was taken (device time). Does not commit.

    A device clock ahead of the server's cannot date it later than it arrived (clock.filed_at); one so far behind
    that the day's books are closed books it on the day it arrived: either way on a day a remittance can balance.
    """
    now = utcnow()
    day = local_date(filed_at(device_time, now))
    if _day_problem(day, local_date(now)):
        day = local_date(now)
    db.session.add(LedgerEntry(courier_id=courier_id, day=day, kind="payment", amount=amount, method=method,
                               task_id=task_id, op_id=op_id, device_time=device_time or now, created_at=now))


def _day_problem(day: date, today: date) -> tuple[str, str] | None:
    """Why the books take nothing on a depot-local day (not begun, or older than a year): (detail, field message)."""
    if day > today:
        return f"{day} has not begun (today is {today}).", "A future day."
    if (today - day).days > LEDGER_MAX_AGE_DAYS:
        return f"{day} is more than {LEDGER_MAX_AGE_DAYS} days ago.", f"Older than {LEDGER_MAX_AGE_DAYS} days."
    return None


def _check_day(day: date) -> None:
    """A remittance or correction is booked on a depot-local day that has begun and is not older than a year."""
    problem = _day_problem(day, local_date(utcnow()))
    if problem:
        raise ValidationFailed(problem[0], fields={"date": [problem[1]]})


def remit(*, actor: Actor, courier_id: str, day: date, amount: int, note: str | None) -> LedgerEntry:
    """The courier hands cash in at the depot. Commits."""
    get_or_404(Courier, courier_id, what="courier")
    _check_day(day)
    entry = LedgerEntry(courier_id=courier_id, day=day, kind="remittance", amount=amount, note=note,
                        created_by=actor.id, created_at=utcnow())
    db.session.add(entry)
    audit(actor, "ledger.remittance", entry, None)
    db.session.commit()
    return entry


def correct(*, actor: Actor, courier_id: str, day: date, amount: int, note: str,
            corrects_id: int | None = None) -> LedgerEntry:
    """A correction of what was collected (signed fen), never an edit of a payment. Commits."""
    get_or_404(Courier, courier_id, what="courier")
    if amount == 0:
        raise ValidationFailed("A correction changes something.", fields={"amount": ["Must not be 0."]})
    _check_day(day)
    if corrects_id is not None:
        target = db.session.get(LedgerEntry, corrects_id)
        if target is None or target.courier_id != courier_id:
            raise NotFound(f"No ledger entry {corrects_id} for courier {courier_id}.", code="ledger_entry_not_found")
        if target.day != day:
            # The correction moves the day's difference: booked on another day it would balance the wrong one.
            raise ValidationFailed(f"Entry {corrects_id} is of {target.day}: book its correction on that day.",
                                   fields={"corrects_id": [f"An entry of {target.day}, not {day}."]})
    entry = LedgerEntry(courier_id=courier_id, day=day, kind="correction", amount=amount, note=note,
                        corrects_id=corrects_id, created_by=actor.id, created_at=utcnow())
    db.session.add(entry)
    audit(actor, "ledger.correction", entry, None)
    db.session.commit()
    return entry


def cash(*, courier_id: str, day: date) -> dict:
    """A courier's day: cash collected, QR collected, remitted, corrections, and the cash still owed.

    difference = cash collected + corrections - remitted: zero when the courier
    has handed in every fen; QR payments go straight to the company and are
    shown beside, outside the cash.
    """
    get_or_404(Courier, courier_id, what="courier")
    sums = {(kind, method): total for kind, method, total in db.session.execute(
        select(LedgerEntry.kind, LedgerEntry.method, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.courier_id == courier_id, LedgerEntry.day == day)
        .group_by(LedgerEntry.kind, LedgerEntry.method))}
    entries = list(db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.courier_id == courier_id, LedgerEntry.day == day).order_by(LedgerEntry.id)))
    collected = int(sums.get(("payment", "cash"), 0))
    remitted = int(sums.get(("remittance", None), 0))
    corrections = int(sums.get(("correction", None), 0))
    return {"courier_id": courier_id, "date": day, "collected": collected,
            "collected_qr": int(sums.get(("payment", "qr"), 0)), "remitted": remitted, "corrections": corrections,
            "difference": collected + corrections - remitted, "entries": entries}
