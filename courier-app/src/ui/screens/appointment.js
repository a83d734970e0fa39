// The appointment actions of a task (#/tasks/:id/appointment): confirm a window, reschedule, late notice; each an
// op through the core's queue, the window checked as the server checks it (docs/protocol.md) before queueing.
import { h, replace } from "../dom.js";
import { register, t } from "../i18n.js";
import { route, go } from "../router.js";
import { session, flash } from "../session.js";
import { codeText } from "../codes.js";
import { drawBar } from "../bar.js";
import { word } from "../words.js";
import { depotDate, depotIso, windowText, when } from "../format.js";
import { loadTask } from "../tasks.js";
import { enqueue, allOps } from "../../core/queue.js";
import { doorState, openShift } from "../../core/rules.js";

export const MAX_WINDOW_HOURS = 12;
export const MAX_DAYS_AHEAD = 14;

/** The protocol's window rules: keys of the words of what is wrong (empty when the window may be queued). */
export function windowProblems(start, end, now = new Date()) {
  if (!start || !end) return ["appt.err.incomplete"];
  const s = Date.parse(start), e = Date.parse(end), n = now.getTime();
  if (Number.isNaN(s) || Number.isNaN(e)) return ["appt.err.incomplete"];
  const problems = [];
  if (e <= s) problems.push("appt.err.order");
  if (e <= n) problems.push("appt.err.past");
  if (e - s > MAX_WINDOW_HOURS * 3600_000) problems.push("appt.err.long");
  if (s - n > MAX_DAYS_AHEAD * 86400_000) problems.push("appt.err.far");
  return problems;
}


register({
  zh: {
    "appt.title": "预约：{waybill}", "appt.current": "当前时段：{window}（{status}）", "appt.none": "尚无约定时段",
    "appt.phrase": "请问什么时候上门方便？", "appt.phrase.label": "问客户：",
    "appt.confirm": "确认预约", "appt.reschedule": "改约", "appt.late_notice.title": "迟到通知",
    "appt.date": "日期", "appt.start": "开始（仓库时间）", "appt.end": "结束（仓库时间）", "appt.via": "方式",
    "appt.reason": "原因", "appt.agreed": "客户已同意新时段？", "appt.yes": "同意", "appt.no": "未同意（仅记录提议）",
    "appt.eta.date": "预计到达日期", "appt.eta": "预计到达时间", "appt.save": "保存",
    "appt.saved": "已保存，待同步", "appt.reason.empty": "请填写原因",
    "appt.err.incomplete": "请选择日期、开始和结束时间", "appt.err.order": "结束时间必须晚于开始时间",
    "appt.err.past": "结束时间已经过去", "appt.err.long": "时段不能超过 12 小时", "appt.err.far": "开始时间不能超过 14 天之后",
    "appt.err.eta": "请选择预计到达时间",
    "appt.notice.rule": "只有在时段开始前至少 30 分钟发出，才算提前通知；晚于此时发出仍会记录，但迟到仍算未提前通知。",
    "appt.notice.ok": "现在发出：算作提前通知（时段 {start} 开始）。",
    "appt.notice.late": "现在发出：已不足 30 分钟（时段 {start} 开始），不算提前通知。",
    "appt.not.offered": "{action}：{reason}",
  },
  en: {
    "appt.title": "Appointment: {waybill}", "appt.current": "Current window: {window} ({status})", "appt.none": "No window agreed yet",
    "appt.phrase": "When would it suit you for us to come?", "appt.phrase.label": "Ask the customer:",
    "appt.confirm": "Confirm a window", "appt.reschedule": "Reschedule", "appt.late_notice.title": "Late notice",
    "appt.date": "Date", "appt.start": "Start (depot time)", "appt.end": "End (depot time)", "appt.via": "How",
    "appt.reason": "Reason", "appt.agreed": "Did the customer agree to the new window?", "appt.yes": "Agreed", "appt.no": "Not agreed (a proposal only)",
    "appt.eta.date": "Arrival date", "appt.eta": "Expected arrival", "appt.save": "Save",
    "appt.saved": "Saved, to sync", "appt.reason.empty": "Give a reason",
    "appt.err.incomplete": "Choose the date, the start and the end", "appt.err.order": "The end must be after the start",
    "appt.err.past": "The end is already past", "appt.err.long": "A window lasts at most 12 hours", "appt.err.far": "The start is at most 14 days ahead",
    "appt.err.eta": "Choose the expected arrival",
    "appt.notice.rule": "It counts as notice only when sent at least 30 minutes before the window starts; later it is still recorded, but a late arrival stands as without notice.",
    "appt.notice.ok": "Sent now: counts as notice (the window starts at {start}).",
    "appt.notice.late": "Sent now: less than 30 minutes before the window ({start}): it does not count as notice.",
    "appt.not.offered": "{action}: {reason}",
  },
});

let uid = 0;
function field(label, input) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  return [h("label", { for: id }, label), input];
}
function radios(name, options, checked) {
  return h("fieldset", { class: "radios" }, h("legend", {}, options.legend),
    options.items.map(([value, label]) => h("label", { class: "radio" },
      h("input", { type: "radio", name, value, checked: value === checked }), label)));
}

function windowInputs(prefix, task) {
  const start = task.window?.start;
  return {
    date: h("input", { id: `${prefix}-date`, type: "date", value: depotDate(start && Date.parse(start) > Date.now() ? start : undefined) }),
    start: h("input", { id: `${prefix}-start`, type: "time", value: "" }),
    end: h("input", { id: `${prefix}-end`, type: "time", value: "" }),
  };
}

async function draw(view, id) {
  const { store } = await session();
  const loaded = await loadTask(store, id);
  if (!loaded) { go(`/tasks/${encodeURIComponent(id)}`); return; }
  const { task, pulled, ops } = loaded;
  const now = new Date();
  const state = doorState(pulled, ops, { now, shift: openShift(await allOps(store), now) });
  const appt = task.appointment || {};
  const message = h("p", { id: "appt-message", class: "message", role: "alert" });
  const back = `#/tasks/${encodeURIComponent(task.id)}`;

  async function queue(type, payload) {
    await enqueue(store, { type, entityId: task.id, payload });
    flash("appt.saved");
    drawBar();
    go(`/tasks/${encodeURIComponent(task.id)}`);
  }
  function windowOf(inputs) {
    const start = depotIso(inputs.date.value, inputs.start.value);
    const end = depotIso(inputs.date.value, inputs.end.value);
    return { start, end, problems: windowProblems(start, end) };
  }
  const say = (keys) => replace(message, ...keys.map((key) => h("span", { class: "error-line" }, t(key))));

  const notOffered = (action, step) => h("p", { class: "not-offered", "data-step": step },
    t("appt.not.offered", { action, reason: codeText(state[step].reason) }));

  // Confirm
  const c = windowInputs("confirm", task);
  const confirmForm = h("form", { id: "confirm-form", class: "stack card" }, h("h2", {}, t("appt.confirm")),
    h("p", { class: "phrase", lang: "zh-CN" }, h("span", { class: "muted" }, t("appt.phrase.label")), " 请问什么时候上门方便？"),
    field(t("appt.date"), c.date), h("div", { class: "row2" }, h("div", {}, field(t("appt.start"), c.start)), h("div", {}, field(t("appt.end"), c.end))),
    radios("confirm-via", { legend: t("appt.via"), items: [["phone", word("via", "phone")], ["in_person", word("via", "in_person")]] }, "phone"),
    h("button", { type: "submit", id: "confirm-save" }, t("appt.save")));
  confirmForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const w = windowOf(c);
    if (w.problems.length) { say(w.problems); return; }
    const via = confirmForm.querySelector("input[name=confirm-via]:checked")?.value || "phone";
    await queue("appointment.confirm", { window: { start: w.start, end: w.end }, via });
  });

  // Reschedule
  const r = windowInputs("resched", task);
  const reason = h("input", { id: "resched-reason", maxlength: "300" });
  const rescheduleForm = h("form", { id: "reschedule-form", class: "stack card" }, h("h2", {}, t("appt.reschedule")),
    field(t("appt.date"), r.date), h("div", { class: "row2" }, h("div", {}, field(t("appt.start"), r.start)), h("div", {}, field(t("appt.end"), r.end))),
    field(t("appt.reason"), reason),
    radios("resched-agreed", { legend: t("appt.agreed"), items: [["yes", t("appt.yes")], ["no", t("appt.no")]] }, "yes"),
    radios("resched-via", { legend: t("appt.via"), items: [["phone", word("via", "phone")], ["in_person", word("via", "in_person")]] }, "phone"),
    h("button", { type: "submit", id: "resched-save" }, t("appt.save")));
  rescheduleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const w = windowOf(r);
    const problems = [...w.problems, ...(reason.value.trim() ? [] : ["appt.reason.empty"])];
    if (problems.length) { say(problems); return; }
    const agreed = rescheduleForm.querySelector("input[name=resched-agreed]:checked")?.value !== "no";
    const via = rescheduleForm.querySelector("input[name=resched-via]:checked")?.value || "phone";
    await queue("appointment.reschedule", { window: { start: w.start, end: w.end }, reason: reason.value.trim(), customer_agreed: agreed, via });
  });

  // Late notice
  const start = appt.window?.start || task.window?.start || null;
  const etaDate = h("input", { id: "late-date", type: "date", value: depotDate() });
  const eta = h("input", { id: "late-eta", type: "time" });
  const lateReason = h("input", { id: "late-reason", maxlength: "300" });
  const lateForm = h("form", { id: "late-form", class: "stack card" }, h("h2", {}, t("appt.late_notice.title")),
    h("p", { class: "rule" }, t("appt.notice.rule")),
    start ? h("p", { id: "notice-now", class: state.late_notice.in_time ? "ok" : "warn-text" },
      t(state.late_notice.in_time ? "appt.notice.ok" : "appt.notice.late", { start: when(start) })) : null,
    h("div", { class: "row2" }, h("div", {}, field(t("appt.eta.date"), etaDate)), h("div", {}, field(t("appt.eta"), eta))),
    field(t("appt.reason"), lateReason),
    h("button", { type: "submit", id: "late-save" }, t("appt.save")));
  lateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const at = depotIso(etaDate.value, eta.value);
    const problems = [...(at ? [] : ["appt.err.eta"]), ...(lateReason.value.trim() ? [] : ["appt.reason.empty"])];
    if (problems.length) { say(problems); return; }
    await queue("appointment.late_notice", { eta: at, reason: lateReason.value.trim() });
  });

  replace(view,
    h("a", { class: "back", href: back }, "‹ ", t("back")),
    h("h1", {}, t("appt.title", { waybill: task.waybill_no })),
    h("p", { id: "appt-current" }, task.window?.start
      ? t("appt.current", { window: windowText(task.window), status: word("appt", appt.status || "unconfirmed") })
      : t("appt.none")),
    message,
    state.confirm.allowed ? confirmForm : notOffered(t("appt.confirm"), "confirm"),
    state.reschedule.allowed ? rescheduleForm : notOffered(t("appt.reschedule"), "reschedule"),
    state.late_notice.allowed ? lateForm : notOffered(t("appt.late_notice.title"), "late_notice"));
}

route("/tasks/:id/appointment", ({ id }, view) => { draw(view, id); });
