"""Dispatch: couriers' cash (collected, remitted, corrected) per depot-local day."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.ledger import CashOut, CashQuery, CorrectionIn, LedgerEntryOut, RemittanceIn
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.services import ledger

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/dispatch/couriers", description="Cash ledger (dispatch)")


@blp.route("/<courier_id>/remittances")
class Remittances(MethodView):
    """Cash handed in at the depot."""

    @require(*DISPATCH)
    @blp.arguments(RemittanceIn)
    @blp.response(201, LedgerEntryOut)
    def post(self, data, courier_id):
        """Record a remittance for a depot-local day (audited)."""
        return ledger.remit(actor=current_actor(), courier_id=courier_id, day=data["date"], amount=data["amount"],
                            note=data["note"])


@blp.route("/<courier_id>/cash-corrections")
class Corrections(MethodView):
    """Corrections: payments are never edited."""

    @require(*DISPATCH)
    @blp.arguments(CorrectionIn)
    @blp.response(201, LedgerEntryOut)
    def post(self, data, courier_id):
        """Record a signed correction of what was collected, naming the entry it corrects if any (audited)."""
        return ledger.correct(actor=current_actor(), courier_id=courier_id, day=data["date"], amount=data["amount"],
                              note=data["note"], corrects_id=data["corrects_id"])


@blp.route("/<courier_id>/cash")
class Cash(MethodView):
    """A courier's cash on one day."""

    @require(*OFFICE)
    @blp.arguments(CashQuery, location="query")
    @blp.response(200, CashOut)
    def get(self, query, courier_id):
        """Collected, remitted, corrections and the difference, with every entry, to the fen."""
        return ledger.cash(courier_id=courier_id, day=query["date"])
