"""Sync housekeeping: drop changes older than the retention (cursors behind it get reset), archive old op results."""
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from server.extensions import db
from server.models import Change, OpLog, SyncState


def compact_feed(*, now: datetime, retention: timedelta) -> int:
    """Delete changes older than retention; remember the highest position deleted. Commits."""
    cutoff = now - retention
    highest = db.session.scalar(select(func.max(Change.position)).where(Change.at < cutoff))
    if highest is None:
        return 0
    # Keep the newest change row so positions never restart from 1 on SQLite.
    newest = db.session.scalar(select(func.max(Change.position)))
    highest = min(highest, newest - 1)
    deleted = db.session.execute(delete(Change).where(Change.position <= highest)).rowcount
    state = db.session.get(SyncState, "compacted_through")
    state.value = str(max(int(state.value), highest))
    db.session.commit()
    return deleted


def archived_result(result: dict) -> dict:
    """A stored op result as kept past the retention: everything but the entity, marked archived."""
    return {**result, "entity": None, "archived": True}


def archive_results(*, now: datetime, retention: timedelta, batch: int = 1000) -> int:
    """Slim the stored results of ops received before the retention; returns how many. Commits per batch.

    Exactly-once does not rest on the result: a replay is found by (device, seq) and the
    payload hash, which stay, and is answered with the slimmed result as a duplicate.
    """
    cutoff = now - retention
    archived = 0
    while True:
        rows = db.session.execute(select(OpLog.id, OpLog.result).where(
            OpLog.result_archived_at.is_(None), OpLog.received_at < cutoff)
            .order_by(OpLog.received_at).limit(batch)).all()
        if not rows:
            return archived
        db.session.execute(update(OpLog),
                           [{"id": row.id, "result": archived_result(row.result), "result_archived_at": now}
                            for row in rows])
        db.session.commit()
        archived += len(rows)
