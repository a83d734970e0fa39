"""Changes a transaction notes for the handhelds beyond the rows it flushes: the change feed feeds them at commit.

The feed (sync.feed) records every flushed row of a syncable entity by
itself. What no row shows, the services that know it note here: a scope left
by time (touch) and a version that moves because rows of another table changed
(bump). The notes live in the session until it commits or rolls back. The
rules say what changed; the engine decides how a device hears of it.
"""
from sqlalchemy.orm import Session

# session.info keys: (entity, id, courier_id) to feed at commit; (entity, id) whose version moves.
PENDING = "fieldops_feed_pending"
BUMPS = "fieldops_feed_bumps"


def touch(session: Session, entity: str, entity_id: str, courier_ids: set[str | None]) -> None:
    """Record a change that no row of the entity shows (e.g. a scope that expired by time)."""
    pending = session.info.setdefault(PENDING, set())
    pending.update((entity, entity_id, c) for c in courier_ids)


def bump(session: Session, entity: str, entity_id: str) -> None:
    """Move an entity's version at commit: its handheld doc shows rows of other tables that changed.

    A courier's own record shows their violations, which are inserted without
    touching the courier row. The version moves by one UPDATE of `version + 1`
    just before commit, after the transaction's other row locks (so it adds no
    lock-order cycle with task locks) and without the ORM's version check (so
    two transactions bumping one courier never clash).
    """
    session.info.setdefault(BUMPS, set()).add((entity, entity_id))
