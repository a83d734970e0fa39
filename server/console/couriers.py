"""The couriers for dispatch: the roster (each courier's handhelds, grade and van), and a courier's page where a
handheld is enrolled (a one-time code, read aloud or scanned as the app's link) or revoked.

The code comes from the service the API uses (POST /api/v1/dispatch/couriers/{id}/enrollments) and is shown once,
in the answer to the post: never in an address (its QR is drawn into the page), so never in a log line.
"""
import re

from flask import g, redirect, url_for
from markupsafe import Markup

from schemas.couriers import CourierQuery
from server.console import bp, parsing, register_nav
from server.console.auth import flash_error, page, render
from server.console.i18n import register, t
from server.courier_app import enroll_link
from server.errors import DomainError
from server.qr import qr_image
from server.services import devices, office

DISPATCH = ("dispatcher", "admin")
OFFICE = ("dispatcher", "admin", "quality")
CODE_GROUP = 4  # a code read aloud in groups of four: "ABCD EFGH JK"

register({
    "zh": {"c_nav": "快递员", "c_title": "快递员", "c_courier": "快递员", "c_employee_no": "工号", "c_depot": "网点",
           "c_active": "状态", "c_is_active": "在岗", "c_is_inactive": "已停用", "c_grade": "等级", "c_van": "车辆",
           "c_devices": "手持终端", "c_device": "终端", "c_enrolled": "注册时间", "c_last_seen": "最近同步",
           "c_revoked": "已注销", "c_in_use": "使用中", "c_revoke": "注销", "c_none": "无",
           "c_enroll": "注册手持终端", "c_enroll_hint": "生成一次性注册码：快递员用手机相机扫描二维码即可打开 App 并带上注册码，"
           "或在 App 里输入注册码。", "c_code": "注册码（只显示这一次）", "c_expires": "有效期至",
           "c_qr": "注册二维码：用手机相机扫描，打开快递员 App 并带上注册码", "c_link": "App 链接",
           "c_day": "当日情况", "c_phone": "电话", "c_next": "下一页", "c_nobody": "还没有快递员。",
           "c_filter": "筛选", "c_all": "全部", "c_revoked_done": "终端已注销：它的令牌从下一次请求起被拒绝。",
           "c_device_count": "{active} 台使用中", "c_open": "查看",
           "c_inactive_refused": "这位快递员已停用，不能注册手持终端。请先在快递员资料里恢复在岗。",
           "err_device_not_found": "这位快递员没有这台终端。"},
    "en": {"c_nav": "Couriers", "c_title": "Couriers", "c_courier": "Courier", "c_employee_no": "Employee no.",
           "c_depot": "Depot", "c_active": "Status", "c_is_active": "active", "c_is_inactive": "inactive",
           "c_grade": "Grade", "c_van": "Van", "c_devices": "Handhelds", "c_device": "Handheld",
           "c_enrolled": "Enrolled", "c_last_seen": "Last sync", "c_revoked": "revoked", "c_in_use": "in use",
           "c_revoke": "Revoke", "c_none": "None", "c_enroll": "Enroll a handheld",
           "c_enroll_hint": "Issues a one-time code: the courier scans the QR with the phone's camera, which opens the "
           "app holding the code, or types the code into the app.", "c_code": "Enrollment code (shown only now)",
           "c_expires": "Valid until", "c_qr": "Enrollment QR: scan with the phone's camera to open the courier's app "
           "holding the code", "c_link": "App link", "c_day": "The day", "c_phone": "Phone", "c_next": "Next page",
           "c_nobody": "No couriers yet.", "c_filter": "Filter", "c_all": "All",
           "c_revoked_done": "Handheld revoked: its token is refused from its next request on.",
           "c_device_count": "{active} in use", "c_open": "Open",
           "c_inactive_refused": "This courier is inactive and cannot enroll a handheld. Make them active on their "
           "record first.",
           "err_device_not_found": "This courier has no such handheld."},
})
register_nav("console.courier_list", "c_nav", OFFICE)


def grouped(code: str) -> str:
    """An enrollment code in groups of four, as it is read aloud (the app and the API ignore the spaces)."""
    return " ".join(code[i:i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def qr_svg(payload: str, label: str) -> Markup:
    """The payload's QR as an SVG element drawn into the page (no address carries it; no inline style for the CSP)."""
    svg = qr_image(payload, "svg")[0].decode()
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'<svg width="[^"]*" height="[^"]*"', "<svg", svg, count=1)
    return Markup(svg.replace("<svg ", f'<svg class="qr" role="img" aria-label="{Markup.escape(label)}" ', 1))


@bp.get("/couriers")
@page(*OFFICE)
def courier_list():
    """The couriers, each with their handhelds, grade and van, linked to their page."""
    filters = parsing.query(CourierQuery)
    roster = office.roster(active=filters.get("active"), cursor=filters.get("cursor"),
                           limit=filters.get("limit", 50))
    return render("console/couriers.html", roster=roster, filters=filters,
                  next_page=parsing.next_page(roster["next_cursor"]))


def _courier_page(courier_id: str, *, enrollment=None, code: str | None = None, status: int = 200, done=None):
    """A courier's page: the record, the handhelds with revoke, the enroll button (and a code just issued)."""
    card = office.courier_card(courier_id=courier_id)
    issued = None
    if code is not None:
        link = enroll_link(code)
        issued = {"code": grouped(code), "expires_at": enrollment.expires_at, "link": link,
                  "qr": qr_svg(link, t("c_qr"))}
    return render("console/courier.html", status=status, **card, issued=issued, done=done,
                  may_act=g.staff.role in DISPATCH)


@bp.get("/couriers/<courier_id>")
@page(*OFFICE)
def courier_page(courier_id):
    """A courier: record, van, grade, handhelds (revoke), enroll a handheld."""
    from flask import request
    return _courier_page(courier_id, done=request.args.get("done"))


@bp.post("/couriers/<courier_id>/enrollments")
@page(*DISPATCH)
def courier_enroll(courier_id):
    """Issue a one-time enrollment code (the API's service) and show it once, with its QR; an inactive courier's
    refusal in words."""
    try:
        enrollment, code = devices.create_enrollment(actor=g.actor, courier_id=courier_id)
    except DomainError as error:
        if error.status == 404:
            raise
        # The task page's words for courier_inactive are about reassigning: here, why no code (and what to do).
        flash_error(t("c_inactive_refused") if error.code == "courier_inactive" else error)
        return _courier_page(courier_id, status=error.status)
    return _courier_page(courier_id, enrollment=enrollment, code=code)


@bp.post("/couriers/<courier_id>/devices/<device_id>/revoke")
@page(*DISPATCH)
def courier_device_revoke(courier_id, device_id):
    """Revoke one of the courier's handhelds (audited, the API's service), then back to the courier's page."""
    devices.revoke(actor=g.actor, device_id=device_id, courier_id=courier_id)
    return redirect(url_for("console.courier_page", courier_id=courier_id, done="revoked"), code=303)
