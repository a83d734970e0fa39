"""Appointments: agreeing a window with the customer, contact attempts, late notice, waiting, arrival, the sweep,
dispatch's review.

Every agreed (or promised) window is decided once, on the window itself
(docs/decisions.md, "Issue 21: appointments that cannot be rewritten"): kept or
late by the first counted arrival, missed or not_attempted when it ends
unvisited, late or replaced when another window is agreed before it ends. The
decision is taken before anything replaces the window, and a later window is a
new attempt: nothing undoes an earlier one. Decisions use the device's time
(the courier may have been offline for hours), as the push engine corrected it;
the server's receipt time is stored beside it. A rule that would give credit
by time (kept, a notice in time, a wait long enough) on a clock the engine
flagged (clock_suspect) gives none: the window goes to dispatch's review list.
"""
import functools
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, event, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from schemas.appointments import MAX_AHEAD, MAX_WINDOW
from schemas.vocab import ATTEMPT_FAILURES, OPEN_STATUSES
from server.auth import SYSTEM, Actor
from server.clock import filed_at, local_date, utcnow
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.geo import distance_m
from server.models import Appointment, AppointmentWindow, ContactAttempt, Task
from server.services import events, exception_queue, tasks, violations
from server.services.common import audit, oldest_first, paginate, snapshot


def _of(task: Task) -> Appointment:
    """The task's appointment (a task from before appointments existed gets one now)."""
    if task.appointment is None:
        task.appointment = tasks.new_appointment(task, SYSTEM)
    return task.appointment


def _ensure_open(task: Task, *, reopening: bool = False) -> None:
    """Nobody agrees a time for a task that is finished or cancelled; a failed one takes a new attempt (reopening)."""
    if task.is_finished and not (reopening and task.status == "failed"):
        raise RuleViolation(f"Task is {task.status}; its appointment can no longer change.", code="task_closed")


def _lead() -> timedelta:
    """How long before a window starts the customer must be told (FIELDOPS_NOTICE_LEAD_MINUTES)."""
    return timedelta(minutes=current_app.config["NOTICE_LEAD_MINUTES"])


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


def _open_windows(appointment: Appointment) -> list[AppointmentWindow]:
    """The appointment's open windows (agreed, proposed) and those this transaction touched, in memory.

    A task rescheduled all week has a long history, and agreeing or deciding a
    window must neither load it nor grow with it. The stored windows still open
    (an agreed one, proposals: a few, whatever the history's length) are read
    once per transaction (none if load_open_windows read them for the batch) and
    kept with those the transaction touched: a push applies its batch before its
    one flush, so the database does not know those yet.
    """
    if appointment.id is None:  # an appointment created in this transaction: its windows are in memory
        return appointment.windows
    touched = _touched(appointment)
    loaded = db.session.info.setdefault(_OPEN_LOADED, set())
    if appointment.id not in loaded:
        stored = db.session.scalars(_STORED_OPEN, {
            "of_appointment": appointment.id, "touched_ids": [w.id for w in touched if w.id is not None]})
        touched.extend(w for w in stored if w not in touched)
        loaded.add(appointment.id)
    return sorted(touched, key=lambda w: (w.id is None, w.id or 0))  # stored ones by id, then the new ones


def _current_window(appointment: Appointment) -> AppointmentWindow | None:
    """The window the appointment is about now: the agreed one, else the promised proposal (the task's window)."""
    candidates = _open_windows(appointment)
    agreed = [w for w in candidates if w.status == "agreed"]
    if agreed:
        return agreed[-1]
    return next((w for w in candidates if w.status == "proposed"
                 and (w.start, w.end) == (appointment.window_start, appointment.window_end)), None)


def _settle_windows(appointment: Appointment, start: datetime, end: datetime) -> AppointmentWindow | None:
    """Supersede the agreed window and decline the proposals, but the first one proposing (start, end): returned.

    Only the open windows change; the rest is history.
    """
    windows = _open_windows(appointment)
    agreed = next((w for w in windows if w.status == "proposed" and (w.start, w.end) == (start, end)), None)
    for window in windows:
        if window.status == "agreed":
            window.status = "superseded"
        elif window.status == "proposed" and window is not agreed:
            window.status = "declined"
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


# ---- Deciding a window: one place for the arrival, the sweep, a replacement, a late fact and dispatch's review.

def _decide(task: Task, appointment: Appointment, window: AppointmentWindow | None, outcome: str, *, by: str,
            reason: str | None = None, provisional: str | None = None, current: bool = True) -> None:
    """Write the window's decision (and, for the current window, the appointment's status, which shows it)."""
    if window is not None:
        window.outcome, window.decided_at, window.decided_by = outcome, utcnow(), by
        if outcome == "review":
            window.review_reason, window.provisional_outcome = reason, provisional
            task.needs_review = True
            if window.id is None:
                db.session.flush()  # the queue's entry names the window
            exception_queue.flag(task=task, kind=exception_queue.REVIEW_KIND, occurred_at=window.end, detail={
                "window_id": window.id, "review_reason": reason, "provisional_outcome": provisional})
        if current:
            window.notice_at, window.notice_in_time = appointment.notice_at, appointment.notice_in_time
    if current:
        appointment.status = outcome


def _agreed(window: AppointmentWindow | None) -> bool:
    """Whether the customer agreed the window (a promised one never makes a violation)."""
    return window is not None and window.agreed_by_kind is not None


def _violation(task: Task, appointment: Appointment, window: AppointmentWindow | None, *, occurred_at: datetime,
               **more) -> bool:
    """late_without_notice for the window, once per window (its key names it), if the courier owes it; True if
    this call recorded it."""
    notice = window.notice_in_time if window is not None else appointment.notice_in_time
    if not _agreed(window) or notice or not task.courier_id:
        return False
    if window.id is None:
        db.session.flush()  # the key names the window: a window agreed in this batch is written first (rare)
    return violations.record_auto(courier_id=task.courier_id, code="late_without_notice", task_id=task.id,
                                  key=f"{task.id}:{window.id}", occurred_at=occurred_at,
                                  evidence=_evidence(task, appointment, window, **more),
                                  clock_suspect=bool(appointment.clock_suspect))


def _decide_ended(task: Task, appointment: Appointment, window: AppointmentWindow | None, *, now: datetime,
                  by: str) -> tuple[str, bool]:
    """Decide a window that ended with no counted arrival: the sweep's rule, and a replacement's after the end.

    Promised and never agreed: not_attempted (an exception for dispatch). Agreed:
    late after a notice in time (no violation; a new window is needed), review
    after a notice that would have been in time on a flagged clock, else missed
    with late_without_notice. Returns (outcome, whether a violation was recorded).
    """
    recorded = False
    if not (_agreed(window) if window is not None else appointment.status == "confirmed"):
        outcome = "not_attempted"
        _decide(task, appointment, window, outcome, by=by)
        appointment.exception, appointment.needs_new_appointment, task.needs_review = "not_attempted", True, True
        events.emit_exception(events.task_facts(task), "not_attempted", op_id=None, at=appointment.window_end)
        exception_queue.flag(task=task, kind="not_attempted", occurred_at=appointment.window_end,
                             detail={"window_end": appointment.window_end.isoformat()})
    elif appointment.notice_in_time:
        outcome = "late"
        _decide(task, appointment, window, outcome, by=by)
        appointment.needs_new_appointment, task.needs_review = True, True
    elif appointment.notice_suspect:
        outcome = "review"
        _decide(task, appointment, window, outcome, by=by, reason="clock_suspect", provisional="missed")
    else:
        outcome = "missed"
        _decide(task, appointment, window, outcome, by=by)
        events.emit("appointment.missed", task.id, events.task_facts(
            task, window_start=appointment.window_start.isoformat(), window_end=appointment.window_end.isoformat()))
        recorded = _violation(task, appointment, window, occurred_at=appointment.window_end, arrived_at=None,
                              swept_at=now.isoformat(), decided_by=by)
    tasks.record_event(task, f"appointment.{outcome}", SYSTEM, data={
        "window_end": appointment.window_end.isoformat(), "attempt": appointment.attempt, "decided_by": by})
    return outcome, recorded


# A fact that reaches a window already decided may refine it only to an outcome that weighs the same (an
# arrival after the end turns missed or not_attempted into late); one that would give credit goes to review.
_AGAINST = ("late", "missed", "not_attempted")


def _late_fact(task: Task, appointment: Appointment, window: AppointmentWindow, fact: str, *, by: str,
               reason: str | None = None, **more) -> None:
    """A fact (an arrival, a replacement, a notice) about a window someone decided before it arrived."""
    decided = window.outcome
    current = window is _current_window(appointment)
    if decided == "review":
        if window.reviewed_at is None:
            window.provisional_outcome = fact
    elif decided in ("missed", "not_attempted") and fact == "late" and reason is None:
        _decide(task, appointment, window, "late", by=by, current=current)
        _violation(task, appointment, window, occurred_at=window.end, **more)  # the sweep's, if it recorded one
    elif decided in _AGAINST and fact not in _AGAINST:
        _decide(task, appointment, window, "review", by=by, reason=reason or "late_sync", provisional=fact,
                current=current)


def _decide_replaced(task: Task, appointment: Appointment, window: AppointmentWindow | None, *, at: datetime,
                     actor: Actor) -> None:
    """Decide the current window before another is agreed at `at` (the courier's device time, else now).

    Ended unvisited: as the sweep would. Replaced before its start less the notice
    lead (or by the customer on their page, or by dispatch, before it ended):
    replaced, deciding nothing. Replaced by the courier later than that: late,
    with late_without_notice unless a notice came in time.
    """
    if window is None or appointment.arrived_at is not None:
        return  # no window to decide (an appointment older than windows), or an arrival decided it
    ended = window.end <= at
    if ended:
        fact = None
    elif actor.kind != "courier" or at < window.start - _lead():
        fact = "replaced"
    elif _agreed(window) and not appointment.notice_in_time and appointment.notice_suspect:
        fact = "review"
    else:
        fact = "late"
    if window.outcome is not None:
        if fact is not None and fact != "review":
            _late_fact(task, appointment, window, fact, by="replacement", replaced_at=at.isoformat())
        return
    if ended:
        _decide_ended(task, appointment, window, now=at, by="replacement")
    elif fact == "review":
        _decide(task, appointment, window, "review", by="replacement", reason="clock_suspect", provisional="late")
    else:
        _decide(task, appointment, window, fact, by="replacement")
        if fact == "late":
            _violation(task, appointment, window, occurred_at=at, arrived_at=None, replaced_at=at.isoformat())


# ---- Agreeing a window

def _agree(task: Task, appointment: Appointment, *, actor: Actor, start: datetime, end: datetime, via: str,
           reason: str | None, device_time: datetime | None, op_id: str | None, clock_suspect: bool,
           event_type: str) -> None:
    """Make a window the agreed one, a new attempt when the current one was decided; a failed task opens again.

    The current window is decided first (_decide_replaced), then superseded; the
    appointment's working state (arrival, notice) starts afresh for the new one.
    """
    if appointment.status == "confirmed" and (appointment.window_start, appointment.window_end) == (start, end):
        return  # the same agreement again (a second tap, a second channel): nothing changes
    previous = _current_window(appointment)
    if previous is not None and not (previous.status == "proposed" and (previous.start, previous.end) == (start, end)):
        _decide_replaced(task, appointment, previous, at=device_time or utcnow(), actor=actor)
    if previous is not None and previous.outcome not in (None, "replaced"):
        appointment.attempt += 1
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
    agreed.agreed_op_id, agreed.attempt = op_id, appointment.attempt
    appointment.status = "confirmed"
    appointment.window_start, appointment.window_end = start, end
    appointment.arrived_at = None
    appointment.notice_at = appointment.notice_eta = appointment.notice_reason = None
    appointment.notice_in_time = appointment.notice_suspect = appointment.needs_new_appointment = False
    appointment.exception = None
    task.window_start, task.window_end, task.service_date = start, end, local_date(start)
    reopened = task.status == "failed"
    if reopened:  # the new attempt: the task is open again, to its courier (or to dispatch to assign)
        task.status = "assigned" if task.courier_id else "unassigned"
        task.finished_at = task.failure_reason = None
    _stamp(task, appointment, "appointment.confirmed", actor, device_time=device_time, clock_suspect=clock_suspect,
           data={"start": start.isoformat(), "end": end.isoformat(), "via": via, "op_id": op_id,
                 "attempt": appointment.attempt, **({"reopened": True} if reopened else {})})


def confirm_task(*, actor: Actor, task: Task, start: datetime, end: datetime, via: str,
                 device_time: datetime | None = None, op_id: str | None = None,
                 clock_suspect: bool = False) -> Task:
    """Agree a window with the customer on a task already locked. Does not commit."""
    _ensure_open(task, reopening=True)
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
    _ensure_open(task, reopening=True)
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
    events.emit("appointment.proposed", task.id, events.task_facts(
        task, window_start=start.isoformat(), window_end=end.isoformat(), via=via, op_id=op_id))
    return task


def reschedule(*, actor: Actor, task_id: str, start: datetime, end: datetime, reason: str, customer_agreed: bool,
               via: str, device_time: datetime | None = None) -> Task:
    """Propose, or agree, another window for a task. Commits."""
    task = reschedule_task(actor=actor, task=tasks.get(task_id=task_id, actor=actor, for_update=True), start=start,
                           end=end, reason=reason, customer_agreed=customer_agreed, via=via, device_time=device_time)
    db.session.commit()
    return task


# ---- Field facts: contact attempts, notice, arrival, the customer absent

def _fail_attempt(task: Task, appointment: Appointment, reason: str, *, device_time: datetime | None,
                  op_id: str | None, clock_suspect: bool) -> None:
    """The day's attempt failed: the window keeps why, the task is `failed` with the reason, dispatch is told.

    Nothing is reset: the window keeps its decision (an arrival decided it), and
    a new agreed window is the next attempt.
    """
    window = _current_window(appointment)
    if window is not None and window.failure_reason is None:
        window.failure_reason = reason
    appointment.needs_new_appointment, appointment.exception, task.needs_review = True, reason, True
    if task.status in OPEN_STATUSES:
        task.status, task.failure_reason = "failed", reason
        # Filed no later than received; a flagged clock does not say when: the task left the road when we heard.
        task.finished_at = utcnow() if clock_suspect else filed_at(device_time, utcnow())
    events.emit_exception(events.task_facts(task), reason, op_id=op_id, at=device_time)
    exception_queue.flag(task=task, kind=reason, occurred_at=device_time, op_id=op_id,
                         detail={"attempt_failed": True, "clock_suspect": clock_suspect})


def contact(*, actor: Actor, task: Task, outcome: str, note: str | None, device_time: datetime | None = None,
            op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Keep a contact attempt, in the current attempt. Does not commit.

    A wrong number, an address the courier cannot find and a refusal are
    exceptions dispatch must resolve; the last two, reported after a counted
    arrival at the stop, fail the day's attempt.
    """
    appointment = _of(task)
    # Added from the attempt's side: the appointment's attempts are not loaded for it (the dump loads them in bulk).
    db.session.add(ContactAttempt(
        appointment=appointment, courier_id=actor.courier_id, outcome=outcome, note=note, device_time=device_time,
        received_at=utcnow(), op_id=op_id, clock_suspect=clock_suspect, attempt=appointment.attempt))
    failed = (outcome in ATTEMPT_FAILURES and appointment.arrived_at is not None and task.status in OPEN_STATUSES)
    if failed:
        _fail_attempt(task, appointment, outcome, device_time=device_time, op_id=op_id, clock_suspect=clock_suspect)
    elif outcome in ("wrong_number", *ATTEMPT_FAILURES):
        appointment.exception = outcome
        task.needs_review = True
        events.emit_exception(events.task_facts(task), outcome, op_id=op_id, at=device_time)
        exception_queue.flag(task=task, kind=outcome, occurred_at=device_time, op_id=op_id,
                             detail={"note": note, "clock_suspect": clock_suspect})
    tasks.record_event(task, "appointment.contact", actor, text=note, device_time=device_time,
                       data={"outcome": outcome, "op_id": op_id, "attempt": appointment.attempt,
                             **({"attempt_failed": True} if failed else {}),
                             **({"clock_suspect": True} if clock_suspect else {})})
    return task


def late_notice(*, actor: Actor, task: Task, eta: datetime, reason: str, device_time: datetime | None = None,
                op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Warn the customer of lateness; it counts as notice only NOTICE_LEAD_MINUTES before the window starts, on a
    clock the engine did not flag ("提前给顾客打电话或另约时间"). Does not commit."""
    at = device_time or utcnow()
    appointment = _of(task)
    timely = at <= appointment.window_start - _lead()
    in_time = timely and not clock_suspect
    window = _current_window(appointment)
    already = window.notice_in_time if window is not None else appointment.notice_in_time
    appointment.notice_at, appointment.notice_eta, appointment.notice_reason = at, eta, reason
    appointment.notice_in_time = appointment.notice_in_time or in_time
    appointment.notice_suspect = appointment.notice_suspect or (timely and clock_suspect)
    if window is not None:
        window.notice_at, window.notice_in_time = at, appointment.notice_in_time
        if window.outcome in ("late", "missed") and in_time and not already and _agreed(window):
            # Decided without notice before this notice (made in time) arrived: dispatch decides.
            _decide(task, appointment, window, "review", by="notice", reason="late_sync",
                    provisional=window.outcome)
    _stamp(task, appointment, "appointment.late_notice", actor, device_time=device_time, clock_suspect=clock_suspect,
           data={"eta": eta.isoformat(), "reason": reason, "in_time": in_time, "op_id": op_id})
    events.emit("appointment.late_notice", task.id, events.task_facts(
        task, eta=eta.isoformat(), in_time=in_time, op_id=op_id, occurred_at=at.isoformat()))
    return task


def _evidence(task: Task, appointment: Appointment, window: AppointmentWindow | None, **more) -> dict:
    """What a violation rests on: the window, the notice, the contact attempts and the ops behind them."""
    start, end = (window.start, window.end) if window is not None else (appointment.window_start,
                                                                        appointment.window_end)
    return {"task_id": task.id, "waybill_no": task.waybill_no,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "window_id": window.id if window is not None else None, "attempt": appointment.attempt,
            "notice": ({"at": appointment.notice_at.isoformat(), "in_time": appointment.notice_in_time,
                        "reason": appointment.notice_reason} if appointment.notice_at else None),
            "contact_attempts": [{"outcome": a.outcome, "device_time": a.device_time and a.device_time.isoformat(),
                                  "op_id": a.op_id} for a in appointment.attempts],
            "ops": [op_id for op_id in [i for w in _windows(appointment) for i in (w.op_id, w.agreed_op_id)]
                    + [a.op_id for a in appointment.attempts] if op_id],
            "clock_suspect": appointment.clock_suspect, **more}


def arrived(*, actor: Actor, task: Task, at: datetime, op_id: str | None = None, clock_suspect: bool = False,
            location_known: bool = True) -> None:
    """The first counted arrival for the current window decides it: kept (by its end) or late, with
    late_without_notice on an agreed window without notice in time; review on a flagged clock or at a stop
    without coordinates. Called by arrive (the stop.arrive op and the online route)."""
    appointment = _of(task)
    if appointment.arrived_at is not None:
        return
    appointment.arrived_at = at
    if clock_suspect:
        appointment.clock_suspect = True
    window = _current_window(appointment)
    fact = "kept" if at <= appointment.window_end else "late"
    reason = "clock_suspect" if clock_suspect else None if location_known else "location_unknown"
    if (fact == "late" and reason is None and _agreed(window) and not appointment.notice_in_time
            and appointment.notice_suspect):
        reason = "clock_suspect"  # late, and the notice that would excuse it was given on a flagged clock
    if window is None:
        appointment.status = fact
        return
    window.arrived_at = at
    if window.outcome is not None:
        _late_fact(task, appointment, window, fact, by="arrival", reason=reason, arrived_at=at.isoformat(),
                   arrival_op=op_id)
    elif reason is not None:
        _decide(task, appointment, window, "review", by="arrival", reason=reason, provisional=fact)
    else:
        _decide(task, appointment, window, fact, by="arrival")
        if fact == "late":
            _violation(task, appointment, window, occurred_at=at, arrived_at=at.isoformat(), arrival_op=op_id)


def arrive(*, actor: Actor, task: Task, lat: float, lon: float,
           at: datetime | None = None, op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """Record that the courier reached the stop (a field fact). Does not commit.

    The fact is always kept in the history, with its distance from the stop.
    Further than HANDOVER_MAX_DISTANCE_M it is not an arrival at the stop: nothing
    else changes. Otherwise the first counted arrival sets arrived_at (the
    courier's own clock, which is when it happened); an open assigned task moves
    to `arrived`, and its appointment's window is decided. On a task that is no
    longer open the fact is kept in the history without changing status.
    """
    at = at or utcnow()
    data = {"lat": lat, "lon": lon}
    limit = current_app.config["HANDOVER_MAX_DISTANCE_M"]
    location_known = task.lat is not None and task.lon is not None
    if location_known:
        data["distance_m"] = round(distance_m(lat, lon, task.lat, task.lon), 1)
        if data["distance_m"] > limit:
            data.update(counted=False, limit_m=limit)
    else:
        data["location_unknown"] = True
    if clock_suspect:
        data["clock_suspect"] = True
    tasks.record_event(task, "arrived", actor, data=data, device_time=at)
    if data.get("counted") is False:
        return task
    if task.status == "assigned":
        task.status = "arrived"
    if task.status in OPEN_STATUSES and task.arrived_at is None:
        task.arrived_at = at
    if task.status in OPEN_STATUSES:
        arrived(actor=actor, task=task, at=at, op_id=op_id, clock_suspect=clock_suspect,
                location_known=location_known)
    return task


def customer_absent(*, actor: Actor, task: Task, waited_minutes: int, device_time: datetime | None = None,
                    op_id: str | None = None, clock_suspect: bool = False) -> Task:
    """The customer is not there: allowed after the minimum wait since a counted arrival and a contact attempt;
    the day's attempt fails. Does not commit.

    The wait is measured by device time from the arrival; the contact attempt
    must be made at or after the arrival (phoning from the door, not the
    morning's call). A wait the device's own times show too short is refused.
    On a flagged clock the wait is not taken as long enough: the attempt still
    fails (the fact stands), and the window goes to dispatch's review.
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
    window = _current_window(appointment)
    if clock_suspect and window is not None and window.outcome != "review":
        _decide(task, appointment, window, "review", by="wait", reason="clock_suspect", provisional=window.outcome)
    _fail_attempt(task, appointment, "customer_absent", device_time=device_time, op_id=op_id,
                  clock_suspect=clock_suspect)
    _stamp(task, appointment, "appointment.customer_absent", actor, device_time=device_time,
           clock_suspect=clock_suspect, data={"waited_minutes": waited_minutes, "arrived_at": arrival.isoformat(),
                                              "op_id": op_id, "attempt": appointment.attempt,
                                              "task_status": task.status})
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


_APPOINTMENTS_OF = select(Appointment).where(Appointment.task_id.in_(bindparam("task_ids", expanding=True)))


def load_for(task_list: list[Task]) -> list[Task]:
    """Give tasks their appointments in one query for the whole list (one already loaded is left as it is)."""
    missing = {t.id: t for t in task_list if "appointment" not in t.__dict__}
    if missing:
        found = {a.task_id: a for a in db.session.scalars(_APPOINTMENTS_OF, {"task_ids": list(missing)})}
        for task_id, task in missing.items():
            set_committed_value(task, "appointment", found.get(task_id))
    return task_list


@functools.lru_cache(maxsize=8)
def _history_statement(model, newest: int | None):
    """The newest rows (all if newest is None) of some appointments' windows or attempts, oldest first.

    Built once per (model, newest): building this ranked subquery cost more than running it.
    """
    rows = select(*model.__table__.c).where(model.appointment_id.in_(bindparam("of_appointments", expanding=True)))
    if not newest:
        return rows.order_by(model.id)
    # only the newest rows of each appointment leave the database
    rank = func.row_number().over(partition_by=model.appointment_id, order_by=model.id.desc())
    ranked = rows.add_columns(rank.label("rank")).subquery()
    return (select(*[ranked.c[c.name] for c in model.__table__.c]).where(ranked.c.rank <= newest)
            .order_by(ranked.c.id))


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
            for row in db.session.execute(_history_statement(model, newest), {"of_appointments": list(appointments)}):
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
    """Decide the windows that ended unvisited: agreed ones missed (and a violation), or late after notice, or
    under review; promised ones never agreed not_attempted (an exception for dispatch). Commits.

    Idempotent, and safe on two hosts at once: the tasks are locked in id order
    and each appointment read again under the lock (a second sweep finds it
    decided), and the violation's unique key makes recording it twice insert
    once. A window of a task cancelled before the window ended is replaced: no
    one was to come. Promised windows are swept only on open tasks.
    """
    now = now or utcnow()
    candidates = select(Appointment.task_id).join(Task, Task.id == Appointment.task_id).where(
        Appointment.arrived_at.is_(None), Appointment.window_end <= now,
        or_(Appointment.status == "confirmed",
            and_(Appointment.status == "unconfirmed", Task.status.in_(OPEN_STATUSES)))).order_by(Appointment.task_id)
    task_ids = list(db.session.scalars(candidates))
    counts = {"due": len(task_ids), "missed": 0, "late": 0, "violations": 0, "not_attempted": 0, "review": 0,
              "replaced": 0}
    if task_ids:
        locked = list(db.session.scalars(select(Task).where(Task.id.in_(task_ids)).order_by(Task.id)
                                         .with_for_update()))
        for task in locked:
            appointment = db.session.scalar(select(Appointment).where(Appointment.task_id == task.id).options(
                selectinload(Appointment.attempts)).execution_options(populate_existing=True))
            set_committed_value(task, "appointment", appointment)
            if not _sweep_due(task, appointment, now):
                continue
            window = _current_window(appointment)
            if task.status == "cancelled" and task.finished_at is not None and task.finished_at < appointment.window_end:
                _decide(task, appointment, window, "replaced", by="sweep")
                tasks.record_event(task, "appointment.replaced", SYSTEM, data={
                    "window_end": appointment.window_end.isoformat(), "attempt": appointment.attempt,
                    "decided_by": "sweep"})
                outcome, recorded = "replaced", False
            else:
                outcome, recorded = _decide_ended(task, appointment, window, now=now, by="sweep")
            counts[outcome] += 1
            counts["violations"] += recorded
    db.session.commit()
    return counts


def _sweep_due(task: Task, appointment: Appointment | None, now: datetime) -> bool:
    """Whether the sweep still has this window to decide, read again under the task's lock."""
    return (appointment is not None and appointment.arrived_at is None and appointment.window_end <= now
            and (appointment.status == "confirmed"
                 or (appointment.status == "unconfirmed" and task.status in OPEN_STATUSES)))


def attempts_between(*, courier_id: str, start: datetime, end: datetime) -> list[ContactAttempt]:
    """A courier's contact attempts made in [start, end) (device time, else when received), oldest first, each
    with its task id (task_id)."""
    made = func.coalesce(ContactAttempt.device_time, ContactAttempt.received_at)
    rows = db.session.execute(select(ContactAttempt, Appointment.task_id).join(
        Appointment, Appointment.id == ContactAttempt.appointment_id).where(
        ContactAttempt.courier_id == courier_id, made >= start, made < end).order_by(made, ContactAttempt.id)).all()
    for attempt, task_id in rows:
        attempt.task_id = task_id
    return [attempt for attempt, _ in rows]


# ---- Dispatch's review list: decisions the facts could not make alone

def review_list(*, cursor: int | None = None, limit: int = 50) -> dict:
    """Windows under review, oldest first, with their tasks, a page at a time (cursor: the last window id seen)."""
    query = select(AppointmentWindow).where(AppointmentWindow.outcome == "review").options(
        joinedload(AppointmentWindow.appointment).joinedload(Appointment.task))
    return oldest_first(query, AppointmentWindow.id, cursor=cursor, limit=limit)


def decide_review(*, actor: Actor, task_id: str, outcome: str, note: str, window_id: int | None = None,
                  notice_in_time: bool = False) -> AppointmentWindow:
    """Dispatch decides a window under review: kept, late or missed, with a note. Commits.

    The oldest window under review of the task, or the one named. Late or missed
    on an agreed window records late_without_notice unless a notice came in time
    (or dispatch finds the one given on a flagged clock was: notice_in_time).
    """
    task = tasks.get(task_id=task_id, for_update=True)
    query = (select(AppointmentWindow).join(Appointment, Appointment.id == AppointmentWindow.appointment_id)
             .where(Appointment.task_id == task.id, AppointmentWindow.outcome == "review"))
    if window_id is not None:
        query = query.where(AppointmentWindow.id == window_id)
    window = db.session.scalar(query.order_by(AppointmentWindow.id).limit(1))
    if window is None and window_id is not None:
        raise NotFound(f"Task {task_id} has no window {window_id} under review.", code="review_not_found",
                       fields={"window_id": ["Not a window of this task under review."]})
    if window is None:
        raise Conflict(f"Task {task_id} has no window under review.", code="nothing_to_review")
    appointment = window.appointment
    before = snapshot(window)
    current = window is _current_window(appointment)
    notice = window.notice_in_time or notice_in_time
    _decide(task, appointment, window, outcome, by="dispatch", current=current)
    window.notice_in_time = notice
    if current:
        appointment.notice_in_time = notice
    window.reviewed_by_id, window.reviewed_at, window.review_note = actor.id, utcnow(), note
    if outcome != "kept":
        _violation(task, appointment, window, occurred_at=window.arrived_at if outcome == "late" and window.arrived_at
                   else window.end, reviewed_by=actor.id, review_note=note, review_reason=window.review_reason)
    else:  # the sweep's late_without_notice for this window, if it recorded one, goes with the review's word
        violations.void_by_review(code="late_without_notice", key=f"{task.id}:{window.id}", task_id=task.id,
                                  window_id=window.id, reason=f"Dispatch's review of window {window.id} of task "
                                  f"{task.id} found it kept: {note}")
    tasks.record_event(task, "appointment.reviewed", actor, text=note, data={
        "window_id": window.id, "outcome": outcome, "review_reason": window.review_reason,
        "provisional_outcome": window.provisional_outcome, "attempt": window.attempt})
    audit(actor, "appointment.review", window, before)
    exception_queue.resolve_review(actor=actor, task_id=task.id, window_id=window.id, note=note)
    db.session.commit()
    return window
