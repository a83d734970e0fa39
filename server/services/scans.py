"""The parcel's journey: scans from handhelds, upstream systems and the handover's steps; lost parcels.

A scan is kept whatever its clock says (flagged when the clock cannot be
trusted) and read back as one journey per parcel, ordered by when it happened
(effective time), then by when it reached us. The same event of the same
parcel told twice within DEDUP_WINDOW (a courier's scan and the handover step
that also writes it) counts once in the journey; both rows stay stored.
docs/decisions.md, "Issue 22: the parcel's journey".
"""
import hashlib
import json
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.limits import EARLIEST_TIME
from schemas.vocab import OPEN_STATUSES, SCAN_NOTES
from server.auth import Actor
from server.clock import utcnow
from server.database import bulk_insert
from server.errors import Conflict, NotFound, RuleViolation
from server.extensions import db
from server.models import Parcel, ParcelScan, Task
from server.services import events
from server.services.common import audit, oldest_first, snapshot, write_buffered_rows

INSPECTION_NOTE = SCAN_NOTES[0]  # the note of a parcel the inspection found damaged or miscounted

DEDUP_WINDOW = timedelta(minutes=15)
_PENDING = "fieldops.scans.pending"  # session.info: scans not yet written
SYSTEM = "system"
# The handover's outcome -> the scan it writes for each of the task's parcels.
_SCAN_OF_OUTCOME = {"delivered": "handed_over", "refused": "returned"}


def _row(*, task_id: str, parcel_no: str, event: str, source: str, effective_time: datetime,
         reported_time: datetime | None, clock_suspect: bool, note: str | None = None,
         received_at: datetime | None = None, courier_id: str | None = None, device_id: str | None = None,
         op_id: str | None = None, upstream_id: str | None = None, upstream_event_id: str | None = None,
         upstream_digest: str | None = None) -> dict:
    """A scan as plain values, every column given (a batch of them is one INSERT)."""
    return {"task_id": task_id, "parcel_no": parcel_no, "event": event, "source": source, "note": note,
            "effective_time": effective_time, "reported_time": reported_time, "clock_suspect": clock_suspect,
            "received_at": received_at or utcnow(), "courier_id": courier_id, "device_id": device_id,
            "op_id": op_id, "upstream_id": upstream_id, "upstream_event_id": upstream_event_id,
            "upstream_digest": upstream_digest}


def _buffer(**facts) -> None:
    """Keep a scan for the next flush or the commit: a push's scans go in one INSERT (as the handover's steps:
    built one by one as mapped objects they cost a push more than the rule that made them)."""
    db.session.info.setdefault(_PENDING, []).append(_row(**facts))


def _write(session: Session, _flush_context=None) -> None:
    """Insert the scans buffered since the last flush (after the tasks they name), or at commit if none came."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        bulk_insert(session, ParcelScan.__table__, rows)


def _forget(session: Session, _transaction=None) -> None:
    """Scans buffered in a transaction that rolled back, or committed, are gone from the buffer."""
    session.info.pop(_PENDING, None)


def init_app(_app) -> None:
    """Install the scan writer once per process."""
    write_buffered_rows(_write, _forget)


def _seen(parcels: list[Parcel], at: datetime, *, at_the_door: bool = False) -> None:
    """A scan of these parcels: a suspicion of loss is over (a confirmed lost or found stays dispatch's word). A
    scan dated FIELDOPS_LOST_AFTER_HOURS ago or more (a queue or upstream batch arriving late) says nothing newer
    than the suspicion was raised on, so it leaves it (the job would raise it again); a handover step always ends
    it (the parcel was in hand at the door)."""
    stale = not at_the_door and at < utcnow() - timedelta(hours=current_app.config["LOST_AFTER_HOURS"])
    for parcel in parcels:
        if parcel.lost_state == "suspected_lost" and not stale:
            parcel.lost_state, parcel.lost_state_at, parcel.lost_state_by = None, at, SYSTEM


def scan(*, actor: Actor, task: Task, parcel_no: str, event: str, note: str | None,
         device_time: datetime | None, reported_time: datetime | None = None, op_id: str | None = None,
         clock_suspect: bool = False) -> None:
    """parcel.scan from a handheld: a parcel of the op's task seen at a point of its journey. Does not commit."""
    parcel = next((p for p in task.parcels if p.parcel_no == parcel_no), None)
    if parcel is None:
        raise RuleViolation(f"Task {task.id} has no parcel {parcel_no}.", code="unknown_parcel",
                            fields={"payload.parcel_no": ["Not a parcel of this task."]}, unchanged=True)
    at = device_time or utcnow()
    _seen([parcel], at)
    _buffer(task_id=task.id, parcel_no=parcel_no, event=event, source="handheld", note=note, effective_time=at,
            reported_time=reported_time or device_time, clock_suspect=clock_suspect, courier_id=actor.courier_id,
            device_id=actor.device_id, op_id=op_id)
    if event == "out_for_delivery":
        events.emit("task.out_for_delivery", task.id, events.task_facts(
            task, parcel_no=parcel_no, op_id=op_id, occurred_at=at.isoformat()))


def for_handover(*, task: Task, outcome: str | None = None, exceptions: list[str] = (), facts: dict) -> None:
    """The scans a handover step writes in its own transaction: handed_over or returned for every parcel of the
    task when it completes, an exception for each parcel the inspection found damaged or missing."""
    at = facts["device_time"] or utcnow()
    common = {"task_id": task.id, "source": "handover", "effective_time": at,
              "reported_time": facts.get("reported_time") or facts["device_time"],
              "clock_suspect": facts["clock_suspect"], "courier_id": facts["actor"].courier_id,
              "device_id": facts["actor"].device_id, "op_id": facts["op_id"]}
    event = _SCAN_OF_OUTCOME.get(outcome)
    if event:
        for parcel in task.parcels:
            _buffer(parcel_no=parcel.parcel_no, event=event, **common)
    for parcel_no in exceptions:
        _buffer(parcel_no=parcel_no, event="exception", note=INSPECTION_NOTE, **common)
    if event or exceptions:
        _seen([p for p in task.parcels if event or p.parcel_no in exceptions], at, at_the_door=True)


def _in_utc(reported: datetime) -> datetime | None:
    """The reported time in UTC; None at the calendar's very ends, where it has none (year 1 east of Greenwich)."""
    try:
        return reported.astimezone(timezone.utc)
    except OverflowError:
        return None


def _upstream_time(reported: datetime | None, received: datetime) -> tuple[datetime, bool]:
    """(effective, suspect) of an upstream scan: the reported time when it can be (not before 2000, not after the
    receipt beyond the tolerance), else the receipt, the one time the server knows, flagged."""
    tolerance = timedelta(seconds=current_app.config["CLOCK_SKEW_TOLERANCE_SECONDS"])
    if reported is not None and EARLIEST_TIME <= reported <= received + tolerance:
        return min(reported, received), False
    return received, True


def _digest(item: dict) -> str:
    """The body of an upstream scan as it must be sent again under its event id."""
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in sorted(item.items())}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _holders(parcel_nos: list[str]) -> dict[str, Task]:
    """The newest task holding each parcel number (a return task holds its refused task's parcels)."""
    rows = db.session.execute(select(Parcel.parcel_no, Task).join(Task, Task.id == Parcel.task_id)
                              .where(Parcel.parcel_no.in_(parcel_nos))
                              .order_by(Task.created_at, Task.id)).all()
    return {parcel_no: task for parcel_no, task in rows}


def record_upstream(*, actor: Actor, scans: list[dict]) -> dict:
    """POST /integrations/scans: each scan recorded once under its event id; the same body again answers the same,
    another body under a used id is a conflict, an unknown parcel is rejected. Commits."""
    received = utcnow()
    ids = [item["event_id"] for item in scans]
    stored = {row.upstream_event_id: row for row in db.session.scalars(
        select(ParcelScan).where(ParcelScan.source == "upstream", ParcelScan.upstream_event_id.in_(ids)))}
    holders = _holders(sorted({item["parcel_no"] for item in scans}))
    results, made = [], []
    for item in scans:
        digest, event_id = _digest(item), item["event_id"]
        earlier = stored.get(event_id)
        if earlier is not None:
            same = earlier.upstream_digest == digest
            results.append({"event_id": event_id, "status": "recorded" if same else "conflict",
                            "code": None if same else "event_id_reused", "scan_id": None,
                            **({"scan": earlier} if same else {})})
            continue
        task = holders.get(item["parcel_no"])
        if task is None:
            results.append({"event_id": event_id, "status": "rejected", "code": "unknown_parcel", "scan_id": None})
            continue
        reported = _in_utc(item["occurred_at"])
        effective, suspect = _upstream_time(reported, received)
        row = ParcelScan(**_row(task_id=task.id, parcel_no=item["parcel_no"], event=item["event"],
                                source="upstream", note=item.get("note"), effective_time=effective,
                                reported_time=reported, clock_suspect=suspect, received_at=received,
                                upstream_id=actor.id, upstream_event_id=event_id, upstream_digest=digest))
        db.session.add(row)
        _seen([p for p in task.parcels if p.parcel_no == item["parcel_no"]], effective)
        stored[event_id] = row  # the same id twice in one batch: the second is a retry of the first
        made.append(row)
        results.append({"event_id": event_id, "status": "recorded", "code": None, "scan": row})
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Another request recorded some of these event ids at the same time; send the batch again.",
                       code="concurrent_scans") from None
    for result in results:
        if "scan" in result:
            result["scan_id"] = result.pop("scan").id
    db.session.commit()
    return {"results": results}


def _dedup(rows: list[ParcelScan]) -> list[dict]:
    """Rows in journey order, the same event of the same parcel within DEDUP_WINDOW of the one kept folded in."""
    out: list[dict] = []
    last: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row.parcel_no, row.event)
        kept = last.get(key)
        if kept is not None and row.effective_time - kept["effective_time"] <= DEDUP_WINDOW:
            if row.source not in kept["also_from"] and row.source != kept["source"]:
                kept["also_from"].append(row.source)
            continue
        item = {"id": row.id, "parcel_no": row.parcel_no, "task_id": row.task_id, "event": row.event,
                "source": row.source, "note": row.note, "effective_time": row.effective_time,
                "reported_time": row.reported_time, "received_at": row.received_at,
                "clock_suspect": row.clock_suspect, "courier_id": row.courier_id, "also_from": []}
        last[key] = item
        out.append(item)
    return out


def _same_parcels(task: Task) -> list[str]:
    """The tasks that carry this task's very parcels: the task, the one it is a return of, and their returns.

    Parcel numbers are unique within a task only; another customer's task may
    hold the same number, and its scans are not this parcel's journey.
    """
    ids, frontier = {task.id}, {task.return_of_id} - {None}
    while frontier:  # up the returns (a return of a return)
        ids |= frontier
        frontier = set(db.session.scalars(select(Task.return_of_id).where(
            Task.id.in_(frontier), Task.return_of_id.is_not(None)))) - ids
    frontier = set(ids)
    while frontier:  # and down to every return of them
        frontier = set(db.session.scalars(select(Task.id).where(Task.return_of_id.in_(frontier)))) - ids
        ids |= frontier
    return sorted(ids)


def journey(*, task: Task, parcel_nos: list[str] | None = None) -> list[dict]:
    """The journey of the task's parcels (or of these of them): the scans of the tasks carrying them, one list by
    effective time, then receipt, deduplicated (DEDUP_WINDOW)."""
    numbers = [p.parcel_no for p in task.parcels] if parcel_nos is None else parcel_nos
    if not numbers:
        return []
    rows = db.session.scalars(select(ParcelScan).where(ParcelScan.parcel_no.in_(numbers),
                                                       ParcelScan.task_id.in_(_same_parcels(task)))
                              .order_by(ParcelScan.effective_time, ParcelScan.received_at, ParcelScan.id))
    return _dedup(list(rows))


def task_journey(*, task_id: str) -> dict:
    """A task's parcels with their lost state, and their journey."""
    task = db.session.get(Task, task_id)
    if task is None:
        raise NotFound(f"No task {task_id}.", code="task_not_found")
    return {"task_id": task.id, "waybill_no": task.waybill_no, "parcels": list(task.parcels),
            "journey": journey(task=task)}


def flag_unscanned(*, now: datetime) -> dict:
    """The lost-parcels job: a parcel of an open task unscanned FIELDOPS_LOST_AFTER_HOURS since its last scan (and
    since dispatch last found it) is suspected lost. Parcels never scanned have no journey to lose. Commits."""
    cutoff = now - timedelta(hours=current_app.config["LOST_AFTER_HOURS"])
    # The parcel's own scans: of its task, or of the task it is a return of (another task's parcel of the same
    # number is another parcel).
    last = (select(Parcel.id.label("parcel_id"), func.max(ParcelScan.effective_time).label("at"))
            .join(Task, Task.id == Parcel.task_id)
            .join(ParcelScan, and_(ParcelScan.parcel_no == Parcel.parcel_no,
                                   or_(ParcelScan.task_id == Parcel.task_id, ParcelScan.task_id == Task.return_of_id)))
            .where(Task.status.in_(OPEN_STATUSES))
            .group_by(Parcel.id).subquery("last_scan"))
    parcels = list(db.session.scalars(
        select(Parcel).join(Task, Task.id == Parcel.task_id).join(last, last.c.parcel_id == Parcel.id)
        .where(Task.status.in_(OPEN_STATUSES), last.c.at < cutoff,
               or_(Parcel.lost_state.is_(None),
                   and_(Parcel.lost_state == "found", Parcel.lost_state_at < cutoff)))
        .order_by(Parcel.id).with_for_update(of=Parcel)))
    for parcel in parcels:
        parcel.lost_state, parcel.lost_state_at, parcel.lost_state_by = "suspected_lost", now, SYSTEM
    db.session.commit()
    return {"suspected": len(parcels)}


def lost_parcels(*, state: str | None, cursor: int | None, limit: int) -> dict:
    """Parcels in a lost state (suspected_lost, lost or found; all three without a state), oldest first."""
    query = select(Parcel).where(Parcel.lost_state.is_not(None) if state is None else Parcel.lost_state == state)
    return oldest_first(query, Parcel.id, cursor=cursor, limit=limit)


def _seen_since(parcel: Parcel, since: datetime) -> bool:
    """A scan of this very parcel (its task's or a task carrying it) reached the server after `since`."""
    return db.session.scalar(select(ParcelScan.id).where(
        ParcelScan.parcel_no == parcel.parcel_no, ParcelScan.task_id.in_(_same_parcels(parcel.task)),
        ParcelScan.received_at > since).limit(1)) is not None


def settle_lost(*, actor: Actor, parcel_id: int, state: str) -> Parcel:
    """Dispatch's word on a suspected parcel: lost, or found (a lost one may be found later). Audited. Commits."""
    parcel = db.session.get(Parcel, parcel_id, with_for_update=True)
    if parcel is None:
        raise NotFound(f"No parcel {parcel_id}.", code="parcel_not_found")
    allowed = ("suspected_lost",) if state == "lost" else ("suspected_lost", "lost")
    if parcel.lost_state not in allowed:
        rule = ("Only a parcel suspected lost can be confirmed lost" if state == "lost"
                else "Only a parcel suspected lost or confirmed lost can be found")
        now_is = {None: "this one is not suspected", "lost": "this one is already lost",
                  "found": "this one was found and is not suspected again"}[parcel.lost_state]
        raise RuleViolation(f"Parcel {parcel.parcel_no} is {parcel.lost_state or 'not suspected lost'}; "
                            f"only a parcel {' or '.join(allowed)} can be marked {state}.",
                            code="lost_state_not_suspected", fields={"state": [f"{rule}; {now_is}."]})
    if state == "found" and parcel.lost_state == "lost" and not _seen_since(parcel, parcel.lost_state_at):
        # A confirmed loss leaves loss_rate only on evidence: the parcel scanned after it was confirmed.
        raise RuleViolation(f"Parcel {parcel.parcel_no} was confirmed lost and has not been scanned since.",
                            code="found_without_scan",
                            fields={"state": ["A lost parcel is found by a scan of it received after its loss."]})
    before = snapshot(parcel)
    now = utcnow()
    parcel.lost_state, parcel.lost_state_at, parcel.lost_state_by = state, now, actor.id
    audit(actor, f"parcel.{state}", parcel, before)
    task = parcel.task
    events.emit(f"parcel.{state}", task.id, events.task_facts(task, parcel_no=parcel.parcel_no,
                                                             at=now.isoformat(), by=actor.id))
    db.session.commit()
    return parcel


def for_customer(*, task: Task) -> list[dict]:
    """The journey as the customer page shows it: events and times only (no notes, no couriers, no devices)."""
    return [{"parcel_no": item["parcel_no"], "event": item["event"], "at": item["effective_time"]}
            for item in journey(task=task)]
