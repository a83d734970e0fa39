"""Domain events: emitted by the services in the transaction of the change, read in order from the event feed.

emit() buffers the event in the session; just before the commit the buffered
events are inserted under the feed lock (server.database.take_feed_lock), so
their positions follow commit order exactly as the change feed's do, and a
reader whose cursor is at position P has seen every event that will ever sit
at or below P. A rollback drops what it undoes (a savepoint's rollback only
what was emitted inside it). The catalogue is docs/events.md.
"""
from datetime import datetime

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from schemas.vocab import EVENT_TYPES
from server.clock import utcnow
from server.database import take_feed_lock
from server.errors import Conflict
from server.extensions import db
from server.ids import new_id
from server.models import Event

_PENDING = "fieldops_events_pending"
_MARKS = "fieldops_events_marks"


def emit(type: str, subject_id: str, data: dict) -> None:  # noqa: A002 - the event's type, as the catalogue says
    """Record a domain event in the current transaction; it is written when the transaction commits."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    db.session.info.setdefault(_PENDING, []).append(
        {"id": new_id("e"), "type": type, "subject_id": subject_id, "data": data, "occurred_at": utcnow()})


def _before_commit(session: Session) -> None:
    """Insert the buffered events under the feed lock, just before the commit."""
    if session.in_nested_transaction():
        return
    rows = session.info.pop(_PENDING, None)
    session.info.pop(_MARKS, None)
    if not rows:
        return
    take_feed_lock(session)
    session.execute(insert(Event.__table__), rows)


def _after_begin_nested(session: Session, transaction) -> None:
    """Remember how many events a savepoint starts after, so its rollback drops only its own."""
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, []))


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    """A rollback drops the events it undoes: all of them, or a savepoint's own."""
    marks = session.info.get(_MARKS, {})
    if previous_transaction.nested and previous_transaction in marks:
        del session.info.get(_PENDING, [])[marks.pop(previous_transaction):]
    elif previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


def init_app(_app) -> None:
    """Install the listeners once per process, after the change feed's (the lock is then taken last)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "after_transaction_create", _after_begin_nested)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)


def read(*, cursor: int, types: list[str] | None, limit: int) -> dict:
    """Events after the cursor in position order, and the cursor to pass next time.

    The newest position is read first and bounds the page: every position at
    or below it is committed (or never will be), whatever the isolation level,
    so with a short page the next cursor can move up to it (events of other
    types are skipped for good) and still never pass an event. Events are
    never deleted, so a cursor beyond the newest position was never given out
    by this feed: it is refused, since taken as it is it would skip every
    event written up to it.
    """
    newest = newest_position()
    if cursor > newest:
        raise Conflict(f"The cursor {cursor} is past the newest event ({newest}): it is not from this feed "
                       "(another server, a restored database?). Start again from a cursor this feed gave.",
                       code="cursor_ahead_of_feed", fields={"cursor": [f"At most {newest}."]})
    query = select(Event).where(Event.position > cursor, Event.position <= newest)
    if types:
        query = query.where(Event.type.in_(types))
    items = list(db.session.scalars(query.order_by(Event.position).limit(limit + 1)))
    more = len(items) > limit
    items = items[:limit]
    next_cursor = items[-1].position if more else max(cursor, newest)
    return {"items": items, "cursor": next_cursor, "has_more": more}


def newest_position() -> int:
    """The newest committed event's position (0 when there is none)."""
    return db.session.scalar(select(func.max(Event.position))) or 0


def task_facts(task, **more) -> dict:
    """What every task event says of its task: ids and facts, never the recipient's phone or address."""
    return {"task_id": task.id, "waybill_no": task.waybill_no, "kind": task.kind, "courier_id": task.courier_id,
            **more}


def vehicle_facts(vehicle, **more) -> dict:
    """What every vehicle event says of its vehicle."""
    return {"vehicle_id": vehicle.id, "plate": vehicle.plate, "courier_id": vehicle.courier_id, **more}


def emit_exception(facts: dict, exception: str, *, op_id: str | None, at: datetime | None) -> None:
    """task.exception_raised for a task (its facts from task_facts): what dispatch must look at, and when."""
    emit("task.exception_raised", facts["task_id"],
         {**facts, "exception": exception, "op_id": op_id, "occurred_at": (at or utcnow()).isoformat()})


def iso(value: datetime | None) -> str | None:
    """A time as the events carry it."""
    return value.isoformat() if value else None
