"""Dispatch: customer complaints, from receipt through their owner's hands to the customer's satisfaction."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.complaints import (ComplaintContactIn, ComplaintContactOut, ComplaintHandoverIn, ComplaintIn,
                                ComplaintOut, ComplaintPage, ComplaintQuery, ComplaintReopenIn, ComplaintResolveIn,
                                ComplaintRespondIn, ComplaintSatisfactionIn)
from server.auth import OFFICE, current_actor, require
from server.services import complaints

blp = Blueprint("complaints", __name__, url_prefix="/api/v1/dispatch/complaints",
                description="Complaints (quality, dispatch)")


@blp.route("")
class Complaints(MethodView):
    """Complaints."""

    @require(*OFFICE)
    @blp.arguments(ComplaintIn)
    @blp.response(201, ComplaintOut)
    def post(self, data):
        """Record a complaint (about a task's courier, a courier named, a depot, the hotline or the product); the
        recorder owns it; its first response and resolution fall due."""
        return complaints.create(actor=current_actor(), **data)

    @require(*OFFICE)
    @blp.arguments(ComplaintQuery, location="query")
    @blp.response(200, ComplaintPage)
    def get(self, query):
        """Complaints newest first, by status, courier, category, subject, channel, owner (`none`: the unowned
        queue; `me`) or overdue for any reason."""
        return complaints.get_all(actor=current_actor(), **query)


@blp.route("/<int:complaint_id>")
class ComplaintById(MethodView):
    """One complaint."""

    @require(*OFFICE)
    @blp.response(200, ComplaintOut)
    def get(self, complaint_id):
        """Read a complaint with its times."""
        return complaints.get(complaint_id=complaint_id)


@blp.route("/<int:complaint_id>/take")
class ComplaintTaking(MethodView):
    """Taking an unowned complaint."""

    @require(*OFFICE)
    @blp.response(200, ComplaintOut)
    def post(self, complaint_id):
        """Take an unowned complaint (the taker owns it); one owned by another is 409 complaint_owned."""
        return complaints.take(actor=current_actor(), complaint_id=complaint_id)


@blp.route("/<int:complaint_id>/handover")
class ComplaintHandover(MethodView):
    """Handing a complaint over to another staff member."""

    @require(*OFFICE)
    @blp.arguments(ComplaintHandoverIn)
    @blp.response(200, ComplaintOut)
    def post(self, data, complaint_id):
        """Hand the complaint to an active office staff member with the reason (its owner or an admin)."""
        return complaints.hand_over(actor=current_actor(), complaint_id=complaint_id, **data)


@blp.route("/<int:complaint_id>/respond")
class ComplaintResponse(MethodView):
    """The first response to the customer."""

    @require(*OFFICE)
    @blp.arguments(ComplaintRespondIn)
    @blp.response(200, ComplaintOut)
    def post(self, data, complaint_id):
        """Record the first response (once); its time measures the response target."""
        return complaints.respond(actor=current_actor(), complaint_id=complaint_id, text=data["text"])


@blp.route("/<int:complaint_id>/contacts")
class ComplaintContacts(MethodView):
    """Contacts with the customer about a complaint."""

    @require(*OFFICE)
    @blp.arguments(ComplaintContactIn)
    @blp.response(201, ComplaintContactOut)
    def post(self, data, complaint_id):
        """Record a contact (the first one is the first response); the same one posted again is answered as first
        recorded, not counted twice."""
        return complaints.add_contact(actor=current_actor(), complaint_id=complaint_id, **data)


@blp.route("/<int:complaint_id>/reopen")
class ComplaintReopening(MethodView):
    """The customer brings a resolved complaint back."""

    @require(*OFFICE)
    @blp.arguments(ComplaintReopenIn)
    @blp.response(200, ComplaintOut)
    def post(self, data, complaint_id):
        """Reopen a resolved complaint with the reason; its resolution is kept on the reopening."""
        return complaints.reopen(actor=current_actor(), complaint_id=complaint_id, **data)


@blp.route("/<int:complaint_id>/resolve")
class ComplaintResolution(MethodView):
    """A complaint's outcome."""

    @require(*OFFICE)
    @blp.arguments(ComplaintResolveIn)
    @blp.response(200, ComplaintOut)
    def post(self, data, complaint_id):
        """Resolve: upheld or rejected (quality, admin only), or withdrawn; upheld records the courier's violation."""
        return complaints.resolve(actor=current_actor(), complaint_id=complaint_id, **data)


@blp.route("/<int:complaint_id>/satisfaction")
class ComplaintSatisfaction(MethodView):
    """The customer's view of the outcome."""

    @require(*OFFICE)
    @blp.arguments(ComplaintSatisfactionIn)
    @blp.response(200, ComplaintOut)
    def post(self, data, complaint_id):
        """Record the customer's satisfaction with the outcome (once, after resolution)."""
        return complaints.rate(actor=current_actor(), complaint_id=complaint_id, **data)
