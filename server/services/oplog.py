"""The op log and sync conflicts, as dispatch and quality staff read and resolve them."""
from sqlalchemy import func, select

from server.auth import Actor
from server.clock import utcnow
from server.errors import RuleViolation
from server.extensions import db
from server.models import OpLog, SyncConflict
from server.services import tasks
from server.services.common import audit, get_or_404, newest_first, snapshot


def get_ops(*, device_id: str | None = None, courier_id: str | None = None,
            status: str | None = None, type: str | None = None, entity_id: str | None = None,
            cursor: int | None = None, limit: int = 50) -> dict:
    """A filtered page of the op log, newest first."""
    query = select(OpLog)
    for column, value in ((OpLog.device_id, device_id), (OpLog.courier_id, courier_id),
                          (OpLog.status, status), (OpLog.type, type), (OpLog.entity_id, entity_id)):
        if value is not None:
            query = query.where(column == value)
    return newest_first(query, OpLog.id, cursor=cursor, limit=limit)


def sequence_totals() -> list[tuple[str, int, int, int]]:
    """Per device: its in-sequence ops, the highest seq and how many were not applied (exactly once means n, n, 0)."""
    return list(db.session.execute(
        select(OpLog.device_id, func.count(), func.max(OpLog.seq), func.count().filter(OpLog.status != "applied"))
        .where(OpLog.in_sequence.is_(True)).group_by(OpLog.device_id)))


def get_conflicts(*, status: str | None = None, task_id: str | None = None,
                  cursor: int | None = None, limit: int = 50) -> dict:
    """A page of conflicts, newest first."""
    query = select(SyncConflict)
    if status:
        query = query.where(SyncConflict.status == status)
    if task_id:
        query = query.where(SyncConflict.task_id == task_id)
    return newest_first(query, SyncConflict.id, cursor=cursor, limit=limit)


def resolve_conflict(*, actor: Actor, conflict_id: int, resolution: str, note: str | None) -> SyncConflict:
    """Close a conflict; the task leaves review once none of its conflicts is open."""
    conflict = get_or_404(SyncConflict, conflict_id, what="conflict")
    if conflict.status != "open":
        raise RuleViolation("The conflict is already resolved.", code="conflict_resolved")
    before = snapshot(conflict)
    conflict.status, conflict.resolution, conflict.note = "resolved", resolution, note
    conflict.resolved_by, conflict.resolved_at = actor.id, utcnow()
    db.session.flush()
    task = tasks.get(task_id=conflict.task_id, for_update=True)
    still_open = db.session.scalar(select(func.count()).select_from(SyncConflict).where(
        SyncConflict.task_id == task.id, SyncConflict.status == "open"))
    if not still_open:
        task.needs_review = False
    tasks.record_event(task, "conflict_resolved", actor, text=note,
                       data={"conflict_id": conflict.id, "resolution": resolution})
    audit(actor, "conflict.resolve", conflict, before)
    db.session.commit()
    return conflict
