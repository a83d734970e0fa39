"""Appointments: agreeing a window with the customer, contact attempts, late notice, waiting, arrival, the sweep.

Decisions use the device's time (the courier may have been offline for
hours); the server's receipt time is stored beside it. A decision taken on a
device clock the push engine flagged (clock_suspect) still stands, and marks
the appointment (and any violation's evidence) for dispatch to review.
"""
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, event, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from schemas.appointments import MAX_AHEAD, MAX_WINDOW
from schemas.vocab import OPEN_STATUSES
from server.auth import SYSTEM, Actor
from server.clock import local_date, utcnow
from server.errors import NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.geo import distance_m
from server.models import Appointment, AppointmentWindow, ContactAttempt, Task
from server.services import events, tasks, violations
from server.services.common import paginate


def _of(task: Task) -> Appointment:
    """The task's appointment (a task from before appointments existed gets one now)."""
    if task.appointment is None:
        task.appointment = tasks.new_appointment(task, SYSTEM)
    return task.appointment


def _ensure_open(task: Task) -> None:
    """Nobody agrees a time for a task that is finished or cancelled."""
    if task.is_finished:
        raise RuleViolation(f"Task is {task.status}; its appointment can no longer change.", code="task_closed")


def agreeable(*, start: datetime, end: datetime, at: datetime) -> bool:
    """Whether a window can be agreed at `at` (what confirming it checks): pages offer only such a window."""
    return not _window_problems(start, end, at)


def _check_window(start: datetime, end: datetime, at: datetime) -> None:
    """Refuse a window that cannot be agreed at `at` (422 naming window.start or window.end)."""
    fields = _window_problems(start, end, at)
    if fields:
        raise ValidationFailed("The window is outside the allowed range.", fields=fields)


def _window_problems(start: datetime, end: datetime, at: datetime) -> dict[str, list[str]]:
    """A window must end after it starts, last at most MAX_WINDOW, not be over at `at`, nor lie too far ahead."""
    fields = {}
    if end <= start:
        fields["window.end"] = ["Window end must be after its start."]
    elif end - start > MAX_WINDOW:
        fields["window.end"] = [f"A window may last at most {MAX_WINDOW.seconds // 3600} hours."]
    elif end <= at:
        fields["window.end"] = ["The window is already over."]
    if start - at > MAX_AHEAD:
        fields["window.start"] = [f"A window may start at most {MAX_AHEAD.days} days ahead."]
    return fields


def _stamp(task: Task, appointment: Appointment, kind: str, actor: Actor, *, data: dict,
           device_time: datetime | None, clock_suspect: bool) -> None:
    """Record the change in the task's history (which moves its version, so the handheld pulls it)."""
    if clock_suspect:
        appointment.clock_suspect = True
        data = {**data, "clock_suspect": True}
    tasks.record_event(task, kind, actor, data=data, device_time=device_time)


_TOUCHED = "fieldops.appointments.touched_windows"


def _touched(appointment: Appointment) -> list[AppointmentWindow]:
    """The appointment's windows this transaction added or changed (in memory, perhaps not flushed)."""
    return _touched_of(appointment.id)


def _add_window(appointment: Appointment, **fields) -> AppointmentWindow:
    """A new window of the appointment, linked by its key: the history is not loaded for it."""
    if appointment.id is None:  # an appointment created in this transaction: its windows are in memory
        window = AppointmentWindow(received_at=utcnow(), **fields)
        appointment.windows.append(window)
        return window
    window = AppointmentWindow(appointment_id=appointment.id, received_at=utcnow(), **fields)
    db.session.add(window)
    _touched(appointment).append(window)
    return window


def _settle_windows(appointment: Appointment, start: datetime, end: datetime) -> AppointmentWindow | None:
    """Supersede the agreed window and decline the proposals, but the first one proposing (start, end): returned.

    Only the open windows change; the rest is history. A task rescheduled all
    week has a long history, and agreeing a window must neither load it nor grow
    with it. Windows this transaction added or changed are settled in memory (a
    push applies its batch before its one flush, so the database does not know
    them yet), and so are the stored windows still open, read in one query.
    """
    def settle(windows, agreed):
        for window in windows:
            if window.status == "agreed":
                window.status = "superseded"
            elif window.status == "proposed" and window is not agreed:
                window.status = "declined"

    def proposes(window):
        return window.status == "proposed" and (window.start, window.end) == (start, end)

    if appointment.id is None:
        agreed = next((w for w in appointment.windows if proposes(w)), None)
        settle(appointment.windows, agreed)
        return agreed
    touched = _touched(appointment)
    if appointment.id in db.session.info.get(_OPEN_LOADED, ()):
        # load_open_windows put the stored open windows among the touched ones: nothing to ask.
        agreed = next((w for w in touched if proposes(w)), None)
        settle(touched, agreed)
        return agreed
    # The stored windows still open (an agreed one, proposals: a few, whatever the history's
    # length) join those this transaction touched, and are settled in memory with them: one
    # SELECT, and their changes go out with the batch's flush.
    stored = list(db.session.scalars(_STORED_OPEN, {
        "of_appointment": appointment.id, "touched_ids": [w.id for w in touched if w.id is not None]}))
    agreed = next((w for w in stored if proposes(w)), None) or next((w for w in touched if proposes(w)), None)
    touched.extend(stored)
    settle(touched, agreed)
    return agreed


# _settle_windows' statement, built once (building cost as much as running it): an appointment's
# stored open windows but those the transaction touched.
_STORED_OPEN = (select(AppointmentWindow).where(
    AppointmentWindow.appointment_id == bindparam("of_appointment"),
    AppointmentWindow.id.not_in(bindparam("touched_ids", expanding=True)),
    AppointmentWindow.status.in_(("agreed", "proposed"))).order_by(AppointmentWindow.id))


def _windows(appointment: Appointment) -> list[AppointmentWindow]:
    """Every window of the appointment, those this transaction added and has not flushed included."""
    windows = list(appointment.windows)
    added = db.session.info.get(_TOUCHED, {}).get(appointment.id, []) if appointment.id else []
    return windows + [w for w in added if w not in windows]


# session.info: the appointments whose stored open windows load_open_windows put among the touched.
_OPEN_LOADED = "fieldops.appointments.open_windows_loaded"


def load_open_windows(task_list: list[Task]) -> None:
    """The stored open windows (agreed, proposed) of the tasks' appointments, in one query for the
    batch, kept with the windows the transaction touches: agreeing a window then asks nothing."""
    loaded = db.session.info.setdefault(_OPEN_LOADED, set())
    wanted = [t.appointment.id for t in task_list
              if t.appointment is not None and t.appointment.id is not None and t.appointment.id not in loaded]
    if not wanted:
        return
    for window in db.session.scalars(_STORED_OPEN_OF_MANY, {"of_appointments": wanted}):
        touched = _touched_of(window.appointment_id)
        if window not in touched:  # one identity per row: a window touched already is that object
            touched.append(window)
    loaded.update(wanted)


def _touched_of(appointment_id: int) -> list[AppointmentWindow]:
    """_touched by the appointment's id."""
    return db.session.info.setdefault(_TOUCHED, {}).setdefault(appointment_id, [])


_STORED_OPEN_OF_MANY = (select(AppointmentWindow).where(
    AppointmentWindow.appointment_id.in_(bindparam("of_appointments", expanding=True)),
    AppointmentWindow.status.in_(("agreed", "proposed"))).order_by(AppointmentWindow.id))


def _forget_touched(session, _transaction=None) -> None:
    """The record of windows touched does not outlive its transaction."""
    session.info.pop(_TOUCHED, None)
    session.info.pop(_OPEN_LOADED, None)


def init_app(_app) -> None:
    """Install the window bookkeeping once per process (session events are per Session class)."""
    if not event.contains(Session, "after_commit", _forget_touched):
        event.listen(Session, "after_soft_rollback", _forget_touched)
        event.listen(Session, "after_commit", _forget_touched)


def _agree(task: Task, appointment: Appointment, *, actor: Actor, start: datetime, end: datetime, via: str,
           reason: str | None, device_time: datetime | None, op_id: str | None, clock_suspect: bool,
           event_type: str) -> None:
    """Make a window the agreed one: the previous agreed window is superseded; the task's window follows."""
    if appointment.status == "confirmed" and (appointment.window_start, appointment.window_end) == (start, end):
        return  # the same agreement again (a second tap, a second channel): nothing changes
    events.emit(event_type, task.id, events.task_facts(
        task, window_start=start.isoformat(), window_end=end.isoformat(), via=via,
        previous_window_start=events.iso(appointment.window_start),
        previous_window_end=events.iso(appointment.window_end)))
    agreed = _settle_windows(appointment, start, end)
    if agreed is None:
        agreed = _add_window(appointment, start=start, end=end, proposed_by_kind=actor.kind,
                             proposed_by_id=actor.id, reason=reason, device_time=device_time, op_id=op_id,
                             clock_suspect=clock_suspect)
    agreed.status, agreed.via, agreed.agreed_by_kind, agreed.agreed_by_id = "agreed", via, actor.kind, actor.id
    agreed.agreed_op_id = op_id
    appointment.status = "confirmed"
    appointment.window_start, appointment.window_end = start, end
    appointment.arrived_at = None
    appointment.notice_at = appointment.notice_eta = appointment.notice_reason = None
    appointment.notice_in_time = appointment.needs_new_appointment = False
    appointment.exception = None
    task.window_start, task.window_end, task.service_date = start, end, local_date(start)
    _stamp(task, appointment, "appointment.confirmed", actor, device_time=device_time, clock_suspect=clock_suspect,
           data={"start": start.isoformat(), "end": end.isoformat(), "via": via, "op_id": op_id})


def confirm_task(*, actor: Actor, task: Task, start: datetime, end: datetime, via: str,
                 device_time: datetime | None = None, op_id: str | None = None,
                 clock_suspect: bool = False) -> Task:
    """Agree a window with the customer on a task already locked. Does not commit."""
    _ensure_open(task)
    _check_window(start, end, device_time or utcnow())
    _agree(task, _of(task), actor=actor, start=start, end=end, via=via, reason=None, device_time=device_time,
           op_id=op_id, clock_suspect=clock_suspect, event_type="appointment.confirmed")
    return task


def confirm(*, actor: Actor, task_id: str, start: datetime, end: datetime, via: str,
            device_time: datetime | None = None) -> Task:
    """Agree a window (dispatch, or a customer on the confirmation page). Commits."""
    task = confirm_task(actor=actor, task=tasks.get(task_id=task_id, actor=actor, for_update=True), start=start,
                        end=end, via=via, device_time=device_time)
    db.session.commit()
    return task


def reschedule_task(*, actor: Actor, task: Task, start: datetime, end: datetime, reason: str, customer_agreed: bool,
                    via: str, device_time: datetime | None = None, op_id: str | None = None,
                    clock_suspect: bool = False) -> Task:
    """A new window: agreed with the customer it becomes current; otherwise it is only proposed. Does not commit."""
    _ensure_open(task)
    _check_window(start, end, device_time or utcnow())
    appointment = _of(task)
    if customer_agreed:
        _agree(task, appointment, actor=actor, start=start, end=end, via=via, reason=reason,
               device_time=device_time, op_id=op_id, clock_suspect=clock_suspect, event_type="appointment.rescheduled")
        return task
    _add_window(appointment, start=start, end=end, status="proposed", proposed_by_kind=actor.kind,
                proposed_by_id=actor.id, via=via, reason=reason, device_time=device_time, op_id=op_id,
                clock_suspect=clock_suspect)
    _stamp(task, appointment, "appointment.proposed", actor, device_time=device_time, clock_suspect=clock_suspect,
           data={"start": start.isoformat(), "end": end.isoformat(), "via": via, "reason": reason, "op_id": op_id})
    return task


def reschedule(*, actor: Actor, task_id: str, start: datetime, end: datetime, reason: str, customer_agreed: bool,
               via: str, device_time: datetime | None = None) -> Task:
    """Propose, or agree, another window for a task. Commits."""
    task = reschedule_task(actor=actor, task=tasks.get(task_id=task_id, actor=actor, for_update=True), start=start,
                           end=end, reason=reason, customer_agreed=customer_agreed, via=via, device_time=device_time)
    db.session.commit()
    return task


def contact(*, actor: Actor, task: Task, outcome: str, note: str | None, device_time: datetime | None = None,
            op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Keep a contact attempt; a wrong number is an exception dispatch must resolve. Does not commit."""
    appointment = _of(task)
    # Added from the attempt's side: the appointment's attempts are not loaded for it (the dump loads them in bulk).
    db.session.add(ContactAttempt(
        appointment=appointment, courier_id=actor.courier_id, outcome=outcome, note=note, device_time=device_time,
        received_at=utcnow(), op_id=op_id, clock_suspect=clock_suspect))
    if outcome == "wrong_number":
        appointment.exception = "wrong_number"
        task.needs_review = True
        events.emit_exception(events.task_facts(task), "wrong_number", op_id=op_id, at=device_time)
    tasks.record_event(task, "appointment.contact", actor, text=note, device_time=device_time,
                       data={"outcome": outcome, "op_id": op_id, **({"clock_suspect": True} if clock_suspect else {})})
    return task


def late_notice(*, actor: Actor, task: Task, eta: datetime, reason: str, device_time: datetime | None = None,
                op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Warn the customer of lateness; it counts as notice only if given before the window ends. Does not commit."""
    at = device_time or utcnow()
    appointment = _of(task)
    in_time = at < appointment.window_end
    appointment.notice_at, appointment.notice_eta, appointment.notice_reason = at, eta, reason
    appointment.notice_in_time = appointment.notice_in_time or in_time
    _stamp(task, appointment, "appointment.late_notice", actor, device_time=device_time, clock_suspect=clock_suspect,
           data={"eta": eta.isoformat(), "reason": reason, "in_time": in_time, "op_id": op_id})
    return task


def _evidence(task: Task, appointment: Appointment, **more) -> dict:
    """What a violation rests on: the window, the notice, the contact attempts and the ops behind them."""
    return {"task_id": task.id, "waybill_no": task.waybill_no,
            "window": {"start": appointment.window_start.isoformat(), "end": appointment.window_end.isoformat()},
            "notice": ({"at": appointment.notice_at.isoformat(), "in_time": appointment.notice_in_time,
                        "reason": appointment.notice_reason} if appointment.notice_at else None),
            "contact_attempts": [{"outcome": a.outcome, "device_time": a.device_time and a.device_time.isoformat(),
                                  "op_id": a.op_id} for a in appointment.attempts],
            "ops": [op_id for op_id in [i for w in _windows(appointment) for i in (w.op_id, w.agreed_op_id)]
                    + [a.op_id for a in appointment.attempts] if op_id],
            "clock_suspect": appointment.clock_suspect, **more}


def arrived(*, actor: Actor, task: Task, at: datetime, op_id: str | None = None, clock_suspect: bool = False) -> None:
    """The first arrival for the current window decides kept or late; late without timely notice is a violation.

    Called by arrive (the stop.arrive op and the online route). An
    unconfirmed appointment is measured against the window the customer was
    promised, but only an agreed one makes a violation.
    """
    appointment = _of(task)
    if appointment.arrived_at is not None or appointment.status == "kept":
        return
    appointment.arrived_at = at
    agreed = appointment.status in ("confirmed", "missed")
    appointment.status = "late" if at > appointment.window_end else "kept"
    if clock_suspect:
        appointment.clock_suspect = True
    if appointment.status == "late" and agreed and not appointment.notice_in_time and task.courier_id:
        violations.record_auto(courier_id=task.courier_id, code="late_without_notice", task_id=task.id,
                               occurred_at=at, evidence=_evidence(task, appointment, arrived_at=at.isoformat(),
                                                                  arrival_op=op_id))


def arrive(*, actor: Actor, task: Task, lat: float, lon: float,
           at: datetime | None = None, op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Record that the courier reached the stop (a field fact). Does not commit.

    The first arrival sets arrived_at (the courier's own clock, which is when
    it happened); an open assigned task moves to `arrived`, and its appointment
    is kept or late. On a task that is no longer open the fact is kept in the
    history without changing status.
    """
    at = at or utcnow()
    data = {"lat": lat, "lon": lon}
    if task.lat is not None and task.lon is not None:
        data["distance_m"] = round(distance_m(lat, lon, task.lat, task.lon), 1)
    tasks.record_event(task, "arrived", actor, data=data, device_time=at)
    if task.status == "assigned":
        task.status = "arrived"
    if task.status in OPEN_STATUSES and task.arrived_at is None:
        task.arrived_at = at
    if task.status in OPEN_STATUSES:
        arrived(actor=actor, task=task, at=at, op_id=op_id, clock_suspect=clock_suspect)
    return task


def customer_absent(*, actor: Actor, task: Task, waited_minutes: int, device_time: datetime | None = None,
                    op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """The customer is not there: allowed after the minimum wait since arrival and a contact attempt. Does not commit.

    The wait is measured by device time from the arrival; the contact attempt
    must be made at or after the arrival (phoning from the door, not the
    morning's call). The appointment then needs a new window and dispatch is told.
    """
    _ensure_open(task)
    at = device_time or utcnow()
    appointment = _of(task)
    minimum = timedelta(minutes=current_app.config["MIN_WAIT_MINUTES"])
    arrival = appointment.arrived_at
    if arrival is None or at - arrival < minimum or waited_minutes * 60 < minimum.total_seconds():
        raise RuleViolation(f"Wait at least {minimum.seconds // 60} minutes after arriving before reporting the "
                            "customer absent.", code="wait_too_short")
    if not any(a.device_time is not None and a.device_time >= arrival for a in appointment.attempts):
        raise RuleViolation("Try to reach the customer after arriving before reporting them absent.",
                            code="wait_too_short")
    appointment.status = "unconfirmed"
    appointment.needs_new_appointment = True
    appointment.exception = "customer_absent"
    task.needs_review = True
    events.emit_exception(events.task_facts(task), "customer_absent", op_id=op_id, at=device_time)
    _stamp(task, appointment, "appointment.customer_absent", actor, device_time=device_time,
           clock_suspect=clock_suspect, data={"waited_minutes": waited_minutes, "arrived_at": arrival.isoformat(),
                                              "op_id": op_id})
    return task


def current(*, task_id: str, actor: Actor | None = None) -> Appointment:
    """A task's appointment with its window history and contact attempts (a courier sees only their own)."""
    tasks.get(task_id=task_id, actor=actor)
    appointment = db.session.scalar(select(Appointment).where(Appointment.task_id == task_id).options(
        selectinload(Appointment.windows), selectinload(Appointment.attempts)))
    if appointment is None:
        raise NotFound(f"No appointment for task {task_id}.", code="appointment_not_found")
    return appointment


HANDHELD_HISTORY = 10  # windows and contact attempts a handheld holds per task (dispatch sees them all)


def load_for(task_list: list[Task]) -> list[Task]:
    """Give tasks their appointments in one query for the whole list (one already loaded is left as it is)."""
    missing = {t.id: t for t in task_list if "appointment" not in t.__dict__}
    if missing:
        found = {a.task_id: a for a in db.session.scalars(
            select(Appointment).where(Appointment.task_id.in_(list(missing))))}
        for task_id, task in missing.items():
            set_committed_value(task, "appointment", found.get(task_id))
    return task_list


def with_history(task_list: list[Task], newest: int | None = HANDHELD_HISTORY) -> list[Task]:
    """Tasks with their appointments and the newest windows and attempts (all if newest is None), one query each.

    The history is read as plain rows into recent_windows and recent_attempts
    (what AppointmentOut reads), never through the relationships: a task rescheduled
    and phoned all week would otherwise make every push that touches it dump, and
    load, all of it. The rules keep using the relationships.
    """
    appointments = {t.appointment.id: t.appointment for t in load_for(task_list) if t.appointment is not None}
    for model, attribute in ((AppointmentWindow, "recent_windows"), (ContactAttempt, "recent_attempts")):
        by_appointment: dict[int, list] = {appointment_id: [] for appointment_id in appointments}
        if appointments:
            rows = select(*model.__table__.c).where(model.appointment_id.in_(list(appointments)))
            if newest:  # only the newest rows of each appointment leave the database
                rank = func.row_number().over(partition_by=model.appointment_id, order_by=model.id.desc())
                ranked = rows.add_columns(rank.label("rank")).subquery()
                rows = select(*[ranked.c[c.name] for c in model.__table__.c]).where(ranked.c.rank <= newest)
                model_id = ranked.c.id
            else:
                model_id = model.id
            for row in db.session.execute(rows.order_by(model_id)):
                by_appointment[row.appointment_id].append(row)
        for appointment_id, rows in by_appointment.items():
            setattr(appointments[appointment_id], attribute, rows)
    return task_list


def state(appointment: Appointment, now: datetime) -> str:
    """The board's state: the stored status, a confirmed window ending soon (or over) unvisited being at_risk."""
    lead = timedelta(minutes=current_app.config["AT_RISK_LEAD_MINUTES"])
    if appointment.status == "confirmed" and appointment.arrived_at is None and appointment.window_end <= now + lead:
        return "at_risk"
    return appointment.status


def _state_condition(wanted: str, now: datetime):
    """SQL condition on Appointment for one board state (the same rule as state())."""
    at_risk = and_(Appointment.status == "confirmed", Appointment.arrived_at.is_(None),
                   Appointment.window_end <= now + timedelta(minutes=current_app.config["AT_RISK_LEAD_MINUTES"]))
    if wanted == "at_risk":
        return at_risk
    if wanted == "confirmed":
        return and_(Appointment.status == "confirmed",
                    or_(Appointment.arrived_at.is_not(None), ~at_risk))
    return Appointment.status == wanted


def board(*, day: date | None = None, state_filter: str | None = None, courier_id: str | None = None,
          cursor: str | None = None, limit: int = 50) -> dict:
    """Dispatch's board of one depot-local day: each task's appointment, its state, windows and attempts."""
    now = utcnow()
    query = select(Task).join(Appointment, Appointment.task_id == Task.id).where(
        Task.service_date == (day or local_date(now)))
    if courier_id:
        query = query.where(Task.courier_id == courier_id)
    if state_filter:
        query = query.where(_state_condition(state_filter, now))
    page = paginate(query, Task.id, cursor=cursor, limit=limit)
    for task in with_history(page["items"], newest=None):
        task.appointment_state = state(task.appointment, now)
    return page


def sweep_missed(*, now: datetime | None = None) -> dict:
    """Mark confirmed appointments whose window ended unvisited: missed (and a violation), or late after notice.

    Idempotent, and safe on two hosts at once: the tasks are locked in id
    order, each status change is an UPDATE guarded by status = 'confirmed'
    (a second sweep finds nothing left to change), and the violation's unique
    key makes recording it twice insert once. A window that ended after a
    timely late notice leaves the appointment `late`, needing a new window,
    without a violation. Commits.
    """
    now = now or utcnow()
    due = and_(Appointment.status == "confirmed", Appointment.arrived_at.is_(None), Appointment.window_end <= now)
    task_ids = list(db.session.scalars(select(Appointment.task_id).where(due).order_by(Appointment.task_id)))
    counts = {"due": len(task_ids), "missed": 0, "late": 0, "violations": 0}
    if task_ids:
        locked = list(db.session.scalars(select(Task).where(Task.id.in_(task_ids)).order_by(Task.id)
                                         .with_for_update()))
        for task in locked:
            if _sweep_one(task, due):
                counts[task.appointment.status] += 1
                if task.appointment.status == "missed" and task.courier_id and violations.record_auto(
                        courier_id=task.courier_id, code="late_without_notice", task_id=task.id,
                        occurred_at=task.appointment.window_end,
                        evidence=_evidence(task, task.appointment, arrived_at=None, swept_at=now.isoformat())):
                    counts["violations"] += 1
    db.session.commit()
    return counts


def _sweep_one(task: Task, due) -> bool:
    """Move one locked task's appointment past its window if no one else has; True if this call did."""
    changed = 0
    for notice, status in ((False, "missed"), (True, "late")):
        changed += db.session.execute(update(Appointment).where(
            Appointment.task_id == task.id, due, Appointment.notice_in_time.is_(notice)).values(
            status=status, needs_new_appointment=notice, updated_at=utcnow())).rowcount
    if not changed:
        return False
    appointment = db.session.scalar(select(Appointment).where(Appointment.task_id == task.id)
                                    .options(selectinload(Appointment.windows), selectinload(Appointment.attempts))
                                    .execution_options(populate_existing=True))
    set_committed_value(task, "appointment", appointment)
    if appointment.status == "late":
        task.needs_review = True
    else:
        events.emit("appointment.missed", task.id, events.task_facts(
            task, window_start=appointment.window_start.isoformat(), window_end=appointment.window_end.isoformat()))
    tasks.record_event(task, f"appointment.{appointment.status}", SYSTEM,
                       data={"window_end": appointment.window_end.isoformat()})
    return True
