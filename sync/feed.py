"""The change feed: every flush of a syncable entity becomes a Change row at commit.

Entities opt in by having `feed_entity` and `feed_scope()`. Recording is done
from the ORM's flush, so no service can forget it; the rows are appended in
before_commit under the feed lock, so positions follow commit order. In the
same place each changed entity's handheld JSON is brought up to date
(sync.docs), so what a pull reads is exactly as consistent as the feed. What no
flushed row shows, the services note in server.changes; it is fed here too.
"""
from itertools import chain

from flask import current_app
from sqlalchemy import event, inspect, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from server.changes import BUMPS, PENDING
from server.clock import utcnow
from server.database import take_feed_lock
from server.models import Change
from sync import docs


def _scope_couriers(obj) -> set[str | None]:
    """Couriers whose scope the object is in now or was in before this flush."""
    couriers = set(obj.feed_scope())
    # The value before the flush, if the flush changed it (after_flush still sees it).
    before = inspect(obj).committed_state.get("courier_id")
    if isinstance(before, str):
        couriers.add(before)
    return couriers


def _changed(obj) -> bool:
    """Whether a dirty object's columns really changed (only the attributes it touched are compared).

    Session.is_modified() computes the history of every attribute; a push
    flushes hundreds of tasks at once, and this is the difference.
    """
    state = inspect(obj)
    columns = state.mapper.column_attrs
    current = state.dict
    return any(key in columns and current.get(key, original) != original
               for key, original in state.committed_state.items())


def _after_flush(session: Session, _flush_context) -> None:
    """Remember which syncable entities this flush wrote, and for whom."""
    pending = session.info.setdefault(PENDING, set())
    dirty = session.dirty  # a property that builds a new set: once, not per object
    for obj in chain(session.new, dirty, session.deleted):
        if not hasattr(obj, "feed_entity"):
            continue
        if obj in dirty and not _changed(obj):
            continue
        for courier_id in _scope_couriers(obj):
            pending.add((obj.feed_entity, obj.id, courier_id))


def _before_commit(session: Session) -> None:
    """Append the remembered changes, under the feed lock, just before the commit."""
    if session.in_nested_transaction():
        return
    session.flush()
    _apply_bumps(session)
    pending = session.info.pop(PENDING, None)
    if not pending:
        docs.forget(session)
        return
    docs.write(session, current_app.extensions["fieldops_sync"], {(e, i) for e, i, _ in pending})
    take_feed_lock(session)
    now = utcnow()
    session.execute(insert(Change.__table__), [
        {"entity": entity, "entity_id": entity_id, "courier_id": courier_id, "at": now}
        for entity, entity_id, courier_id in sorted(pending, key=lambda p: (p[0], p[1], p[2] or ""))
    ])


def _apply_bumps(session: Session) -> None:
    """Move the versions server.changes.bump() asked for, in (entity, id) order, and feed the changes."""
    bumps = session.info.pop(BUMPS, None)
    if not bumps:
        return
    registry = current_app.extensions["fieldops_sync"]
    pending = session.info.setdefault(PENDING, set())
    for entity, entity_id in sorted(bumps):
        model = registry.entities[entity].model
        table = model.__table__
        version = session.execute(update(table).where(table.c.id == entity_id)
                                  .values(version=table.c.version + 1).returning(table.c.version)).scalar()
        if version is None:
            continue
        obj = session.get(model, entity_id)
        set_committed_value(obj, "version", version)  # an object loaded before the UPDATE still shows the old one
        pending.update((entity, entity_id, courier_id) for courier_id in obj.feed_scope())


def init_app(_app) -> None:
    """Install the listeners once per process (they are per Session class)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_rollback_soft)


def _after_rollback_soft(session: Session, previous_transaction) -> None:
    """Drop pending changes when the outermost transaction rolls back."""
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
        session.info.pop(BUMPS, None)
        docs.forget(session)
