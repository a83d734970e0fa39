"""Dispatch: the handover PIN and a task's handover timeline (its exceptions: server/api/exceptions.py)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.handover import HandoverOut, PinIssuedOut
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
