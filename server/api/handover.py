"""Dispatch: the handover PIN, a task's handover timeline, the day's handover exceptions."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.handover import ExceptionPage, ExceptionQuery, HandoverOut, PinIssuedOut
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import handover

blp = Blueprint("handover", __name__, url_prefix="/api/v1/dispatch", description="Handovers (dispatch)")


@blp.route("/tasks/<task_id>/handover-pin")
class HandoverPin(MethodView):
    """The PIN the recipient must give at the door."""

    @require(*DISPATCH)
    @blp.response(201, PinIssuedOut)
    def post(self, task_id):
        """Require a handover PIN: a new 6-digit PIN, shown this once; handhelds get only its salted hash."""
        return handover.require_pin(actor=current_actor(), task_id=task_id)


@blp.route("/tasks/<task_id>/handover")
class HandoverTimeline(MethodView):
    """A task's whole handover."""

    @require(*OFFICE)
    @blp.response(200, HandoverOut)
    def get(self, task_id):
        """The state, every step (refused ones too), and the signature and photos with their download links."""
        return handover.timeline(task_id=task_id)


@blp.route("/exceptions")
class HandoverExceptions(MethodView):
    """What went wrong at the door."""

    @require(*OFFICE)
    @blp.arguments(ExceptionQuery, location="query")
    @blp.response(200, ExceptionPage)
    def get(self, query):
        """Damage, discrepancies, refusals, not-at-address, PIN and amount mismatches of a day, oldest first."""
        return handover.exceptions(day=query["date"], kind=query["kind"], cursor=query["cursor"],
                                   limit=query["limit"])
