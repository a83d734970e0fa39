"""Feed housekeeping: drop changes older than the retention; cursors behind it get reset."""
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from server.extensions import db
from server.models import Change, SyncState


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
