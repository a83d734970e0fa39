"""Helpers every service uses: lookups, pagination, audit snapshots."""
import base64
import contextlib
import logging
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Select, event, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from flask import current_app
from sqlalchemy.orm import Session

from server.auth import Actor
from server.database import mark_read_only, reset_read_only
from server.errors import NotFound, ValidationFailed
from server.extensions import db
from server.models import AuditEntry

M = TypeVar("M")
_ID = re.compile(r"[a-z]-[0-9a-z]{26}")


def get_or_404(model: type[M], entity_id: str, *, what: str) -> M:
    """Load by primary key or raise NotFound naming the kind of thing."""
    obj = db.session.get(model, entity_id)
    if obj is None:
        raise NotFound(f"No {what} {entity_id}.", code=f"{what}_not_found")
    return obj


def encode_cursor(value: str) -> str:
    """Make a keyset position opaque to clients."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Undo encode_cursor; a mangled cursor is a 422 on the cursor field."""
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                 validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        value = None
    if value is None or not _ID.fullmatch(value):
        raise ValidationFailed("The cursor is not valid.", fields={"cursor": ["Not a valid cursor."]})
    return value


def paginate(query: Select, key_column, *, cursor: str | None, limit: int) -> dict:
    """Keyset pagination over a unique, ordered string key."""
    if cursor:
        query = query.where(key_column > decode_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(key_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], key_column.key)) if more and rows else None
    return {"items": rows, "next_cursor": next_cursor}


def pending(model) -> list:
    """Objects of a model added in this transaction and not flushed yet (a push flushes once, at its end)."""
    return [obj for obj in db.session.new if isinstance(obj, model)]


def oldest_first(query: Select, key_column, *, cursor: int | None, limit: int) -> dict:
    """Keyset pagination over an integer key, oldest first."""
    if cursor:
        query = query.where(key_column > cursor)
    rows = list(db.session.scalars(query.order_by(key_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(getattr(rows[-1], key_column.key)) if more and rows else None}


def newest_first(query: Select, key_column, *, cursor: int | None, limit: int) -> dict:
    """Keyset pagination over an integer key, newest first."""
    if cursor:
        query = query.where(key_column < cursor)
    rows = list(db.session.scalars(query.order_by(key_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(getattr(rows[-1], key_column.key)) if more and rows else None}


def _json_safe(value):
    """Datetimes and dates as ISO strings for the audit log."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def snapshot(obj) -> dict:
    """The column values of a row, for the audit log's before/after; secrets' digests stay out."""
    return {attr.key: _json_safe(getattr(obj, attr.key)) for attr in inspect(obj).mapper.column_attrs
            if not attr.key.endswith(("_hash", "_sealed"))}


def audit(actor: Actor, action: str, obj, before: dict | None) -> None:
    """Record a staff action; call after the change so `after` is the new state."""
    db.session.flush()
    db.session.add(AuditEntry(**_audit_row(actor, action, obj, before)))


def audit_created(actor: Actor, action: str, objs: list) -> None:
    """audit() for many new rows at once: one flush and one insert, not one of each per row."""
    db.session.flush()
    rows = [_audit_row(actor, action, obj, None) for obj in objs]
    if rows:
        db.session.execute(insert(AuditEntry.__table__), rows)


def _audit_row(actor: Actor, action: str, obj, before: dict | None) -> dict:
    """The audit entry's values for an action on obj, as it is now."""
    return {"staff_id": actor.id if actor.kind == "staff" else None, "action": action,
            "entity": obj.__tablename__, "entity_id": str(obj.id), "before": before, "after": snapshot(obj)}


def exists(query: Select) -> bool:
    """True when the query returns a row."""
    return db.session.scalar(select(query.exists())) is True


def write_buffered_rows(write, forget) -> None:
    """Install, once per process, a writer of rows a service buffers in session.info: it writes them after each
    flush and before the commit, and forget drops the buffer once the transaction commits or rolls back
    (session events are per Session class)."""
    if not event.contains(Session, "after_flush_postexec", write):
        event.listen(Session, "after_flush_postexec", write)
        event.listen(Session, "before_commit", write)
        event.listen(Session, "after_soft_rollback", forget)
        event.listen(Session, "after_commit", forget)


@contextlib.contextmanager
def own_transaction(what: str, logger: logging.Logger):
    """A short committed write of its own, whatever the request's transaction was (a page view, a list: reads).

    A database that cannot write (docs/reliability.md) must not stop the read it
    follows: the write is then lost, logged as a warning naming `what`, and the
    caller goes on.
    """
    db.session.rollback()
    token = mark_read_only(False)
    try:
        yield
        db.session.commit()
    except SQLAlchemyError:
        logger.warning("%s not recorded", what, exc_info=True)
    finally:
        db.session.rollback()
        reset_read_only(token)


def send_due(*, now: datetime, started: float, claim: Callable, send: Callable, record: Callable,
             outcome: Callable) -> None:
    """Send every due item of an outbound queue (webhook deliveries, messages to customers) once: claim one (its
    lease running on from `now` by the time the run has taken since `started`, a monotonic reading), send it,
    record the answer, then tell `outcome(item, answer, status)`; at most WEBHOOK_MAX_PER_RUN a run."""
    tried: set[int] = set()
    while len(tried) < current_app.config["WEBHOOK_MAX_PER_RUN"]:
        item = claim(now, now + timedelta(seconds=time.monotonic() - started), tried)
        if item is None:
            break
        tried.add(item["id"])
        answer = send(item)
        outcome(item, answer, record(item, answer, now + timedelta(seconds=time.monotonic() - started)))
