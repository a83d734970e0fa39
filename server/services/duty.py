"""Checks before work: a courier hands over parcels and arrives at stops in an open shift, on a van fit for the road.

A shift opens only after that day's conduct check and a pre-trip check the van
passed (checklists.start_shift), so an open shift is the proof the checks were
done. Work outside one, or in a shift whose van was off the road at the time,
is a field fact: it is applied as it is, and recorded once per task and cause
as a violation (work_without_shift_check, grounded_vehicle_used) and as an
exception on dispatch's list, with the evidence (docs/decisions.md, "Issue 21:
checks before work").

Everything is judged at the op's time (its effective time, as the push engine
decided it: sync.timing), so an offline queue pushed hours late is judged as of
when the work was done: a shift that was open then and has ended since still
covers it. The lookups are made once per transaction (a
push batch) for the courier and their van, and kept in the session: no query
per op. Rules that open a shift or take a van off the road in the same
transaction note it here (shift_started, went_off_road, back_on_road).
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from schemas.vocab import WORK_CHECK_CODES
from server.auth import Actor
from server.clock import filed_at, local_date, local_day_start, utcnow
from server.extensions import db
from server.models import HandoverException, Shift, Task, Vehicle, VehicleDefect, VehicleGrounding, Violation
from server.services import events, violations
from server.services.common import pending

# session.info: what this transaction knows of couriers' shifts and vans' groundings (see _Roster).
_ROSTERS = "fieldops.duty.rosters"
_GROUNDINGS = "fieldops.duty.groundings"
# How far back of the first op's local day a transaction's shift lookup reaches (a later, older op reads again).
_LOOKBACK = timedelta(days=1)


class _Roster:
    """A courier's shifts that may cover work since `since`, and the violation keys already recorded."""

    def __init__(self, since: datetime, shifts: list[Shift], recorded: set[str]):
        self.since, self.shifts, self.recorded = since, shifts, recorded


def _roster(courier_id: str, at: datetime) -> _Roster:
    """The courier's shifts and recorded keys around `at`: two queries the first time in a transaction."""
    rosters = db.session.info.setdefault(_ROSTERS, {})
    roster = rosters.get(courier_id)
    if roster is not None and at >= roster.since:
        return roster
    since = local_day_start(at) - _LOOKBACK
    made = [s for s in pending(Shift) if s.courier_id == courier_id]
    stored = db.session.scalars(select(Shift).where(
        Shift.courier_id == courier_id,
        or_(Shift.started_at >= since, Shift.ended_at >= since, Shift.status == "open")))
    shifts = list({id(s): s for s in [*made, *stored]}.values())
    recorded = set(db.session.scalars(select(Violation.dedupe_key).where(
        Violation.courier_id == courier_id, Violation.code.in_(WORK_CHECK_CODES), Violation.occurred_at >= since)))
    if roster is not None:
        recorded |= roster.recorded
    roster = rosters[courier_id] = _Roster(since, shifts, recorded)
    return roster


def _groundings(vehicle_id: str) -> list[VehicleGrounding]:
    """The van's spans off the road (stored, or begun in this transaction): one query the first time."""
    known = db.session.info.setdefault(_GROUNDINGS, {})
    if vehicle_id not in known:
        made = [g for g in pending(VehicleGrounding) if g.vehicle_id == vehicle_id]
        stored = db.session.scalars(select(VehicleGrounding).where(VehicleGrounding.vehicle_id == vehicle_id))
        known[vehicle_id] = list({id(g): g for g in [*made, *stored]}.values())
    return known[vehicle_id]


def _forget(session: Session, _transaction=None) -> None:
    """What a transaction read of shifts and groundings is gone when it commits or rolls back."""
    session.info.pop(_ROSTERS, None)
    session.info.pop(_GROUNDINGS, None)


def init_app(_app) -> None:
    """Install the forgetting once per process (session events are per Session class)."""
    if not event.contains(Session, "after_commit", _forget):
        event.listen(Session, "after_commit", _forget)
        event.listen(Session, "after_soft_rollback", _forget)


# --- what the shift and van rules tell this one ---------------------------------------------------------------

def shift_started(shift: Shift) -> None:
    """A shift opened in this transaction (checklists.start_shift): work after it in the same batch is covered."""
    roster = db.session.info.get(_ROSTERS, {}).get(shift.courier_id)
    if roster is not None and all(s is not shift for s in roster.shifts):
        roster.shifts.append(shift)


def went_off_road(vehicle: Vehicle, *, at: datetime, reason: str, submission_id: str | None = None) -> None:
    """The van leaves service (a critical defect, or dispatch): a span off the road begins at `at`."""
    grounding = VehicleGrounding(vehicle_id=vehicle.id, reason=reason, started_at=at, submission_id=submission_id)
    db.session.add(grounding)
    known = db.session.info.get(_GROUNDINGS, {})
    if vehicle.id in known:
        known[vehicle.id].append(grounding)


def back_on_road(vehicle: Vehicle, *, at: datetime) -> None:
    """The van is back in service: its open spans off the road end at `at`."""
    for grounding in _groundings(vehicle.id):
        if grounding.ended_at is None:
            grounding.ended_at = at


# --- the rule -------------------------------------------------------------------------------------------------

def _shift_end(shift: Shift) -> datetime:
    """Until when a shift covers work: its end, and never more than SHIFT_MAX_HOURS after its start."""
    longest = shift.started_at + timedelta(hours=current_app.config["SHIFT_MAX_HOURS"])
    return min(shift.ended_at, longest) if shift.ended_at is not None else longest


def _shift_at(roster: _Roster, at: datetime) -> Shift | None:
    """The shift that covered `at` (the latest started, if two did)."""
    covering = [s for s in roster.shifts if s.started_at <= at <= _shift_end(s)]
    return max(covering, key=lambda s: s.started_at, default=None)


def _grounding_at(vehicle_id: str, at: datetime) -> VehicleGrounding | None:
    """The van's span off the road at `at`, if it was off the road then."""
    return next((g for g in _groundings(vehicle_id)
                 if g.started_at <= at and (g.ended_at is None or at < g.ended_at)), None)


def _shift_facts(shift: Shift | None) -> dict | None:
    """A shift as the evidence shows it."""
    if shift is None:
        return None
    return {"id": shift.id, "vehicle_id": shift.vehicle_id, "status": shift.status,
            "started_at": events.iso(shift.started_at), "ended_at": events.iso(shift.ended_at),
            "start_op_id": shift.start_op_id}


def _van_facts(shift: Shift, grounding: VehicleGrounding, at: datetime) -> dict:
    """The van, why it was off the road, and its critical defects open at `at` (read only when a violation is new)."""
    vehicle = db.session.get(Vehicle, shift.vehicle_id)
    defects = db.session.scalars(select(VehicleDefect).where(
        VehicleDefect.vehicle_id == shift.vehicle_id, VehicleDefect.severity == "critical",
        VehicleDefect.reported_at <= at, or_(VehicleDefect.resolved_at.is_(None), VehicleDefect.resolved_at > at))
        .order_by(VehicleDefect.id))
    return {"vehicle": {"id": vehicle.id, "plate": vehicle.plate, "status": vehicle.status},
            "grounding": {"reason": grounding.reason, "started_at": events.iso(grounding.started_at),
                          "ended_at": events.iso(grounding.ended_at), "submission_id": grounding.submission_id},
            "critical_defects": [{"id": d.id, "item": d.item, "label": d.label, "status": d.status,
                                  "reported_at": events.iso(d.reported_at), "submission_id": d.submission_id}
                                 for d in defects]}


def check_work(*, actor: Actor, task: Task, action: str, device_time: datetime | None, op_id: str | None,
               clock_suspect: bool = False) -> str | None:
    """Work on a task (a handover step, an arrival) was done in an open shift on a van fit for the road, or flagged.

    The work stands whatever this finds. Outside a shift it records
    work_without_shift_check; in a shift whose van was off the road then,
    grounded_vehicle_used. Each once per task, courier and code (retries,
    duplicates and the task's further steps add nothing), as a violation with
    its evidence and as an exception dispatch sees (with its event). Returns
    the code recorded now, if any. Does not commit.
    """
    courier_id = actor.courier_id
    if not courier_id:
        return None
    at = device_time or utcnow()
    roster = _roster(courier_id, at)
    shift = _shift_at(roster, at)
    grounding = _grounding_at(shift.vehicle_id, at) if shift is not None else None
    if shift is not None and grounding is None:
        return None
    code = "grounded_vehicle_used" if shift is not None else "work_without_shift_check"
    key = f"{task.id}:{courier_id}"
    if f"{code}:{key}" in roster.recorded:
        return None
    roster.recorded.add(f"{code}:{key}")
    evidence = {"task_id": task.id, "waybill_no": task.waybill_no, "action": action, "op_id": op_id,
                "device_time": at.isoformat(), "clock_suspect": clock_suspect, "shift": _shift_facts(shift)}
    if shift is None:
        before = [s for s in roster.shifts if s.started_at <= at]
        evidence["last_shift"] = _shift_facts(max(before, key=lambda s: s.started_at, default=None))
    else:
        evidence.update(_van_facts(shift, grounding, at))
    if not violations.record_auto(courier_id=courier_id, code=code, task_id=task.id, key=key, occurred_at=at,
                                  evidence=evidence, clock_suspect=clock_suspect):
        return None
    db.session.add(HandoverException(
        task_id=task.id, courier_id=courier_id, kind=code, day=local_date(filed_at(device_time, utcnow())),
        occurred_at=at, recorded_at=utcnow(), op_id=op_id, detail=evidence))
    task.needs_review = True
    events.emit_exception(events.task_facts(task), code, op_id=op_id, at=at)
    return code
