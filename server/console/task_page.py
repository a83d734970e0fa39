"""A task's page (/console/tasks/<id>): where it stands, its whole timeline, its receipt, photos and signature,
what dispatch must settle, and the office's actions on it, each through the service its API route calls."""
import re
from datetime import datetime

import marshmallow as ma
from flask import Response, g, redirect, request, send_file, url_for

from schemas.appointments import ReviewDecisionIn
from schemas.sync import ResolveIn
from schemas.tasks import AssignIn, CancelIn
from schemas.vocab import CONFLICT_RESOLUTIONS, OPEN_STATUSES, REVIEW_OUTCOMES
from server.auth import DISPATCH, OFFICE
from server.console import bp
from server.console.auth import flash_error, page, render
from server.console.i18n import has_text, local_time, money, register, t
from server.console.words import word
from server.errors import DomainError, NotFound, ValidationFailed, apply_keep
from server.qr import qr_image
from server.services import appointments, couriers, customer_links, leaks, messages, oplog, privacy, tasks, timeline

# The couriers a reassignment offers (active ones, by id): a depot's, with room to spare.
COURIER_CHOICES = 500

# The timeline's further words (issue 25's walk): the history kinds and data fields the first list missed, who
# "system" and "upstream" are, an op's place in its queue, and a conflict's detail.
_ZH_MORE = {
    "task.type.appointment.kept": "时段判定：按时", "task.type.appointment.late": "时段判定：迟到",
    "task.type.appointment.missed": "时段判定：错过", "task.type.appointment.not_attempted": "时段判定：承诺时段未上门",
    "task.type.appointment.replaced": "时段已被新时段取代", "task.type.appointment.review": "时段待复核",
    "task.type.handover.consent": "客户同意代收", "task.type.handover.consent_withdrawn": "客户撤回代收同意",
    "task.type.handover.pin_required": "要求收件码", "task.type.manifest_updated": "运单信息更新",
    "task.actor.system": "系统", "task.actor.upstream": "上游系统", "task.actor.courier": "快递员",
    "task.actor.staff": "调度", "task.actor.customer": "客户",
    "task.op_seq": "设备操作 #{seq}", "task.conflict_applied": "已按现场事实生效；调度在此之后改过这个任务，需要复核。",
    "task.conflict_recorded": "调度在此之后改过这个任务：这个请求只做了记录，没有生效。",
    "task.field.attempt": "第几次预约", "task.field.start": "开始", "task.field.end": "结束",
    "task.field.window_start": "时段开始", "task.field.window_end": "时段结束", "task.field.decided_by": "判定依据",
    "task.field.provisional_outcome": "暂定结论", "task.field.via": "方式", "task.field.lat": "纬度",
    "task.field.lon": "经度", "task.field.distance_m": "距地址（米）", "task.field.clock_suspect": "设备时钟可疑",
    "task.field.location_unknown": "地址没有坐标", "task.field.counted": "清点件数", "task.field.expected": "应有件数",
    "task.field.condition": "状况", "task.field.return_task_waybill": "退回运单", "task.field.previous": "原快递员",
    "task.field.applied": "已按现场记录生效", "task.field.status": "状态", "task.field.reviewed_at": "复核时间",
    "task.field.resolved_at": "处理时间", "task.field.place": "代收地点", "task.field.authorization": "授权",
    "task.field.reference": "凭据", "task.field.waited_minutes": "等候（分钟）", "task.field.text": "内容",
    "task.field.gift": "赠品", "task.field.notice_in_time": "迟到通知及时", "task.field.arrived_at": "到达时间",
    "task.field.due": "应收", "task.field.cod_amount": "代收货款", "task.field.upstream_event_id": "上游事件号",
    "task.field.window": "预约时段", "task.field.distance_limit_m": "距离上限（米）", "task.field.flags": "标记",
}
_EN_MORE = {
    "task.type.appointment.kept": "window decided: kept", "task.type.appointment.late": "window decided: late",
    "task.type.appointment.missed": "window decided: missed",
    "task.type.appointment.not_attempted": "window decided: not attempted",
    "task.type.appointment.replaced": "window replaced", "task.type.appointment.review": "window under review",
    "task.type.handover.consent": "consent to leave it", "task.type.handover.consent_withdrawn": "consent withdrawn",
    "task.type.handover.pin_required": "PIN required", "task.type.manifest_updated": "manifest updated",
    "task.actor.system": "system", "task.actor.upstream": "upstream system", "task.actor.courier": "courier",
    "task.actor.staff": "dispatch", "task.actor.customer": "customer",
    "task.op_seq": "device op #{seq}",
    "task.conflict_applied": "Applied as a field fact; dispatch changed the task since and will review it.",
    "task.conflict_recorded": "Dispatch changed the task since; the request was recorded, not applied.",
    "task.field.attempt": "attempt", "task.field.start": "start", "task.field.end": "end",
    "task.field.window_start": "window start", "task.field.window_end": "window end",
    "task.field.decided_by": "decided by", "task.field.provisional_outcome": "provisional outcome",
    "task.field.via": "via", "task.field.lat": "latitude", "task.field.lon": "longitude",
    "task.field.distance_m": "distance (m)", "task.field.clock_suspect": "device clock suspect",
    "task.field.location_unknown": "stop without coordinates", "task.field.counted": "counted",
    "task.field.expected": "expected", "task.field.condition": "condition",
    "task.field.return_task_waybill": "return waybill", "task.field.previous": "previous courier",
    "task.field.applied": "applied as a field fact", "task.field.status": "status",
    "task.field.reviewed_at": "reviewed", "task.field.resolved_at": "resolved", "task.field.place": "place",
    "task.field.authorization": "authorization", "task.field.reference": "reference",
    "task.field.waited_minutes": "waited (minutes)", "task.field.text": "text", "task.field.gift": "gift",
    "task.field.notice_in_time": "notice in time", "task.field.arrived_at": "arrived",
    "task.field.due": "due", "task.field.cod_amount": "cash on delivery", "task.field.upstream_event_id":
    "upstream event", "task.field.window": "window", "task.field.distance_limit_m": "distance limit (m)",
    "task.field.flags": "flags",
}

register({
    "zh": {
        "task.title": "运单 {waybill}", "task.kind": "类型", "task.status": "状态", "task.recipient": "收件人",
        "task.phone": "电话", "task.address": "地址", "task.window": "预约时段", "task.appointment": "预约",
        "task.attempt": "第 {n} 次尝试", "task.promise": "时效承诺", "task.promised_at": "承诺送达",
        "task.courier": "快递员", "task.none": "无", "task.cod": "代收货款", "task.needs_review": "待调度处理",
        "task.timeline": "时间线", "task.when": "发生时间", "task.what": "事件", "task.who": "操作人",
        "task.device_time": "设备时间", "task.received_at": "服务器收到", "task.details": "详情",
        "task.clock_suspect": "设备时钟可疑", "task.op": "操作", "task.receipt": "签收凭证",
        "task.receipt_page": "打开凭证页面", "task.receipt_none": "尚无凭证（交接未完成）。",
        "task.evidence": "照片和签名", "task.signature": "签名", "task.photo": "照片", "task.evidence_none": "没有照片或签名。",
        "task.settle": "待处理事项", "task.settle_none": "没有待处理的冲突或复核。",
        "task.conflict": "冲突：{reason}", "task.resolution": "处理结果", "task.note": "备注", "task.resolve": "处理冲突",
        "task.review": "时段复核：{reason}", "task.outcome": "结论", "task.notice_in_time": "迟到通知确已及时",
        "task.decide": "提交复核结论",
        "task.actions": "操作", "task.reassign": "改派", "task.reassign_to": "改派给", "task.assign": "确认改派",
        "task.cancel": "取消任务", "task.cancel_reason": "取消原因", "task.cancel_submit": "确认取消",
        "task.closed": "任务已结束，不能改派或取消。",
        "task.link": "客户链接", "task.link_none": "当前没有有效的客户链接。", "task.link_issue": "生成客户链接",
        "task.link_reissue": "重新生成（旧链接失效）", "task.link_expires": "有效期至", "task.link_qr": "客户链接二维码",
        "task.done_assigned": "已改派。", "task.done_cancelled": "任务已取消。", "task.done_link": "已生成新的客户链接。",
        "task.done_resolved": "冲突已处理。", "task.done_reviewed": "复核结论已记录。",
        "task.entry.event": "记录", "task.entry.op": "设备操作", "task.entry.scan": "扫描", "task.entry.conflict": "冲突",
        "task.entry.review": "复核", "task.entry.receipt": "凭证",
        "task.type.created": "创建任务", "task.type.assigned": "分派", "task.type.cancelled": "取消",
        "task.type.note": "备注", "task.type.arrived": "到达", "task.type.appointment.contact": "联系客户",
        "task.type.appointment.confirmed": "确认预约", "task.type.appointment.proposed": "提议时段",
        "task.type.appointment.late_notice": "迟到通知", "task.type.appointment.customer_absent": "客户不在",
        "task.type.appointment.reviewed": "复核结论", "task.type.handover.verify_recipient": "核验收件人",
        "task.type.handover.inspect": "验货", "task.type.handover.collect_payment": "收款",
        "task.type.handover.sign": "签收", "task.type.handover.refuse": "拒收",
        "task.type.handover.deliver_alternate": "代收点投递", "task.type.handover.pickup_collect": "揽收",
        "task.type.conflict_resolved": "冲突已处理", "task.type.gift_changed": "赠品变更",
        "task.type.arrived_depot": "到达网点", "task.type.out_for_delivery": "派送中",
        "task.type.handed_over": "已交付", "task.type.returned": "已退回", "task.type.exception": "异常",
        "task.type.delivery": "签收凭证", "task.type.refusal": "拒收凭证", "task.type.pickup": "揽收凭证",
        "task.kd.delivery": "派件", "task.kd.pickup": "揽件", "task.kd.return": "退回",
        "task.ap.unconfirmed": "未确认", "task.ap.confirmed": "已确认", "task.ap.at_risk": "可能迟到",
        "task.ap.late": "迟到", "task.ap.missed": "错过", "task.ap.kept": "按时", "task.ap.not_attempted": "未尝试",
        "task.ap.review": "待复核", "task.ap.replaced": "已替换",
        "task.pr.unknown": "未知", "task.pr.on_track": "正常", "task.pr.at_risk": "临近超时", "task.pr.breached": "已超时",
        "task.pr.kept": "已兑现", "task.pr.missed": "未兑现", "task.pr.closed": "已结束",
        "err_task_not_found": "找不到这个任务。", "err_task_finished": "任务已结束，不能这样操作。",
        "err_courier_inactive": "这个快递员已停用。", "err_task_closed": "任务已结束，不能生成客户链接。",
        "err_conflict_resolved": "这个冲突已经处理过了。", "err_nothing_to_review": "没有需要复核的时段。",
        "task.yes": "是", "task.no": "否",
        "task.field.method": "方式", "task.field.name": "姓名", "task.field.parcel_no": "包裹号", "task.field.source": "来源",
        "task.field.items": "货物", "task.field.customer_accepted": "客户接受", "task.field.amount": "金额",
        "task.field.signer_name": "签收人", "task.field.gift_disclosed": "已告知赠品", "task.field.courier_id": "快递员",
        "task.field.outcome": "结果", "task.field.reason": "原因", "task.field.note": "备注", "task.field.resolution": "处理方式",
        **_ZH_MORE,
    },
    "en": {
        "task.title": "Waybill {waybill}", "task.kind": "Kind", "task.status": "Status", "task.recipient": "Recipient",
        "task.phone": "Phone", "task.address": "Address", "task.window": "Window", "task.appointment": "Appointment",
        "task.attempt": "attempt {n}", "task.promise": "Promise", "task.promised_at": "Promised by",
        "task.courier": "Courier", "task.none": "none", "task.cod": "Cash on delivery",
        "task.needs_review": "Needs dispatch", "task.timeline": "Timeline", "task.when": "When", "task.what": "What",
        "task.who": "Who", "task.device_time": "Device time", "task.received_at": "Server received",
        "task.details": "Details", "task.clock_suspect": "device clock suspect", "task.op": "Op",
        "task.receipt": "Receipt", "task.receipt_page": "Open the receipt page",
        "task.receipt_none": "No receipt yet (the handover is not complete).", "task.evidence": "Photos and signature",
        "task.signature": "Signature", "task.photo": "Photo", "task.evidence_none": "No photos or signature.",
        "task.settle": "To settle", "task.settle_none": "No conflicts or reviews to settle.",
        "task.conflict": "Conflict: {reason}", "task.resolution": "Resolution", "task.note": "Note",
        "task.resolve": "Resolve the conflict", "task.review": "Window under review: {reason}",
        "task.outcome": "Outcome", "task.notice_in_time": "The late notice did come in time",
        "task.decide": "Decide the review", "task.actions": "Actions", "task.reassign": "Reassign",
        "task.reassign_to": "Reassign to", "task.assign": "Reassign", "task.cancel": "Cancel the task",
        "task.cancel_reason": "Reason", "task.cancel_submit": "Cancel the task",
        "task.closed": "The task is finished: it cannot be reassigned or cancelled.",
        "task.link": "Customer link", "task.link_none": "No working customer link.",
        "task.link_issue": "Issue a customer link", "task.link_reissue": "Issue a new one (the old one stops working)",
        "task.link_expires": "Works until", "task.link_qr": "QR code of the customer link",
        "task.done_assigned": "Reassigned.", "task.done_cancelled": "The task is cancelled.",
        "task.done_link": "A new customer link is issued.", "task.done_resolved": "The conflict is resolved.",
        "task.done_reviewed": "The review's outcome is recorded.",
        "task.entry.event": "history", "task.entry.op": "device op", "task.entry.scan": "scan",
        "task.entry.conflict": "conflict", "task.entry.review": "review", "task.entry.receipt": "receipt",
        "task.type.created": "created", "task.type.assigned": "assigned", "task.type.cancelled": "cancelled",
        "task.type.note": "note", "task.type.arrived": "arrived", "task.type.appointment.contact": "contact attempt",
        "task.type.appointment.confirmed": "appointment confirmed", "task.type.appointment.proposed":
        "window proposed", "task.type.appointment.late_notice": "late notice",
        "task.type.appointment.customer_absent": "customer absent", "task.type.appointment.reviewed": "review decided",
        "task.type.handover.verify_recipient": "recipient checked", "task.type.handover.inspect": "inspection",
        "task.type.handover.collect_payment": "payment", "task.type.handover.sign": "signed",
        "task.type.handover.refuse": "refused", "task.type.handover.deliver_alternate": "left at an alternate place",
        "task.type.handover.pickup_collect": "collected", "task.type.conflict_resolved": "conflict resolved",
        "task.type.gift_changed": "gift changed", "task.type.arrived_depot": "arrived at the depot",
        "task.type.out_for_delivery": "out for delivery", "task.type.handed_over": "handed over",
        "task.type.returned": "returned", "task.type.exception": "exception", "task.type.delivery": "delivery receipt",
        "task.type.refusal": "refusal receipt", "task.type.pickup": "pickup receipt",
        "task.kd.delivery": "delivery", "task.kd.pickup": "pickup", "task.kd.return": "return",
        "task.ap.unconfirmed": "unconfirmed", "task.ap.confirmed": "confirmed", "task.ap.at_risk": "at risk",
        "task.ap.late": "late", "task.ap.missed": "missed", "task.ap.kept": "kept", "task.ap.not_attempted":
        "not attempted", "task.ap.review": "under review", "task.ap.replaced": "replaced",
        "task.pr.unknown": "unknown", "task.pr.on_track": "on track", "task.pr.at_risk": "at risk",
        "task.pr.breached": "breached", "task.pr.kept": "kept", "task.pr.missed": "missed", "task.pr.closed": "closed",
        "err_task_not_found": "No such task.", "err_task_finished": "The task is finished; that cannot be done now.",
        "err_courier_inactive": "That courier is inactive.", "err_task_closed": "The task is finished; a link is "
        "for an open task.", "err_conflict_resolved": "The conflict is already resolved.",
        "err_nothing_to_review": "No window is under review.",
        "task.yes": "yes", "task.no": "no",
        "task.field.method": "method", "task.field.name": "name", "task.field.parcel_no": "parcel", "task.field.source": "source",
        "task.field.items": "items", "task.field.customer_accepted": "customer accepted", "task.field.amount": "amount",
        "task.field.signer_name": "signed by", "task.field.gift_disclosed": "gift disclosed", "task.field.courier_id": "courier",
        "task.field.outcome": "outcome", "task.field.reason": "reason", "task.field.note": "note",
        "task.field.resolution": "resolution",
        **_EN_MORE,
    },
})

_DONE = {"assigned", "cancelled", "link", "resolved", "reviewed"}


def _page(task_id: str, status: int = 200):
    """The task's page: the timeline service's answer, the couriers it may go to, its live customer link."""
    story = timeline.task_timeline(task_id=task_id)
    task = story["task"]
    may_act = g.actor.role in DISPATCH
    choices = couriers.get_all(active=True, cursor=None, limit=COURIER_CHOICES)["items"] if may_act else []
    live = customer_links.live_for(task_id=task.id) if may_act else None
    holder = couriers.get(courier_id=task.courier_id) if task.courier_id else None
    done = request.args.get("done")
    answer = render("console/task.html", status=status, story=story, task=task, may_act=may_act, holder=holder,
                    is_open=task.status in OPEN_STATUSES, couriers=[c for c in choices if c.id != task.courier_id],
                    link=live and {"url": customer_links.page_url(token=live[1]), "expires_at": live[0].expires_at},
                    resolutions=CONFLICT_RESOLUTIONS, outcomes=REVIEW_OUTCOMES, label=_label, details=_details,
                    op_code=_op_code, op_detail=_op_detail,
                    messages=messages.for_task(task_id=task.id), done=done if done in _DONE else None)
    # Noted once the page is built: the note commits on its own, which must not expire what the page shows.
    leaks.note_export(actor=g.actor, what="dispatch_task", rows=1)
    return answer


def _label(entry: dict) -> str:
    """What an entry is, in the page language: a review's or a conflict's reason in words, another type's words if
    registered, else the type as recorded."""
    if entry["kind"] in _REASONS:
        return word(_REASONS[entry["kind"]], entry["type"])
    key = f"task.type.{entry['type']}"
    return t(key) if has_text(key) else entry["type"]


# The vocabulary an entry's type comes from, for the kinds whose type is a reason.
_REASONS = {"review": "review_reason", "conflict": "conflict_reason"}


def _op_code(op: dict) -> str:
    """An op's code in words: a conflict's reason, a refusal's registered words, else the code as recorded."""
    if op["status"] == "conflict":
        return word("conflict_reason", op["code"])
    return t(f"err_{op['code']}") if has_text(f"err_{op['code']}") else op["code"]


def _op_detail(entry: dict) -> str:
    """An entry's op's detail in the page language where it has words (a conflict's: applied as a field fact, or
    only recorded), else as the server wrote it."""
    op = entry["op"]
    if op["status"] == "conflict" and entry["kind"] == "conflict":
        return t("task.conflict_applied" if entry["data"].get("applied") else "task.conflict_recorded")
    return op["detail"]


# Data an entry's details leave out: ids the page shows otherwise, or that mean nothing to a person.
_HIDDEN = {"op_id", "photos", "signature", "url", "number", "resolved_by", "reviewed_by", "window_id"}
# Amounts in fen, shown as money.
_AMOUNTS = {"amount", "due", "cod_amount", "paid_amount"}
# People the handheld names (who took the parcel, who signed): masked as the header masks the recipient.
_PERSONS = {"name", "signer_name"}


# Values in words: the vocabularies (server.console.words) a field's value may come from, tried in turn.
_VALUE_WORDS = {"method": ("verify_method", "payment_method"), "outcome": ("attempt_outcome", "window_outcome"),
                "provisional_outcome": ("window_outcome",), "resolution": ("conflict_resolution",),
                "condition": ("item_condition",), "reason": ("refusal_reason",), "decided_by": ("window_decider",),
                "via": ("appointment_via",), "source": ("scan_source",), "status": ("conflict_status", "task_status"),
                "place": ("alternate_place",)}
# A time as the API writes it (ISO 8601 with its offset): shown in the depot's zone, as the page's other times.
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)")


def _in_words(name: str, value):
    """A field's value in the page's words: yes/no for a flag, a vocabulary's word when it has one."""
    if isinstance(value, bool):
        return t("task.yes") if value else t("task.no")
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        return local_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    for vocabulary in _VALUE_WORDS.get(name, ()):
        if has_text(f"word.{vocabulary}.{value}"):
            return word(vocabulary, value)
    return value


def _field(name: str) -> str:
    """A field's name in the page language (as recorded if it has none)."""
    return t(f"task.field.{name}") if has_text(f"task.field.{name}") else name


def _details(entry: dict, names: dict[str, str]) -> list[tuple[str, str]]:
    """An entry's data as (name, value) pairs of plain values, for the details column (ids of people by name,
    field names, flags and vocabulary values in words)."""
    shown = []
    for name, value in entry["data"].items():
        if name in _HIDDEN or value is None or value == [] or value == {}:
            continue
        value = _in_words(name, value)
        if isinstance(value, (dict, list)):
            value = ", ".join(f"{_field(k)}={_in_words(k, v)}" for k, v in value.items()) \
                if isinstance(value, dict) else \
                ", ".join(str(v) if not isinstance(v, dict) else " ".join(f"{_field(k)}={_in_words(k, x)}"
                                                                          for k, x in v.items()) for v in value)
        if name in _AMOUNTS and isinstance(value, int):
            value = money(value)
        value = privacy.surname_masked(str(value)) if name in _PERSONS else names.get(value, value)
        shown.append((_field(name), str(value)))
    return shown


def _form(schema: ma.Schema) -> dict:
    """The posted form read by the API's own schema (a whole number sent as text taken as one); ValidationFailed
    names the fields it refuses."""
    values = {}
    for name, field in schema.fields.items():
        if name in request.form:
            value = request.form[name]
            if isinstance(field, ma.fields.Integer) and value.isascii() and value.isdigit():
                value = int(value)
            values[name] = value
    try:
        return schema.load(values)
    except ma.ValidationError as exc:
        raise ValidationFailed("The form has mistakes: " + "; ".join(
            f"{field}: {' '.join(map(str, texts)) if isinstance(texts, list) else texts}"
            for field, texts in exc.normalized_messages().items()), fields=exc.normalized_messages()) from exc


def _act(task_id: str, done: str, action):
    """Run an action on the task; then back to its page (a refusal is shown on the page, with its status)."""
    tasks.get(task_id=task_id)  # an unknown task is the 404 page, whatever was posted
    try:
        action()
    except DomainError as error:
        apply_keep(error)  # what a refusal leaves behind is kept, as the API's handler does
        flash_error(error)
        return _page(task_id, status=error.status)
    return redirect(url_for("console.task_page", task_id=task_id, done=done), code=303)


@bp.get("/tasks/<task_id>")
@page(*OFFICE)
def task_page(task_id):
    """The task's page."""
    return _page(task_id)


@bp.get("/tasks/<task_id>/attachments/<sha256>")
@page(*OFFICE)
def task_attachment(task_id, sha256):
    """A photo or the signature of the task, from this site (the console's images come from nowhere else)."""
    found, data = timeline.attachment(task_id=task_id, sha256=sha256)
    if data is None:
        response = send_file(found.path, mimetype=found.row.content_type, max_age=0, etag=sha256,
                             as_attachment=found.disposition == "attachment", download_name=found.download_name)
    else:
        response = Response(data, mimetype=found.row.content_type, headers={
            "Content-Disposition": f"{found.disposition}; filename={found.download_name}"})
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/tasks/<task_id>/customer-link/qr.svg")
@page(*DISPATCH)
def task_link_qr(task_id):
    """The QR code of the task's working customer link (404 when none works)."""
    live = customer_links.live_for(task_id=tasks.get(task_id=task_id).id)
    if live is None:
        raise NotFound("The task has no working customer link.", code="link_gone")
    body, mimetype = qr_image(customer_links.page_url(token=live[1]), "svg")
    return Response(body, mimetype=mimetype)


@bp.post("/tasks/<task_id>/assign")
@page(*DISPATCH)
def task_assign(task_id):
    """Reassign the task to an active courier (tasks.assign, as POST /dispatch/tasks/{id}/assign)."""
    return _act(task_id, "assigned", lambda: tasks.assign(actor=g.actor, task_id=task_id,
                                                          **_form(AssignIn())))


@bp.post("/tasks/<task_id>/cancel")
@page(*DISPATCH)
def task_cancel(task_id):
    """Cancel the task with a reason (tasks.cancel, as POST /dispatch/tasks/{id}/cancel)."""
    return _act(task_id, "cancelled", lambda: tasks.cancel(actor=g.actor, task_id=task_id, **_form(CancelIn())))


@bp.post("/tasks/<task_id>/customer-link")
@page(*DISPATCH)
def task_link(task_id):
    """Issue the customer's link, or a new one (customer_links.create, as POST /dispatch/tasks/{id}/customer-link)."""
    return _act(task_id, "link", lambda: customer_links.create(actor=g.actor, task_id=task_id))


@bp.post("/tasks/<task_id>/resolve")
@page(*DISPATCH)
def task_resolve(task_id):
    """Settle one of the task's conflicts, named by the form's conflict_id (oplog.resolve_conflict, as POST
    /dispatch/conflicts/{id}/resolve)."""
    def resolve():
        conflict_id = request.form.get("conflict_id", "")
        entries = timeline.task_timeline(task_id=task_id)["entries"]
        known = {str(e["ref"]): e["ref"] for e in entries if e["kind"] == "conflict"}
        if conflict_id not in known:
            raise NotFound(f"Task {task_id} has no conflict {conflict_id[:20]}.", code="conflict_not_found",
                           fields={"conflict_id": ["Not a conflict of this task."]})
        oplog.resolve_conflict(actor=g.actor, conflict_id=known[conflict_id], **_form(ResolveIn()))
    return _act(task_id, "resolved", resolve)


@bp.post("/tasks/<task_id>/review")
@page(*DISPATCH)
def task_review(task_id):
    """Decide the task's window under review (appointments.decide_review, as POST
    /dispatch/tasks/{id}/appointment/review)."""
    return _act(task_id, "reviewed", lambda: appointments.decide_review(actor=g.actor, task_id=task_id,
                                                                        **_form(ReviewDecisionIn())))
