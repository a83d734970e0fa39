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
from server.services.common import audit, get_or_404, oldest_first


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
    """A courier's day: cash collected, QR collected, remitted, corrections, and the cash still owed."""
    get_or_404(Courier, courier_id, what="courier")
    entries = list(db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.courier_id == courier_id, LedgerEntry.day == day).order_by(LedgerEntry.id)))
    return {**_totals(_sums([courier_id], day).get(courier_id, {})), "courier_id": courier_id, "date": day,
            "entries": entries}


def _sums(courier_ids: list[str], day: date) -> dict[str, dict[tuple[str, str | None], int]]:
    """Each courier's sums of the day by (kind, method), in one query."""
    sums: dict[str, dict] = {}
    for courier_id, kind, method, total in db.session.execute(
            select(LedgerEntry.courier_id, LedgerEntry.kind, LedgerEntry.method, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.courier_id.in_(courier_ids), LedgerEntry.day == day)
            .group_by(LedgerEntry.courier_id, LedgerEntry.kind, LedgerEntry.method)):
        sums.setdefault(courier_id, {})[(kind, method)] = int(total)
    return sums


def _totals(sums: dict[tuple[str, str | None], int]) -> dict:
    """A day's figures from its sums.

    difference = cash collected + corrections - remitted: zero when the courier
    has handed in every fen; QR payments go straight to the company and are
    shown beside, outside the cash.
    """
    collected = sums.get(("payment", "cash"), 0)
    remitted = sums.get(("remittance", None), 0)
    corrections = sums.get(("correction", None), 0)
    return {"collected": collected, "collected_qr": sums.get(("payment", "qr"), 0), "remitted": remitted,
            "corrections": corrections, "difference": collected + corrections - remitted}


_FIGURES = ("collected", "collected_qr", "remitted", "corrections", "difference")


def depots() -> list[str]:
    """The depots couriers work out of (each once, in order): the choices of the depot cash page."""
    return list(db.session.scalars(select(Courier.depot).where(Courier.depot.is_not(None)).distinct()
                                   .order_by(Courier.depot)))


def depot_cash(*, depot: str, day: date) -> dict:
    """Every courier of a depot (active, or with money on the day) with their day's figures and remittances,
    and the depot's totals; a depot no courier names is 404."""
    couriers = list(db.session.scalars(select(Courier).where(Courier.depot == depot).order_by(Courier.employee_no)))
    if not couriers:
        raise NotFound(f"No courier works out of depot {depot}.", code="depot_not_found")
    ids = [courier.id for courier in couriers]
    sums = _sums(ids, day)
    remittances: dict[str, list] = {}
    for entry in db.session.scalars(select(LedgerEntry).where(
            LedgerEntry.courier_id.in_(ids), LedgerEntry.day == day, LedgerEntry.kind == "remittance")
            .order_by(LedgerEntry.id)):
        remittances.setdefault(entry.courier_id, []).append(entry)
    rows = [{"courier_id": courier.id, "name": courier.name, "employee_no": courier.employee_no,
             **_totals(sums.get(courier.id, {})), "remittances": remittances.get(courier.id, [])}
            for courier in couriers if courier.active or courier.id in sums]
    return {"depot": depot, "date": day, "couriers": rows,
            "totals": {figure: sum(row[figure] for row in rows) for figure in _FIGURES}}


def entries(*, day: date, courier_id: str | None = None, depot: str | None = None, kind: str | None = None,
            cursor: int | None = None, limit: int = 50) -> dict:
    """The ledger's entries of a depot-local day, oldest first, by courier, depot and kind, a page at a time."""
    query = select(LedgerEntry).where(LedgerEntry.day == day)
    if courier_id is not None:
        query = query.where(LedgerEntry.courier_id == courier_id)
    if depot is not None:
        query = query.where(LedgerEntry.courier_id.in_(select(Courier.id).where(Courier.depot == depot)))
    if kind is not None:
        query = query.where(LedgerEntry.kind == kind)
    return oldest_first(query, LedgerEntry.id, cursor=cursor, limit=limit)
