"""Dispatch: checklist templates (quality staff), van defects and their repair (maintenance)."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.checklists import (DefectOut, DefectPage, DefectQuery, NoRepairIn, RepairIn, TemplateDetailOut,
                                TemplateIn, TemplatePage, TemplateQuery, VersionIn)
from server.auth import DISPATCH, current_actor, require
from server.services import checklists

blp = Blueprint("checklists", __name__, url_prefix="/api/v1/dispatch",
                description="Checklist templates and van defects (quality, maintenance)")
_DEFECT_READERS = DISPATCH + ("quality", "maintenance")


@blp.route("/checklist-templates")
class Templates(MethodView):
    """Checklist templates."""

    @require(*checklists.TEMPLATE_READERS)
    @blp.arguments(TemplateQuery, location="query")
    @blp.response(200, TemplatePage)
    def get(self, query):
        """List templates with their current items."""
        return checklists.list_templates(**query)

    @require(*checklists.TEMPLATE_WRITERS)
    @blp.arguments(TemplateIn)
    @blp.response(201, TemplateDetailOut)
    def post(self, data):
        """Create a template; its items are version 1, on every handheld after its next pull."""
        return checklists.create_template(actor=current_actor(), **data)


@blp.route("/checklist-templates/<template_id>")
class TemplateById(MethodView):
    """One template."""

    @require(*checklists.TEMPLATE_READERS)
    @blp.response(200, TemplateDetailOut)
    def get(self, template_id):
        """A template with every version it had."""
        return checklists.get_template(template_id=template_id)


@blp.route("/checklist-templates/<template_id>/versions")
class TemplateVersions(MethodView):
    """Publishing a new version."""

    @require(*checklists.TEMPLATE_WRITERS)
    @blp.arguments(VersionIn)
    @blp.response(201, TemplateDetailOut)
    def post(self, data, template_id):
        """Publish the next version; the previous one is still taken for the grace period."""
        return checklists.publish_version(actor=current_actor(), template_id=template_id, items=data["items"])


@blp.route("/checklist-templates/<template_id>/retire")
class TemplateRetirement(MethodView):
    """Retiring a template."""

    @require(*checklists.TEMPLATE_WRITERS)
    @blp.response(200, TemplateDetailOut)
    def post(self, template_id):
        """Retire the template: it leaves every handheld."""
        return checklists.retire_template(actor=current_actor(), template_id=template_id)


@blp.route("/defects")
class Defects(MethodView):
    """The maintenance queue."""

    @require(*_DEFECT_READERS)
    @blp.arguments(DefectQuery, location="query")
    @blp.response(200, DefectPage)
    def get(self, query):
        """Defects newest first, by status (default open), severity and vehicle."""
        return checklists.defects(**query)


@blp.route("/vehicles/<vehicle_id>/defects/<int:defect_id>/repair")
class DefectRepair(MethodView):
    """A certified repair."""

    @require(*checklists.REPAIRERS)
    @blp.arguments(RepairIn)
    @blp.response(200, DefectOut)
    def post(self, data, vehicle_id, defect_id):
        """Certify the repair; the van returns to service when no critical defect is open."""
        return checklists.repair(actor=current_actor(), vehicle_id=vehicle_id, defect_id=defect_id, **data)


@blp.route("/vehicles/<vehicle_id>/defects/<int:defect_id>/no_repair_needed")
class DefectNoRepair(MethodView):
    """A defect judged to need no repair."""

    @require(*checklists.REPAIRERS)
    @blp.arguments(NoRepairIn)
    @blp.response(200, DefectOut)
    def post(self, data, vehicle_id, defect_id):
        """Close the defect without a repair, saying why."""
        return checklists.no_repair_needed(actor=current_actor(), vehicle_id=vehicle_id, defect_id=defect_id,
                                           **data)
