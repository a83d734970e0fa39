"""Quality: the register of information-leak incidents (信息泄露事件), and the export hook bulk routes call."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.leaks import (LeakConfirmIn, LeakDismissIn, LeakIn, LeakNotifyIn, LeakOut, LeakPage, LeakPatch, LeakQuery,
                           LeakResolveIn)
from server.auth import OFFICE, current_actor, require
from server.services import leaks
from server.services.leaks import DECIDERS

blp = Blueprint("leaks", __name__, url_prefix="/api/v1/quality/leak-incidents",
                description="Information-leak incidents (quality, admin; the office reports)")


@blp.route("")
class LeakIncidents(MethodView):
    """The register."""

    @require(*OFFICE)
    @blp.arguments(LeakIn)
    @blp.response(201, LeakOut)
    def post(self, data):
        """Report an incident (the office); it stays open until quality confirms or dismisses it."""
        return leaks.open_incident(actor=current_actor(), **data)

    @require(*DECIDERS)
    @blp.arguments(LeakQuery, location="query")
    @blp.response(200, LeakPage)
    def get(self, query):
        """Incidents newest first, by status, source and the dates they were discovered on (from, to)."""
        return leaks.get_all(**query)


@blp.route("/<int:incident_id>")
class LeakIncidentById(MethodView):
    """One incident."""

    @require(*DECIDERS)
    @blp.response(200, LeakOut)
    def get(self, incident_id):
        """An incident with its notifications."""
        return leaks.get(incident_id=incident_id)

    @require(*DECIDERS)
    @blp.arguments(LeakPatch)
    @blp.response(200, LeakOut)
    def patch(self, data, incident_id):
        """Correct the register (times, data kinds, people, who was responsible); audited."""
        return leaks.update(actor=current_actor(), incident_id=incident_id, **data)


@blp.route("/<int:incident_id>/notifications")
class LeakNotifications(MethodView):
    """Whom the company told."""

    @require(*DECIDERS)
    @blp.arguments(LeakNotifyIn)
    @blp.response(201, LeakOut)
    def post(self, data, incident_id):
        """Record that customers, management, the regulator or the police were told, when and how."""
        return leaks.notify(actor=current_actor(), incident_id=incident_id, **data)


@blp.route("/<int:incident_id>/confirm")
class LeakConfirmation(MethodView):
    """The decision that it was a leak."""

    @require(*DECIDERS)
    @blp.arguments(LeakConfirmIn)
    @blp.response(200, LeakOut)
    def post(self, data, incident_id):
        """Confirm an open or flagged incident: it counts in leak_incidents."""
        return leaks.confirm(actor=current_actor(), incident_id=incident_id, **data)


@blp.route("/<int:incident_id>/dismiss")
class LeakDismissal(MethodView):
    """The decision that it was none."""

    @require(*DECIDERS)
    @blp.arguments(LeakDismissIn)
    @blp.response(200, LeakOut)
    def post(self, data, incident_id):
        """Dismiss an open or flagged incident, saying why; it never counts."""
        return leaks.dismiss(actor=current_actor(), incident_id=incident_id, **data)


@blp.route("/<int:incident_id>/resolve")
class LeakResolution(MethodView):
    """The resolution."""

    @require(*DECIDERS)
    @blp.arguments(LeakResolveIn)
    @blp.response(200, LeakOut)
    def post(self, data, incident_id):
        """Resolve a confirmed leak: how, and when (default now)."""
        return leaks.resolve(actor=current_actor(), incident_id=incident_id, **data)
