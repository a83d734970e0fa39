"""Dispatch: the appointment board, confirming and rescheduling by phone, couriers' violations."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.appointments import (BoardPage, BoardQuery, DispatchConfirmIn, DispatchRescheduleIn, ReviewDecisionIn,
                                  ReviewItemOut, ReviewPage, ReviewQuery)
from schemas.tasks import TaskDetailOut
from schemas.violations import ViolationPage, ViolationQuery
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import appointments, violations

blp = Blueprint("appointments", __name__, url_prefix="/api/v1/dispatch",
                description="Appointments and violations (dispatch)")


@blp.route("/appointments")
class AppointmentBoard(MethodView):
    """The day's appointments."""

    @require(*OFFICE)
    @blp.arguments(BoardQuery, location="query")
    @blp.response(200, BoardPage)
    def get(self, query):
        """Each task's appointment on a depot-local day, with its state, windows and contact attempts."""
        return appointments.board(day=query["date"], state_filter=query["status"], courier_id=query["courier_id"],
                                  cursor=query["cursor"], limit=query["limit"])


@blp.route("/appointments/review")
class AppointmentReviewList(MethodView):
    """Windows whose decision the facts could not make alone."""

    @require(*DISPATCH)
    @blp.arguments(ReviewQuery, location="query")
    @blp.response(200, ReviewPage)
    def get(self, query):
        """Windows under review (a flagged clock, a stop without coordinates, a fact after the decision), oldest
        first."""
        return appointments.review_list(cursor=query["cursor"], limit=query["limit"])


@blp.route("/tasks/<task_id>/appointment/review")
class AppointmentReview(MethodView):
    """Dispatch decides a window under review."""

    @require(*DISPATCH)
    @blp.arguments(ReviewDecisionIn)
    @blp.response(200, ReviewItemOut)
    def post(self, data, task_id):
        """Decide the task's window under review: kept, late or missed, with a note (late or missed on an agreed
        window without notice in time records late_without_notice)."""
        return appointments.decide_review(actor=current_actor(), task_id=task_id, **data)


@blp.route("/tasks/<task_id>/appointment/confirm")
class AppointmentConfirmation(MethodView):
    """Dispatch agrees a window with the customer."""

    @require(*DISPATCH)
    @blp.arguments(DispatchConfirmIn)
    @blp.response(200, TaskDetailOut)
    def post(self, data, task_id):
        """Agree a window (via dispatch); the courier's handheld gets it on its next pull."""
        return appointments.confirm(actor=current_actor(), task_id=task_id, start=data["window"]["start"],
                                    end=data["window"]["end"], via="dispatch")


@blp.route("/tasks/<task_id>/appointment/reschedule")
class AppointmentReschedule(MethodView):
    """Dispatch proposes or agrees another window."""

    @require(*DISPATCH)
    @blp.arguments(DispatchRescheduleIn)
    @blp.response(200, TaskDetailOut)
    def post(self, data, task_id):
        """Propose another window, or (customer_agreed) make it the agreed one."""
        return appointments.reschedule(actor=current_actor(), task_id=task_id, start=data["window"]["start"],
                                       end=data["window"]["end"], reason=data["reason"],
                                       customer_agreed=data["customer_agreed"], via="dispatch")


@blp.route("/couriers/<courier_id>/violations")
class CourierViolations(MethodView):
    """A courier's conduct violations."""

    @require(*OFFICE)
    @blp.arguments(ViolationQuery, location="query")
    @blp.response(200, ViolationPage)
    def get(self, query, courier_id):
        """Violations with their evidence, newest first, a page at a time."""
        return violations.for_courier(courier_id=courier_id, **query)
