"""Couriers online: their own tasks (another courier's task is a 404)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.handheld import CourierTaskList, CourierTaskOut
from schemas.tasks import ArriveIn, NoteIn
from schemas.violations import OwnViolationPage, ViolationQuery
from server.auth import COURIER, current_actor, require
from server.services import handheld, violations

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="A courier's own work")


@blp.route("/tasks")
class MyTasks(MethodView):
    """The courier's tasks for today."""

    @require(*COURIER)
    @blp.response(200, CourierTaskList)
    def get(self):
        """Open tasks and today's finished ones, in appointment order."""
        return {"items": handheld.get_for_courier(actor=current_actor())}


@blp.route("/tasks/<task_id>")
class MyTask(MethodView):
    """One of the courier's tasks."""

    @require(*COURIER)
    @blp.response(200, CourierTaskOut)
    def get(self, task_id):
        """Read one task; another courier's is a 404."""
        return handheld.get_own(actor=current_actor(), task_id=task_id)


@blp.route("/tasks/<task_id>/notes")
class MyTaskNotes(MethodView):
    """Notes, online (offline: the task.note op)."""

    @require(*COURIER)
    @blp.arguments(NoteIn)
    @blp.response(201, CourierTaskOut)
    def post(self, data, task_id):
        """Add a note to one's own task."""
        return handheld.note(actor=current_actor(), task_id=task_id, **data)


@blp.route("/tasks/<task_id>/arrive")
class MyTaskArrival(MethodView):
    """Arrival, online (offline: the stop.arrive op)."""

    @require(*COURIER)
    @blp.arguments(ArriveIn)
    @blp.response(200, CourierTaskOut)
    def post(self, data, task_id):
        """Report arriving at the stop."""
        return handheld.record_arrival(actor=current_actor(), task_id=task_id, **data)


@blp.route("/violations")
class MyViolations(MethodView):
    """The courier's own violations (appealed offline: the violation.appeal op)."""

    @require(*COURIER)
    @blp.arguments(ViolationQuery, location="query")
    @blp.response(200, OwnViolationPage)
    def get(self, query):
        """One's own violations with their status and appeal, newest first."""
        return violations.mine(actor=current_actor(), **query)
