// Reading the device's tasks for the screens: the pulled task with the still-pending ops' effects overlaid (the
// core's rules.localTask), its ops, and its alerts. Route order: dispatch sends none (no such field in a task's
// data), so the day is ordered by window start, then waybill (docs/decisions.md "Issue 25: screens").
import { getEntity, listEntities, getMeta } from "../core/store.js";
import { opsFor } from "../core/queue.js";
import { localTask } from "../core/rules.js";
import { dataOf } from "./session.js";
import { FINISHED } from "./words.js";


/** One task with its ops: {task (with the unanswered ops overlaid), pulled (as the server sent it), ops} or null. */
export async function loadTask(store, id) {
  const record = await getEntity(store, "task", id);
  const ops = await opsFor(store, id);
  if (!record) return null;
  const pulled = dataOf(record);
  return { task: localTask(pulled, ops), pulled, ops };
}

export function byRoute(a, b) {
  const sa = a.task.window?.start ? Date.parse(a.task.window.start) : Infinity;
  const sb = b.task.window?.start ? Date.parse(b.task.window.start) : Infinity;
  if (sa !== sb) return sa - sb;
  return String(a.task.waybill_no).localeCompare(String(b.task.waybill_no));
}

/** {open, finished, courier, lastSync}: the day from the store. */
export async function loadDay(store) {
  const records = await listEntities(store, "task");
  const items = [];
  for (const record of records) {
    const data = dataOf(record);
    const ops = await opsFor(store, data.id);
    items.push({ task: localTask(data, ops), ops });
  }
  items.sort(byRoute);
  const couriers = await listEntities(store, "courier");
  return {
    open: items.filter((item) => !FINISHED.has(item.task.status)),
    finished: items.filter((item) => FINISHED.has(item.task.status)),
    courier: couriers.length ? dataOf(couriers[0]) : null,
    lastSync: await getMeta(store, "last_sync"),
  };
}

/** The alerts of a task, as keys of words (with params): what the courier must notice on the list and the page. */
export function alerts(task, ops, now = new Date()) {
  const list = [];
  if (task.needs_review) list.push(["alert.review"]);
  if (task.gift_description) list.push(["alert.gift", { gift: task.gift_description }]);
  if (task.pin_required) list.push(["alert.pin"]);
  const promise = task.promise;
  if (promise && !FINISHED.has(task.status)) {
    const late = promise.promised_at && Date.parse(promise.promised_at) < now.getTime();
    if (late || promise.state === "breached") list.push(["alert.promise.breached"]);
    else if (promise.at_risk || promise.state === "at_risk") list.push(["alert.promise.risk"]);
  }
  const pending = ops.filter((op) => op.state === "pending").length;
  if (pending) list.push(["alert.pending", { n: pending }]);
  const rejected = ops.filter((op) => op.state === "rejected").length;
  if (rejected) list.push(["alert.rejected", { n: rejected }]);
  const conflicts = ops.filter((op) => op.state === "conflict").length;
  if (conflicts) list.push(["alert.conflict", { n: conflicts }]);
  return list;
}

export const ALERT_WORDS = {
  zh: { "alert.review": "待调度复核", "alert.gift": "有赠品：{gift}", "alert.pin": "需取件码",
        "alert.promise.risk": "时效将超", "alert.promise.breached": "已超时效", "alert.pending": "{n} 项待同步",
        "alert.rejected": "{n} 项被拒绝", "alert.conflict": "{n} 项已生效，待调度复核" },
  en: { "alert.review": "Dispatch review", "alert.gift": "Gift: {gift}", "alert.pin": "PIN required",
        "alert.promise.risk": "Promise at risk", "alert.promise.breached": "Promise breached", "alert.pending": "{n} to sync",
        "alert.rejected": "{n} refused", "alert.conflict": "{n} applied, for dispatch to review" },
};
/** Severity class of an alert key (for its colour). */
// A conflict was applied (a field fact, dispatch reviews it): not shown as a refusal.
export const alertClass = (key) => (["alert.rejected", "alert.promise.breached", "alert.review"].includes(key) ? "bad" : key === "alert.pending" ? "warn" : "info");
