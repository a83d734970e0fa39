"""Conduct violations: recorded by rules (idempotently), read by dispatch a page at a time."""
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from schemas.vocab import VIOLATION_SEVERITY
from server import changes
from server.clock import utcnow
from server.extensions import db
from server.models import Courier, Violation
from server.services.common import get_or_404, newest_first

# How many of their newest violations a courier's handheld holds.
HANDHELD_VIOLATIONS = 20
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def record_auto(*, courier_id: str, code: str, occurred_at: datetime, evidence: dict, task_id: str | None = None,
                key: str | None = None, source: str = "auto", severity: str | None = None) -> bool:
    """Record a violation once per (code, key), even from two hosts at once; True if this call did.

    The key defaults to the task (one late_without_notice per task); a checklist
    names its submission and item (one conduct_item_failed per failed item), a
    complaint itself. The courier's own record (violations and grade, on their
    handheld) moves its version when the transaction commits, so their device pulls it.
    The severity is the code's (VIOLATION_SEVERITY) unless the caller knows better: a failed
    checklist item weighs what the item's severity says.
    """
    insert = _INSERT[db.session.get_bind().dialect.name]
    statement = insert(Violation.__table__).values(
        courier_id=courier_id, code=code, task_id=task_id, source=source, evidence=evidence,
        severity=severity or VIOLATION_SEVERITY[code],
        occurred_at=occurred_at, recorded_at=utcnow(), dedupe_key=f"{code}:{key or task_id}",
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Violation.id)
    if db.session.execute(statement).scalar() is None:
        return False
    changes.bump(db.session, "courier", courier_id)
    return True


def for_courier(*, courier_id: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A courier's violations, newest first, a page at a time."""
    get_or_404(Courier, courier_id, what="courier")
    return newest_first(select(Violation).where(Violation.courier_id == courier_id), Violation.id,
                        cursor=cursor, limit=limit)


def attach_recent(couriers: list[Courier]) -> None:
    """Give each courier their newest violations (as recent_violations), for all of them in one query."""
    ranked = (select(Violation.id, func.row_number().over(partition_by=Violation.courier_id,
                                                         order_by=Violation.id.desc()).label("n"))
              .where(Violation.courier_id.in_([c.id for c in couriers])).subquery())
    by_courier: dict[str, list[Violation]] = {c.id: [] for c in couriers}
    for violation in db.session.scalars(select(Violation).join(ranked, ranked.c.id == Violation.id)
                                        .where(ranked.c.n <= HANDHELD_VIOLATIONS).order_by(Violation.id.desc())):
        by_courier[violation.courier_id].append(violation)
    for courier in couriers:
        courier.recent_violations = by_courier[courier.id]
