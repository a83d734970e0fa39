"""Dispatch: claims (理赔) for damaged or lost parcels, from opening to payment or rejection."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.claims import (ClaimAssessIn, ClaimCorrectIn, ClaimIn, ClaimOut, ClaimPage, ClaimPayIn, ClaimQuery,
                            ClaimRejectIn)
from server.auth import OFFICE, current_actor, require
from server.services import claims
from server.services.claims import ASSESSORS, PAYERS

blp = Blueprint("claims", __name__, url_prefix="/api/v1/dispatch/claims", description="Claims (quality, admin)")


@blp.route("")
class Claims(MethodView):
    """Claims."""

    @require(*OFFICE)
    @blp.arguments(ClaimIn)
    @blp.response(201, ClaimOut)
    def post(self, data):
        """Open a claim for a parcel from an exception, a refusal, a complaint, or for a task; 409 while one for the
        same parcel and origin is open."""
        return claims.open_claim(actor=current_actor(), **data)

    @require(*OFFICE)
    @blp.arguments(ClaimQuery, location="query")
    @blp.response(200, ClaimPage)
    def get(self, query):
        """Claims newest first, by status, origin, task, or overdue next step."""
        return claims.get_all(**query)


@blp.route("/<int:claim_id>")
class ClaimById(MethodView):
    """One claim."""

    @require(*OFFICE)
    @blp.response(200, ClaimOut)
    def get(self, claim_id):
        """A claim with its entries and evidence."""
        return claims.read(claim_id=claim_id)


@blp.route("/<int:claim_id>/assess")
class ClaimAssessment(MethodView):
    """The assessment by the compensation rules."""

    @require(*ASSESSORS)
    @blp.arguments(ClaimAssessIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Assess an opened claim from the actual loss found (quality, admin); the rule and its inputs are kept."""
        return claims.assess(actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/<int:claim_id>/approve")
class ClaimApproval(MethodView):
    """The approval."""

    @require(*ASSESSORS)
    @blp.response(200, ClaimOut)
    def post(self, claim_id):
        """Approve an assessed claim (quality up to the approval limit, admin any amount)."""
        return claims.approve(actor=current_actor(), claim_id=claim_id)


@blp.route("/<int:claim_id>/reject")
class ClaimRejection(MethodView):
    """The rejection."""

    @require(*ASSESSORS)
    @blp.arguments(ClaimRejectIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Reject an opened or assessed claim with the reason (quality, admin)."""
        return claims.reject(actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/<int:claim_id>/pay")
class ClaimPayment(MethodView):
    """The payment."""

    @require(*PAYERS)
    @blp.arguments(ClaimPayIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Record the payment of an approved claim with its reference (admin)."""
        return claims.pay(actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/<int:claim_id>/corrections")
class ClaimCorrections(MethodView):
    """Corrections of amounts."""

    @require(*PAYERS)
    @blp.arguments(ClaimCorrectIn)
    @blp.response(201, ClaimOut)
    def post(self, data, claim_id):
        """Correct an assessment's or a payment's amount by a new entry naming it (admin); nothing is edited."""
        return claims.correct(actor=current_actor(), claim_id=claim_id, **data)
