"""Integrations: the event feed upstream sync scripts poll (integration tokens, admins)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.webhooks import EventPage, EventQuery
from server.auth import require
from server.services import events

blp = Blueprint("integrations", __name__, url_prefix="/api/v1/integrations",
                description="The event feed for upstream systems")

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
