// The queue screen (#/sync): ops waiting to be sent, ops the server refused (its code in words, its detail),
// conflicts explained, the last sync and its error, a Sync button. A revoked device goes to re-enrollment.
import { h, replace } from "../dom.js";
import { register, t } from "../i18n.js";
import { route, go } from "../router.js";
import { session, syncNow, flash, flashText } from "../session.js";
import { errorText } from "../codes.js";
import { drawBar } from "../bar.js";
import { when } from "../format.js";
import { opLine } from "./task.js";
import { heldOps, pendingOps, problemOps } from "../../core/queue.js";
import { getEntity, getMeta } from "../../core/store.js";
import { syncEvents, syncStatus } from "../../core/sync.js";

register({
  zh: { "sync.title": "同步队列", "sync.pending": "待发送 {n}", "sync.pending.none": "没有待发送的操作。",
        "sync.problems": "被拒绝或冲突 {n}", "sync.problems.none": "没有被拒绝的操作。",
        "sync.problems.help": "被拒绝的操作不会再发送；冲突的操作已生效，由调度复核。",
        "sync.last": "上次同步：{at}", "sync.error": "上次同步出错：{error}", "sync.retry.at": "将于 {at} 重试。", "sync.now": "立即同步",
        "sync.running": "正在同步…", "sync.done": "同步完成：发送 {pushed}，被拒 {rejected}，更新 {pulled}",
        "sync.revoked": "本机已被注销，需要重新登记。", "sync.reenroll": "重新登记", "sync.task": "任务 {waybill}",
        "sync.held": "其他快递员的未发送操作 {n}",
        "sync.held.help": "本机改为当前快递员登记前，其他快递员留下的操作：不会以你的身份发送；原快递员在本机重新登记后会自动发送。" },
  en: { "sync.title": "Sync queue", "sync.pending": "To send {n}", "sync.pending.none": "Nothing waiting to be sent.",
        "sync.problems": "Refused or in conflict {n}", "sync.problems.none": "Nothing refused.",
        "sync.problems.help": "A refused action is not sent again; an action in conflict was applied and dispatch reviews it.",
        "sync.last": "Last sync: {at}", "sync.error": "Last sync failed: {error}", "sync.retry.at": "Retrying at {at}.", "sync.now": "Sync now",
        "sync.running": "Syncing…", "sync.done": "Synced: {pushed} sent, {rejected} refused, {pulled} updated",
        "sync.revoked": "This phone was revoked: enroll it again.", "sync.reenroll": "Enroll again", "sync.task": "Task {waybill}",
        "sync.held": "Another courier's unsent actions {n}",
        "sync.held.help": "Left by another courier before this phone was enrolled for you: they are never sent as yours; they go when that courier enrolls this phone again." },
});


async function withTask(store, op) {
  const record = op.entity === "task" || !op.entity ? await getEntity(store, "task", op.entity_id) : null;
  const line = opLine(op);
  // The waybill as pulled, else as the op kept it (a task reassigned or cancelled is gone from the scope).
  const waybill = record?.data?.waybill_no ?? op.label;
  if (record && waybill) line.prepend(h("a", { class: "op-task", href: `#/tasks/${encodeURIComponent(op.entity_id)}` }, t("sync.task", { waybill })));
  else if (waybill) line.prepend(h("span", { class: "op-task" }, t("sync.task", { waybill })));
  return line;
}

let running = false; // a sync started here, still under way (the screen redraws meanwhile)

async function draw(view) {
  const { store } = await session();
  if (!(await getMeta(store, "token"))) { go("/enroll"); return; } // a revoked phone stays here: its queue is shown
  const pending = await pendingOps(store);
  const problems = await problemOps(store);
  const held = await heldOps(store);
  const status = await syncStatus(store);
  const message = h("p", { id: "sync-screen-message", class: "message", role: "status" }, running ? t("sync.running") : flashText());
  const button = h("button", { id: "sync-run", type: "button", class: "wide", disabled: running }, t("sync.now"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    running = true;
    replace(message, t("sync.running"));
    const result = await syncNow().finally(() => { running = false; });
    if (!result.error) flash("sync.done", { pushed: result.pushed ?? 0, rejected: result.rejected ?? 0, pulled: result.pulled ?? 0 });
    drawBar();
    await draw(view);
  });
  replace(view,
    h("h1", {}, t("sync.title")),
    status.revoked ? h("div", { id: "revoked", class: "card bad-card", role: "alert" }, h("p", {}, t("sync.revoked")),
      h("a", { id: "reenroll-now", class: "button", href: "#/enroll" }, t("sync.reenroll"))) : null,
    h("p", { id: "sync-last" }, t("sync.last", { at: status.lastSync ? when(status.lastSync) : t("never") })),
    status.error ? h("p", { id: "sync-error", class: "error-text" }, t("sync.error", { error: errorText(status.error) }),
      status.retryAt ? " " + t("sync.retry.at", { at: when(status.retryAt) }) : "") : null,
    status.revoked ? null : button, message,
    h("h2", {}, t("sync.pending", { n: pending.length })),
    pending.length ? h("ul", { id: "pending-ops", class: "ops" }, await Promise.all(pending.map((op) => withTask(store, op))))
      : h("p", { class: "muted" }, t("sync.pending.none")),
    h("h2", {}, t("sync.problems", { n: problems.length })),
    problems.length ? [h("p", { class: "muted" }, t("sync.problems.help")),
      h("ul", { id: "problem-ops", class: "ops" }, await Promise.all(problems.map((op) => withTask(store, op))))]
      : h("p", { class: "muted" }, t("sync.problems.none")),
    held.length ? [h("h2", {}, t("sync.held", { n: held.length })), h("p", { class: "muted" }, t("sync.held.help")),
      h("ul", { id: "held-ops", class: "ops" }, held.map((op) => opLine(op)))] : null);
}

route("/sync", (_params, view) => {
  const redraw = () => draw(view);
  syncEvents.addEventListener("change", redraw);
  draw(view);
  return () => syncEvents.removeEventListener("change", redraw);
});
