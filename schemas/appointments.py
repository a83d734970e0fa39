"""Appointments on the wire: the ops a handheld pushes, the dispatch routes, and the appointment a task carries."""
from datetime import timedelta

from marshmallow import fields, validate

from schemas.common import Day, PageOut, PageQuery, Schema, Time, integer, text
from schemas.limits import MAX_INT32
from schemas.render import renderer
from schemas.tasks import WindowIn
from schemas.vocab import (APPOINTMENT_EXCEPTIONS, APPOINTMENT_STATES, APPOINTMENT_STATUSES, ATTEMPT_FAILURES,
                           CONTACT_OUTCOMES, FIELD_VIA, REVIEW_OUTCOMES, REVIEW_REASONS, WINDOW_DECIDERS,
                           WINDOW_OUTCOMES, WINDOW_STATUSES)

# An appointment window is at most this long, and starts at most this far ahead (the service checks).
MAX_WINDOW = timedelta(hours=12)
MAX_AHEAD = timedelta(days=14)


def _window() -> fields.Nested:
    """An appointment window: what the service checks beyond the window's own fields, said in the spec."""
    return fields.Nested(WindowIn, required=True, metadata={"description": (
        f"At most {MAX_WINDOW.seconds // 3600} hours long, not over yet (end after now), "
        f"starting at most {MAX_AHEAD.days} days ahead")})


class ContactIn(Schema):
    """appointment.contact: one attempt to reach the customer, whatever came of it."""

    outcome = text(16, validate=validate.OneOf(CONTACT_OUTCOMES))
    note = text(500, required=False, multiline=True, load_default=None)


class ConfirmIn(Schema):
    """appointment.confirm: a window agreed with the customer in the field."""

    window = _window()
    via = text(16, validate=validate.OneOf(FIELD_VIA))


class RescheduleIn(Schema):
    """appointment.reschedule: another window; only the customer's agreement makes it current."""

    window = _window()
    reason = text(300)
    customer_agreed = fields.Boolean(required=True)
    via = text(16, required=False, load_default="phone", validate=validate.OneOf(FIELD_VIA))


class LateNoticeIn(Schema):
    """appointment.late_notice: the customer was told the courier will be late, and when to expect them."""

    eta = Time(required=True)
    reason = text(300)


class CustomerAbsentIn(Schema):
    """stop.customer_absent: the courier waited at the stop and the customer did not come."""

    waited_minutes = integer(minimum=0, maximum=24 * 60, required=True)


class DispatchConfirmIn(Schema):
    """Dispatch agrees a window with the customer (by phone from the office)."""

    window = _window()


class DispatchRescheduleIn(Schema):
    """Dispatch proposes, or agrees, another window."""

    window = _window()
    reason = text(300)
    customer_agreed = fields.Boolean(required=True)


def _one_of(values, description: str | None = None, **kwargs) -> fields.String:
    """An output string from a vocabulary, the spec naming its values."""
    return fields.String(metadata={"enum": list(values), **({"description": description} if description else {})},
                         **kwargs)


class AppointmentWindowOut(Schema):
    """A window in the appointment's history, with its own decision."""

    id = fields.Integer()
    start = fields.AwareDateTime()
    end = fields.AwareDateTime()
    status = _one_of(WINDOW_STATUSES)
    attempt = fields.Integer(allow_none=True, metadata={
        "description": "The attempt the window was (null: a proposal never agreed)"})
    outcome = _one_of(WINDOW_OUTCOMES, "Its decision; null while open or only proposed", allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = _one_of(WINDOW_DECIDERS, allow_none=True)
    arrived_at = fields.AwareDateTime(allow_none=True, metadata={"description": "The counted arrival (device time)"})
    notice_at = fields.AwareDateTime(allow_none=True)
    notice_in_time = fields.Boolean()
    failure_reason = _one_of(ATTEMPT_FAILURES, "Why the attempt failed", allow_none=True)
    review_reason = _one_of(REVIEW_REASONS, "Why it went to dispatch's review", allow_none=True)
    provisional_outcome = _one_of(REVIEW_OUTCOMES + ("replaced",), "What the facts would decide if trusted",
                                  allow_none=True)
    reviewed_at = fields.AwareDateTime(allow_none=True)
    review_note = fields.String(allow_none=True)
    proposed_by_kind = fields.String()
    proposed_by_id = fields.String(allow_none=True)
    agreed_by_kind = fields.String(allow_none=True)
    agreed_by_id = fields.String(allow_none=True)
    via = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()


class ContactAttemptOut(Schema):
    """A contact attempt."""

    outcome = _one_of(CONTACT_OUTCOMES)
    attempt = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    courier_id = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()


class NoticeOut(Schema):
    """The latest late notice."""

    at = fields.AwareDateTime(attribute="notice_at")
    eta = fields.AwareDateTime(attribute="notice_eta")
    reason = fields.String(attribute="notice_reason")
    in_time = fields.Boolean(attribute="notice_in_time")


class CurrentWindowOut(Schema):
    """The current window."""

    start = fields.AwareDateTime(attribute="window_start")
    end = fields.AwareDateTime(attribute="window_end")


_notice_out = renderer(NoticeOut())  # schemas.render: this schema's dump, faster (a push dumps every task it touched)
_window_out = renderer(CurrentWindowOut())


class AppointmentOut(Schema):
    """A task's appointment: status, current window, history, contact attempts."""

    status = _one_of(APPOINTMENT_STATUSES, "The current window's: unconfirmed or confirmed until it is decided")
    attempt = fields.Integer(metadata={"description": "The current attempt's number, from 1"})
    window = fields.Function(_window_out)
    needs_new_appointment = fields.Boolean()
    exception = _one_of(APPOINTMENT_EXCEPTIONS, allow_none=True)
    arrived_at = fields.AwareDateTime(allow_none=True)
    notice = fields.Function(lambda a: _notice_out(a) if a.notice_at else None)
    clock_suspect = fields.Boolean()
    windows = fields.List(fields.Nested(AppointmentWindowOut), attribute="recent_windows", metadata={
        "description": "Oldest first; a handheld gets the newest 10, dispatch all"})
    contact_attempts = fields.List(fields.Nested(ContactAttemptOut), attribute="recent_attempts", metadata={
        "description": "Oldest first; a handheld gets the newest 10, dispatch all"})


class BoardQuery(PageQuery):
    """The dispatch board's filters."""

    date = Day(load_default=None, metadata={"description": "Depot-local service date (default today)"})
    status = text(16, required=False, load_default=None, validate=validate.OneOf(APPOINTMENT_STATES))
    courier_id = text(32, required=False, load_default=None)


class BoardItemOut(Schema):
    """One task on the board."""

    task_id = fields.String(attribute="id")
    waybill_no = fields.String()
    kind = fields.String()
    task_status = fields.String(attribute="status")
    courier_id = fields.String(allow_none=True)
    needs_review = fields.Boolean()
    state = fields.String(attribute="appointment_state", metadata={"enum": list(APPOINTMENT_STATES)})
    appointment = fields.Nested(AppointmentOut)


class BoardPage(PageOut):
    """A page of the board."""

    items = fields.List(fields.Nested(BoardItemOut))


class ReviewQuery(PageQuery):
    """Paging the review list oldest first: the cursor is the last window id seen."""

    cursor = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)


class ReviewItemOut(AppointmentWindowOut):
    """A window under review (or just decided by dispatch), with its task."""

    task_id = fields.String(attribute="appointment.task_id")
    waybill_no = fields.String(attribute="appointment.task.waybill_no")
    kind = fields.String(attribute="appointment.task.kind")
    courier_id = fields.String(attribute="appointment.task.courier_id", allow_none=True)


class ReviewPage(PageOut):
    """A page of the review list."""

    items = fields.List(fields.Nested(ReviewItemOut))


class ReviewDecisionIn(Schema):
    """Dispatch decides a window under review."""

    outcome = text(16, validate=validate.OneOf(REVIEW_OUTCOMES))
    note = text(500, multiline=True)
    window_id = integer(minimum=1, maximum=MAX_INT32, required=False, load_default=None, metadata={
        "description": "The window to decide (default: the task's oldest under review)"})
    notice_in_time = fields.Boolean(load_default=False, metadata={
        "description": "The late notice given on a flagged clock did come in time: no late_without_notice"})
