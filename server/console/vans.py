"""Console pages for maintenance (dispatchers and quality staff read them): the vans, the ones out of service, their
open defects and repairs, and certifying a repair or judging a defect needs none."""
from flask import g, url_for

from schemas.checklists import DefectQuery, NoRepairIn, RepairIn
from schemas.vehicles import VehicleQuery
from schemas.vocab import DEFECT_STATUSES, SEVERITIES, VEHICLE_STATUSES
from server.auth import DISPATCH
from server.console import bp, parsing, register_nav
from server.console.auth import page, render
from server.console.i18n import register
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
    found = checklists.defects(**filters)
    checklists.with_labels(found["items"])
    return {"page": found, "filters": filters, "people": _people()}


def van_view(*, vehicle_id: str) -> dict:
    """A van: status, open defects, and its last reports with each defect's repair and who acknowledged it."""
    return {"van": checklists.vehicle_detail(vehicle_id=vehicle_id), "people": _people()}


def _people() -> dict:
    """Staff by id (the mechanics who closed defects)."""
    return {person.id: person for person in staff.get_all()}


register({
    "zh": {
        "v_nav_vans": "车辆", "v_vans": "车辆", "v_van": "车辆", "v_defects": "缺陷与维修", "v_plate": "车牌", "v_kind": "类型",
        "v_van_status": "状态", "v_driver": "司机", "v_open_defects": "未关闭缺陷", "v_last_report": "最近检查",
        "v_vs_in_service": "在用", "v_vs_out_of_service": "停用", "v_vs_retired": "报废",
        "v_ds_open": "待处理", "v_ds_repaired": "已维修", "v_ds_no_repair_needed": "无需维修",
        "v_sev_critical": "严重", "v_sev_major": "较重", "v_sev_minor": "轻微", "v_item": "检查项", "v_reported": "报告时间",
        "v_repair": "认证维修", "v_no_repair": "无需维修", "v_repair_note": "维修说明", "v_no_repair_reason": "无需维修的原因",
        "v_closed_by": "处理人", "v_closed_at": "处理时间", "v_reports": "最近的车辆检查", "v_acknowledged_by": "下一位司机确认",
        "v_failed_items": "未通过项", "v_odometer": "里程", "v_show_defects": "查看缺陷", "v_repairs": "维修记录",
        "v_done_repaired": "维修已认证。", "v_done_no_repair": "已关闭：无需维修。",
        "v_vans_filter": "筛选", "v_vans_any": "全部", "v_vans_next": "下一页", "v_vans_nothing": "没有记录。", "v_vans_severity": "严重程度",
        "v_vans_status": "状态", "v_vans_note": "说明", "v_vans_send": "提交",
    },
    "en": {
        "v_nav_vans": "Vans", "v_vans": "Vans", "v_van": "Van", "v_defects": "Defects and repairs", "v_plate": "Plate",
        "v_kind": "Kind", "v_van_status": "Status", "v_driver": "Driver", "v_open_defects": "Open defects",
        "v_last_report": "Last check", "v_vs_in_service": "In service", "v_vs_out_of_service": "Out of service",
        "v_vs_retired": "Retired", "v_ds_open": "Open", "v_ds_repaired": "Repaired", "v_ds_no_repair_needed": "No repair needed",
        "v_sev_critical": "Critical", "v_sev_major": "Major", "v_sev_minor": "Minor", "v_item": "Item", "v_reported": "Reported",
        "v_repair": "Certify the repair", "v_no_repair": "No repair needed", "v_repair_note": "What was repaired",
        "v_no_repair_reason": "Why no repair is needed", "v_closed_by": "Closed by", "v_closed_at": "Closed",
        "v_reports": "Last vehicle checks", "v_acknowledged_by": "Acknowledged by the next driver",
        "v_failed_items": "Failed items", "v_odometer": "Odometer", "v_show_defects": "Show defects", "v_repairs": "Repairs",
        "v_done_repaired": "Repair certified.", "v_done_no_repair": "Closed: no repair needed.",
        "v_vans_filter": "Filter", "v_vans_any": "Any", "v_vans_next": "Next page", "v_vans_nothing": "Nothing here.",
        "v_vans_severity": "Severity", "v_vans_status": "Status", "v_vans_note": "Note", "v_vans_send": "Send",
    },
})
register_nav("console.van_list_page", "v_nav_vans", READERS)


@bp.get("/vans")
@page(*READERS)
def van_list_page():
    """The vans by status (out of service: the ones off the road), each with its open defects."""
    view = van_list(filters=parsing.query(VehicleQuery))
    return render("console/vans/vans.html", **view, statuses=VEHICLE_STATUSES,
                  next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/vans/defects")
@page(*READERS)
def defect_queue_page():
    """Defects by status, severity and van: the open queue, and the repairs done."""
    view = defect_queue(filters=parsing.query(DefectQuery))
    return render("console/vans/defects.html", **view, statuses=DEFECT_STATUSES, severities=SEVERITIES,
                  next_page=parsing.next_page(view["page"]["next_cursor"]))


def _van(vehicle_id: str):
    """A van's page."""
    return render("console/vans/van.html", **van_view(vehicle_id=vehicle_id), may_repair=g.actor.role in REPAIRERS)


@bp.get("/vans/<vehicle_id>")
@page(*READERS)
def van_page(vehicle_id):
    """A van: its open defects with the repair forms, and its last checks."""
    return _van(vehicle_id)


@bp.post("/vans/<vehicle_id>/defects/<int:defect_id>/repair")
@page(*REPAIRERS)
def van_defect_repair(vehicle_id, defect_id):
    """Certify the repair of a defect; the van returns to service when no critical defect is left open."""
    return parsing.acted(lambda: checklists.repair(actor=g.actor, vehicle_id=vehicle_id, defect_id=defect_id,
                                                   **parsing.form(RepairIn)),
                         done=url_for("console.van_page", vehicle_id=vehicle_id, done="repaired"),
                         again=lambda: _van(vehicle_id))


@bp.post("/vans/<vehicle_id>/defects/<int:defect_id>/no_repair_needed")
@page(*REPAIRERS)
def van_defect_no_repair(vehicle_id, defect_id):
    """Close a defect without a repair, saying why."""
    return parsing.acted(lambda: checklists.no_repair_needed(actor=g.actor, vehicle_id=vehicle_id,
                                                             defect_id=defect_id, **parsing.form(NoRepairIn)),
                         done=url_for("console.van_page", vehicle_id=vehicle_id, done="no_repair"),
                         again=lambda: _van(vehicle_id))
