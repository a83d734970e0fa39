"""Conduct violations: recorded by rules (idempotently), read by dispatch a page at a time."""
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from server.clock import utcnow
from server.extensions import db
from server.models import Courier, Violation
from server.services.common import get_or_404, newest_first

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def record_auto(*, courier_id: str, code: str, task_id: str, occurred_at: datetime, evidence: dict) -> bool:
    """Record a rule's violation once per (code, task), even from two hosts at once; True if this call did."""
    insert = _INSERT[db.session.get_bind().dialect.name]
    statement = insert(Violation.__table__).values(
        courier_id=courier_id, code=code, task_id=task_id, source="auto", evidence=evidence,
        occurred_at=occurred_at, recorded_at=utcnow(), dedupe_key=f"{code}:{task_id}",
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Violation.id)
    return db.session.execute(statement).scalar() is not None


def for_courier(*, courier_id: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A courier's violations, newest first, a page at a time."""
    get_or_404(Courier, courier_id, what="courier")
    return newest_first(select(Violation).where(Violation.courier_id == courier_id), Violation.id,
                        cursor=cursor, limit=limit)
