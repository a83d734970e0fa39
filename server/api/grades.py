"""Dispatch: couriers' service grades, live and on record, and their history."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.grades import GradeChangePage, GradeChangeQuery, GradeOut, LiftIn, OverrideIn
from server.auth import OFFICE, current_actor, require
from server.services import grades

blp = Blueprint("grades", __name__, url_prefix="/api/v1/dispatch/couriers",
                description="Service grades (quality, dispatch)")

QUALITY = ("admin", "quality")


@blp.route("/<courier_id>/grade")
class CourierGrade(MethodView):
    """A courier's grade."""

    @require(*OFFICE)
    @blp.response(200, GradeOut)
    def get(self, courier_id):
        """The grade the rules give now over the rolling window, with reasons, beside the grade on record."""
        return grades.evaluate(courier_id=courier_id)


@blp.route("/<courier_id>/grade/recompute")
class CourierGradeRecompute(MethodView):
    """Putting the grade on record now."""

    @require(*QUALITY)
    @blp.response(200, GradeOut)
    def post(self, courier_id):
        """Evaluate now and keep the result; a changed grade is added to the history."""
        return grades.recompute(actor=current_actor(), courier_id=courier_id)


@blp.route("/<courier_id>/grade/history")
class CourierGradeHistory(MethodView):
    """A courier's grade changes."""

    @require(*OFFICE)
    @blp.arguments(GradeChangeQuery, location="query")
    @blp.response(200, GradeChangePage)
    def get(self, query, courier_id):
        """Each change of grade with its reasons, newest first, a page at a time."""
        return grades.history(courier_id=courier_id, **query)


@blp.route("/<courier_id>/grade/override")
class CourierGradeOverride(MethodView):
    """Setting a courier's grade by hand."""

    @require(*QUALITY)
    @blp.arguments(OverrideIn)
    @blp.response(200, GradeOut)
    def post(self, data, courier_id):
        """Set the grade with a reason until a time; the rules do not overwrite it meanwhile (history says why)."""
        return grades.override(actor=current_actor(), courier_id=courier_id, **data)


@blp.route("/<courier_id>/grade/override/lift")
class CourierGradeOverrideLift(MethodView):
    """Lifting a grade set by hand."""

    @require(*QUALITY)
    @blp.arguments(LiftIn)
    @blp.response(200, GradeOut)
    def post(self, data, courier_id):
        """Lift the override in force: the rules' grade is kept again at once."""
        return grades.lift_override(actor=current_actor(), courier_id=courier_id, **data)
