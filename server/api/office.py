"""Dispatch: a courier's day in one call, a depot's cash, and the ledger's entries (JSON or CSV)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.ledger import LEDGER_CSV_COLUMNS, LedgerEntryOut
from schemas.office import CourierDayOut, DayQuery, DepotCashOut, LedgerPage, LedgerQuery
from server import csvout
from server.exports import noted_export
from server.auth import OFFICE, require
from server.services import ledger, office

blp = Blueprint("office", __name__, url_prefix="/api/v1/dispatch", description="A courier's day, depot cash (dispatch)")



@blp.route("/couriers/<courier_id>/day")
class CourierDay(MethodView):
    """A courier's day."""

    @require(*OFFICE)
    @blp.arguments(DayQuery, location="query")
    @blp.response(200, CourierDayOut)
    def get(self, query, courier_id):
        """Tasks, attempts, cash to the fen, violations, grade with its reasons, shifts and checks (customer data:
        noted for leak detection)."""
        day = office.courier_day(courier_id=courier_id, day=query["date"])
        noted_export("courier_day", len(day["tasks"]))
        return day


@blp.route("/depots/<depot>/cash")
class DepotCash(MethodView):
    """A depot's cash on one day."""

    @require(*OFFICE)
    @blp.arguments(DayQuery, location="query")
    @blp.response(200, DepotCashOut)
    def get(self, query, depot):
        """Every courier of the depot with their figures and remittances, and the depot's totals, in fen."""
        return ledger.depot_cash(depot=depot, day=query["date"])


@blp.route("/ledger")
class Ledger(MethodView):
    """The cash ledger's entries."""

    @require(*OFFICE)
    @blp.doc(responses=csvout.documented(LedgerPage))
    @blp.arguments(LedgerQuery, location="query")
    @blp.response(200, LedgerPage)
    def get(self, query):
        """A day's entries oldest first, by courier, depot and kind; ?format=csv for every one as CSV."""
        if query.pop("format") == "csv":
            cursor = query.pop("cursor")
            query.pop("limit")
            rows = csvout.every_row(lambda cursor, limit: ledger.entries(
                cursor=int(cursor) if cursor else None, limit=limit, **query), cursor=cursor)
            return csvout.respond(rows, schema=LedgerEntryOut(), columns=LEDGER_CSV_COLUMNS, filename="ledger.csv",
                                  what="ledger")
        return ledger.entries(**query)
