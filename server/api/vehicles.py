"""Dispatch: vehicles."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.checklists import VehicleDetailOut
from schemas.vehicles import VehicleIn, VehicleOut, VehiclePage, VehiclePatch, VehicleQuery
from server.auth import DISPATCH, current_actor, require
from server.services import checklists, vehicles

blp = Blueprint("vehicles", __name__, url_prefix="/api/v1/dispatch/vehicles",
                description="Vehicles (dispatch)")
_READERS = DISPATCH + ("quality", "maintenance")


@blp.route("")
class Vehicles(MethodView):
    """The fleet."""

    @require(*DISPATCH)
    @blp.arguments(VehicleIn)
    @blp.response(201, VehicleOut)
    def post(self, data):
        """Register a vehicle."""
        return vehicles.create(actor=current_actor(), **data)

    @require(*_READERS)
    @blp.arguments(VehicleQuery, location="query")
    @blp.response(200, VehiclePage)
    def get(self, query):
        """List vehicles."""
        return vehicles.get_all(**query)


@blp.route("/<vehicle_id>")
class VehicleById(MethodView):
    """One vehicle."""

    @require(*_READERS)
    @blp.response(200, VehicleDetailOut)
    def get(self, vehicle_id):
        """Read a vehicle: status, open defects, last reports (with repairs and acknowledgements)."""
        return checklists.vehicle_detail(vehicle_id=vehicle_id)

    @require(*DISPATCH)
    @blp.arguments(VehiclePatch)
    @blp.response(200, VehicleOut)
    def patch(self, changes, vehicle_id):
        """Change plate, kind, status or driver."""
        return vehicles.update(actor=current_actor(), vehicle_id=vehicle_id, changes=changes)
