"""A task's messages to the customer on the console: the partial console/_task_messages.html and its words.

The task's page includes the partial with `messages=messages.for_task(task_id=...)`, the same list the API's
GET /dispatch/tasks/{id}/messages serves (the phone masked); /console/tasks/<id>/messages shows it alone.
"""
from server.auth import OFFICE
from server.console import bp
from server.console.auth import page, render
from server.console.i18n import register
from server.services import messages

register({
    "zh": {
        "msg.title": "给顾客的短信", "msg.task": "任务 {waybill}", "msg.made": "生成时间", "msg.kind": "内容", "msg.to": "发往", "msg.text": "短信",
        "msg.status": "状态", "msg.delivery": "发送", "msg.none": "还没有给顾客的短信。",
        "msg.sent_at": "{at} 已发出", "msg.attempts": "尝试 {n} 次", "msg.next": "下次 {at}",
        "msg.kind.appointment_proposed": "建议改约", "msg.kind.appointment_confirmed": "约定时间",
        "msg.kind.courier_late": "快递员晚到", "msg.kind.out_for_delivery": "派送中", "msg.kind.delivered": "已签收",
        "msg.kind.refused": "已拒收", "msg.kind.claim_approved": "理赔批准", "msg.kind.claim_rejected": "理赔未批准",
        "msg.status.queued": "待发送", "msg.status.held_quiet": "免打扰时段暂缓", "msg.status.sent": "已发送",
        "msg.status.failed": "发送失败，将重试", "msg.status.dead": "多次失败，已放弃", "msg.status.recorded": "仅记录（未配置短信网关）",
        "msg.status.suppressed": "不发送",
        "msg.reason.daily_cap": "已达每日条数上限", "msg.reason.no_phone": "没有电话", "msg.reason.redacted": "个人信息已清除",
        "msg.reason.already_told_today": "今天已通知过", "msg.reason.no_link": "任务已结束，无链接",
    },
    "en": {
        "msg.title": "Messages to the customer", "msg.task": "Task {waybill}", "msg.made": "Made", "msg.kind": "About", "msg.to": "To",
        "msg.text": "Text", "msg.status": "Status", "msg.delivery": "Delivery", "msg.none": "No messages to the customer yet.",
        "msg.sent_at": "sent {at}", "msg.attempts": "{n} attempt(s)", "msg.next": "next {at}",
        "msg.kind.appointment_proposed": "Window proposed", "msg.kind.appointment_confirmed": "Window agreed",
        "msg.kind.courier_late": "Courier late", "msg.kind.out_for_delivery": "Out for delivery",
        "msg.kind.delivered": "Delivered", "msg.kind.refused": "Refused", "msg.kind.claim_approved": "Claim approved",
        "msg.kind.claim_rejected": "Claim rejected",
        "msg.status.queued": "Queued", "msg.status.held_quiet": "Held for the quiet hours", "msg.status.sent": "Sent",
        "msg.status.failed": "Failed, will retry", "msg.status.dead": "Given up", "msg.status.recorded": "Recorded (no gateway)",
        "msg.status.suppressed": "Not sent",
        "msg.reason.daily_cap": "daily cap reached", "msg.reason.no_phone": "no phone", "msg.reason.redacted": "redacted",
        "msg.reason.already_told_today": "already told today", "msg.reason.no_link": "task finished: no link",
    },
})


@bp.get("/tasks/<task_id>/messages")
@page(*OFFICE)
def task_messages(task_id):
    """A task's messages to the customer and their delivery, on a page of their own."""
    shown = messages.for_task(task_id=task_id)
    return render("console/task_messages.html", task_id=task_id, messages=shown,
                  waybill_no=messages.waybill_of(task_id=task_id))
