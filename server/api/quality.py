"""Quality (联合稽查组): inspections, the violations review list, appeals decided and violations voided."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.violations import (VIOLATION_CSV_COLUMNS, AppealDecisionIn, InspectionIn, InspectionOut, InspectionPage, InspectionQuery,
                                ReasonIn, ReviewQuery, ViolationOut, ViolationPage)
from server import csvout
from server.auth import OFFICE, current_actor, require
from server.services import checklists, violations


blp = Blueprint("quality", __name__, url_prefix="/api/v1/quality",
                description="Inspections, violations and appeals (quality staff)")


@blp.route("/inspections")
class Inspections(MethodView):
    """Spot checks and mystery-shopper visits."""

    @require(*checklists.INSPECTION_READERS)
    @blp.arguments(InspectionQuery, location="query")
    @blp.response(200, InspectionPage)
    def get(self, query):
        """Inspections newest first, by courier and kind."""
        return checklists.inspections(**query)

    @require(*checklists.INSPECTORS)
    @blp.arguments(InspectionIn)
    @blp.response(201, InspectionOut)
    def post(self, data):
        """Record an inspection; each failed item is a violation of the courier (source inspection)."""
        return checklists.record_inspection(actor=current_actor(), **data)


@blp.route("/inspections/<int:inspection_id>")
class InspectionById(MethodView):
    """One inspection."""

    @require(*checklists.INSPECTION_READERS)
    @blp.response(200, InspectionOut)
    def get(self, inspection_id):
        """An inspection with the violations it recorded."""
        return checklists.get_inspection(inspection_id=inspection_id)


@blp.route("/violations")
class Violations(MethodView):
    """The violations review list."""

    @require(*OFFICE)
    @blp.doc(responses=csvout.documented(ViolationPage))
    @blp.arguments(ReviewQuery, location="query")
    @blp.response(200, ViolationPage)
    def get(self, query):
        """Violations newest first, by status, courier, code and a suspect clock (clock_suspect=true);
        ?format=csv for every one as CSV."""
        if query.pop("format") == "csv":
            cursor = query.pop("cursor")
            query.pop("limit")
            rows = csvout.every_row(lambda cursor, limit: violations.review_list(
                cursor=int(cursor) if cursor else None, limit=limit, **query), cursor=cursor)
            return csvout.respond(rows, schema=ViolationOut(), columns=VIOLATION_CSV_COLUMNS, filename="violations.csv",
                                  what="violations")
        return violations.review_list(**query)


@blp.route("/violations/<int:violation_id>")
class ViolationById(MethodView):
    """One violation."""

    @require(*OFFICE)
    @blp.response(200, ViolationOut)
    def get(self, violation_id):
        """A violation with its status and appeal."""
        return violations.get(violation_id=violation_id)


@blp.route("/violations/<int:violation_id>/appeal/decide")
class AppealDecision(MethodView):
    """Deciding a courier's appeal."""

    @require(*violations.DECIDERS)
    @blp.arguments(AppealDecisionIn)
    @blp.response(200, ViolationOut)
    def post(self, data, violation_id):
        """Uphold the violation or void it (it leaves the grade, which is kept again now)."""
        return violations.decide_appeal(actor=current_actor(), violation_id=violation_id, **data)


@blp.route("/violations/<int:violation_id>/void")
class ViolationVoid(MethodView):
    """Voiding a violation."""

    @require(*violations.DECIDERS)
    @blp.arguments(ReasonIn)
    @blp.response(200, ViolationOut)
    def post(self, data, violation_id):
        """Void the violation with a reason (an open appeal is decided voided); the grade is kept again now."""
        return violations.void(actor=current_actor(), violation_id=violation_id, **data)


@blp.route("/violations/<int:violation_id>/confirm")
class ViolationConfirm(MethodView):
    """Confirming a violation."""

    @require(*violations.DECIDERS)
    @blp.arguments(ReasonIn)
    @blp.response(200, ViolationOut)
    def post(self, data, violation_id):
        """Confirm an open violation (one on a suspect clock, say): it stands, upheld."""
        return violations.confirm(actor=current_actor(), violation_id=violation_id, **data)
