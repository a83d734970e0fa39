"""Dispatch: a task's parcel journey, and the parcels suspected lost, lost or found."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.scans import JourneyOut, LostPage, LostParcelOut, LostQuery, LostStateIn
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import scans

blp = Blueprint("scans", __name__, url_prefix="/api/v1/dispatch", description="Parcel journeys (dispatch)")


@blp.route("/tasks/<task_id>/journey")
class Journey(MethodView):
    """A task's parcels on their way."""

    @require(*OFFICE)
    @blp.response(200, JourneyOut)
    def get(self, task_id):
        """Every scan of the task's parcels, by when it happened then when it arrived, the same event told twice
        within minutes once; device and receipt times kept, suspect clocks flagged."""
        return scans.task_journey(task_id=task_id)


@blp.route("/parcels/lost")
class LostParcels(MethodView):
    """Parcels suspected lost, confirmed lost, or found."""

    @require(*OFFICE)
    @blp.arguments(LostQuery, location="query")
    @blp.response(200, LostPage)
    def get(self, query):
        """Parcels in a lost state (one state, or all), oldest first."""
        return scans.lost_parcels(**query)


@blp.route("/parcels/<int:parcel_id>/lost-state")
class LostState(MethodView):
    """Dispatch's word on a suspected parcel."""

    @require(*DISPATCH)
    @blp.arguments(LostStateIn)
    @blp.response(200, LostParcelOut)
    def post(self, data, parcel_id):
        """Confirm a suspected parcel lost, or found (a lost one may be found later). Audited; emits parcel.lost or
        parcel.found."""
        return scans.settle_lost(actor=current_actor(), parcel_id=parcel_id, state=data["state"])
