"""Integrations: the event feed upstream sync scripts poll, and the parcel scans they send (integration tokens,
admins)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.scans import UpstreamScansIn, UpstreamScansOut
from schemas.webhooks import EventPage, EventQuery
from server.auth import current_actor, require
from server.services import events, scans

blp = Blueprint("integrations", __name__, url_prefix="/api/v1/integrations",
                description="The event feed and parcel scans for upstream systems")

EVENT_READERS = ("admin", "integration")


@blp.route("/events")
class Events(MethodView):
    """The domain event feed."""

    @require(*EVENT_READERS)
    @blp.arguments(EventQuery, location="query")
    @blp.response(200, EventPage)
    @blp.alt_response(409, response="CONFLICT")
    def get(self, query):
        """Events after the cursor in commit order; keep the answer's cursor and pass it next time."""
        types = [t.strip() for t in query["types"].split(",")] if query["types"] else None
        return events.read(cursor=query["cursor"], types=types, limit=query["limit"])


@blp.route("/scans")
class Scans(MethodView):
    """Parcel scans from upstream systems (depots, line haul)."""

    @require(*EVENT_READERS)
    @blp.arguments(UpstreamScansIn)
    @blp.response(200, UpstreamScansOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Record scans, each once under its event_id: the same body again answers the same, another body under a
        used event_id is a `conflict` (event_id_reused), an unknown parcel_no is `rejected` (unknown_parcel)."""
        return scans.record_upstream(actor=current_actor(), scans=data["scans"])
