"""Console pages for quality staff and the office: the complaints and claims queues, the violations review with
appeal decisions and grade overrides, and the KPIs with their chart, CSV and the tasks behind each figure.

Each page gathers what it shows from the services the API routes call (the functions below the views' helpers),
and each form posts to the same service function as its API route, read by the API route's schema.
"""
from datetime import timedelta
from urllib.parse import urlencode

from flask import Response, current_app, g, redirect, render_template, request, send_file, url_for

from schemas.claims import ClaimAssessIn, ClaimCorrectIn, ClaimPayIn, ClaimQuery, ClaimRejectIn
from schemas.complaints import (ComplaintContactIn, ComplaintHandoverIn, ComplaintQuery, ComplaintReopenIn,
                                ComplaintResolveIn, ComplaintRespondIn, ComplaintSatisfactionIn)
from schemas.grade_words import why
from schemas.grades import GradeChangeQuery, LiftIn, OverrideIn
from schemas.kpis import KpiQuery, KpiRange, KpiRowsQuery
from schemas.violations import AppealDecisionIn, ReasonIn, ReviewQuery
from schemas.vocab import (APPEAL_OUTCOMES, CLAIM_ORIGINS, CLAIM_STATUSES, COMPLAINT_CATEGORIES,
                           COMPLAINT_CONTACT_CHANNELS, COMPLAINT_OUTCOMES, COMPLAINT_STATUSES, GRADES, SATISFACTION,
                           VIOLATION_CODES, VIOLATION_STATUSES)
from server.auth import OFFICE
from server.clock import local_zone, utcnow
from server.console import bp
from server.console import parsing
from server.console.auth import page
from server.console.i18n import register, register_nav
from server.errors import NotFound
from server.services import attachments, claims, complaints, grades, kpis, staff, violations

QUALITY = violations.DECIDERS  # the review desk: quality staff and admins (a dispatcher reads a courier's own)
KPI_DAYS = 7  # the period a KPI page opens on: the last week, today included


# --- what each page shows ---------------------------------------------------------------------------------------

def _people() -> dict:
    """Staff by id (names for owners, recorders and deciders)."""
    return {person.id: person for person in staff.get_all()}


def complaint_queue(*, actor, filters: dict) -> dict:
    """The complaints queue: a page of complaints by the filters, and who owns each."""
    return {"page": complaints.get_all(actor=actor, **filters), "people": _people(), "filters": filters}


def complaint_view(*, actor, complaint_id: int) -> dict:
    """A complaint with its owner, handovers, contacts and reopenings, and what the caller may do with it."""
    complaint = complaints.get(complaint_id=complaint_id)
    people = _people()
    owned_by_other = complaint.owner_id not in (None, actor.id)
    return {
        "complaint": complaint, "people": people,
        # Whom it may go to: the service checks again (active office staff, not its owner).
        "colleagues": sorted((p for p in people.values() if p.active and p.role in OFFICE and p.id != complaint.owner_id),
                             key=lambda p: p.username),
        "may_act": not owned_by_other or actor.role in complaints.OVERSEERS,
        "may_hand_over": complaint.owner_id == actor.id or actor.role in complaints.HANDOVER_OVERRIDE,
        "may_decide": actor.role in complaints.DECIDERS,
        "outcomes": COMPLAINT_OUTCOMES if actor.role in complaints.DECIDERS else ("withdrawn",),
    }


def claim_queue(*, filters: dict) -> dict:
    """The claims queue: a page of claims by the filters."""
    return {"page": claims.get_all(**filters), "filters": filters}


def claim_view(*, actor, claim_id: int) -> dict:
    """A claim with its entries and evidence, and the steps the caller's role takes."""
    return {"claim": claims.read(claim_id=claim_id), "people": _people(),
            "may_assess": actor.role in claims.ASSESSORS, "may_pay": actor.role in claims.PAYERS}


def violation_list(*, filters: dict) -> dict:
    """Quality's review list by the filters."""
    return {"page": violations.review_list(**filters), "filters": filters}


def violation_view(*, violation_id: int) -> dict:
    """A violation with its appeal, and the courier's grade now."""
    violation = violations.get(violation_id=violation_id)
    return {"violation": violation, "people": _people(), "grade": grades.evaluate(courier_id=violation.courier_id)}


def grade_view(*, courier_id: str, cursor: int | None = None) -> dict:
    """A courier's grade as the rules give it beside the one on record, its override, and its history in words."""
    grade = grades.evaluate(courier_id=courier_id)
    history = grades.history(courier_id=courier_id, cursor=cursor)
    return {"grade": grade, "why": why(grade["reasons"], grade["score"]), "history": history,
            "history_why": {row.id: why(row.reasons, row.score) for row in history["items"]},
            "people": _people(), "grades": GRADES,
            "default_until": utcnow() + timedelta(days=_grade_window_days())}


def _grade_window_days() -> int:
    """How long an override holds unless told (the service's default: one grade window)."""
    return current_app.config["GRADE_WINDOW_DAYS"]


def _today():
    """Today in the depot's zone."""
    return utcnow().astimezone(local_zone()).date()


def kpi_view(*, start, end, group_by: str | None) -> dict:
    """The KPI report for the period: every figure per group and in total, each linked to the rows behind it."""
    def link(name: str, group: str | None) -> str:
        args = {"from": start.isoformat(), "to": end.isoformat()}
        if group_by and group is not None:
            args.update(group_by=group_by, group=group)
        return url_for("console.kpi_rows", figure=name) + "?" + urlencode(args)
    report = kpis.report(start=start, end=end, group_by=group_by, link=link)
    return {"report": report, "groups": [*report["groups"], report["total"]], "figures": list(kpis.BY_NAME),
            "units": {name: figure.unit for name, figure in kpis.BY_NAME.items()}}


def kpi_rows_view(*, figure: str, query: dict) -> dict:
    """The rows behind one figure (tasks, complaints, claims, ...), a page at a time, each linked where it lives."""
    rows = kpis.rows_behind(name=figure, start=query["from_"], end=query["to"], group_by=query["group_by"],
                            group=query["group"], cursor=query["cursor"], limit=query["limit"])
    return {"rows": rows, "description": kpis.figure(figure).description, "query": query}


# --- the language -------------------------------------------------------------------------------------------------

register({
    "zh": {
        "nav_complaints": "投诉", "nav_claims": "理赔", "nav_violations": "违规复核", "nav_kpis": "服务指标",
        "complaints": "投诉队列", "complaint": "投诉", "claims": "理赔队列", "claim": "理赔",
        "violations": "违规复核", "violation": "违规", "kpis": "服务质量指标", "grade": "服务等级",
        "filter": "筛选", "any": "全部", "owner": "负责人", "owner_none": "无人负责", "owner_me": "我负责的",
        "overdue": "超时", "overdue_yes": "已超时", "overdue_no": "未超时", "status": "状态", "category": "类别",
        "received": "收到时间", "subject": "对象", "courier": "快递员", "task": "任务", "channel": "渠道",
        "text": "内容", "none": "无", "next_page": "下一页", "nothing": "没有记录。", "reference": "编号",
        "reason": "原因", "note": "备注", "send": "提交", "yes": "是", "no": "否",
        "response_due": "首次回复期限", "resolution_due": "处理期限", "update_due": "下次进展告知期限",
        "overdue_response": "首次回复超时", "overdue_resolution": "处理超时", "overdue_update": "进展告知超时",
        "take": "认领", "take_help": "这条投诉无人负责：认领后由你负责到底（首问负责制）。",
        "hand_over": "转交", "hand_over_to": "转交给", "owned_by_other": "这条投诉由他人负责；负责人、质控或管理员可以处理。",
        "respond": "首次回复", "first_response": "首次回复", "contacts": "联系记录", "add_contact": "记录一次联系",
        "contacted_at": "联系时间", "resolve": "结案", "outcome": "结果", "resolution": "处理结果",
        "reopen": "重新打开", "reopenings": "重新打开记录", "satisfaction": "客户满意度", "record_satisfaction": "记录满意度",
        "handovers": "转交记录", "from": "从", "to": "到", "by": "经办人", "photo": "客户照片", "photo_alt": "客户随投诉提交的照片",
        "open_photo": "打开原图",
        "st_open": "待处理", "st_responded": "已回复", "st_resolved": "已结案", "st_reopened": "重新打开",
        "out_upheld": "成立", "out_rejected": "不成立", "out_withdrawn": "撤诉",
        "cat_impolite": "态度", "cat_dispute": "纠纷", "cat_late": "延误", "cat_surcharge": "私自加价",
        "cat_gift_withheld": "赠品未告知", "cat_damage": "破损", "cat_loss": "丢失", "cat_other": "其他",
        "ch_phone": "电话", "ch_sms": "短信", "ch_email": "邮件", "ch_in_person": "当面", "ch_app": "App", "ch_web": "网页",
        "ch_regulator": "监管部门", "ch_customer_page": "客户页面", "ch_receipt_page": "签收单页面", "ch_rating": "差评回访",
        "sat_satisfied": "满意", "sat_neutral": "一般", "sat_dissatisfied": "不满意",
        "claimed": "索赔金额", "amount": "应赔金额", "paid": "已付金额", "origin": "来源", "parcel": "包裹",
        "opened": "提出时间", "due": "下一步期限", "entries": "处理记录", "assess": "定损", "loss": "实际损失（元）",
        "approve": "批准", "reject": "拒赔", "pay": "记录付款", "payment_reference": "付款凭证号", "rule": "赔付规则",
        "cl_opened": "待定损", "cl_assessed": "已定损", "cl_approved": "已批准", "cl_paid": "已赔付", "cl_rejected": "已拒赔",
        "or_exception": "异常", "or_refusal": "拒收", "or_complaint": "投诉", "or_customer": "客户", "or_dispatch": "调度",
        "code": "违规代码", "severity": "严重程度", "occurred": "发生时间", "clock_suspect": "设备时钟可疑",
        "appeal": "申诉", "decide_appeal": "裁定申诉", "uphold": "维持", "void": "撤销", "confirm": "确认违规",
        "vs_open": "待复核", "vs_appealed": "申诉中", "vs_upheld": "成立", "vs_voided": "已撤销",
        "ap_upheld": "维持", "ap_voided": "撤销", "ap_open": "待裁定",
        "grade_rules": "按规则", "grade_recorded": "记录等级", "score": "得分", "override": "人工设定等级",
        "override_until": "有效期至", "set_override": "设定等级", "lift": "解除人工设定", "history": "等级变更记录",
        "why": "原因", "consequences": "后果",
        "period_from": "开始日期", "period_to": "结束日期", "group_by": "分组", "by_courier": "按快递员",
        "by_depot": "按网点", "by_day": "按天", "no_group": "不分组", "show": "查看", "download_csv": "下载 CSV",
        "chart": "每日趋势图", "chart_alt": "所选日期内各项指标的每日趋势", "figure": "指标", "total": "合计",
        "rows_behind": "指标明细", "counted": "计入分子", "unknown": "事实缺失", "value": "值",
        "done_taken": "已认领。", "done_handed_over": "已转交。", "done_responded": "已记录首次回复。",
        "done_contacted": "已记录联系。", "done_resolved": "已结案。", "done_reopened": "已重新打开。",
        "done_rated": "已记录满意度。", "done_assessed": "已定损。", "done_approved": "已批准。",
        "done_rejected": "已拒赔。", "done_paid": "已记录付款。", "done_corrected": "已更正金额。", "correct": "更正金额", "correct_entry": "要更正的记录", "new_amount": "正确金额（元）", "done_decided": "已裁定。", "done_voided": "已撤销。",
        "done_confirmed": "已确认。", "done_overridden": "已设定等级。", "done_lifted": "已解除。", "when": "时间",
        "fig_on_time_delivery": "派送准时率", "fig_on_time_pickup": "取件准时率", "fig_assignment_to_signoff": "派单到签收平均时长",
        "fig_promised_time_achievement": "承诺时效达成率", "fig_collect_to_signoff": "揽收到签收平均时长",
        "fig_delivered_to_address": "按址投递率", "fig_signoff_compliance": "签收规范率",
        "fig_exception_notification": "异常提前告知率", "fig_damage_rate": "破损率", "fig_short_at_door_rate": "短少率",
        "fig_loss_rate": "丢失率", "fig_satisfaction_mean": "平均评分", "fig_satisfaction_share": "满意率",
        "fig_complaint_response_on_time": "投诉及时回复率", "fig_complaint_handling_time": "投诉平均处理时长",
        "fig_first_contact_resolution": "首次联系解决率", "fig_complaint_satisfaction": "投诉处理满意率",
        "fig_tracking_timeliness": "轨迹及时率", "fig_tracking_accuracy": "轨迹准确率", "fig_claim_time": "理赔及时率",
        "fig_claim_time_to_pay": "理赔平均时长", "fig_pre_job_training_pass_rate": "岗前培训合格率",
        "fig_periodic_training_coverage": "定期培训覆盖率", "fig_claim_accuracy": "理赔准确率", "fig_leak_incidents": "信息泄露事件数",
    },
    "en": {
        "nav_complaints": "Complaints", "nav_claims": "Claims", "nav_violations": "Violations", "nav_kpis": "KPIs",
        "complaints": "Complaints queue", "complaint": "Complaint", "claims": "Claims queue", "claim": "Claim",
        "violations": "Violations review", "violation": "Violation", "kpis": "Service-quality KPIs", "grade": "Grade",
        "filter": "Filter", "any": "Any", "owner": "Owner", "owner_none": "Nobody's", "owner_me": "Mine",
        "overdue": "Overdue", "overdue_yes": "Overdue", "overdue_no": "Not overdue", "status": "Status",
        "category": "Category", "received": "Received", "subject": "About", "courier": "Courier", "task": "Task",
        "channel": "Channel", "text": "Text", "none": "None", "next_page": "Next page", "nothing": "Nothing here.",
        "reference": "Reference", "reason": "Reason", "note": "Note", "send": "Send", "yes": "Yes", "no": "No",
        "response_due": "First response due", "resolution_due": "Resolution due", "update_due": "Next update due",
        "overdue_response": "response late", "overdue_resolution": "resolution late", "overdue_update": "update late",
        "take": "Take it", "take_help": "Nobody owns this complaint: take it and it is yours to the end.",
        "hand_over": "Hand over", "hand_over_to": "Hand over to",
        "owned_by_other": "Another staff member owns this complaint; its owner, quality staff or an admin act on it.",
        "respond": "First response", "first_response": "First response", "contacts": "Contacts",
        "add_contact": "Record a contact", "contacted_at": "When", "resolve": "Resolve", "outcome": "Outcome",
        "resolution": "Resolution", "reopen": "Reopen", "reopenings": "Reopenings", "satisfaction": "Satisfaction",
        "record_satisfaction": "Record satisfaction", "handovers": "Handovers", "from": "From", "to": "To",
        "by": "By", "photo": "Customer's photo", "photo_alt": "The photo the customer attached",
        "open_photo": "Open the photo",
        "st_open": "Open", "st_responded": "Responded", "st_resolved": "Resolved", "st_reopened": "Reopened",
        "out_upheld": "Upheld", "out_rejected": "Rejected", "out_withdrawn": "Withdrawn",
        "cat_impolite": "Impolite", "cat_dispute": "Dispute", "cat_late": "Late", "cat_surcharge": "Surcharge",
        "cat_gift_withheld": "Gift withheld", "cat_damage": "Damage", "cat_loss": "Loss", "cat_other": "Other",
        "ch_phone": "Phone", "ch_sms": "SMS", "ch_email": "Email", "ch_in_person": "In person", "ch_app": "App",
        "ch_web": "Web", "ch_regulator": "Regulator", "ch_customer_page": "Customer page",
        "ch_receipt_page": "Receipt page", "ch_rating": "Low rating",
        "sat_satisfied": "Satisfied", "sat_neutral": "Neutral", "sat_dissatisfied": "Dissatisfied",
        "claimed": "Claimed", "amount": "Amount owed", "paid": "Paid", "origin": "Origin", "parcel": "Parcel",
        "opened": "Opened", "due": "Next step due", "entries": "Entries", "assess": "Assess",
        "loss": "Actual loss (yuan)", "approve": "Approve", "reject": "Reject", "pay": "Record payment",
        "payment_reference": "Payment reference", "rule": "Rule",
        "cl_opened": "Opened", "cl_assessed": "Assessed", "cl_approved": "Approved", "cl_paid": "Paid",
        "cl_rejected": "Rejected",
        "or_exception": "Exception", "or_refusal": "Refusal", "or_complaint": "Complaint", "or_customer": "Customer",
        "or_dispatch": "Dispatch",
        "code": "Code", "severity": "Severity", "occurred": "Occurred", "clock_suspect": "Suspect clock",
        "appeal": "Appeal", "decide_appeal": "Decide the appeal", "uphold": "Uphold", "void": "Void",
        "confirm": "Confirm", "vs_open": "Open", "vs_appealed": "Appealed", "vs_upheld": "Upheld",
        "vs_voided": "Voided", "ap_upheld": "Upheld", "ap_voided": "Voided", "ap_open": "Open",
        "grade_rules": "By the rules", "grade_recorded": "On record", "score": "Score", "override": "Set by hand",
        "override_until": "Until", "set_override": "Set the grade", "lift": "Lift the override",
        "history": "Grade history", "why": "Why", "consequences": "Consequences",
        "period_from": "From", "period_to": "To", "group_by": "Group by", "by_courier": "Courier",
        "by_depot": "Depot", "by_day": "Day", "no_group": "No grouping", "show": "Show",
        "download_csv": "Download CSV", "chart": "Daily trend", "chart_alt": "Each figure per day over the dates",
        "figure": "Figure", "total": "Total", "rows_behind": "Behind the figure", "counted": "Counted",
        "unknown": "Fact missing", "value": "Value",
        "done_taken": "Taken.", "done_handed_over": "Handed over.", "done_responded": "First response recorded.",
        "done_contacted": "Contact recorded.", "done_resolved": "Resolved.", "done_reopened": "Reopened.",
        "done_rated": "Satisfaction recorded.", "done_assessed": "Assessed.", "done_approved": "Approved.",
        "done_rejected": "Rejected.", "done_paid": "Payment recorded.", "done_corrected": "Amount corrected.", "correct": "Correct an amount", "correct_entry": "The entry to correct", "new_amount": "Right amount (yuan)", "done_decided": "Decided.",
        "done_voided": "Voided.", "done_confirmed": "Confirmed.", "done_overridden": "Grade set.",
        "done_lifted": "Override lifted.", "when": "When",
        "fig_on_time_delivery": "On-time delivery", "fig_on_time_pickup": "On-time pickup",
        "fig_assignment_to_signoff": "Assignment to sign-off",
        "fig_promised_time_achievement": "Promised time achieved",
        "fig_collect_to_signoff": "Collection to sign-off", "fig_delivered_to_address": "Delivered to the address",
        "fig_signoff_compliance": "Sign-off compliance", "fig_exception_notification": "Exceptions notified",
        "fig_damage_rate": "Damage rate", "fig_short_at_door_rate": "Short at the door",
        "fig_loss_rate": "Loss rate", "fig_satisfaction_mean": "Mean rating",
        "fig_satisfaction_share": "Satisfied share", "fig_complaint_response_on_time": "Complaints answered in time",
        "fig_complaint_handling_time": "Complaint handling time",
        "fig_first_contact_resolution": "First-contact resolution",
        "fig_complaint_satisfaction": "Complaint satisfaction", "fig_tracking_timeliness": "Tracking timeliness",
        "fig_tracking_accuracy": "Tracking accuracy", "fig_claim_time": "Claims in time",
        "fig_claim_time_to_pay": "Claim opened to paid",
        "fig_pre_job_training_pass_rate": "Pre-job training pass rate",
        "fig_periodic_training_coverage": "Periodic training coverage", "fig_claim_accuracy": "Claim accuracy",
        "fig_leak_incidents": "Information-leak incidents",
    },
})
register_nav("console.complaint_queue", "nav_complaints", OFFICE)
register_nav("console.claim_queue", "nav_claims", OFFICE)
register_nav("console.violation_list", "nav_violations", QUALITY)
register_nav("console.kpi_page", "nav_kpis", OFFICE)


def _done(endpoint: str, done: str, **values):
    """Post/redirect/get: back to the page, saying what was done."""
    return redirect(url_for(endpoint, done=done, **values), code=303)


# --- complaints ---------------------------------------------------------------------------------------------------

@bp.get("/complaints")
@page(*OFFICE)
def complaint_queue_page():
    """The complaints queue: unowned (owner=none) or mine, overdue with the reasons, by status and category."""
    view = complaint_queue(actor=g.actor, filters=parsing.query(ComplaintQuery))
    return render_template("console/quality/complaints.html", **view, statuses=COMPLAINT_STATUSES,
                           categories=COMPLAINT_CATEGORIES, next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/complaints/<int:complaint_id>")
@page(*OFFICE)
def complaint_page(complaint_id):
    """A complaint: its owner and deadlines, contacts, handovers, reopenings, the customer's photo, and the forms."""
    return render_template("console/quality/complaint.html", **complaint_view(actor=g.actor, complaint_id=complaint_id),
                           channels=COMPLAINT_CONTACT_CHANNELS, satisfactions=SATISFACTION)


@bp.get("/complaints/<int:complaint_id>/photo")
@page(*OFFICE)
def complaint_photo(complaint_id):
    """The photo the customer attached, as staff download any attachment (never run, only shown)."""
    complaint = complaints.get(complaint_id=complaint_id)
    if complaint.photo_sha256 is None:
        raise NotFound(f"Complaint {complaint_id} has no photo.", code="photo_not_found")
    found = attachments.download(sha256=complaint.photo_sha256)
    if found.url is not None:
        response = redirect(found.url, code=302)
        response.headers["Cache-Control"] = "private, no-store"  # the signed URL expires
        return response
    response = send_file(found.path, mimetype=found.row.content_type, max_age=0, etag=found.row.sha256,
                         as_attachment=found.disposition == "attachment", download_name=found.download_name)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _complaint_action(complaint_id: int, done: str):
    """Back to the complaint's page, saying what was done."""
    return _done("console.complaint_page", done, complaint_id=complaint_id)


@bp.post("/complaints/<int:complaint_id>/take")
@page(*OFFICE)
def complaint_take(complaint_id):
    """Take an unowned complaint."""
    complaints.take(actor=g.actor, complaint_id=complaint_id)
    return _complaint_action(complaint_id, "taken")


@bp.post("/complaints/<int:complaint_id>/handover")
@page(*OFFICE)
def complaint_hand_over(complaint_id):
    """Hand the complaint to a named colleague with the reason."""
    complaints.hand_over(actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintHandoverIn))
    return _complaint_action(complaint_id, "handed_over")


@bp.post("/complaints/<int:complaint_id>/respond")
@page(*OFFICE)
def complaint_respond(complaint_id):
    """Record the first response to the customer."""
    complaints.respond(actor=g.actor, complaint_id=complaint_id, text=parsing.form(ComplaintRespondIn)["text"])
    return _complaint_action(complaint_id, "responded")


@bp.post("/complaints/<int:complaint_id>/contacts")
@page(*OFFICE)
def complaint_contact(complaint_id):
    """Record a contact with the customer (a progress update)."""
    complaints.add_contact(actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintContactIn))
    return _complaint_action(complaint_id, "contacted")


@bp.post("/complaints/<int:complaint_id>/resolve")
@page(*OFFICE)
def complaint_resolve(complaint_id):
    """Resolve the complaint with its outcome and a note."""
    complaints.resolve(actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintResolveIn))
    return _complaint_action(complaint_id, "resolved")


@bp.post("/complaints/<int:complaint_id>/reopen")
@page(*OFFICE)
def complaint_reopen(complaint_id):
    """The customer brought a resolved complaint back."""
    complaints.reopen(actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintReopenIn))
    return _complaint_action(complaint_id, "reopened")


@bp.post("/complaints/<int:complaint_id>/satisfaction")
@page(*OFFICE)
def complaint_satisfaction(complaint_id):
    """Record the customer's satisfaction with the outcome."""
    complaints.rate(actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintSatisfactionIn))
    return _complaint_action(complaint_id, "rated")


# --- claims -------------------------------------------------------------------------------------------------------

@bp.get("/claims")
@page(*OFFICE)
def claim_queue_page():
    """The claims queue by status, origin and overdue next step."""
    view = claim_queue(filters=parsing.query(ClaimQuery))
    return render_template("console/quality/claims.html", **view, statuses=CLAIM_STATUSES, origins=CLAIM_ORIGINS,
                           next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/claims/<int:claim_id>")
@page(*OFFICE)
def claim_page(claim_id):
    """A claim: its parcel, entries, evidence, and the step its status waits for."""
    return render_template("console/quality/claim.html", **claim_view(actor=g.actor, claim_id=claim_id))


@bp.post("/claims/<int:claim_id>/assess")
@page(*claims.ASSESSORS)
def claim_assess(claim_id):
    """Assess the claim from the actual loss found (typed in yuan)."""
    data = parsing.form(ClaimAssessIn, loss_amount=parsing.fen("loss_amount"))
    claims.assess(actor=g.actor, claim_id=claim_id, **data)
    return _done("console.claim_page", "assessed", claim_id=claim_id)


@bp.post("/claims/<int:claim_id>/approve")
@page(*claims.ASSESSORS)
def claim_approve(claim_id):
    """Approve the assessed claim."""
    claims.approve(actor=g.actor, claim_id=claim_id)
    return _done("console.claim_page", "approved", claim_id=claim_id)


@bp.post("/claims/<int:claim_id>/reject")
@page(*claims.ASSESSORS)
def claim_reject(claim_id):
    """Reject the claim with the reason."""
    claims.reject(actor=g.actor, claim_id=claim_id, **parsing.form(ClaimRejectIn))
    return _done("console.claim_page", "rejected", claim_id=claim_id)


@bp.post("/claims/<int:claim_id>/pay")
@page(*claims.PAYERS)
def claim_pay(claim_id):
    """Record the payment of the approved claim."""
    claims.pay(actor=g.actor, claim_id=claim_id, **parsing.form(ClaimPayIn))
    return _done("console.claim_page", "paid", claim_id=claim_id)


@bp.post("/claims/<int:claim_id>/corrections")
@page(*claims.PAYERS)
def claim_correct(claim_id):
    """Correct the amount an assessment or a payment fixed (typed in yuan): a new entry naming it."""
    claims.correct(actor=g.actor, claim_id=claim_id, **parsing.form(ClaimCorrectIn, entry_id=parsing.whole("entry_id"),
                                                                   amount=parsing.fen("amount")))
    return _done("console.claim_page", "corrected", claim_id=claim_id)


# --- violations and grades ------------------------------------------------------------------------------------------

@bp.get("/violations")
@page(*QUALITY)
def violation_list_page():
    """Quality's review list: by status, courier, code and a suspect clock."""
    view = violation_list(filters=parsing.query(ReviewQuery))
    return render_template("console/quality/violations.html", **view, statuses=VIOLATION_STATUSES,
                           codes=VIOLATION_CODES, next_page=parsing.next_page(view["page"]["next_cursor"]))


@bp.get("/violations/<int:violation_id>")
@page(*QUALITY)
def violation_page(violation_id):
    """A violation, its evidence and appeal, with the decisions quality takes."""
    return render_template("console/quality/violation.html", **violation_view(violation_id=violation_id),
                           appeal_outcomes=APPEAL_OUTCOMES)


@bp.post("/violations/<int:violation_id>/appeal/decide")
@page(*violations.DECIDERS)
def violation_decide(violation_id):
    """Decide the appeal: the violation upheld, or voided."""
    violations.decide_appeal(actor=g.actor, violation_id=violation_id, **parsing.form(AppealDecisionIn))
    return _done("console.violation_page", "decided", violation_id=violation_id)


@bp.post("/violations/<int:violation_id>/void")
@page(*violations.DECIDERS)
def violation_void(violation_id):
    """Void the violation with the reason."""
    violations.void(actor=g.actor, violation_id=violation_id, **parsing.form(ReasonIn))
    return _done("console.violation_page", "voided", violation_id=violation_id)


@bp.post("/violations/<int:violation_id>/confirm")
@page(*violations.DECIDERS)
def violation_confirm(violation_id):
    """Confirm an open violation: it stands."""
    violations.confirm(actor=g.actor, violation_id=violation_id, **parsing.form(ReasonIn))
    return _done("console.violation_page", "confirmed", violation_id=violation_id)


@bp.get("/couriers/<courier_id>/grade")
@page(*QUALITY)
def courier_grade_page(courier_id):
    """A courier's grade: the rules' and the recorded one, the override in force, and the history in words."""
    return render_template("console/quality/grade.html",
                           **grade_view(courier_id=courier_id, cursor=parsing.query(GradeChangeQuery)["cursor"]))


@bp.post("/couriers/<courier_id>/grade/override")
@page(*QUALITY)
def courier_grade_override(courier_id):
    """Set the courier's grade by hand with a reason, until a time (typed in the depot's zone)."""
    grades.override(actor=g.actor, courier_id=courier_id,
                    **parsing.form(OverrideIn, until=parsing.local_time("until")))
    return _done("console.courier_grade_page", "overridden", courier_id=courier_id)


@bp.post("/couriers/<courier_id>/grade/override/lift")
@page(*QUALITY)
def courier_grade_lift(courier_id):
    """Lift the override in force."""
    grades.lift_override(actor=g.actor, courier_id=courier_id, **parsing.form(LiftIn))
    return _done("console.courier_grade_page", "lifted", courier_id=courier_id)


# --- KPIs -----------------------------------------------------------------------------------------------------------

def _period(schema) -> dict:
    """The page's dates (the last KPI_DAYS days, today included, unless given) and its other arguments."""
    args = {key: value for key, value in request.args.items() if value.strip() != ""}
    if "from" not in args and "to" not in args:
        today = _today()
        args.update({"from": (today - timedelta(days=KPI_DAYS - 1)).isoformat(), "to": today.isoformat()})
    return parsing.load_args(schema, args)


@bp.get("/kpis")
@page(*OFFICE)
def kpi_page():
    """The figures for a period (grouped or not) with the daily trend chart, the CSV, and each figure's rows."""
    query = _period(KpiQuery)
    view = kpi_view(start=query["from_"], end=query["to"], group_by=query["group_by"])
    dates = {"from": query["from_"].isoformat(), "to": query["to"].isoformat()}
    return render_template("console/quality/kpis.html", **view, query=query, dates=dates,
                           csv_url=url_for("console.kpi_csv", **dates,
                                           **({"group_by": query["group_by"]} if query["group_by"] else {})),
                           chart_url=url_for("console.kpi_chart", **dates))


@bp.get("/kpis.csv")
@page(*OFFICE)
def kpi_csv():
    """The report as CSV (what GET /reports/kpis?format=csv answers)."""
    query = _period(KpiQuery)
    report = kpis.report(start=query["from_"], end=query["to"], group_by=query["group_by"])
    name = f"kpis-{query['from_'].isoformat()}-{query['to'].isoformat()}.csv"
    return Response(kpis.as_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}", "Cache-Control": "no-store"})


@bp.get("/kpis/chart.png")
@page(*OFFICE)
def kpi_chart():
    """The daily trend chart (what GET /reports/kpis/chart.png draws)."""
    query = _period(KpiRange)
    return Response(kpis.chart(start=query["from_"], end=query["to"]), mimetype="image/png",
                    headers={"Cache-Control": "no-store"})


@bp.get("/kpis/<figure>")
@page(*OFFICE)
def kpi_rows(figure):
    """The rows behind one figure, each linked to its page."""
    view = kpi_rows_view(figure=figure, query=_period(KpiRowsQuery))
    return render_template("console/quality/kpi_rows.html", **view, figure=figure,
                           next_page=parsing.next_page(view["rows"]["next_cursor"]))
