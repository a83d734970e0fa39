// The day (#/): the courier's tasks from the device's store in route order (window start, then waybill), finished
// ones apart at the bottom; the courier's grade; "sync now" and the last sync.
import { h, replace } from "../dom.js";
import { register, t } from "../i18n.js";
import { route, go } from "../router.js";
import { session, syncNow, flash, flashText } from "../session.js";
import { errorText } from "../codes.js";
import { drawBar } from "../bar.js";
import { word, statusWord } from "../words.js";
import { yuan, windowText, when } from "../format.js";
import { loadDay, alerts, alertClass, ALERT_WORDS } from "../tasks.js";
import { isEnrolled } from "../../core/device.js";
import { syncEvents, syncStatus } from "../../core/sync.js";

register({
  zh: { ...ALERT_WORDS.zh, "day.title": "今天的任务", "day.open": "待完成 {n}", "day.finished": "已完成 {n}",
        "day.empty": "今天没有任务。同步后仍为空，请联系调度。", "day.sync": "立即同步", "day.syncing": "正在同步…",
        "day.last.sync": "上次同步：{at}", "day.grade": "等级 {grade}", "day.grade.score": "等级 {grade}（{score} 分）",
        "day.cod": "代收 {amount}", "day.window.none": "未定时段", "day.sync.done": "同步完成",
        "day.shift": "班次与检查", "day.violations": "违规与申诉" },
  en: { ...ALERT_WORDS.en, "day.title": "Today's tasks", "day.open": "To do {n}", "day.finished": "Finished {n}",
        "day.empty": "No tasks today. Still empty after a sync: call dispatch.", "day.sync": "Sync now", "day.syncing": "Syncing…",
        "day.last.sync": "Last sync: {at}", "day.grade": "Grade {grade}", "day.grade.score": "Grade {grade} ({score} points)",
        "day.cod": "COD {amount}", "day.window.none": "No window", "day.sync.done": "Synced",
        "day.shift": "Shift and checks", "day.violations": "Violations and appeals" },
});

function card({ task, ops }) {
  const appt = task.appointment?.status;
  return h("li", { class: `task-card status-${task.status}`, "data-task": task.id, "data-waybill": task.waybill_no },
    h("a", { class: "task-link", href: `#/tasks/${encodeURIComponent(task.id)}` },
      h("span", { class: "task-top" },
        h("strong", { class: "waybill" }, task.waybill_no),
        h("span", { class: "kind" }, word("kind", task.kind))),
      h("span", { class: "task-mid" },
        h("span", { class: "window" }, task.window?.start ? windowText(task.window) : t("day.window.none")),
        h("span", { class: "status" }, statusWord(task)),
        appt ? h("span", { class: `appt appt-${appt}` }, word("appt", appt)) : null),
      task.cod_amount ? h("span", { class: "cod" }, t("day.cod", { amount: yuan(task.cod_amount) })) : null,
      h("span", { class: "alerts" }, alerts(task, ops).map(([key, params]) => h("span", { class: `alert ${alertClass(key)}` }, t(key, params))))));
}

async function draw(view) {
  const { store } = await session();
  if (!(await isEnrolled(store))) { go("/enroll"); return; }
  const day = await loadDay(store);
  const status = await syncStatus(store);
  const message = h("p", { id: "sync-message", class: "message", role: "status" }, flashText() || (status.error ? errorText(status.error) : ""));
  const syncButton = h("button", { id: "sync-now", type: "button", class: "wide" }, t("day.sync"));
  syncButton.addEventListener("click", async () => {
    syncButton.disabled = true;
    replace(message, t("day.syncing"));
    const result = await syncNow();
    drawBar();
    if (result.error) { replace(message, errorText(result.error)); syncButton.disabled = false; if (result.error === "revoked") go("/sync"); return; }
    flash("day.sync.done");
    await draw(view);
  });
  const courier = day.courier;
  const grade = courier?.grade ? h("p", { id: "grade", class: `grade grade-${courier.grade}` },
    courier.grade_score !== null && courier.grade_score !== undefined
      ? t("day.grade.score", { grade: courier.grade, score: courier.grade_score }) : t("day.grade", { grade: courier.grade })) : null;
  replace(view,
    h("div", { class: "day-head" },
      h("h1", {}, t("day.title")),
      courier ? h("p", { id: "courier-name", class: "muted" }, courier.name) : null,
      grade),
    h("div", { class: "sync-row" }, syncButton,
      h("p", { id: "last-sync", class: "muted" }, t("day.last.sync", { at: day.lastSync ? when(day.lastSync) : t("never") }))),
    message,
    h("nav", { class: "links" }, h("a", { class: "button secondary", href: "#/shift" }, t("day.shift")),
      h("a", { class: "button secondary", href: "#/violations" }, t("day.violations"))),
    day.open.length + day.finished.length === 0 ? h("p", { id: "day-empty", class: "empty" }, t("day.empty")) : [
      h("h2", {}, t("day.open", { n: day.open.length })),
      h("ol", { id: "open-tasks", class: "task-list" }, day.open.map(card)),
      day.finished.length ? [h("h2", {}, t("day.finished", { n: day.finished.length })),
        h("ol", { id: "finished-tasks", class: "task-list finished" }, day.finished.map(card))] : null,
    ]);
}

route("/", (_params, view) => {
  const redraw = () => draw(view);
  syncEvents.addEventListener("change", redraw);
  draw(view);
  return () => syncEvents.removeEventListener("change", redraw);
});
