"""A task's whole story in one call: every op, history entry, scan, conflict, review and receipt, in order.

A view over the others (docs/decisions.md, "Issue 24: a task's page"): it reads what
tasks, the op log, handovers, appointments, scans and receipts keep and changes
nothing. Each entry says when it happened (the time the rules went by), what the
device said, when the server heard it and whether the device's clock was suspect.

An op's effect is shown once: an entry whose row names its op (a history entry
of a handover step, a contact, a window; a scan) carries the op's facts, and an
op named by no entry (a rejection, a conflict, a duplicate) is an entry of its own.
A note's or an arrival's history entry does not name its op: it is matched to the
applied op of its type, courier and time.
"""
from datetime import datetime

from sqlalchemy import select

from server.auth import Actor
from server.clock import utcnow
from server.extensions import db
from server.models import (Appointment, AppointmentWindow, Courier, OpLog, ParcelScan, Receipt, StaffUser,
                           SyncConflict, TaskEvent)
from server.errors import NotFound
from server.services import appointments, attachments, handover, privacy, receipts, tasks

# History kinds a device op writes without naming the op, and the op type that writes each.
_UNNAMED = {"task.note": "note", "stop.arrive": "arrived"}
# Where the office downloads an attachment (server.api.sync.AttachmentDownload).
ATTACHMENT_URL = "/api/v1/dispatch/attachments/{sha256}"


def _op_ref(row: OpLog) -> dict:
    """What the op log says of an op."""
    return {"id": row.id, "op_id": row.op_id, "seq": row.seq, "device_id": row.device_id, "type": row.type, "status": row.status,
            "code": row.code, "detail": row.detail, "device_time": row.device_time,
            "effective_time": row.effective_time, "received_at": row.received_at, "clock_suspect": row.clock_suspect,
            "clock_skew_s": row.clock_skew_s}


def _attachments(data: dict | None) -> list[dict]:
    """The photos and signature an entry's data names, with the office's download link."""
    data = data or {}
    named = [("signature", data["signature"])] if isinstance(data.get("signature"), str) else []
    named += [("photo", sha) for sha in data.get("photos") or [] if isinstance(sha, str)]
    return [{"sha256": sha, "role": role, "url": ATTACHMENT_URL.format(sha256=sha)} for role, sha in named]


def _entry(*, id: str, kind: str, type: str, at: datetime, device_time: datetime | None,  # noqa: A002
           received_at: datetime | None, clock_suspect: bool = False, actor_kind: str | None = None,
           actor_id: str | None = None, op: OpLog | None = None, text: str | None = None, data: dict | None = None,
           to_settle: bool = False, ref: int | None = None) -> dict:
    """One timeline entry; an op it came from lends it what the device said and when the server heard it."""
    if op is not None:
        device_time, received_at = op.device_time, op.received_at
        clock_suspect = clock_suspect or op.clock_suspect
    return {"id": id, "kind": kind, "type": type, "at": at, "device_time": device_time, "received_at": received_at,
            "clock_suspect": bool(clock_suspect), "actor_kind": actor_kind, "actor_id": actor_id,
            "op": _op_ref(op) if op is not None else None, "text": text, "data": data or {},
            "attachments": _attachments(data), "to_settle": to_settle, "ref": ref}


def _history_entries(events: list[TaskEvent], ops: dict[str, OpLog], unnamed: list[OpLog]) -> list[dict]:
    """The task's history (created, assigned, notes, appointment and handover steps, arrivals, decisions)."""
    entries = []
    for event in events:
        data = event.data or {}
        op = ops.get(data.get("op_id")) if isinstance(data.get("op_id"), str) else None
        if op is None and event.actor_kind == "courier" and event.device_time is not None:
            op = next((row for row in unnamed if _UNNAMED[row.type] == event.kind and row.courier_id == event.actor_id
                       and row.effective_time == event.device_time), None)
            if op is not None:
                unnamed.remove(op)
        entries.append(_entry(
            id=f"event-{event.id}", kind="event", type=event.kind, at=event.device_time or event.at,
            device_time=event.device_time, received_at=event.at, clock_suspect=bool(data.get("clock_suspect")),
            actor_kind=event.actor_kind, actor_id=event.actor_id, op=op, text=event.text, data=data))
    return entries


def _scan_entries(scans: list[ParcelScan], ops: dict[str, OpLog]) -> list[dict]:
    """Every scan of the task's parcels: the handheld's, upstream's, the handover's."""
    return [_entry(id=f"scan-{scan.id}", kind="scan", type=scan.event, at=scan.effective_time,
                   device_time=scan.reported_time, received_at=scan.received_at, clock_suspect=scan.clock_suspect,
                   actor_kind="courier" if scan.courier_id else "upstream", actor_id=scan.courier_id or scan.upstream_id,
                   op=ops.get(scan.op_id) if scan.source == "handheld" else None, text=scan.note,
                   data={"parcel_no": scan.parcel_no, "source": scan.source, "op_id": scan.op_id,
                         "upstream_event_id": scan.upstream_event_id})
            for scan in scans]


def _conflict_entries(conflicts: list[SyncConflict], by_row: dict[int, OpLog]) -> list[dict]:
    """Ops made on a version dispatch had changed since: open ones are for dispatch to settle."""
    return [_entry(id=f"conflict-{c.id}", kind="conflict", type=c.reason, at=c.created_at, device_time=None,
                   received_at=c.created_at, actor_kind="courier", actor_id=c.courier_id, op=by_row.get(c.op_log_id),
                   text=c.note, data={"applied": c.applied, "status": c.status, "resolution": c.resolution,
                                      "resolved_by": c.resolved_by,
                                      "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None},
                   to_settle=c.status == "open", ref=c.id)
            for c in conflicts]


def _review_entries(windows: list[AppointmentWindow]) -> list[dict]:
    """Windows whose decision the facts could not make alone: under review, or decided by dispatch."""
    return [_entry(id=f"review-{w.id}", kind="review", type=w.review_reason, at=w.decided_at or w.end,
                   device_time=None, received_at=w.decided_at, clock_suspect=w.clock_suspect,
                   actor_kind="system", text=w.review_note,
                   data={"window_id": w.id, "start": w.start.isoformat(), "end": w.end.isoformat(),
                         "attempt": w.attempt, "outcome": w.outcome, "provisional_outcome": w.provisional_outcome,
                         "reviewed_by": w.reviewed_by_id,
                         "reviewed_at": w.reviewed_at.isoformat() if w.reviewed_at else None},
                   to_settle=w.outcome == "review", ref=w.id)
            for w in windows]


def _receipt_entries(rows: list[Receipt], completed_at: datetime | None) -> list[dict]:
    """The sealed receipt of the completed handover, and its public page: told with the step that completed it."""
    return [_entry(id=f"receipt-{r.id}", kind="receipt", type=r.kind, at=completed_at or r.issued_at,
                   device_time=None, received_at=r.issued_at, actor_kind="system", data=receipts.link(r))
            for r in rows]


def _order(entry: dict) -> tuple:
    """When it happened (a receipt after what happened with it), then when the server heard of it, then the op's
    place in its device's queue."""
    op = entry["op"] or {}
    return entry["at"], entry["kind"] == "receipt", entry["received_at"] or entry["at"], op.get("seq") or 0


def task_timeline(*, task_id: str, actor: Actor | None = None) -> dict:
    """A task's header facts and its whole timeline, oldest first (a courier asking for another's task: 404)."""
    task = tasks.get(task_id=task_id, actor=actor)
    handover.with_receipts([task])
    appointments.with_history([task], newest=None)
    now = utcnow()
    ops = list(db.session.scalars(select(OpLog).where(OpLog.entity_id == task.id).order_by(OpLog.id)))
    conflicts = list(db.session.scalars(select(SyncConflict).where(SyncConflict.task_id == task.id)
                                        .order_by(SyncConflict.id)))
    by_row = {row.id: row for row in ops}
    for conflict in conflicts:  # a conflict's op names the task, but read it by its row all the same
        if conflict.op_log_id not in by_row:
            by_row[conflict.op_log_id] = db.session.get(OpLog, conflict.op_log_id)
    # The op an entry names is the one that took its op_id (a duplicate sent again is its own entry).
    named = {row.op_id: row for row in ops if row.holds_op_id}
    unnamed = [row for row in ops if row.type in _UNNAMED and row.status == "applied"]
    events = list(db.session.scalars(select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id)))
    scans = list(db.session.scalars(select(ParcelScan).where(ParcelScan.task_id == task.id).order_by(ParcelScan.id)))
    windows = list(db.session.scalars(
        select(AppointmentWindow).join(Appointment, Appointment.id == AppointmentWindow.appointment_id)
        .where(Appointment.task_id == task.id, AppointmentWindow.review_reason.is_not(None))
        .order_by(AppointmentWindow.id)))
    issued = list(db.session.scalars(select(Receipt).where(Receipt.task_id == task.id).order_by(Receipt.issued_at)))
    entries = (_history_entries(events, named, unnamed) + _scan_entries(scans, named)
               + _conflict_entries(conflicts, by_row) + _review_entries(windows)
               + _receipt_entries(issued, task.handover.completed_at if task.handover is not None else None))
    shown = {entry["op"]["id"] for entry in entries if entry["op"]}
    entries += [_entry(id=f"op-{row.id}", kind="op", type=row.type, at=row.effective_time or row.received_at,
                       device_time=row.device_time, received_at=row.received_at, actor_kind="courier",
                       actor_id=row.courier_id, op=row, data=row.payload if isinstance(row.payload, dict) else {})
                for row in ops if row.id not in shown]
    entries.sort(key=_order)
    people = {e["actor_id"] for e in entries} | {task.courier_id} | {
        e["data"].get(key) for e in entries if e["type"] == "assigned" for key in ("courier_id", "previous")}
    names = _names({p for p in people if isinstance(p, str)})
    for entry in entries:
        entry["actor_name"] = names.get(entry["actor_id"])
    state = task.handover
    photos = sorted(set(state.photos or [])) if state is not None else []
    signature = state.signature_sha256 if state is not None else None
    appointment = task.appointment
    return {
        "task": task,
        "recipient_masked": {"name": privacy.surname_masked(task.recipient_name),
                             "phone": privacy.mask_phone(task.recipient_phone)},
        "appointment": appointment,
        "appointment_state": appointments.state(appointment, now) if appointment is not None else None,
        "receipt": state.receipt if state is not None and state.outcome is not None else None,
        "attachments": _unique(_attachments({"signature": signature, "photos": photos})
                               + [a for e in entries for a in e["attachments"]]),
        "open_conflicts": [c for c in conflicts if c.status == "open"],
        "open_reviews": [w for w in windows if w.outcome == "review"],
        "entries": entries,
        "names": names,
    }


def _names(ids: set[str]) -> dict[str, str]:
    """Who the ids are: couriers by name, staff by username (the page and the API name people, not ids)."""
    if not ids:
        return {}
    rows = db.session.execute(select(Courier.id, Courier.name).where(Courier.id.in_(ids))).all()
    rows += db.session.execute(select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(ids))).all()
    return dict(rows)


def _unique(links: list[dict]) -> list[dict]:
    """Each attachment once, the first mention kept (the handover's signature before a step's copy of it)."""
    seen: set[str] = set()
    return [link for link in links if not (link["sha256"] in seen or seen.add(link["sha256"]))]


def attachment(*, task_id: str, sha256: str) -> tuple[attachments.Download, bytes | None]:
    """A photo or signature of the task's timeline, to show on its page (attachments.content); one the task does
    not name is a 404, as for one never stored."""
    named = {link["sha256"] for link in task_timeline(task_id=task_id)["attachments"]}
    if sha256 not in named:
        raise NotFound(f"Task {task_id} names no attachment {sha256}.", code="attachment_not_found")
    return attachments.content(sha256=sha256)
