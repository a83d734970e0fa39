"""The audit log as admin and quality staff read it."""
from datetime import datetime

from sqlalchemy import select

from server.models import AuditEntry
from server.services.common import newest_first


def get_entries(*, staff_id: str | None = None, entity: str | None = None, entity_id: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                cursor: int | None = None, limit: int = 50) -> dict:
    """A filtered page of the audit log, newest first; `since` is inclusive, `until` exclusive."""
    query = select(AuditEntry)
    for column, value in ((AuditEntry.staff_id, staff_id), (AuditEntry.entity, entity),
                          (AuditEntry.entity_id, entity_id)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return newest_first(query, AuditEntry.id, cursor=cursor, limit=limit)
