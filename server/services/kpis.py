"""Service-quality KPIs (docs/kpis.md): each figure a numerator over a denominator, aggregated in the database.

A figure is declared once (Figure): which rows it is about (`base`), which
of them count (`counted`), or what is summed instead of counting, and, where
a fact may be missing, which rows of the denominator are `unknown` (counted
apart, never as a pass). The report turns every figure into SUM(CASE ...)
columns of one GROUP BY query per source (tasks, complaints, field_events, claims); the task list
behind a figure reads the very same conditions. Nothing loads tasks into
Python: only the grouped sums come back.

Task figures belong to the depot-local service date of their task; promise
figures (source `promises`) to the depot-local day their promise falls on (a
task without a promise: its service date); complaint figures to the
depot-local day the complaint was received; field events (the handhelds' ops
and upstream scans) to the depot-local day they happened on (their effective
time); claim figures to the depot-local day the claim was opened; leak incidents to the depot-local day they
were discovered.
"""
import base64
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import (BigInteger, Date, Float, String, and_, bindparam, case, cast, exists, false, func,
                        literal_column, or_, select, text, true, union_all)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from schemas.limits import EARLIEST_TIME, LATEST_TIME
from schemas.vocab import (CLAIM_CLOSED, EXCEPTION_CONTACTS, EXCEPTION_FAILURES, EXCEPTION_WINDOW_OUTCOMES, LEAK_COUNTED,
                           LEAK_UNDECIDED, ON_TIME_DECIDED, ON_TIME_KEPT, ORDER_REFUSALS, UNAUTHORISED_DROPS)
from server.clock import UTCDateTime, local_day_bounds, local_zone, utcnow
from server.errors import NotFound, ValidationFailed
from server.extensions import db
from server.models import (Appointment, AppointmentWindow, Claim, Complaint, ComplaintContact, ComplaintReopening,
                           ContactAttempt, Courier, Handover, HandoverStep, LeakIncident, OpLog, Parcel, ParcelScan,
                           Rating, Task, TaskAssignment, TaskEvent, TrainingAttendance, TrainingCourse,
                           TrainingSession)
from server.services import scans
from server.services.common import decode_cursor, encode_cursor

NO_GROUP = "-"  # the group of rows without a courier (or a courier without a depot)
# Inline constants, not bound parameters: PostgreSQL matches a GROUP BY expression to its SELECT
# column only when both are written the same, and two bound parameters are two different things.
_NO_GROUP_SQL, _ALL_SQL = literal_column("'-'"), literal_column("'all'")
_NOW = bindparam("now", type_=UTCDateTime())
# FIELDOPS_NOTICE_LEAD_MINUTES in seconds, bound per query: "in advance" is this long before a window starts.
_LEAD_S = bindparam("lead_s", 1800.0, type_=Float())  # (a default only for EXPLAIN)
# FIELDOPS_TRACKING_TIMELY_MINUTES in seconds: a field event reaching the server this soon after it happened is timely.
_TIMELY_S = bindparam("timely_s", 1800.0, type_=Float())
# The courier's current assignment: a handover completes the task without ending it.
_held = aliased(TaskAssignment, name="held")


def _sql_list(values) -> list:
    """Constants as inline SQL strings (a partial index's condition must be read in the query as it is written)."""
    return [literal_column("'" + value + "'") for value in values]


def _refusals():
    """Per task with any: whether a handover step was refused for order, and whether a drop was refused.

    Read from the refused steps alone (ix_handover_steps_rejected, a partial index):
    one row per task that has such a refusal, joined to the report's tasks once.
    """
    for_order = HandoverStep.code.in_(_sql_list(ORDER_REFUSALS))
    drop = and_(HandoverStep.kind == literal_column("'deliver_alternate'"),
                HandoverStep.code.in_(_sql_list(UNAUTHORISED_DROPS)))
    return (select(HandoverStep.task_id.label("task_id"),
                   func.max(case((for_order, literal_column("1")), else_=literal_column("0"))).label("out_of_order"),
                   func.max(case((drop, literal_column("1")), else_=literal_column("0"))).label("unauthorised_drop"))
            .where(HandoverStep.outcome == literal_column("'rejected'"), or_(for_order, drop))
            .group_by(HandoverStep.task_id).subquery("refused"))


_refused = _refusals()


def _ints(condition: ColumnElement) -> ColumnElement:
    """SUM of 1 where the condition holds (0 otherwise)."""
    return func.sum(case((condition, literal_column("1")), else_=literal_column("0")))


def _window_sums():
    """Per task with any decided window: on-time's windows and kept ones, and the exceptions its windows are, each
    with whether the customer was told before it (docs/kpis.md, "On time", "异常情况告知率").

    A window's lateness, miss or non-attempt is told when a notice came in time for it (`notice_in_time`: a late
    notice FIELDOPS_NOTICE_LEAD_MINUTES before its start, on a clock the engine did not flag), or a contact attempt
    of the same attempt reached the customer at least the lead before its start (on a trusted clock). A window
    under review counts by its provisional outcome, and a suspect clock gets no credit. A window whose attempt
    failed `customer_absent` is an exception too, timed by the `stop.customer_absent` it was reported by (the first
    at or after the window's counted arrival): told when a contact of that attempt reached the customer before it.
    """
    window, appointment = AppointmentWindow, Appointment
    outcome = case((window.outcome == literal_column("'review'"), window.provisional_outcome), else_=window.outcome)
    reached = ContactAttempt

    def reached_before(at) -> ColumnElement:
        return exists().where(reached.appointment_id == window.appointment_id, reached.attempt == window.attempt,
                              reached.outcome == literal_column("'reached'"), reached.clock_suspect.is_(False),
                              func.coalesce(reached.device_time, reached.received_at).is_not(None), at)

    in_advance = reached_before(epoch(func.coalesce(reached.device_time, reached.received_at))
                                <= epoch(window.start) - _LEAD_S)
    failed_at = (select(func.min(TaskEvent.device_time)).where(
        TaskEvent.task_id == appointment.task_id, TaskEvent.kind == literal_column("'appointment.customer_absent'"),
        TaskEvent.device_time >= func.coalesce(window.arrived_at, window.start)).scalar_subquery())
    absent = window.failure_reason.in_(_sql_list(EXCEPTION_FAILURES))
    late_or_missed = outcome.in_(_sql_list(EXCEPTION_WINDOW_OUTCOMES))
    told_late = and_(late_or_missed, or_(and_(window.notice_in_time.is_(True), window.outcome != literal_column(
        "'review'")), in_advance))
    told_absent = and_(absent, reached_before(func.coalesce(reached.device_time, reached.received_at) < failed_at))
    return (select(appointment.task_id.label("task_id"),
                   _ints(window.outcome.in_(_sql_list(ON_TIME_DECIDED))).label("on_time"),
                   _ints(window.outcome == literal_column(f"'{ON_TIME_KEPT}'")).label("kept"),
                   (_ints(late_or_missed) + _ints(absent)).label("exceptions"),
                   (_ints(told_late) + _ints(told_absent)).label("told"))
            .select_from(window).join(appointment, appointment.id == window.appointment_id)
            .where(window.outcome.is_not(None)).group_by(appointment.task_id).subquery("windows"))


def _contact_exceptions():
    """Per task with any: the attempts in which the courier reported a wrong number or an address they cannot find
    (each outcome once per attempt, timed by its first report), and of those, the ones whose customer an earlier
    contact attempt of the same attempt had reached (on a trusted clock)."""
    first = (select(Appointment.task_id.label("task_id"), ContactAttempt.appointment_id.label("appointment_id"),
                    ContactAttempt.attempt.label("attempt"),
                    func.min(func.coalesce(ContactAttempt.device_time, ContactAttempt.received_at)).label("at"))
             .join(Appointment, Appointment.id == ContactAttempt.appointment_id)
             .where(ContactAttempt.outcome.in_(_sql_list(EXCEPTION_CONTACTS)))
             .group_by(Appointment.task_id, ContactAttempt.appointment_id, ContactAttempt.attempt,
                       ContactAttempt.outcome).subquery("contact_exception"))
    reached = aliased(ContactAttempt, name="reached")
    told = exists().where(reached.appointment_id == first.c.appointment_id, reached.attempt == first.c.attempt,
                          reached.outcome == literal_column("'reached'"), reached.clock_suspect.is_(False),
                          func.coalesce(reached.device_time, reached.received_at) < first.c.at)
    return (select(first.c.task_id.label("task_id"), func.count().label("exceptions"), _ints(told).label("told"))
            .group_by(first.c.task_id).subquery("contacts"))
# SQLite's row id of a task (tasks has a text primary key, so its rows are stored by an implicit rowid).
_ROWID = literal_column("tasks.rowid")
# The days a report may cover: those of the times the service accepts at all.
FIRST_DAY, LAST_DAY = EARLIEST_TIME.date(), LATEST_TIME.date() - timedelta(days=1)
# What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class epoch(FunctionElement):
    """Seconds since 1970 of a stored time, on either engine."""

    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    """PostgreSQL: EXTRACT(EPOCH ...)."""
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    """SQLite stores UTC text: julianday in seconds."""
    return f"(julianday({compiler.process(element.clauses, **kw)}) * 86400.0)"


def seconds_between(start, end) -> ColumnElement:
    """Whole seconds from start to end (rounded per row, so sums are exact integers on both engines)."""
    return cast(func.round(epoch(end) - epoch(start)), BigInteger)




class padded_id(FunctionElement):
    """padded_id(prefix, id): '<prefix>-' and the integer id in 26 digits, a text id that sorts as the integers do
    (and pages like a task id, services.common.decode_cursor)."""

    type = String()
    inherit_cache = True
    name = "padded_id"


@compiles(padded_id, "postgresql")
def _padded_id_postgresql(element, compiler, **kw):
    """PostgreSQL: prefix || '-' || lpad(id::text, 26, '0')."""
    prefix, column = (compiler.process(c, **kw) for c in element.clauses)
    return f"({prefix} || '-' || lpad(CAST({column} AS TEXT), 26, '0'))"


@compiles(padded_id, "sqlite")
def _padded_id_sqlite(element, compiler, **kw):
    """SQLite: printf."""
    prefix, column = (compiler.process(c, **kw) for c in element.clauses)
    return f"printf('%s-%026d', {prefix}, {column})"


_REPEAT_S = literal_column(str(int(scans.DEDUP_WINDOW.total_seconds())))
_FIRST, _LAST = bindparam("first", type_=UTCDateTime()), bindparam("last", type_=UTCDateTime())


def _field_events():
    """Every field event of the report's days, one row each (docs/kpis.md, "Tracking"): a handheld's op (in
    sequence, not a resend) and an upstream scan. A handheld's parcel.scan is its op; the handover's scans are
    its ops' doing. An event whose clock could not be trusted (suspect) has a time the server guessed: often its
    receipt, which would make it timely by construction. An event is of the day it happened (its effective time),
    which is never after its receipt:
    received_at >= first lets the receipt index skip the log before the days."""
    at = func.coalesce(OpLog.effective_time, OpLog.received_at)
    flawed = OpLog.status.in_(_sql_list(("rejected", "conflict")))
    # A handheld's parcel.scan that repeats an earlier handheld scan of its parcel's event within
    # scans.DEDUP_WINDOW tells nothing new: the journey folds it in, and counted it would dilute a late queue with
    # timely padding (docs/kpis.md, "Tracking").
    scan, earlier = aliased(ParcelScan), aliased(ParcelScan)
    repeat = exists().where(
        scan.task_id == OpLog.entity_id, scan.op_id == OpLog.op_id,
        exists().where(earlier.task_id == scan.task_id, earlier.parcel_no == scan.parcel_no,
                       earlier.event == scan.event, earlier.source == scan.source, earlier.id != scan.id,
                       earlier.effective_time <= scan.effective_time,
                       epoch(earlier.effective_time) >= epoch(scan.effective_time) - _REPEAT_S,
                       or_(earlier.effective_time < scan.effective_time, earlier.id < scan.id)))
    ops = (select(padded_id(literal_column("'o'"), OpLog.id).label("id"), OpLog.courier_id.label("courier_id"),
                  at.label("at"), OpLog.received_at.label("received_at"),
                  case((flawed, literal_column("0")), else_=literal_column("1")).label("accurate"),
                  case((or_(OpLog.clock_suspect.is_(True), OpLog.clock_skew_s.is_(None)), literal_column("1")),
                       else_=literal_column("0")).label("suspect"))
           .where(OpLog.in_sequence.is_(True), OpLog.status != literal_column("'duplicate'"),
                  OpLog.received_at >= _FIRST, at >= _FIRST, at < _LAST,
                  or_(OpLog.type != literal_column("'parcel.scan'"), ~repeat)))
    scans = (select(padded_id(literal_column("'s'"), ParcelScan.id).label("id"),
                    ParcelScan.courier_id.label("courier_id"), ParcelScan.effective_time.label("at"),
                    ParcelScan.received_at.label("received_at"), literal_column("1").label("accurate"),
                    case((ParcelScan.clock_suspect.is_(True), literal_column("1")), else_=literal_column("0"))
                    .label("suspect"))
             .where(ParcelScan.source == literal_column("'upstream'"), ParcelScan.received_at >= _FIRST,
                    ParcelScan.effective_time >= _FIRST, ParcelScan.effective_time < _LAST))
    return union_all(ops, scans).subquery("field_events")


# The last second of a report's period (SQLite's date() rounds to milliseconds): the day of the training coverage.
_END_AT = bindparam("end_at", type_=UTCDateTime())


def _training():
    """The training figures' rows (docs/kpis.md, "Training"), one per courier and figure: a courier who attended a
    pre-job session held in the period (`pre_job`; `passed`: at any of them, on the day of the first), and every
    active courier created by the period's end (`coverage`; `covered`: holding then a valid pass of an active
    periodic course, on the period's last day)."""
    pre_job = (select(TrainingAttendance.courier_id.label("id"), TrainingAttendance.courier_id.label("courier_id"),
                      func.min(TrainingSession.held_at).label("at"), literal_column("'pre_job'").label("kind"),
                      func.max(case((TrainingAttendance.passed.is_(True), literal_column("1")),
                                    else_=literal_column("0"))).label("passed"))
               .join(TrainingSession, TrainingSession.id == TrainingAttendance.session_id)
               .join(TrainingCourse, TrainingCourse.id == TrainingSession.course_id)
               .where(TrainingCourse.kind == literal_column("'pre_job'"), TrainingAttendance.attended.is_(True),
                      TrainingSession.held_at >= _FIRST, TrainingSession.held_at < _LAST)
               .group_by(TrainingAttendance.courier_id))
    valid = (exists().where(TrainingAttendance.courier_id == Courier.id, TrainingAttendance.passed.is_(True),
                            TrainingSession.id == TrainingAttendance.session_id,
                            TrainingCourse.id == TrainingSession.course_id,
                            TrainingCourse.kind == literal_column("'periodic'"), TrainingCourse.active.is_(True),
                            TrainingSession.held_at < _LAST, TrainingAttendance.valid_until >= _LAST))
    coverage = (select(Courier.id.label("id"), Courier.id.label("courier_id"), _END_AT.label("at"),
                       literal_column("'coverage'").label("kind"),
                       case((valid, literal_column("1")), else_=literal_column("0")).label("passed"))
                .where(Courier.active.is_(True), Courier.created_at < _LAST))
    return union_all(pre_job, coverage).subquery("training")


def _parcels_handled() -> ColumnElement:
    """The task's parcels handled (issue 22's loss rate): scanned for this task, or handed over with it."""
    scanned = exists().where(ParcelScan.task_id == Parcel.task_id, ParcelScan.parcel_no == Parcel.parcel_no)
    return (select(func.count()).select_from(Parcel)
            .where(Parcel.task_id == Task.id, or_(Handover.outcome == literal_column("'delivered'"), scanned))
            .scalar_subquery())


def _parcels_lost() -> ColumnElement:
    """The task's parcels dispatch confirmed lost."""
    return (select(func.count()).select_from(Parcel)
            .where(Parcel.task_id == Task.id, Parcel.lost_state == literal_column("'lost'")).scalar_subquery())


_windows = _window_sums()
_contacts = _contact_exceptions()
_events = _field_events()
_trained = _training()


@dataclass(frozen=True)
class Figure:
    """A KPI: the rows it is about, which of them count, or what is summed over them instead."""

    name: str
    source: str  # SOURCES: tasks | promises (tasks by the day of their promise) | complaints | field_events | claims
    # | leaks | training (couriers)
    unit: str  # ratio | seconds | score | count (the value is the numerator: a number of events, never a rate)
    description: str
    base: Callable[[], ColumnElement]
    counted: Callable[[], ColumnElement]  # the numerator's rows (and the task list's `counted`)
    numerator: Callable[[], ColumnElement] | None = None  # summed over base rows instead of counting `counted`
    denominator: Callable[[], ColumnElement] | None = None  # summed over base rows instead of counting them
    unknown: Callable[[], ColumnElement] | None = None  # base rows a missing fact keeps from passing, counted apart
    weight: Callable[[], ColumnElement] | None = None  # what a row counts for (its parcels) instead of 1


def _on_time(pickup: bool) -> Callable[[], ColumnElement]:
    """Tasks, deliveries (and returns) or pickups, with a window on-time counts (ON_TIME_DECIDED)."""
    kind = Task.kind == "pickup" if pickup else Task.kind != "pickup"
    return lambda: and_(kind, func.coalesce(_windows.c.on_time, 0) > 0)


def _all_kept() -> ColumnElement:
    """Every window of the task that on-time counts was kept (the task list's `counted`)."""
    return func.coalesce(_windows.c.kept, 0) == func.coalesce(_windows.c.on_time, 0)


def _exceptions() -> ColumnElement:
    """The exceptions that stopped the task's delivery as planned (its windows, failures, contact outcomes)."""
    return func.coalesce(_windows.c.exceptions, 0) + func.coalesce(_contacts.c.exceptions, 0)


def _told() -> ColumnElement:
    """Of the task's exceptions, those the customer was told of before they happened."""
    return func.coalesce(_windows.c.told, 0) + func.coalesce(_contacts.c.told, 0)


def _signed_off() -> ColumnElement:
    """A task finished by its handover, delivered or collected, with the assignment it was done under."""
    return and_(Handover.outcome.in_(("delivered", "collected")), Task.status == Handover.outcome,
                Handover.completed_at.is_not(None), _held.assigned_at.is_not(None))


def _out_of_order() -> ColumnElement:
    """A step of the task's handover was refused for order (ORDER_REFUSALS)."""
    return func.coalesce(_refused.c.out_of_order, 0) == 1


def _dropped_without_leave() -> ColumnElement:
    """The courier reported leaving the parcel elsewhere and the drop was refused (UNAUTHORISED_DROPS)."""
    return func.coalesce(_refused.c.unauthorised_drop, 0) == 1


def _handover_attempted() -> ColumnElement:
    """A delivery's handover attempted at the door: begun (a recipient check, an inspection, a payment or an end)
    and not left elsewhere with consent, or any handover whose step was refused for order."""
    begun = or_(Handover.outcome.is_not(None), Handover.recipient_verified.is_(True), Handover.inspection.is_not(None),
                Handover.paid_amount.is_not(None))
    return and_(Task.kind != "pickup", or_(_out_of_order(), and_(Handover.alternate_place.is_(None), begun)))


def _procedure_followed() -> ColumnElement:
    """Recipient checked; signed after an accepted inspection (the COD paid, the gift told), or refused after the
    inspection; no step refused for order."""
    signed_off = and_(Handover.outcome == "delivered", Handover.signed.is_(True), Handover.inspection == "accepted",
                      or_(Task.gift_description.is_(None), Handover.gift_disclosed.is_(True)))
    refused_after_inspection = and_(Handover.outcome == "refused", Handover.inspection.is_not(None))
    return and_(~_out_of_order(), Handover.alternate_place.is_(None), Handover.recipient_verified.is_(True),
                or_(signed_off, refused_after_inspection))


def _delivery_made() -> ColumnElement:
    """A delivery handed over (at the door or at an alternate place), or a parcel left elsewhere without leave."""
    return and_(Task.kind != "pickup", or_(Handover.outcome == "delivered", _dropped_without_leave()))


def _at_address_or_with_consent() -> ColumnElement:
    """Signed for within reach of the stop's known coordinates, or left at an alternate place the customer's
    recorded consent allowed (only an accepted pod.deliver_alternate sets alternate_place); no drop without leave."""
    at_door = and_(Handover.alternate_place.is_(None), Handover.distance_m.is_not(None),
                   Handover.not_at_address.is_(False))
    return and_(Handover.outcome == "delivered", ~_dropped_without_leave(),
                or_(at_door, Handover.alternate_place.is_not(None)))


def _place_unknown() -> ColumnElement:
    """Signed for at the door of a stop whose distance could not be measured (no coordinates): not a pass."""
    return and_(Handover.outcome == "delivered", ~_dropped_without_leave(), Handover.alternate_place.is_(None),
                Handover.distance_m.is_(None))


def _parcels() -> ColumnElement:
    """The task's parcels (a figure the standard counts in parcels weighs each task by them)."""
    return select(func.count()).select_from(Parcel).where(Parcel.task_id == Task.id).scalar_subquery()


def _promise_due() -> ColumnElement:
    """A delivery whose promise has been decided: signed for, or its promised time passed undelivered; refused ones
    and ones cancelled before their promise are out (no promise was failed); one cancelled after it had already
    failed it (cancelling must not take a failure away). One without a promise is in, as unknown."""
    cancelled = Task.status == literal_column("'cancelled'")
    return and_(Task.kind == literal_column("'delivery'"), Task.status != literal_column("'refused'"),
                or_(~cancelled, Task.finished_at > Task.promised_at),
                or_(Task.promised_at.is_(None), Task.status == literal_column("'delivered'"),
                    Task.promised_at <= _NOW))


def _signoff_clock_suspect() -> ColumnElement:
    """The step that completed the handover was dated by a suspect clock: its time is the server's guess (held to
    the device's previous op, or its receipt), no evidence of when the parcel was signed for."""
    return exists().where(HandoverStep.task_id == Task.id, HandoverStep.op_id == Handover.completed_op_id,
                          HandoverStep.outcome == literal_column("'accepted'"), HandoverStep.clock_suspect.is_(True))


def _signed_by_promise() -> ColumnElement:
    """Signed for (the handover's device time) by the promised time, under a clock that could be trusted."""
    return and_(Task.status == literal_column("'delivered'"), Handover.outcome == literal_column("'delivered'"),
                Handover.completed_at <= Task.promised_at, ~_signoff_clock_suspect())


def _promise_unknown() -> ColumnElement:
    """A delivery without a promise, or signed for under a suspect clock: whether it kept its promise is not known."""
    return or_(Task.promised_at.is_(None), and_(Handover.outcome == literal_column("'delivered'"),
                                                _signoff_clock_suspect()))


def _collected_and_signed() -> ColumnElement:
    """A delivery with its collection time, signed for at the door (or where the customer consented)."""
    return and_(Task.kind == literal_column("'delivery'"), Task.status == literal_column("'delivered'"),
                Handover.outcome == literal_column("'delivered'"), Handover.completed_at.is_not(None),
                Task.collected_at.is_not(None), ~_signoff_clock_suspect())


def _resolved_at_first_contact() -> ColumnElement:
    """Never reopened, and exactly one contact with the customer (the first response) by its resolution."""
    contacts = (select(func.count()).select_from(ComplaintContact)
                .where(ComplaintContact.complaint_id == Complaint.id,
                       ComplaintContact.contacted_at <= Complaint.resolved_at).scalar_subquery())
    return and_(~exists().where(ComplaintReopening.complaint_id == Complaint.id), contacts == 1)


def _complaint_decided() -> ColumnElement:
    """A complaint whose first response is in, or whose time for it is up."""
    return or_(Complaint.first_response_at.is_not(None), Complaint.response_due_at < _NOW)


def _claim_done_or_overdue() -> ColumnElement:
    """A claim paid or rejected, or one whose next step is past due."""
    return or_(Claim.status.in_(_sql_list(CLAIM_CLOSED)), Claim.due_at < _NOW)


def _claimed_before() -> ColumnElement:
    """The same parcel's claim was assessed before and rejected: this payment is not as first assessed (a wrong
    assessment rejected and claimed again would otherwise read as accurate)."""
    before = aliased(Claim)
    return exists().where(before.task_id == Claim.task_id, before.parcel_no == Claim.parcel_no,
                          before.id < Claim.id, before.status == literal_column("'rejected'"),
                          before.first_assessed_amount.is_not(None))


def _claim_in_time() -> ColumnElement:
    """Paid or rejected, every step taken by its due time."""
    return and_(Claim.status.in_(_sql_list(CLAIM_CLOSED)), Claim.late_steps == 0)


FIGURES = (
    Figure("on_time_delivery", "tasks", "ratio",
           "Windows of deliveries (and returns) kept, over every agreed or promised window decided kept, late, "
           "missed or not attempted (replaced after its decision too), and those under review.",
           _on_time(False), _all_kept, numerator=lambda: _windows.c.kept, denominator=lambda: _windows.c.on_time),
    Figure("on_time_pickup", "tasks", "ratio",
           "Windows of pickups kept, over every agreed or promised window decided kept, late, missed or not "
           "attempted (replaced after its decision too), and those under review.",
           _on_time(True), _all_kept, numerator=lambda: _windows.c.kept, denominator=lambda: _windows.c.on_time),
    Figure("assignment_to_signoff", "tasks", "seconds",
           "Mean seconds from the courier's assignment to the handover (device time), delivered or collected.",
           _signed_off, true, numerator=lambda: seconds_between(_held.assigned_at, Handover.completed_at)),
    Figure("promised_time_achievement", "promises", "ratio",
           "Parcels signed for by the time their service product promised, over parcels whose promise fell in the "
           "period (undelivered past it, cancelled after it too: failures; refused, or cancelled before it: out); "
           "deliveries without a promise, or "
           "signed for under a suspect clock, are unknown, never a pass.",
           _promise_due, _signed_by_promise, unknown=_promise_unknown, weight=_parcels),
    Figure("collect_to_signoff", "tasks", "seconds",
           "Mean seconds from collection (揽收) to the sign-off (the handover's device time), deliveries only (not "
           "those signed under a suspect clock: their time is a guess).",
           _collected_and_signed, true, numerator=lambda: seconds_between(Task.collected_at, Handover.completed_at)),
    Figure("delivered_to_address", "tasks", "ratio",
           "Deliveries signed for at the address (its coordinates known, within reach) or left at an alternate "
           "place with the customer's recorded consent, over deliveries and drops refused for want of leave; "
           "stops without coordinates are counted as unknown, never as a pass.",
           _delivery_made, _at_address_or_with_consent, unknown=_place_unknown),
    Figure("signoff_compliance", "tasks", "ratio",
           "Handovers at the door with the recipient checked, the inspection before payment and signature, the gift "
           "told and no step refused for order, over every handover attempted (refused steps and refusals included).",
           _handover_attempted, _procedure_followed),
    Figure("exception_notification", "tasks", "ratio",
           "Exceptions that stopped a delivery as planned (a window late, missed or not attempted, the customer "
           "absent, a wrong number, an address not found) whose customer was told before them, over all of them.",
           lambda: _exceptions() > 0, lambda: _told() == _exceptions(), numerator=_told, denominator=_exceptions),
    Figure("damage_rate", "tasks", "ratio",
           "Inspected parcel lines found damaged, over parcel lines inspected.",
           lambda: Handover.items_inspected > 0, lambda: Handover.items_damaged > 0,
           numerator=lambda: Handover.items_damaged, denominator=lambda: Handover.items_inspected),
    Figure("short_at_door_rate", "tasks", "ratio",
           "Inspected parcel lines missing or short of pieces, over parcel lines inspected (loss_rate before "
           "issue 22).",
           lambda: Handover.items_inspected > 0, lambda: Handover.items_short > 0,
           numerator=lambda: Handover.items_short, denominator=lambda: Handover.items_inspected),
    Figure("loss_rate", "tasks", "ratio",
           "Parcels dispatch confirmed lost, over parcels handled (scanned for their task, or handed over).",
           lambda: _parcels_handled() > 0, lambda: _parcels_lost() > 0,
           numerator=_parcels_lost, denominator=_parcels_handled),
    Figure("satisfaction_mean", "tasks", "score", "Mean customer rating (1–5) of handovers.",
           lambda: Rating.score.is_not(None), true, numerator=lambda: Rating.score),
    Figure("satisfaction_share", "tasks", "ratio", "Customer ratings of 4 or 5, over ratings.",
           lambda: Rating.score.is_not(None), lambda: Rating.score >= 4),
    Figure("complaint_response_on_time", "complaints", "ratio",
           "Complaints first answered by their due time, over complaints answered or overdue.",
           _complaint_decided, lambda: Complaint.first_response_at <= Complaint.response_due_at),
    Figure("complaint_handling_time", "complaints", "seconds",
           "Mean seconds from receiving a complaint to resolving it (resolved complaints).",
           lambda: Complaint.resolved_at.is_not(None), true,
           numerator=lambda: seconds_between(Complaint.received_at, Complaint.resolved_at)),
    Figure("first_contact_resolution", "complaints", "ratio",
           "Resolved complaints never reopened with exactly one contact (the first response) by their resolution, "
           "over resolved complaints.",
           lambda: Complaint.resolved_at.is_not(None), _resolved_at_first_contact),
    Figure("complaint_satisfaction", "complaints", "ratio",
           "Customers satisfied with a complaint's outcome, over those who said.",
           lambda: Complaint.satisfaction.is_not(None), lambda: Complaint.satisfaction == "satisfied"),
    Figure("tracking_timeliness", "field_events", "ratio",
           "Field events (handheld ops, upstream scans) received within FIELDOPS_TRACKING_TIMELY_MINUTES of when "
           "they happened (effective device time), over field events; those whose clock was suspect (their time "
           "the server's guess) are unknown, never a pass.",
           true, lambda: and_(_events.c.suspect == 0, epoch(_events.c.received_at) - epoch(_events.c.at) <= _TIMELY_S),
           unknown=lambda: _events.c.suspect == 1),
    Figure("tracking_accuracy", "field_events", "ratio",
           "Field events neither rejected nor conflicted, over field events.",
           true, lambda: _events.c.accurate == 1),
    Figure("claim_time", "claims", "ratio",
           "Claims paid or rejected with every step by its due time, over claims paid, rejected or overdue.",
           _claim_done_or_overdue, _claim_in_time),
    Figure("claim_time_to_pay", "claims", "seconds", "Mean seconds from opening a claim to paying it.",
           lambda: Claim.status == "paid", true, numerator=lambda: seconds_between(Claim.opened_at, Claim.paid_at)),
    Figure("pre_job_training_pass_rate", "training", "ratio",
           "Couriers who passed a pre-job course at a session held in the period, over couriers who attended one "
           "(a courier once, passed at any attempt in the period).",
           lambda: _trained.c.kind == literal_column("'pre_job'"), lambda: _trained.c.passed == 1),
    Figure("periodic_training_coverage", "training", "ratio",
           "Active couriers holding, at the period's end, a valid pass of an active periodic course, over active "
           "couriers (created by then).",
           lambda: _trained.c.kind == literal_column("'coverage'"), lambda: _trained.c.passed == 1),
    Figure("claim_accuracy", "claims", "ratio",
           "Claims paid the amount first assessed, without a correction, over claims paid.",
           lambda: Claim.status == "paid",
           lambda: and_(Claim.corrections == 0, Claim.paid_amount == Claim.first_assessed_amount,
                        ~_claimed_before())),
    Figure("leak_incidents", "leaks", "count",
           "Information-leak incidents (信息泄露事件数) confirmed (or confirmed and resolved) by quality, by the day they "
           "were discovered; the denominator is every incident recorded as discovered then (dismissed ones too); "
           "those still open or under review are unknown, never counted until confirmed.",
           true, lambda: LeakIncident.status.in_(_sql_list(LEAK_COUNTED)),
           unknown=lambda: LeakIncident.status.in_(_sql_list(LEAK_UNDECIDED))),
)
BY_NAME = {figure.name: figure for figure in FIGURES}
SOURCES = ("tasks", "promises", "complaints", "field_events", "claims", "leaks", "training")
# What the task list behind a figure lists, by source.
_SUBJECTS = {"tasks": "task", "promises": "task", "complaints": "complaint", "field_events": "field_event",
             "claims": "claim", "leaks": "leak_incident", "training": "courier"}
# The report's engine settings (_settle_in_for_a_big_read).
REPORT_WORK_MEM = "64MB"
REPORT_SQLITE_CACHE_KIB = 64 * 1024
REPORT_SQLITE_MMAP_BYTES = 1024 ** 3
# Rounding of a figure's value by unit (the numerator and denominator are exact).
_DIGITS = {"ratio": 4, "seconds": 1, "score": 2, "count": 0}


def figure(name: str) -> Figure:
    """The figure of that name, or 404."""
    if name not in BY_NAME:
        raise NotFound(f"No figure {name}; known: {', '.join(BY_NAME)}.", code="figure_not_found")
    return BY_NAME[name]


def _weight(fig: Figure):
    """What one of the figure's rows counts for."""
    return fig.weight() if fig.weight is not None else 1


def _numerator(fig: Figure) -> ColumnElement:
    """SUM over the figure's rows of its numerator."""
    value = fig.numerator() if fig.numerator is not None else _weight(fig)
    when = fig.base() if fig.numerator is not None else and_(fig.base(), fig.counted())
    return func.sum(case((when, value), else_=0))


def _denominator(fig: Figure) -> ColumnElement:
    """SUM over the figure's rows of its denominator (a count of them, unless it sums a value)."""
    return func.sum(case((fig.base(), fig.denominator() if fig.denominator is not None else _weight(fig)), else_=0))


def _unknown(fig: Figure) -> ColumnElement:
    """COUNT (or weight) of the figure's rows whose pass or fail a missing fact leaves open."""
    return func.sum(case((and_(fig.base(), fig.unknown()), _weight(fig)), else_=0))


def _local_day(column) -> ColumnElement:
    """The depot-local date of a stored time, on either engine.

    PostgreSQL converts with the zone's rules; SQLite adds the zone's offset of
    the moment (exact for zones without daylight saving, such as Asia/Shanghai).
    """
    zone = local_zone()
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone(literal_column(_quoted(zone.key)), column), Date)
    offset = int(utcnow().astimezone(zone).utcoffset().total_seconds())
    return func.date(column, literal_column(_quoted(f"{offset:+d} seconds")))


def _quoted(text: str) -> str:
    """A constant as an SQL string literal (zone names and offsets: no quotes inside)."""
    return "'" + text.replace("'", "''") + "'"


def _group_key(source: str, group_by: str | None) -> ColumnElement:
    """The grouping column of a source."""
    if group_by is None:
        return _ALL_SQL
    if group_by == "courier":
        return func.coalesce(_courier_of(source), _NO_GROUP_SQL)
    if group_by == "depot":
        return func.coalesce(Courier.depot, _NO_GROUP_SQL)
    if source == "promises":
        return func.coalesce(Task.promise_date, Task.service_date)
    return Task.service_date if source == "tasks" else _local_day(_day_of(source))


def _courier_of(source: str) -> ColumnElement:
    """The courier column of a source's rows (a promise's and a claim's: the task's)."""
    return {"complaints": Complaint.courier_id, "field_events": _events.c.courier_id,
            "leaks": LeakIncident.responsible_courier_id, "training": _trained.c.courier_id}.get(
        source, Task.courier_id)


def _day_of(source: str) -> ColumnElement:
    """The time whose depot-local day a complaint, a field event, a claim, a leak incident or a training row
    belongs to."""
    return {"complaints": Complaint.received_at, "claims": Claim.opened_at,
            "leaks": LeakIncident.discovered_at, "training": _trained.c.at}.get(source, _events.c.at)


def _rows(source: str, columns: list, group_by: str | None, start: date, end: date, *, stored_order: bool = False):
    """SELECT columns FROM the source's joined facts within the dates (inclusive, depot-local).

    stored_order, for a query that reads every task of the dates: on SQLite, visit them in the
    order their rows are stored (_stored_in_range) rather than by service_date.
    """
    if source in ("tasks", "promises"):
        in_range = and_(Task.service_date >= start, Task.service_date <= end)
        if source == "promises":  # by the promise's day; a task without a promise by its service date
            in_range = or_(and_(Task.promise_date >= start, Task.promise_date <= end),
                           and_(Task.promise_date.is_(None), in_range))
        if stored_order and db.engine.dialect.name == "sqlite":
            stored = _stored_in_range(in_range)
            query = select(*columns).select_from(stored).join(Task, _ROWID == stored.c.task_rowid)
        else:
            query = select(*columns).select_from(Task).where(in_range)
        query = (query.outerjoin(_windows, _windows.c.task_id == Task.id)
                 .outerjoin(_contacts, _contacts.c.task_id == Task.id)
                 .outerjoin(Handover, Handover.task_id == Task.id)
                 .outerjoin(Rating, Rating.task_id == Task.id)
                 .outerjoin(_held, and_(_held.task_id == Task.id, _held.ended_at.is_(None)))
                 .outerjoin(_refused, _refused.c.task_id == Task.id))
        return query.outerjoin(Courier, Courier.id == Task.courier_id) if group_by == "depot" else query
    if source == "field_events":  # the days are bound in the subquery (_params: first, last)
        query = select(*columns).select_from(_events)
        return query.outerjoin(Courier, Courier.id == _events.c.courier_id) if group_by == "depot" else query
    if source == "training":  # as field events: the days are bound in the subquery
        query = select(*columns).select_from(_trained)
        return query.outerjoin(Courier, Courier.id == _trained.c.courier_id) if group_by == "depot" else query
    first, last = local_day_bounds(start)[0], local_day_bounds(end)[1]
    table, dated = {"complaints": (Complaint, Complaint.received_at), "claims": (Claim, Claim.opened_at),
                    "leaks": (LeakIncident, LeakIncident.discovered_at)}[source]
    query = select(*columns).select_from(table).where(dated >= first, dated < last)
    if source == "claims":
        query = query.join(Task, Task.id == Claim.task_id)
    return query.outerjoin(Courier, Courier.id == _courier_of(source)) if group_by == "depot" else query


def _stored_in_range(in_range: ColumnElement):
    """SQLite: the rowids of the tasks in range, sorted, so the tasks are visited in the order they are stored.

    SQLite joins by nested loops: each task is a lookup by task_id in the appointments,
    handovers, ratings and assignments indexes. Tasks, and the facts written with them,
    are stored about in the order they were created, and task ids grow with time; visited
    in that order, each lookup lands next to the one before, on pages just read. Visited
    by service_date, the lookups jump as far as the days' tasks lie apart: a month whose
    days interleave (tasks created days ahead, rescheduled, the benchmark's month) took
    1.8x as long. The rowids come from the service_date index alone; the sort is the cost
    (~5% where days already lie in order). SQLite keeps a FROM subquery's ORDER BY when
    the outer query sums (docs/benchmarks.md, "KPIs").
    """
    return (select(_ROWID.label("task_rowid")).select_from(Task).where(in_range)
            .order_by(_ROWID).subquery("stored"))


def _key_text(value) -> str:
    """A group key as text (dates as ISO, whichever type the engine gave back)."""
    return value.isoformat() if isinstance(value, date) else str(value)


def _aggregate_query(source: str, group_by: str | None, start: date, end: date):
    """The GROUP BY query of one source's figures: group_key, then <figure>__n and <figure>__d of each (and
    <figure>__u of one with unknowns)."""
    key = _group_key(source, group_by).label("group_key")
    columns = [key]
    for fig in FIGURES:
        if fig.source == source:
            columns += [_numerator(fig).label(f"{fig.name}__n"), _denominator(fig).label(f"{fig.name}__d")]
            if fig.unknown is not None:
                columns.append(_unknown(fig).label(f"{fig.name}__u"))
    # By day, the service_date index hands the tasks over already grouped (no sort of a month of
    # rows for the GROUP BY), and a day's tasks are mostly stored together anyway.
    query = _rows(source, columns, group_by, start, end, stored_order=group_by != "day")
    return query if group_by is None else query.group_by(key)


def _aggregate(source: str, group_by: str | None, start: date, end: date, now: datetime) -> dict[str, dict]:
    """{group: {figure: (numerator, denominator, unknown)}} of one source's figures, in one GROUP BY query."""
    figures = [fig for fig in FIGURES if fig.source == source]
    out = {}
    for row in db.session.execute(_aggregate_query(source, group_by, start, end),
                                  _params(now, start, end)).mappings():
        out[_key_text(row["group_key"])] = {
            fig.name: (int(row[f"{fig.name}__n"] or 0), int(row[f"{fig.name}__d"] or 0),
                       int(row[f"{fig.name}__u"] or 0) if fig.unknown is not None else 0) for fig in figures}
    return out


def _params(now: datetime, start: date, end: date) -> dict:
    """The values a report's query binds: now, the notice lead and the timely delay in seconds, and the bounds of
    the days (field events)."""
    return {"now": now, "lead_s": float(current_app.config["NOTICE_LEAD_MINUTES"] * 60),
            "timely_s": float(current_app.config["TRACKING_TIMELY_MINUTES"] * 60),
            "first": local_day_bounds(start)[0], "last": local_day_bounds(end)[1],
            "end_at": local_day_bounds(end)[1] - timedelta(seconds=1)}


def _settle_in_for_a_big_read() -> None:
    """Engine settings for one aggregation over a month of a city (docs/benchmarks.md, "KPIs").

    PostgreSQL, for this transaction only: hash joins of a million rows fit in
    memory instead of spilling to temporary files in batches, and no JIT (half a
    second of compiling for a query that runs once). SQLite: its page cache
    (2 MB by default) and memory-mapped reads on this connection, so the joins'
    index lookups are not each a read() of the file.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        db.session.execute(text("SET LOCAL jit = off"))
    else:
        db.session.execute(text(f"PRAGMA cache_size = -{REPORT_SQLITE_CACHE_KIB}"))
        db.session.execute(text(f"PRAGMA mmap_size = {REPORT_SQLITE_MMAP_BYTES}"))


def _value(fig: Figure, numerator: int, denominator: int) -> float | None:
    """numerator / denominator, rounded for the unit; None without a denominator. A count is its numerator (none
    counted is 0, not unknown)."""
    if fig.unit == "count":
        return numerator
    return round(numerator / denominator, _DIGITS[fig.unit]) if denominator else None


def _figures(sums: dict[str, tuple[int, int, int]], link: Callable[[str], str]) -> dict[str, dict]:
    """Every figure of a group: numerator, denominator, value, unit, unknown (None where the figure has no
    unknowns) and the link to its tasks."""
    out = {}
    for fig in FIGURES:
        numerator, denominator, unknown = sums.get(fig.name, (0, 0, 0))
        out[fig.name] = {"numerator": numerator, "denominator": denominator,
                         "value": _value(fig, numerator, denominator), "unit": fig.unit,
                         "unknown": unknown if fig.unknown is not None else None, "tasks_url": link(fig.name)}
    return out


def _check_day(day: date, field: str) -> None:
    """A day the service keeps times for (a depot day of year 1 or 9999 does not even turn into UTC)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationFailed(f"{field} is outside {FIRST_DAY}..{LAST_DAY}.",
                               fields={field: [f"Must be between {FIRST_DAY} and {LAST_DAY}."]})


def check_range(*, start: date, end: date) -> None:
    """Both dates within the calendar the service keeps; from must not be after to."""
    _check_day(start, "from")
    _check_day(end, "to")
    if start > end:
        raise ValidationFailed("from is after to.", fields={"from": ["Must not be after to."]})


def report(*, start: date, end: date, group_by: str | None = None, link: Callable[..., str] | None = None,
           now: datetime | None = None) -> dict:
    """The KPI report for depot-local dates start..end (inclusive), per group and in total."""
    check_range(start=start, end=end)
    now = now or utcnow()
    link = link or (lambda name, group: f"/api/v1/reports/kpis/{name}/tasks")
    _settle_in_for_a_big_read()
    sums: dict[str, dict] = {}
    for source in SOURCES:
        for key, figures in _aggregate(source, group_by, start, end, now).items():
            sums.setdefault(key, {}).update(figures)
    total: dict[str, tuple[int, int, int]] = {}
    for figures in sums.values():  # numerators, denominators and unknowns add up across groups
        for name, counts in figures.items():
            total[name] = tuple(a + b for a, b in zip(total.get(name, (0, 0, 0)), counts, strict=True))
    labels = _labels(group_by, list(sums))
    groups = [] if group_by is None else [
        {"group": key, "label": labels.get(key, key), "figures": _figures(sums[key], lambda name, k=key: link(name, k))}
        for key in sorted(sums)]
    return {"from_": start, "to": end, "group_by": group_by, "groups": groups,
            "total": {"group": "total", "label": "total", "figures": _figures(total, lambda name: link(name, None))}}


def _labels(group_by: str | None, keys: list[str]) -> dict[str, str]:
    """Couriers' names for their ids; other groups are labelled by their key."""
    if group_by != "courier":
        return {}
    names = {}
    ids = [key for key in keys if key != NO_GROUP]
    for begin in range(0, len(ids), 500):
        chunk = ids[begin:begin + 500]
        names.update((row.id, row.name) for row in db.session.execute(
            select(Courier.id, Courier.name).where(Courier.id.in_(chunk))))
    return names


def _group_filter(source: str, group_by: str | None, group: str | None) -> ColumnElement:
    """The condition picking one group's rows (all rows without a group)."""
    if group_by is None or group is None:
        return true()
    if group_by == "day":
        try:
            day = date.fromisoformat(group)
        except ValueError:
            raise ValidationFailed("group is a date for group_by=day.",
                                   fields={"group": ["Must be a date YYYY-MM-DD."]}) from None
        _check_day(day, "group")
        if source == "tasks":
            return Task.service_date == day
        if source == "promises":
            return func.coalesce(Task.promise_date, Task.service_date) == day
        first, last = local_day_bounds(day)
        return and_(_day_of(source) >= first, _day_of(source) < last)
    column = _courier_of(source) if group_by == "courier" else Courier.depot
    return column.is_(None) if group == NO_GROUP else column == group


def rows_behind(*, name: str, start: date, end: date, group_by: str | None = None, group: str | None = None,
                cursor: str | None = None, limit: int = 100, now: datetime | None = None) -> dict:
    """The tasks (or complaints) in a figure's denominator, by id, each saying whether it is in the numerator
    (and, for a figure with unknowns, whether a missing fact leaves it open)."""
    fig = figure(name)
    check_range(start=start, end=end)
    key = {"complaints": Complaint.id, "field_events": _events.c.id, "claims": Claim.id,
           "leaks": LeakIncident.id, "training": _trained.c.id}.get(fig.source, Task.id)
    unknown = case((fig.unknown(), true()), else_=false()) if fig.unknown is not None else false()
    query = _rows(fig.source, [key.label("id"), case((fig.counted(), true()), else_=false()).label("counted"),
                               unknown.label("unknown")],
                  group_by, start, end).where(fig.base(), _group_filter(fig.source, group_by, group))
    if cursor:
        query = query.where(key > (_row_number(cursor) if fig.source in _NUMBERED else decode_cursor(cursor)))
    rows = db.session.execute(query.order_by(key).limit(limit + 1), _params(now or utcnow(), start, end)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"figure": fig.name, "subject": _SUBJECTS[fig.source],
            "items": [{"id": str(row.id), "counted": bool(row.counted), "unknown": bool(row.unknown)} for row in rows],
            "next_cursor": encode_cursor(str(rows[-1].id)) if more and rows else None}


# Sources whose rows have integer ids (their cursor is one: decode_cursor takes task-style ids only).
_NUMBERED = ("complaints", "claims", "leaks")


def _row_number(cursor: str) -> int:
    """The integer id an opaque cursor of a numbered source holds; a mangled one is a 422 on the cursor."""
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        value = ""
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise ValidationFailed("The cursor is not valid.", fields={"cursor": ["Not a valid cursor."]})
    return int(value)


def _cell(value: str) -> str:
    """A text cell a spreadsheet shows rather than runs: one that opens like a formula gets a leading quote."""
    return "'" + value if value[:1] in _FORMULA_STARTS and value != NO_GROUP else value


def as_csv(result: dict) -> str:
    """The report as CSV: one line per group and figure, totals last (names never read as formulas); `unknown`
    is empty for a figure that has none."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "label", "figure", "numerator", "denominator", "value", "unit", "unknown"])
    for group in [*result["groups"], result["total"]]:
        for name, fig in group["figures"].items():
            writer.writerow([_cell(str(group["group"])), _cell(str(group["label"])), name, fig["numerator"],
                             fig["denominator"], "" if fig["value"] is None else fig["value"], fig["unit"],
                             "" if fig["unknown"] is None else fig["unknown"]])
    return out.getvalue()


def table(result: dict) -> list[str]:
    """The report as terminal lines: a row per figure, a column per group (totals last); a figure with unknowns
    has a second row, `<figure> unknown`, with their count."""
    groups = [*result["groups"], result["total"]]
    width = max(len(name) + (len(" unknown") if BY_NAME[name].unknown else 0) for name in BY_NAME)
    lines = [" ".join([f"{'figure':<{width}}", *(f"{str(g['label'])[:18]:>18}" for g in groups)])]
    for name in BY_NAME:
        lines.append(" ".join([f"{name:<{width}}", *(f"{_shown(g['figures'][name]):>18}" for g in groups)]))
        if BY_NAME[name].unknown is not None:
            lines.append(" ".join([f"{name + ' unknown':<{width}}",
                                   *(f"{g['figures'][name]['unknown']:>18}" for g in groups)]))
    return lines


def _shown(fig: dict) -> str:
    """A figure for the terminal: the value as people read it, with its numerator/denominator."""
    if fig["value"] is None:
        return "-"
    value = fig["value"]
    text = {"ratio": f"{value * 100:.1f}%", "seconds": f"{value / 3600:.2f}h", "score": f"{value:.2f}",
            "count": f"{value}"}[fig["unit"]]
    return f"{text} {fig['numerator']}/{fig['denominator']}" if fig["unit"] == "ratio" else text


# What the daily trend chart draws: rates on top (percent), means below. The loss, short and damage rates are
# per mille or less: on the percent axis they would lie on zero, so they have their own (per mille, right).
CHART_PER_MILLE = ("loss_rate", "short_at_door_rate", "damage_rate")
CHART_RATES = ("on_time_delivery", "on_time_pickup", "promised_time_achievement", "delivered_to_address",
               "signoff_compliance", "exception_notification", "satisfaction_share", "complaint_response_on_time",
               "tracking_timeliness", "tracking_accuracy", "claim_time", "claim_accuracy")


def chart(*, start: date, end: date, now: datetime | None = None) -> bytes:
    """The daily trend of the report over the dates, as a PNG (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure as Canvas

    result = report(start=start, end=end, group_by="day", now=now)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    by_day = {group["group"]: group["figures"] for group in result["groups"]}

    def series(name, scale=1.0):
        """The figure's value per day (None where no rows)."""
        values = [by_day.get(day.isoformat(), {}).get(name, {}).get("value") for day in days]
        return [None if v is None else v * scale for v in values]

    canvas = Canvas(figsize=(10, 7), dpi=100, layout="constrained")
    top, bottom = canvas.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for n, name in enumerate(CHART_RATES):  # past the ten colours of the cycle, dashed with squares: no two alike
        top.plot(days, [float("nan") if v is None else v for v in series(name, 100)], marker="os"[n // 10],
                 linestyle=("-", "--")[n // 10], markersize=3, label=name.replace("_", " "))
    top.set_ylabel("percent")
    top.set_ylim(0, 105)
    top.grid(True, alpha=0.3)
    rare = top.twinx()
    for name, marker in zip(CHART_PER_MILLE, "xv+", strict=True):
        rare.plot(days, [float("nan") if v is None else v for v in series(name, 1000)], marker=marker, markersize=4,
                  linestyle=":", color="black", label=name.replace("_", " ") + " (‰)")
    rare.set_ylabel("per mille")
    rare.set_ylim(bottom=0)
    handles = top.get_legend_handles_labels()[0] + rare.get_legend_handles_labels()[0]
    rare.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=7, ncols=3)  # drawn last: on top
    top.set_title(f"Service-quality KPIs per day, {start.isoformat()} to {end.isoformat()}")
    hours = [float("nan") if v is None else v / 3600 for v in series("assignment_to_signoff")]
    bottom.plot(days, hours, marker="o", markersize=3, color="tab:purple", label="assignment to sign-off (h)")
    bottom.plot(days, [float("nan") if v is None else v / 3600 for v in series("claim_time_to_pay")], marker="d",
                markersize=3, color="tab:red", label="claim opened to paid (h)")
    bottom.plot(days, [float("nan") if v is None else v / 3600 for v in series("collect_to_signoff")], marker="^",
                markersize=3, color="tab:green", label="collection to sign-off (h)")
    bottom.set_ylabel("hours")
    bottom.grid(True, alpha=0.3)
    rating = bottom.twinx()
    rating.plot(days, [float("nan") if v is None else v for v in series("satisfaction_mean")], marker="s",
                markersize=3, color="tab:orange", label="mean rating (1–5)")
    rating.set_ylim(0, 5.5)
    rating.set_ylabel("rating")
    handles = bottom.get_legend_handles_labels()[0] + rating.get_legend_handles_labels()[0]
    bottom.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=8)
    # The axis spans the dates asked for, a tick a day (or every few days), even where no day has data
    # (matplotlib would otherwise fall back to its epoch, or to hours within one day).
    from matplotlib import dates as mdates
    bottom.set_xlim(datetime.combine(start, time.min) - timedelta(hours=12),
                    datetime.combine(end, time.min) + timedelta(hours=12))
    bottom.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 12)))
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    canvas.autofmt_xdate()
    out = io.BytesIO()
    canvas.savefig(out, format="png")
    return out.getvalue()
