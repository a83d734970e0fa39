// Words shared by the screens: task kinds and statuses, appointment states, op types, contact outcomes.
import { register, t } from "./i18n.js";

register({
  zh: {
    "app.name": "Fieldops 快递员",
    "kind.delivery": "派送", "kind.pickup": "揽收", "kind.return": "退回",
    "status.unassigned": "未分配", "status.assigned": "待派送", "status.pickup.assigned": "待揽收", "status.arrived": "已到达",
    "status.delivered": "已签收", "status.failed": "未成功", "status.refused": "已拒收",
    "status.collected": "已揽收", "status.cancelled": "已取消",
    "appt.unconfirmed": "未预约", "appt.confirmed": "已预约", "appt.kept": "准时", "appt.late": "迟到",
    "appt.missed": "失约", "appt.not_attempted": "未上门", "appt.review": "待调度复核",
    "op.stop.arrive": "到达", "op.task.note": "备注", "op.appointment.contact": "联系客户",
    "op.appointment.confirm": "确认预约", "op.appointment.reschedule": "改约", "op.appointment.late_notice": "迟到通知",
    "op.stop.customer_absent": "客户不在", "op.parcel.scan": "扫描包裹", "op.pod.verify_recipient": "核实收件人",
    "op.pod.inspect": "验货", "op.pod.collect_payment": "收款", "op.pod.sign": "签收", "op.pod.refuse": "拒收",
    "op.pod.deliver_alternate": "放到别处", "op.pickup.collect": "揽收", "op.checklist.submit": "检查表",
    "op.shift.start": "开始班次", "op.shift.end": "结束班次", "op.violation.appeal": "违规申诉",
    "outcome.reached": "已联系上", "outcome.no_answer": "无人接听", "outcome.wrong_number": "号码错误",
    "outcome.refused": "客户拒绝", "outcome.address_unknown": "地址不详",
    "state.pending": "待同步", "state.applied": "已生效", "state.conflict": "已生效，调度复核", "state.rejected": "被拒绝",
    "state.duplicate": "已生效", "state.held": "未发送（其他快递员）",
    "window.outcome.replaced": "已替换", "window.status.proposed": "提议", "window.status.agreed": "已约定",
    "window.status.superseded": "已被替换", "window.status.declined": "未采纳",
    "via.phone": "电话", "via.in_person": "当面", "via.customer_link": "客户链接", "via.dispatch": "调度",
    "fee.delivery": "配送费", "fee.cod_service": "代收货款手续费", "fee.insurance": "保价费",
    "fee.packaging": "包装费", "fee.storage": "超期保管费",
    back: "返回", loading: "加载中…", never: "从未",
  },
  en: {
    "app.name": "Fieldops Courier",
    "kind.delivery": "Delivery", "kind.pickup": "Pickup", "kind.return": "Return",
    "status.unassigned": "Unassigned", "status.assigned": "To deliver", "status.pickup.assigned": "To collect", "status.arrived": "Arrived",
    "status.delivered": "Delivered", "status.failed": "Failed", "status.refused": "Refused",
    "status.collected": "Collected", "status.cancelled": "Cancelled",
    "appt.unconfirmed": "Unconfirmed", "appt.confirmed": "Confirmed", "appt.kept": "Kept", "appt.late": "Late",
    "appt.missed": "Missed", "appt.not_attempted": "Not attempted", "appt.review": "Dispatch reviewing",
    "op.stop.arrive": "Arrival", "op.task.note": "Note", "op.appointment.contact": "Customer contact",
    "op.appointment.confirm": "Appointment confirmed", "op.appointment.reschedule": "Reschedule",
    "op.appointment.late_notice": "Late notice", "op.stop.customer_absent": "Customer absent",
    "op.parcel.scan": "Parcel scan", "op.pod.verify_recipient": "Recipient check", "op.pod.inspect": "Inspection",
    "op.pod.collect_payment": "Payment", "op.pod.sign": "Signature", "op.pod.refuse": "Refusal",
    "op.pod.deliver_alternate": "Left elsewhere", "op.pickup.collect": "Pickup", "op.checklist.submit": "Checklist",
    "op.shift.start": "Shift start", "op.shift.end": "Shift end", "op.violation.appeal": "Appeal",
    "outcome.reached": "Reached", "outcome.no_answer": "No answer", "outcome.wrong_number": "Wrong number",
    "outcome.refused": "Refused", "outcome.address_unknown": "Address unknown",
    "state.pending": "Pending", "state.applied": "Done", "state.conflict": "Applied, dispatch reviews", "state.rejected": "Refused",
    "state.duplicate": "Done", "state.held": "Not sent (another courier)",
    "window.outcome.replaced": "Replaced", "window.status.proposed": "Proposed", "window.status.agreed": "Agreed",
    "window.status.superseded": "Superseded", "window.status.declined": "Declined",
    "via.phone": "phone", "via.in_person": "in person", "via.customer_link": "customer link", "via.dispatch": "dispatch",
    "fee.delivery": "Delivery fee", "fee.cod_service": "COD service fee", "fee.insurance": "Declared-value insurance",
    "fee.packaging": "Packaging", "fee.storage": "Storage beyond the free period",
    back: "Back", loading: "Loading…", never: "never",
  },
});

/** A word for a value of a known family ("status", "kind", "appt", "op", …), else the value itself. */
export function word(family, value) {
  if (value === null || value === undefined) return "";
  const key = `${family}.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}

/** A fee's name: the app's words for a code it knows (in the language of the switch), else the name the server
 * publishes (fee_code's name, one language only), else the code. The task page and the pickup say the same. */
export function feeName(code, published = null) {
  const key = `fee.${code}`;
  return t(key) !== key ? t(key) : (published || String(code));
}

/** A task's status in words, as its kind says it (a pickup waits to be collected, not delivered). */
export function statusWord(task) {
  const own = `status.${task.kind}.${task.status}`;
  return t(own) === own ? word("status", task.status) : t(own);
}

export const FINISHED = new Set(["delivered", "failed", "refused", "collected", "cancelled"]);
