"""Dispatch: the exceptions queue, worked through (acknowledged, resolved with a note), and as CSV."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.handover import EXCEPTION_CSV_COLUMNS, ExceptionOut, ExceptionPage, ExceptionQuery, ExceptionResolveIn
from server import csvout
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import exception_queue

blp = Blueprint("exceptions", __name__, url_prefix="/api/v1/dispatch/exceptions",
                description="The exceptions queue (dispatch)")



@blp.route("")
class Exceptions(MethodView):
    """What went wrong at a door or a window."""

    @require(*OFFICE)
    @blp.doc(responses=csvout.documented(ExceptionPage))
    @blp.arguments(ExceptionQuery, location="query")
    @blp.response(200, ExceptionPage)
    def get(self, query):
        """The queue oldest first: of a day or every day, by kind, status (open, acknowledged, resolved), courier."""
        fmt = query.pop("format")
        if fmt == "csv":
            cursor = query.pop("cursor")
            query.pop("limit")
            rows = csvout.every_row(lambda cursor, limit: exception_queue.get_all(
                cursor=int(cursor) if cursor else None, limit=limit, **query), cursor=cursor)
            return csvout.respond(rows, schema=ExceptionOut(), columns=EXCEPTION_CSV_COLUMNS, filename="exceptions.csv",
                                  what="exceptions")
        return exception_queue.get_all(**query)


@blp.route("/<int:exception_id>/acknowledge")
class Acknowledge(MethodView):
    """Someone in dispatch has it."""

    @require(*DISPATCH)
    @blp.response(200, ExceptionOut)
    def post(self, exception_id):
        """Acknowledge (who, when; audited); again changes nothing."""
        return exception_queue.acknowledge(actor=current_actor(), exception_id=exception_id)


@blp.route("/<int:exception_id>/resolve")
class Resolve(MethodView):
    """Dispatch settled it."""

    @require(*DISPATCH)
    @blp.arguments(ExceptionResolveIn)
    @blp.response(200, ExceptionOut)
    def post(self, data, exception_id):
        """Resolve with a note (who, when, note; audited); the same note again changes nothing, another is 409."""
        return exception_queue.resolve(actor=current_actor(), exception_id=exception_id, note=data["note"])
