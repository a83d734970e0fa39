"""Personal-data retention: recipients' data leaves tasks finished long ago; evidence, receipts, ledger and KPI facts stay.

What is redacted and what is kept, and why: docs/decisions.md, "Manifest import and retention".
"""
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from schemas.vocab import FINISHED_STATUSES
from server.auth import SYSTEM
from server.extensions import db
from server.models import AuditEntry, CustomerMessage, HandoverException, HandoverStep, ManifestQuarantine, OpLog, Task, TaskEvent
from server.services import leaks, privacy

BATCH = 200
# A task row's personal columns, as the audit log's snapshots name them.
TASK_PERSONAL = ("recipient_name", "recipient_phone", "address", "lat", "lon")
# Names of people in step data, exception details and op payloads (who took the parcel, who signed).
_PERSON_KEYS = ("name", "signer_name")


def _masked_names(data: dict | None) -> dict | None:
    """A copy of data with every person's name masked as the receipt shows it (王**); None stays None."""
    if not isinstance(data, dict) or not any(isinstance(data.get(key), str) for key in _PERSON_KEYS):
        return data
    return {key: privacy.surname_masked(value) if key in _PERSON_KEYS and isinstance(value, str) else value
            for key, value in data.items()}


def _without_personal_columns(snapshot: dict | None) -> dict | None:
    """An audit snapshot of a task with its personal columns blanked."""
    if not isinstance(snapshot, dict) or not any(key in snapshot for key in TASK_PERSONAL):
        return snapshot
    return {key: (None if key in ("lat", "lon") else "") if key in TASK_PERSONAL else value
            for key, value in snapshot.items()}


def _without_raw(snapshot: dict | None) -> dict | None:
    """An audit snapshot of a quarantined manifest row without the row as received."""
    return {**snapshot, "raw": None} if isinstance(snapshot, dict) and "raw" in snapshot else snapshot


def _redacted_task_dump(data: dict) -> dict:
    """A task as a handheld was shown it, with the recipient redacted and the customer's own notes emptied."""
    recipient = data.get("recipient")
    if isinstance(recipient, dict):
        data = {**data, "recipient": {**recipient, "name": privacy.surname_masked(recipient.get("name") or ""),
                                      "phone": "", "address": "", "lat": None, "lon": None}}
    if isinstance(data.get("notes"), list):
        data = {**data, "notes": [{**note, "text": None} if isinstance(note, dict) and note.get("actor_kind") == "customer"
                                  else note for note in data["notes"]]}
    return data


def _redacted_result(result: dict | None) -> dict | None:
    """An op's stored result ({..., entity: {entity, id, version, data}}) with the task dump in it redacted."""
    entity = (result or {}).get("entity")
    if not isinstance(entity, dict) or not isinstance(entity.get("data"), dict):
        return result
    return {**result, "entity": {**entity, "data": _redacted_task_dump(entity["data"])}}


def _redact(task: Task, now: datetime) -> None:
    """Redact one task's recipient wherever it was copied; the task's version moves, so the feed carries it."""
    with db.session.no_autoflush:  # one UPDATE of the task, so its version moves by one
        task.recipient_name = privacy.surname_masked(task.recipient_name)
        task.recipient_phone, task.address, task.lat, task.lon = "", "", None, None
        task.redacted_at = now
        handover = task.handover
        if handover is not None:
            handover.recipient_name = privacy.surname_masked(handover.recipient_name) if handover.recipient_name else None
            handover.signer_name = privacy.surname_masked(handover.signer_name) if handover.signer_name else None
            handover.consent_note, handover.pin_sealed = None, None
        for step in db.session.scalars(select(HandoverStep).where(HandoverStep.task_id == task.id)):
            step.data = _masked_names(step.data)
        for exception in db.session.scalars(select(HandoverException).where(HandoverException.task_id == task.id)):
            exception.detail = _masked_names(exception.detail)
        # Messages to the customer keep their text (it names no one) but not where they went.
        db.session.execute(update(CustomerMessage).where(CustomerMessage.task_id == task.id).values(to_phone=None))
        # The customer's own words (delivery instructions from the customer page) may hold anything about them.
        db.session.execute(update(TaskEvent).where(TaskEvent.task_id == task.id, TaskEvent.actor_kind == "customer",
                                                   TaskEvent.text.is_not(None)).values(text=None))
        for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "tasks",
                                                                 AuditEntry.entity_id == task.id)):
            entry.before, entry.after = _without_personal_columns(entry.before), _without_personal_columns(entry.after)
        for op in db.session.scalars(select(OpLog).where(OpLog.entity_id == task.id)):
            op.payload, op.result = _masked_names(op.payload), _redacted_result(op.result)
        # Not tasks.record_event: the handheld doc would then take its older notes from the stored doc,
        # customer notes unredacted; the task's own columns change, so its version moves anyway.
        db.session.add(TaskEvent(task_id=task.id, kind="redacted", actor_kind=SYSTEM.kind, actor_id=None, at=now,
                                 data={"fields": list(TASK_PERSONAL)}))


def redact_finished(*, now: datetime, days: int) -> dict:
    """Redact recipients of tasks finished more than `days` ago, a committed batch at a time; a second run finds none.

    Quarantined manifest rows received as long ago lose their raw row too; link uses and export notes kept for
    leak detection leave once past their own retention (leaks.prune).
    """
    cutoff = now - timedelta(days=days)
    due = (select(Task.id).where(Task.redacted_at.is_(None), Task.finished_at < cutoff,
                                 Task.status.in_(FINISHED_STATUSES)).order_by(Task.id))
    ids = list(db.session.scalars(due))
    db.session.commit()
    redacted = 0
    for i in range(0, len(ids), BATCH):
        # Locked and read again: a task touched meanwhile is judged as it is now.
        batch = db.session.scalars(select(Task).where(Task.id.in_(ids[i:i + BATCH]), Task.redacted_at.is_(None),
                                                      Task.finished_at < cutoff)
                                   .options(selectinload(Task.handover)).order_by(Task.id).with_for_update())
        for task in batch:
            _redact(task, now)
            redacted += 1
        db.session.commit()
    quarantined = list(db.session.scalars(select(ManifestQuarantine).where(
        ManifestQuarantine.redacted_at.is_(None), ManifestQuarantine.received_at < cutoff).with_for_update()))
    for entry in quarantined:
        entry.raw, entry.redacted_at = None, now
    # Resolving a row audited its snapshot, raw row included.
    for audit_entry in db.session.scalars(select(AuditEntry).where(
            AuditEntry.entity == "manifest_quarantine", AuditEntry.entity_id.in_([str(q.id) for q in quarantined]))):
        audit_entry.before, audit_entry.after = _without_raw(audit_entry.before), _without_raw(audit_entry.after)
    pruned = leaks.prune(now=now)
    db.session.commit()
    return {"tasks": redacted, "quarantined_rows": len(quarantined), "leak_link_uses": pruned["link_uses"],
            "leak_export_notes": pruned["export_notes"]}
