"""Console pages for maintenance (dispatchers and quality staff read them): the vans, the ones out of service, their
open defects and repairs, and certifying a repair or judging a defect needs none."""
from flask import g, redirect, render_template, url_for

from schemas.checklists import DefectQuery, NoRepairIn, RepairIn
from schemas.vehicles import VehicleQuery
from schemas.vocab import DEFECT_STATUSES, SEVERITIES, VEHICLE_STATUSES
from server.auth import DISPATCH
from server.console import bp, parsing
from server.console.auth import page
from server.console.i18n import register, register_nav
from server.services import checklists, staff, vehicles

# Who reads the vans (as GET /dispatch/vehicles and /dispatch/defects), and who closes defects.
READERS = (*DISPATCH, "quality", "maintenance")
REPAIRERS = checklists.REPAIRERS


def van_list(*, filters: dict) -> dict:
    """A page of vans with their open defects and last report, by status."""
    found = vehicles.get_all(**filters)
    checklists.with_reports(found["items"])
    return {"page": found, "filters": filters}


def defect_queue(*, filters: dict) -> dict:
    """The maintenance queue: defects by status (open by default; repaired ones are the repairs), severity, van."""
    return {"page": checklists.defects(**filters), "filters": filters, "people": _people()}


def van_view(*, vehicle_id: str) -> dict:
    """A van: status, open defects, and its last reports with each defect's repair and who acknowledged it."""
    return {"van": checklists.vehicle_detail(vehicle_id=vehicle_id), "people": _people()}


def _people() -> dict:
    """Staff by id (the mechanics who closed defects)."""
    return {person.id: person for person in staff.get_all()}


register({
    "zh": {
        "nav_vans": "车辆", "vans": "车辆", "van": "车辆", "defects": "缺陷与维修", "plate": "车牌", "kind": "类型",
        "van_status": "状态", "driver": "司机", "open_defects": "未关闭缺陷", "last_report": "最近检查",
        "vs_in_service": "在用", "vs_out_of_service": "停用", "vs_retired": "报废",
        "ds_open": "待处理", "ds_repaired": "已维修", "ds_no_repair_needed": "无需维修",
        "sev_critical": "严重", "sev_major": "较重", "sev_minor": "轻微", "item": "检查项", "reported": "报告时间",
        "repair": "认证维修", "no_repair": "无需维修", "repair_note": "维修说明", "no_repair_reason": "无需维修的原因",
        "closed_by": "处理人", "closed_at": "处理时间", "reports": "最近的车辆检查", "acknowledged_by": "下一位司机确认",
        "failed_items": "未通过项", "odometer": "里程", "show_defects": "查看缺陷", "repairs": "维修记录",
        "done_repaired": "维修已认证。", "done_no_repair": "已关闭：无需维修。",
        "vans_filter": "筛选", "vans_any": "全部", "vans_next": "下一页", "vans_nothing": "没有记录。", "vans_severity": "严重程度",
        "vans_status": "状态", "vans_note": "说明", "vans_send": "提交",
    },
    "en": {
        "nav_vans": "Vans", "vans": "Vans", "van": "Van", "defects": "Defects and repairs", "plate": "Plate",
        "kind": "Kind", "van_status": "Status", "driver": "Driver", "open_defects": "Open defects",
        "last_report": "Last check", "vs_in_service": "In service", "vs_out_of_service": "Out of service",
        "vs_retired": "Retired", "ds_open": "Open", "ds_repaired": "Repaired", "ds_no_repair_needed": "No repair needed",
        "sev_critical": "Critical", "sev_major": "Major", "sev_minor": "Minor", "item": "Item", "reported": "Reported",
        "repair": "Certify the repair", "no_repair": "No repair needed", "repair_note": "What was repaired",
        "no_repair_reason": "Why no repair is needed", "closed_by": "Closed by", "closed_at": "Closed",
        "reports": "Last vehicle checks", "acknowledged_by": "Acknowledged by the next driver",
        "failed_items": "Failed items", "odometer": "Odometer", "show_defects": "Show defects", "repairs": "Repairs",
        "done_repaired": "Repair certified.", "done_no_repair": "Closed: no repair needed.",
        "vans_filter": "Filter", "vans_any": "Any", "vans_next": "Next page", "vans_nothing": "Nothing here.",
        "vans_severity": "Severity", "vans_status": "Status", "vans_note": "Note", "vans_send": "Send",
    },
})
register_nav("console.van_list_page", "nav_vans", READERS)


@bp.get("/vans")
@page(*READERS)
def van_list_page():
    """The vans by status (out of service: the ones off the road), each with its open defects."""
    view = van_list(filters=parsing.query(VehicleQuery))
    return render_template("console/vans/vans.html", **view, statuses=VEHICLE_STATUSES,
                           next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/vans/defects")
@page(*READERS)
def defect_queue_page():
    """Defects by status, severity and van: the open queue, and the repairs done."""
    view = defect_queue(filters=parsing.query(DefectQuery))
    return render_template("console/vans/defects.html", **view, statuses=DEFECT_STATUSES, severities=SEVERITIES,
                           next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/vans/<vehicle_id>")
@page(*READERS)
def van_page(vehicle_id):
    """A van: its open defects with the repair forms, and its last checks."""
    return render_template("console/vans/van.html", **van_view(vehicle_id=vehicle_id),
                           may_repair=g.actor.role in REPAIRERS)


@bp.post("/vans/<vehicle_id>/defects/<int:defect_id>/repair")
@page(*REPAIRERS)
def van_defect_repair(vehicle_id, defect_id):
    """Certify the repair of a defect; the van returns to service when no critical defect is left open."""
    checklists.repair(actor=g.actor, vehicle_id=vehicle_id, defect_id=defect_id, **parsing.form(RepairIn))
    return redirect(url_for("console.van_page", vehicle_id=vehicle_id, done="repaired"), code=303)


@bp.post("/vans/<vehicle_id>/defects/<int:defect_id>/no_repair_needed")
@page(*REPAIRERS)
def van_defect_no_repair(vehicle_id, defect_id):
    """Close a defect without a repair, saying why."""
    checklists.no_repair_needed(actor=g.actor, vehicle_id=vehicle_id, defect_id=defect_id,
                                **parsing.form(NoRepairIn))
    return redirect(url_for("console.van_page", vehicle_id=vehicle_id, done="no_repair"), code=303)
