"""Console pages for quality staff and the office: the complaints and claims queues, the violations review with
appeal decisions and grade overrides, and the KPIs with their chart, CSV and the tasks behind each figure.

Each page gathers what it shows from the services the API routes call (the functions below the views' helpers),
and each form posts to the same service function as its API route, read by the API route's schema.
"""
from datetime import timedelta
from urllib.parse import urlencode

from flask import Response, current_app, g, redirect, request, send_file, url_for

from schemas.claims import ClaimAssessIn, ClaimCorrectIn, ClaimPayIn, ClaimQuery, ClaimRejectIn
from schemas.complaints import (ComplaintContactIn, ComplaintHandoverIn, ComplaintQuery, ComplaintReopenIn,
                                ComplaintResolveIn, ComplaintRespondIn, ComplaintSatisfactionIn)
from schemas.grades import GradeChangeQuery, LiftIn, OverrideIn
from schemas.kpis import KpiQuery, KpiRange, KpiRowsQuery
from schemas.violations import AppealDecisionIn, ReasonIn, ReviewQuery, ViolationOut
from schemas.vocab import (APPEAL_OUTCOMES, CLAIM_ORIGINS, CLAIM_STATUSES, COMPLAINT_CATEGORIES,
                           COMPLAINT_CONTACT_CHANNELS, COMPLAINT_OUTCOMES, COMPLAINT_STATUSES, GRADES, SATISFACTION,
                           VIOLATION_CODES, VIOLATION_STATUSES)
from server import csvout
from schemas.violations import VIOLATION_CSV_COLUMNS as VIOLATION_COLUMNS
from server.auth import OFFICE
from server.clock import local_zone, utcnow
from server.console import bp, parsing, register_nav
from server.console.auth import page, render
from server.console.i18n import register, t
from server.console.words import word
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


def why(reasons: list[dict], score: int | None = None, people: dict | None = None) -> str:
    """A grade's reasons in the page language (the words schemas.grade_words gives the handheld, in Chinese or
    English here): staff's doing first, then what the rules counted; codes and severities in words."""
    people = people or {}

    def by(value):
        return people[value].username if value in people else (value or t("q_why_rule"))
    parts = []
    for r in reasons:
        code = r.get("code")
        if code == "override":
            rules = ", ".join(str(part) for part in (r.get("rules_grade"), score) if part is not None)
            parts.append(t("q_why_override", grade=r.get("grade"), by=by(r.get("by")), until=r.get("until"),
                           reason=r.get("reason"), rules=rules or t("q_why_unrecorded")))
        elif code == "override_lifted":
            parts.append(t("q_why_lifted", grade=r.get("grade"), by=by(r.get("by")), reason=r.get("reason")))
        elif code == "override_ended":
            parts.append(t("q_why_ended", grade=r.get("grade"), until=r.get("until")))
        elif code == "violation_voided":
            parts.append(t("q_why_voided", id=r.get("violation_id"), what=word("violation", r.get("violation_code")),
                           by=by(r.get("by")), reason=r.get("reason")))
        elif code == "violations":
            parts.append(t("q_why_violations", count=r.get("count"), what=word("violation", r.get("violation_code")),
                           severity=word("severity", r.get("severity")), points=r.get("points")))
        elif code == "on_time_rate" and r.get("counted"):
            parts.append(t("q_why_on_time", rate=r.get("rate_percent"), target=r.get("target_percent"),
                           points=r.get("points")))
        elif code == "low_ratings":
            parts.append(t("q_why_low", low=r.get("low"), points=r.get("points")))
        elif code == "critical_violation":
            parts.append(t("q_why_critical"))
    return t("q_why_sep").join(parts)


def consequences(values: dict) -> list[str]:
    """What a grade entails (the settings' GRADE_CONSEQUENCES), in words."""
    shown = []
    for key, value in values.items():
        if isinstance(value, bool):
            shown.append(f"{t('q_cq_' + key)}{t('q_why_colon')}{t('q_yes') if value else t('q_no')}")
        else:
            shown.append(f"{t('q_cq_' + key)}{t('q_why_colon')}{value}")
    return shown


def grade_view(*, courier_id: str, cursor: int | None = None) -> dict:
    """A courier's grade as the rules give it beside the one on record, its override, and its history in words."""
    grade = grades.evaluate(courier_id=courier_id)
    history = grades.history(courier_id=courier_id, cursor=cursor)
    people = _people()
    return {"grade": grade, "why": why(grade["reasons"], grade["score"], people), "history": history,
            "history_why": {row.id: why(row.reasons, row.score, people) for row in history["items"]},
            "consequences": consequences(grade["consequences"] or {}), "people": people, "grades": GRADES,
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
        "q_nav_complaints": "投诉", "q_nav_claims": "理赔", "q_nav_violations": "违规复核", "q_nav_kpis": "服务指标",
        "q_complaints": "投诉队列", "q_complaint": "投诉", "q_claims": "理赔队列", "q_claim": "理赔",
        "q_violations": "违规复核", "q_violation": "违规", "q_kpis": "服务质量指标", "q_grade": "服务等级",
        "q_filter": "筛选", "q_any": "全部", "q_owner": "负责人", "q_owner_none": "无人负责", "q_owner_me": "我负责的",
        "q_overdue": "超时", "q_overdue_yes": "已超时", "q_overdue_no": "未超时", "q_status": "状态", "q_category": "类别",
        "q_received": "收到时间", "q_subject": "对象", "q_courier": "快递员", "q_task": "任务", "q_channel": "渠道",
        "q_text": "内容", "q_none": "无", "q_next_page": "下一页", "q_nothing": "没有记录。", "q_reference": "编号",
        "q_reason": "原因", "q_note": "备注", "q_send": "提交", "q_yes": "是", "q_no": "否",
        "q_response_due": "首次回复期限", "q_resolution_due": "处理期限", "q_update_due": "下次进展告知期限",
        "q_overdue_response": "首次回复超时", "q_overdue_resolution": "处理超时", "q_overdue_update": "进展告知超时",
        "q_take": "认领", "q_take_help": "这条投诉无人负责：认领后由你负责到底（首问负责制）。",
        "q_hand_over": "转交", "q_hand_over_to": "转交给", "q_owned_by_other": "这条投诉由他人负责；负责人、质控或管理员可以处理。",
        "q_respond": "首次回复", "q_first_response": "首次回复", "q_contacts": "联系记录", "q_add_contact": "记录一次联系",
        "q_contacted_at": "联系时间", "q_resolve": "结案", "q_outcome": "结果", "q_resolution": "处理结果",
        "q_reopen": "重新打开", "q_reopenings": "重新打开记录", "q_satisfaction": "客户满意度", "q_record_satisfaction": "记录满意度",
        "q_handovers": "转交记录", "q_from": "从", "q_to": "到", "q_by": "经办人", "q_photo": "客户照片", "q_photo_alt": "客户随投诉提交的照片",
        "q_open_photo": "打开原图",
        "q_st_open": "待处理", "q_st_responded": "已回复", "q_st_resolved": "已结案", "q_st_reopened": "重新打开",
        "q_out_upheld": "成立", "q_out_rejected": "不成立", "q_out_withdrawn": "撤诉",
        "q_cat_impolite": "态度", "q_cat_dispute": "纠纷", "q_cat_late": "延误", "q_cat_surcharge": "私自加价",
        "q_cat_gift_withheld": "赠品未告知", "q_cat_damage": "破损", "q_cat_loss": "丢失", "q_cat_other": "其他",
        "q_ch_phone": "电话", "q_ch_sms": "短信", "q_ch_email": "邮件", "q_ch_in_person": "当面", "q_ch_app": "App", "q_ch_web": "网页",
        "q_ch_regulator": "监管部门", "q_ch_customer_page": "客户页面", "q_ch_receipt_page": "签收单页面", "q_ch_rating": "差评回访",
        "q_subj_courier": "快递员", "q_subj_depot": "网点", "q_subj_hotline": "客服热线", "q_subj_product": "产品",
        "q_sat_satisfied": "满意", "q_sat_neutral": "一般", "q_sat_dissatisfied": "不满意",
        "q_claimed": "索赔金额", "q_amount": "应赔金额", "q_paid": "已付金额", "q_origin": "来源", "q_parcel": "包裹",
        "q_opened": "提出时间", "q_due": "下一步期限", "q_entries": "处理记录", "q_assess": "定损", "q_loss": "实际损失（元）",
        "q_approve": "批准", "q_reject": "拒赔", "q_pay": "记录付款", "q_payment_reference": "付款凭证号", "q_rule": "赔付规则",
        "q_cl_opened": "待定损", "q_cl_assessed": "已定损", "q_cl_approved": "已批准", "q_cl_paid": "已赔付", "q_cl_rejected": "已拒赔",
        "q_or_exception": "异常", "q_or_refusal": "拒收", "q_or_complaint": "投诉", "q_or_customer": "客户", "q_or_dispatch": "调度",
        "q_code": "违规代码", "q_severity": "严重程度", "q_occurred": "发生时间", "q_clock_suspect": "设备时钟可疑", "q_download_violations": "下载 CSV",
        "q_appeal": "申诉", "q_decide_appeal": "裁定申诉", "q_uphold": "维持", "q_void": "撤销", "q_confirm": "确认违规",
        "q_vs_open": "待复核", "q_vs_appealed": "申诉中", "q_vs_upheld": "成立", "q_vs_voided": "已撤销",
        "q_ap_upheld": "维持", "q_ap_voided": "撤销", "q_ap_open": "待裁定",
        "q_grade_rules": "按规则", "q_grade_recorded": "记录等级", "q_score": "得分", "q_override": "人工设定等级",
        "q_override_until": "有效期至", "q_set_override": "设定等级", "q_lift": "解除人工设定", "q_history": "等级变更记录",
        "q_why": "原因", "q_consequences": "后果",
        "q_why_violations": "{count} 次{what}（{severity}）：-{points}", "q_why_on_time": "准时率 {rate}%（目标 {target}%）：-{points}",
        "q_why_low": "{low} 条低分评价：-{points}", "q_why_critical": "有严重违规，等级不能为 A",
        "q_why_override": "由 {by} 人工设为 {grade}，至 {until}：{reason}（仅按规则：{rules}）",
        "q_why_lifted": "{by} 解除了人工等级 {grade}：{reason}", "q_why_ended": "人工等级 {grade} 已于 {until} 到期",
        "q_why_voided": "违规 {id}（{what}）已由 {by} 撤销：{reason}", "q_why_rule": "规则", "q_why_unrecorded": "未记录",
        "q_why_sep": "；", "q_why_colon": "：", "q_row_task": "运单", "q_row_complaint": "投诉", "q_row_claim": "理赔",
        "q_row_field_event": "现场事件", "q_row_leak_incident": "信息泄露事件", "q_row_courier": "快递员", "q_cq_retraining_required": "需要再培训", "q_cq_retraining_course": "培训课程",
        "q_period_from": "开始日期", "q_period_to": "结束日期", "q_group_by": "分组", "q_by_courier": "按快递员",
        "q_by_depot": "按网点", "q_by_day": "按天", "q_no_group": "不分组", "q_show": "查看", "q_download_csv": "下载 CSV",
        "q_chart": "每日趋势图", "q_chart_alt": "所选日期内各项指标的每日趋势", "q_figure": "指标", "q_total": "合计",
        "q_rows_behind": "指标明细", "q_counted": "计入分子", "q_unknown": "事实缺失", "q_value": "值",
        "q_done_taken": "已认领。", "q_done_handed_over": "已转交。", "q_done_responded": "已记录首次回复。",
        "q_done_contacted": "已记录联系。", "q_done_resolved": "已结案。", "q_done_reopened": "已重新打开。",
        "q_done_rated": "已记录满意度。", "q_done_assessed": "已定损。", "q_done_approved": "已批准。",
        "q_done_rejected": "已拒赔。", "q_done_paid": "已记录付款。", "q_done_corrected": "已更正金额。", "q_correct": "更正金额", "q_correct_entry": "要更正的记录", "q_new_amount": "正确金额（元）", "q_done_decided": "已裁定。", "q_done_voided": "已撤销。",
        "q_done_confirmed": "已确认。", "q_done_overridden": "已设定等级。", "q_done_lifted": "已解除。", "q_when": "时间",
        "q_fig_on_time_delivery": "派送准时率", "q_fig_on_time_pickup": "取件准时率", "q_fig_assignment_to_signoff": "派单到签收平均时长",
        "q_fig_promised_time_achievement": "承诺时效达成率", "q_fig_collect_to_signoff": "揽收到签收平均时长",
        "q_fig_delivered_to_address": "按址投递率", "q_fig_signoff_compliance": "签收规范率",
        "q_fig_exception_notification": "异常提前告知率", "q_fig_damage_rate": "破损率", "q_fig_short_at_door_rate": "短少率",
        "q_fig_loss_rate": "丢失率", "q_fig_satisfaction_mean": "平均评分", "q_fig_satisfaction_share": "满意率",
        "q_fig_complaint_response_on_time": "投诉及时回复率", "q_fig_complaint_handling_time": "投诉平均处理时长",
        "q_fig_first_contact_resolution": "首次联系解决率", "q_fig_complaint_satisfaction": "投诉处理满意率",
        "q_fig_tracking_timeliness": "轨迹及时率", "q_fig_tracking_accuracy": "轨迹准确率", "q_fig_claim_time": "理赔及时率",
        "q_fig_claim_time_to_pay": "理赔平均时长", "q_fig_pre_job_training_pass_rate": "岗前培训合格率",
        "q_fig_periodic_training_coverage": "定期培训覆盖率", "q_fig_claim_accuracy": "理赔准确率", "q_fig_leak_incidents": "信息泄露事件数",
    },
    "en": {
        "q_nav_complaints": "Complaints", "q_nav_claims": "Claims", "q_nav_violations": "Violations", "q_nav_kpis": "KPIs",
        "q_complaints": "Complaints queue", "q_complaint": "Complaint", "q_claims": "Claims queue", "q_claim": "Claim",
        "q_violations": "Violations review", "q_violation": "Violation", "q_kpis": "Service-quality KPIs", "q_grade": "Grade",
        "q_filter": "Filter", "q_any": "Any", "q_owner": "Owner", "q_owner_none": "Nobody's", "q_owner_me": "Mine",
        "q_overdue": "Overdue", "q_overdue_yes": "Overdue", "q_overdue_no": "Not overdue", "q_status": "Status",
        "q_category": "Category", "q_received": "Received", "q_subject": "About", "q_courier": "Courier", "q_task": "Task",
        "q_channel": "Channel", "q_text": "Text", "q_none": "None", "q_next_page": "Next page", "q_nothing": "Nothing here.",
        "q_reference": "Reference", "q_reason": "Reason", "q_note": "Note", "q_send": "Send", "q_yes": "Yes", "q_no": "No",
        "q_response_due": "First response due", "q_resolution_due": "Resolution due", "q_update_due": "Next update due",
        "q_overdue_response": "response late", "q_overdue_resolution": "resolution late", "q_overdue_update": "update late",
        "q_take": "Take it", "q_take_help": "Nobody owns this complaint: take it and it is yours to the end.",
        "q_hand_over": "Hand over", "q_hand_over_to": "Hand over to",
        "q_owned_by_other": "Another staff member owns this complaint; its owner, quality staff or an admin act on it.",
        "q_respond": "First response", "q_first_response": "First response", "q_contacts": "Contacts",
        "q_add_contact": "Record a contact", "q_contacted_at": "When", "q_resolve": "Resolve", "q_outcome": "Outcome",
        "q_resolution": "Resolution", "q_reopen": "Reopen", "q_reopenings": "Reopenings", "q_satisfaction": "Satisfaction",
        "q_record_satisfaction": "Record satisfaction", "q_handovers": "Handovers", "q_from": "From", "q_to": "To",
        "q_by": "By", "q_photo": "Customer's photo", "q_photo_alt": "The photo the customer attached",
        "q_open_photo": "Open the photo",
        "q_st_open": "Open", "q_st_responded": "Responded", "q_st_resolved": "Resolved", "q_st_reopened": "Reopened",
        "q_out_upheld": "Upheld", "q_out_rejected": "Rejected", "q_out_withdrawn": "Withdrawn",
        "q_cat_impolite": "Impolite", "q_cat_dispute": "Dispute", "q_cat_late": "Late", "q_cat_surcharge": "Surcharge",
        "q_cat_gift_withheld": "Gift withheld", "q_cat_damage": "Damage", "q_cat_loss": "Loss", "q_cat_other": "Other",
        "q_ch_phone": "Phone", "q_ch_sms": "SMS", "q_ch_email": "Email", "q_ch_in_person": "In person", "q_ch_app": "App",
        "q_ch_web": "Web", "q_ch_regulator": "Regulator", "q_ch_customer_page": "Customer page",
        "q_ch_receipt_page": "Receipt page", "q_ch_rating": "Low rating",
        "q_subj_courier": "Courier", "q_subj_depot": "Depot", "q_subj_hotline": "Hotline", "q_subj_product": "Product",
        "q_sat_satisfied": "Satisfied", "q_sat_neutral": "Neutral", "q_sat_dissatisfied": "Dissatisfied",
        "q_claimed": "Claimed", "q_amount": "Amount owed", "q_paid": "Paid", "q_origin": "Origin", "q_parcel": "Parcel",
        "q_opened": "Opened", "q_due": "Next step due", "q_entries": "Entries", "q_assess": "Assess",
        "q_loss": "Actual loss (yuan)", "q_approve": "Approve", "q_reject": "Reject", "q_pay": "Record payment",
        "q_payment_reference": "Payment reference", "q_rule": "Rule",
        "q_cl_opened": "Opened", "q_cl_assessed": "Assessed", "q_cl_approved": "Approved", "q_cl_paid": "Paid",
        "q_cl_rejected": "Rejected",
        "q_or_exception": "Exception", "q_or_refusal": "Refusal", "q_or_complaint": "Complaint", "q_or_customer": "Customer",
        "q_or_dispatch": "Dispatch",
        "q_code": "Code", "q_severity": "Severity", "q_occurred": "Occurred", "q_clock_suspect": "Suspect clock", "q_download_violations": "Download CSV",
        "q_appeal": "Appeal", "q_decide_appeal": "Decide the appeal", "q_uphold": "Uphold", "q_void": "Void",
        "q_confirm": "Confirm", "q_vs_open": "Open", "q_vs_appealed": "Appealed", "q_vs_upheld": "Upheld",
        "q_vs_voided": "Voided", "q_ap_upheld": "Upheld", "q_ap_voided": "Voided", "q_ap_open": "Open",
        "q_grade_rules": "By the rules", "q_grade_recorded": "On record", "q_score": "Score", "q_override": "Set by hand",
        "q_override_until": "Until", "q_set_override": "Set the grade", "q_lift": "Lift the override",
        "q_history": "Grade history", "q_why": "Why", "q_consequences": "Consequences",
        "q_why_violations": "{count} x {what} ({severity}): -{points}",
        "q_why_on_time": "on-time {rate}% of target {target}%: -{points}", "q_why_low": "{low} low ratings: -{points}",
        "q_why_critical": "a critical violation keeps the grade below A",
        "q_why_override": "set to {grade} by {by} until {until}: {reason} (rules alone: {rules})",
        "q_why_lifted": "override to {grade} lifted by {by}: {reason}", "q_why_ended": "override to {grade} ended at {until}",
        "q_why_voided": "violation {id} ({what}) voided by {by}: {reason}", "q_why_rule": "a rule",
        "q_why_unrecorded": "not recorded", "q_why_sep": "; ", "q_why_colon": ": ", "q_row_task": "Waybill",
        "q_row_complaint": "Complaint", "q_row_claim": "Claim", "q_row_field_event": "Field event",
        "q_row_leak_incident": "Leak incident", "q_row_courier": "Courier",
        "q_cq_retraining_required": "Retraining required", "q_cq_retraining_course": "Retraining course",
        "q_period_from": "From", "q_period_to": "To", "q_group_by": "Group by", "q_by_courier": "Courier",
        "q_by_depot": "Depot", "q_by_day": "Day", "q_no_group": "No grouping", "q_show": "Show",
        "q_download_csv": "Download CSV", "q_chart": "Daily trend", "q_chart_alt": "Each figure per day over the dates",
        "q_figure": "Figure", "q_total": "Total", "q_rows_behind": "Behind the figure", "q_counted": "Counted",
        "q_unknown": "Fact missing", "q_value": "Value",
        "q_done_taken": "Taken.", "q_done_handed_over": "Handed over.", "q_done_responded": "First response recorded.",
        "q_done_contacted": "Contact recorded.", "q_done_resolved": "Resolved.", "q_done_reopened": "Reopened.",
        "q_done_rated": "Satisfaction recorded.", "q_done_assessed": "Assessed.", "q_done_approved": "Approved.",
        "q_done_rejected": "Rejected.", "q_done_paid": "Payment recorded.", "q_done_corrected": "Amount corrected.", "q_correct": "Correct an amount", "q_correct_entry": "The entry to correct", "q_new_amount": "Right amount (yuan)", "q_done_decided": "Decided.",
        "q_done_voided": "Voided.", "q_done_confirmed": "Confirmed.", "q_done_overridden": "Grade set.",
        "q_done_lifted": "Override lifted.", "q_when": "When",
        "q_fig_on_time_delivery": "On-time delivery", "q_fig_on_time_pickup": "On-time pickup",
        "q_fig_assignment_to_signoff": "Assignment to sign-off",
        "q_fig_promised_time_achievement": "Promised time achieved",
        "q_fig_collect_to_signoff": "Collection to sign-off", "q_fig_delivered_to_address": "Delivered to the address",
        "q_fig_signoff_compliance": "Sign-off compliance", "q_fig_exception_notification": "Exceptions notified",
        "q_fig_damage_rate": "Damage rate", "q_fig_short_at_door_rate": "Short at the door",
        "q_fig_loss_rate": "Loss rate", "q_fig_satisfaction_mean": "Mean rating",
        "q_fig_satisfaction_share": "Satisfied share", "q_fig_complaint_response_on_time": "Complaints answered in time",
        "q_fig_complaint_handling_time": "Complaint handling time",
        "q_fig_first_contact_resolution": "First-contact resolution",
        "q_fig_complaint_satisfaction": "Complaint satisfaction", "q_fig_tracking_timeliness": "Tracking timeliness",
        "q_fig_tracking_accuracy": "Tracking accuracy", "q_fig_claim_time": "Claims in time",
        "q_fig_claim_time_to_pay": "Claim opened to paid",
        "q_fig_pre_job_training_pass_rate": "Pre-job training pass rate",
        "q_fig_periodic_training_coverage": "Periodic training coverage", "q_fig_claim_accuracy": "Claim accuracy",
        "q_fig_leak_incidents": "Information-leak incidents",
    },
})
# The refusals of these pages' rules, in words (the console shows err_<code> when registered, else the detail).
register({
    "zh": {
        "err_not_complaint_owner": "这条投诉由他人负责：只有负责人、质控或管理员可以处理，转交只能由负责人或管理员操作。",
        "err_complaint_owned": "这条投诉已有人负责，请联系负责人转交。",
        "err_decision_not_allowed": "只有质控和管理员可以判定投诉成立或不成立。",
        "err_response_required": "请先记录对客户的首次回复，再结案。",
        "err_already_responded": "首次回复已经记录过了。",
        "err_complaint_resolved": "这条投诉已经结案。",
        "err_claim_step_not_allowed": "你的角色不能进行这一步。",
        "err_claim_above_approval_limit": "金额超过质控的审批额度，需要管理员批准。",
        "err_claim_wrong_status": "这个理赔当前的状态不能进行这一步。",
        "err_appeal_decided": "这个申诉已经裁定过了。",
        "err_appeal_open": "这条违规正在申诉中：请裁定申诉。",
        "err_violation_decided": "这条违规已经处理过了。",
        "err_violation_voided": "这条违规已经撤销。",
        "err_defect_closed": "这个缺陷已经关闭。",
        "err_cannot_deactivate_self": "不能停用自己的账号，请由另一位管理员操作。",
    },
    "en": {
        "err_not_complaint_owner": "Another staff member owns this complaint: its owner, quality staff or an admin act "
                                   "on it, and only its owner or an admin hands it over.",
        "err_complaint_owned": "Someone owns this complaint already: ask them to hand it over.",
        "err_decision_not_allowed": "Only quality staff and admins uphold or reject a complaint.",
        "err_response_required": "Record the first response to the customer before resolving.",
        "err_already_responded": "The first response is already recorded.",
        "err_complaint_resolved": "This complaint is resolved.",
        "err_claim_step_not_allowed": "Your role does not take this step.",
        "err_claim_above_approval_limit": "The amount is above quality's approval limit: an admin approves it.",
        "err_claim_wrong_status": "The claim is not at the step this needs.",
        "err_appeal_decided": "This appeal is decided already.",
        "err_appeal_open": "This violation is appealed: decide the appeal.",
        "err_violation_decided": "This violation is decided already.",
        "err_violation_voided": "This violation is voided.",
        "err_defect_closed": "This defect is closed already.",
        "err_cannot_deactivate_self": "You cannot deactivate your own account; another admin does.",
    },
})
register_nav("console.complaint_queue_page", "q_nav_complaints", OFFICE)
register_nav("console.claim_queue_page", "q_nav_claims", OFFICE)
register_nav("console.violation_list_page", "q_nav_violations", QUALITY)
register_nav("console.kpi_page", "q_nav_kpis", OFFICE)


def _back(endpoint: str, done: str, **values) -> str:
    """Where a post sends the browser when done: the page, saying what was done."""
    return url_for(endpoint, done=done, **values)


# --- complaints ---------------------------------------------------------------------------------------------------

@bp.get("/complaints")
@page(*OFFICE)
def complaint_queue_page():
    """The complaints queue: unowned (owner=none) or mine, overdue with the reasons, by status and category."""
    view = complaint_queue(actor=g.actor, filters=parsing.query(ComplaintQuery))
    return render("console/quality/complaints.html", **view, statuses=COMPLAINT_STATUSES,
                  categories=COMPLAINT_CATEGORIES, next_page=parsing.next_page(view["page"]["next_cursor"]))


def _complaint(complaint_id: int):
    """A complaint's page."""
    return render("console/quality/complaint.html", **complaint_view(actor=g.actor, complaint_id=complaint_id),
                  channels=COMPLAINT_CONTACT_CHANNELS, satisfactions=SATISFACTION)


@bp.get("/complaints/<int:complaint_id>")
@page(*OFFICE)
def complaint_page(complaint_id):
    """A complaint: its owner and deadlines, contacts, handovers, reopenings, the customer's photo, and the forms."""
    return _complaint(complaint_id)


@bp.get("/complaints/<int:complaint_id>/photo")
@page(*OFFICE)
def complaint_photo(complaint_id):
    """The photo the customer attached, as staff download any attachment (never run, only shown)."""
    complaint = complaints.get(complaint_id=complaint_id)
    if complaint.photo_sha256 is None:
        raise NotFound(f"Complaint {complaint_id} has no photo.", code="photo_not_found")
    found = attachments.download(sha256=complaint.photo_sha256)
    if found.url is not None:
        return redirect(found.url, code=302)  # the store's signed URL; the console's answers are never cached
    # A complaint's photo is a JPEG or PNG by its bytes (services.complaints); the console's CSP and nosniff apply.
    return send_file(found.path, mimetype=found.row.content_type, etag=found.row.sha256,
                     as_attachment=found.disposition == "attachment", download_name=found.download_name)


def _complaint_acted(complaint_id: int, done: str, action):
    """A complaint's form answered: back to its page saying what was done, or the page again with the refusal."""
    return parsing.acted(action, done=_back("console.complaint_page", done, complaint_id=complaint_id),
                         again=lambda: _complaint(complaint_id))


@bp.post("/complaints/<int:complaint_id>/take")
@page(*OFFICE)
def complaint_take(complaint_id):
    """Take an unowned complaint."""
    return _complaint_acted(complaint_id, "taken", lambda: complaints.take(actor=g.actor, complaint_id=complaint_id))


@bp.post("/complaints/<int:complaint_id>/handover")
@page(*OFFICE)
def complaint_hand_over(complaint_id):
    """Hand the complaint to a named colleague with the reason."""
    return _complaint_acted(complaint_id, "handed_over", lambda: complaints.hand_over(
        actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintHandoverIn)))


@bp.post("/complaints/<int:complaint_id>/respond")
@page(*OFFICE)
def complaint_respond(complaint_id):
    """Record the first response to the customer."""
    return _complaint_acted(complaint_id, "responded", lambda: complaints.respond(
        actor=g.actor, complaint_id=complaint_id, text=parsing.form(ComplaintRespondIn)["text"]))


@bp.post("/complaints/<int:complaint_id>/contacts")
@page(*OFFICE)
def complaint_contact(complaint_id):
    """Record a contact with the customer (a progress update)."""
    return _complaint_acted(complaint_id, "contacted", lambda: complaints.add_contact(
        actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintContactIn)))


@bp.post("/complaints/<int:complaint_id>/resolve")
@page(*OFFICE)
def complaint_resolve(complaint_id):
    """Resolve the complaint with its outcome and a note."""
    return _complaint_acted(complaint_id, "resolved", lambda: complaints.resolve(
        actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintResolveIn)))


@bp.post("/complaints/<int:complaint_id>/reopen")
@page(*OFFICE)
def complaint_reopen(complaint_id):
    """The customer brought a resolved complaint back."""
    return _complaint_acted(complaint_id, "reopened", lambda: complaints.reopen(
        actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintReopenIn)))


@bp.post("/complaints/<int:complaint_id>/satisfaction")
@page(*OFFICE)
def complaint_satisfaction(complaint_id):
    """Record the customer's satisfaction with the outcome."""
    return _complaint_acted(complaint_id, "rated", lambda: complaints.rate(
        actor=g.actor, complaint_id=complaint_id, **parsing.form(ComplaintSatisfactionIn)))


# --- claims -------------------------------------------------------------------------------------------------------

@bp.get("/claims")
@page(*OFFICE)
def claim_queue_page():
    """The claims queue by status, origin and overdue next step."""
    view = claim_queue(filters=parsing.query(ClaimQuery))
    return render("console/quality/claims.html", **view, statuses=CLAIM_STATUSES, origins=CLAIM_ORIGINS,
                  next_page=parsing.next_page(view["page"]["next_cursor"]))


def _claim(claim_id: int):
    """A claim's page."""
    return render("console/quality/claim.html", **claim_view(actor=g.actor, claim_id=claim_id))


@bp.get("/claims/<int:claim_id>")
@page(*OFFICE)
def claim_page(claim_id):
    """A claim: its parcel, entries, evidence, and the step its status waits for."""
    return _claim(claim_id)


def _claim_acted(claim_id: int, done: str, action):
    """A claim's form answered: back to its page, or the page again with the refusal."""
    return parsing.acted(action, done=_back("console.claim_page", done, claim_id=claim_id),
                         again=lambda: _claim(claim_id))


@bp.post("/claims/<int:claim_id>/assess")
@page(*claims.ASSESSORS)
def claim_assess(claim_id):
    """Assess the claim from the actual loss found (typed in yuan)."""
    return _claim_acted(claim_id, "assessed", lambda: claims.assess(
        actor=g.actor, claim_id=claim_id, **parsing.form(ClaimAssessIn, loss_amount=parsing.fen("loss_amount"))))


@bp.post("/claims/<int:claim_id>/approve")
@page(*claims.ASSESSORS)
def claim_approve(claim_id):
    """Approve the assessed claim."""
    return _claim_acted(claim_id, "approved", lambda: claims.approve(actor=g.actor, claim_id=claim_id))


@bp.post("/claims/<int:claim_id>/reject")
@page(*claims.ASSESSORS)
def claim_reject(claim_id):
    """Reject the claim with the reason."""
    return _claim_acted(claim_id, "rejected", lambda: claims.reject(
        actor=g.actor, claim_id=claim_id, **parsing.form(ClaimRejectIn)))


@bp.post("/claims/<int:claim_id>/pay")
@page(*claims.PAYERS)
def claim_pay(claim_id):
    """Record the payment of the approved claim."""
    return _claim_acted(claim_id, "paid", lambda: claims.pay(
        actor=g.actor, claim_id=claim_id, **parsing.form(ClaimPayIn)))


@bp.post("/claims/<int:claim_id>/corrections")
@page(*claims.PAYERS)
def claim_correct(claim_id):
    """Correct the amount an assessment or a payment fixed (typed in yuan): a new entry naming it."""
    return _claim_acted(claim_id, "corrected", lambda: claims.correct(
        actor=g.actor, claim_id=claim_id, **parsing.form(ClaimCorrectIn, entry_id=parsing.whole("entry_id"),
                                                          amount=parsing.fen("amount"))))


# --- violations and grades ------------------------------------------------------------------------------------------

@bp.get("/violations")
@page(*QUALITY)
def violation_list_page():
    """Quality's review list: by status, courier, code and a suspect clock; ?format=csv: every one, as the API's."""
    filters = parsing.query(ReviewQuery)
    if filters.pop("format") == "csv":
        filters.pop("limit")
        rows = csvout.every_row(lambda cursor, limit: violations.review_list(
            cursor=int(cursor) if cursor else None, limit=limit, **filters), cursor=filters.pop("cursor"))
        return csvout.respond(rows, schema=ViolationOut(), columns=VIOLATION_COLUMNS, filename="violations.csv",
                              what="violations")
    view = violation_list(filters=filters)
    csv_args = {key: value for key, value in request.args.items() if key not in ("cursor", "done", "lang")}
    return render("console/quality/violations.html", **view, statuses=VIOLATION_STATUSES, codes=VIOLATION_CODES,
                  next_page=parsing.next_page(view["page"]["next_cursor"]),
                  csv_url=url_for("console.violation_list_page", **csv_args, format="csv"))


def _violation(violation_id: int):
    """A violation's page."""
    return render("console/quality/violation.html", **violation_view(violation_id=violation_id),
                  appeal_outcomes=APPEAL_OUTCOMES)


@bp.get("/violations/<int:violation_id>")
@page(*QUALITY)
def violation_page(violation_id):
    """A violation, its evidence and appeal, with the decisions quality takes."""
    return _violation(violation_id)


def _violation_acted(violation_id: int, done: str, action):
    """A violation's form answered: back to its page, or the page again with the refusal."""
    return parsing.acted(action, done=_back("console.violation_page", done, violation_id=violation_id),
                         again=lambda: _violation(violation_id))


@bp.post("/violations/<int:violation_id>/appeal/decide")
@page(*violations.DECIDERS)
def violation_decide(violation_id):
    """Decide the appeal: the violation upheld, or voided."""
    return _violation_acted(violation_id, "decided", lambda: violations.decide_appeal(
        actor=g.actor, violation_id=violation_id, **parsing.form(AppealDecisionIn)))


@bp.post("/violations/<int:violation_id>/void")
@page(*violations.DECIDERS)
def violation_void(violation_id):
    """Void the violation with the reason."""
    return _violation_acted(violation_id, "voided", lambda: violations.void(
        actor=g.actor, violation_id=violation_id, **parsing.form(ReasonIn)))


@bp.post("/violations/<int:violation_id>/confirm")
@page(*violations.DECIDERS)
def violation_confirm(violation_id):
    """Confirm an open violation: it stands."""
    return _violation_acted(violation_id, "confirmed", lambda: violations.confirm(
        actor=g.actor, violation_id=violation_id, **parsing.form(ReasonIn)))


def _grade(courier_id: str):
    """A courier's grade page."""
    return render("console/quality/grade.html",
                  **grade_view(courier_id=courier_id, cursor=parsing.query(GradeChangeQuery)["cursor"]))


@bp.get("/couriers/<courier_id>/grade")
@page(*QUALITY)
def courier_grade_page(courier_id):
    """A courier's grade: the rules' and the recorded one, the override in force, and the history in words."""
    return _grade(courier_id)


@bp.post("/couriers/<courier_id>/grade/override")
@page(*QUALITY)
def courier_grade_override(courier_id):
    """Set the courier's grade by hand with a reason, until a time (typed in the depot's zone)."""
    return parsing.acted(lambda: grades.override(
        actor=g.actor, courier_id=courier_id, **parsing.form(OverrideIn, until=parsing.local_time("until"))),
        done=_back("console.courier_grade_page", "overridden", courier_id=courier_id),
        again=lambda: _grade(courier_id))


@bp.post("/couriers/<courier_id>/grade/override/lift")
@page(*QUALITY)
def courier_grade_lift(courier_id):
    """Lift the override in force."""
    return parsing.acted(lambda: grades.lift_override(actor=g.actor, courier_id=courier_id, **parsing.form(LiftIn)),
                         done=_back("console.courier_grade_page", "lifted", courier_id=courier_id),
                         again=lambda: _grade(courier_id))


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
    grouped = {"group_by": query["group_by"]} if query["group_by"] else {}
    return render("console/quality/kpis.html", **view, query=query, dates=dates,
                  csv_url=url_for("console.kpi_csv", **dates, **grouped), chart_url=url_for("console.kpi_chart", **dates))


@bp.get("/kpis.csv")
@page(*OFFICE)
def kpi_csv():
    """The report as CSV (what GET /reports/kpis?format=csv answers)."""
    query = _period(KpiQuery)
    report = kpis.report(start=query["from_"], end=query["to"], group_by=query["group_by"])
    name = f"kpis-{query['from_'].isoformat()}-{query['to'].isoformat()}.csv"
    return Response(kpis.as_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


@bp.get("/kpis/chart.png")
@page(*OFFICE)
def kpi_chart():
    """The daily trend chart (what GET /reports/kpis/chart.png draws)."""
    query = _period(KpiRange)
    return Response(kpis.chart(start=query["from_"], end=query["to"]), mimetype="image/png")


@bp.get("/kpis/<figure>")
@page(*OFFICE)
def kpi_rows(figure):
    """The rows behind one figure, each linked to its page."""
    view = kpi_rows_view(figure=figure, query=_period(KpiRowsQuery))
    return render("console/quality/kpi_rows.html", **view, figure=figure,
                  next_page=parsing.next_page(view["rows"]["next_cursor"]))
