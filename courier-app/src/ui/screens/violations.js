// #/violations — the courier's own record as pulled: the grade (A/B/C), its score and reasons in words, and the
// violations with their status and appeal. A violation open and not yet appealed (here or at the server) can be
// appealed with a reason and photos: violation.appeal, a create op queued offline (docs/protocol.md).
import { h, replace } from "../dom.js";

/** Draw this screen: its content in the wrapper its styles are scoped to (app.css, .checks-screen). */
function screen(view, ...children) {
  return replace(view, h("div", { class: "checks-screen" }, ...children));
}
import { register, t } from "../i18n.js";
import { route } from "../router.js";
import { listEntities, getDraft, setDraft, clearDraft } from "../../core/store.js";
import { enqueue, allOps } from "../../core/queue.js";
import { formatDateTime } from "../../core/time.js";
import { deviceStore, photoInput } from "./checklist.js";
import { codeText } from "../codes.js";
import { syncEvents } from "../../core/sync.js";

register({
  zh: {
    "violations.title": "我的等级与违规",
    "violations.none_held": "本机还没有你的记录：请联网同步一次。",
    "violations.grade": "等级 {grade}",
    "violations.grade_none": "还没有评级",
    "violations.score": "{score} 分",
    "violations.as_of": "评定于 {time}",
    "violations.window": "统计期 {from} 至 {to}",
    "violations.reason.violations": "{code}（{severity}）{count} 次：扣 {points} 分",
    "violations.reason.on_time_rate": "准时率 {rate}%（目标 {target}%，准时 {kept}，迟到 {late}，未到 {missed}）：扣 {points} 分",
    "violations.reason.on_time_rate_uncounted": "准时率：预约次数还不够，暂不计分（准时 {kept}，迟到 {late}，未到 {missed}）",
    "violations.reason.low_ratings": "差评 {low} 次（共 {ratings} 次评价）：扣 {points} 分",
    "violations.reason.critical_violation": "严重违规 {count} 次：等级最高为 B",
    "violations.reason.override": "人工评定为 {grade}：{reason}",
    "violations.reason.override_ended": "人工评定已到期，按规则评级",
    "violations.reason.override_lifted": "人工评定已取消：{reason}",
    "violations.reason.violation_voided": "违规已撤销（{code}）：{reason}",
    "violations.reason.other": "{code}：{points} 分",
    "violations.list": "违规记录",
    "violations.empty": "没有违规记录。",
    "violations.occurred": "{time}",
    "violations.status.open": "待处理",
    "violations.status.appealed": "申诉中",
    "violations.status.upheld": "维持",
    "violations.status.voided": "已撤销",
    "violations.severity.critical": "严重",
    "violations.severity.major": "较重",
    "violations.severity.minor": "轻微",
    "violations.appeal": "申诉",
    "violations.appeal_reason": "申诉理由",
    "violations.appeal_photo": "添加照片",
    "violations.appeal_photos": "已添加照片 {count} 张",
    "violations.appeal_send": "提交申诉",
    "violations.appeal_reason_needed": "请写明申诉理由。",
    "violations.appeal_pending": "申诉已保存，等待上传",
    "violations.appeal_rejected": "申诉被拒绝：{why}",
    "violations.appeal_state.open": "申诉待审核",
    "violations.appeal_state.upheld": "申诉未通过",
    "violations.appeal_state.voided": "申诉通过，违规已撤销",
    "violations.appeal_text": "你的理由：{reason}",
    "violations.decision": "质检意见：{reason}",
    "violations.back": "返回班次",
    "violations.code.late_without_notice": "迟到且未提前通知客户",
    "violations.code.conduct_item_failed": "仪容检查不合格",
    "violations.code.work_without_shift_check": "未做上岗检查就开始工作",
    "violations.code.grounded_vehicle_used": "使用停用车辆",
    "violations.code.inspection_item_failed": "稽查不合格",
    "violations.code.complaint_upheld": "客户投诉成立",
  },
  en: {
    "violations.title": "My grade and violations",
    "violations.none_held": "Your record is not on this phone yet: sync once while online.",
    "violations.grade": "Grade {grade}",
    "violations.grade_none": "Not graded yet",
    "violations.score": "{score} points",
    "violations.as_of": "As of {time}",
    "violations.window": "Counted {from} to {to}",
    "violations.reason.violations": "{code} ({severity}) × {count}: −{points} points",
    "violations.reason.on_time_rate": "On time {rate}% (target {target}%; kept {kept}, late {late}, missed {missed}): −{points} points",
    "violations.reason.on_time_rate_uncounted": "On time: too few appointments to count yet (kept {kept}, late {late}, missed {missed})",
    "violations.reason.low_ratings": "{low} low ratings of {ratings}: −{points} points",
    "violations.reason.critical_violation": "{count} critical violations: grade B at best",
    "violations.reason.override": "Set by hand to {grade}: {reason}",
    "violations.reason.override_ended": "The grade set by hand ended; graded by the rules again",
    "violations.reason.override_lifted": "The grade set by hand was lifted: {reason}",
    "violations.reason.violation_voided": "A violation was voided ({code}): {reason}",
    "violations.reason.other": "{code}: {points}",
    "violations.list": "Violations",
    "violations.empty": "No violations.",
    "violations.occurred": "{time}",
    "violations.status.open": "open",
    "violations.status.appealed": "appealed",
    "violations.status.upheld": "upheld",
    "violations.status.voided": "voided",
    "violations.severity.critical": "critical",
    "violations.severity.major": "major",
    "violations.severity.minor": "minor",
    "violations.appeal": "Appeal",
    "violations.appeal_reason": "Why you appeal",
    "violations.appeal_photo": "Add a photo",
    "violations.appeal_photos": "{count} photos added",
    "violations.appeal_send": "Send the appeal",
    "violations.appeal_reason_needed": "Write why you appeal.",
    "violations.appeal_pending": "Appeal saved, waiting to upload",
    "violations.appeal_rejected": "The appeal was refused: {why}",
    "violations.appeal_state.open": "Appeal under review",
    "violations.appeal_state.upheld": "Appeal turned down",
    "violations.appeal_state.voided": "Appeal granted: violation voided",
    "violations.appeal_text": "Your reason: {reason}",
    "violations.decision": "Quality's decision: {reason}",
    "violations.back": "Back to the shift",
    "violations.code.late_without_notice": "Late without notice to the customer",
    "violations.code.conduct_item_failed": "Conduct check failed",
    "violations.code.work_without_shift_check": "Work without the shift checks",
    "violations.code.grounded_vehicle_used": "A grounded van used",
    "violations.code.inspection_item_failed": "Spot check failed",
    "violations.code.complaint_upheld": "Customer complaint upheld",
  },
});

function word(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

/** A grade reason in words (docs/protocol.md, the courier record's grade_reasons). */
export function reasonText(reason) {
  const code = reason.violation_code ? word(`violations.code.${reason.violation_code}`, reason.violation_code) : "";
  const severity = reason.severity ? t(`violations.severity.${reason.severity}`) : "";
  const points = Math.abs(reason.points ?? 0);
  const counts = { kept: reason.kept ?? 0, late: reason.late ?? 0, missed: reason.missed ?? 0 };
  switch (reason.code) {
    case "violations": return t("violations.reason.violations", { count: reason.count, code, severity, points });
    case "on_time_rate": return reason.counted === false || reason.rate_percent === null || reason.rate_percent === undefined
      ? t("violations.reason.on_time_rate_uncounted", counts)
      : t("violations.reason.on_time_rate", { rate: reason.rate_percent, target: reason.target_percent, ...counts, points });
    case "low_ratings": return t("violations.reason.low_ratings", { low: reason.low, ratings: reason.ratings, points });
    case "critical_violation": return t("violations.reason.critical_violation", { count: reason.count ?? 1 });
    case "override": return t("violations.reason.override", { grade: reason.grade, reason: reason.reason || "" });
    case "override_ended": return t("violations.reason.override_ended");
    case "override_lifted": return t("violations.reason.override_lifted", { reason: reason.reason || "" });
    case "violation_voided": return t("violations.reason.violation_voided", { code, reason: reason.reason || "" });
    default: return t("violations.reason.other", { code: reason.code, points: reason.points ?? "" });
  }
}

/** The appeal ops queued on this device, by violation id (the newest per violation). */
function appealOps(ops) {
  const by = {};
  for (const op of ops) if (op.type === "violation.appeal") by[op.payload.violation_id] = op;
  return by;
}

function appealForm(store, violation, rerender) {
  const key = `appeal:${violation.id}`;
  const form = h("form", { class: "appeal", id: `appeal-${violation.id}`, novalidate: true });
  const draftP = getDraft(store, key).then((d) => d || { reason: "", photos: [] });
  const area = h("textarea", { id: `appeal-reason-${violation.id}`, maxlength: "2000", rows: "3" });
  const photos = h("span", { class: "photo-state" });
  const note = h("p", { class: "warn", role: "status" });
  draftP.then((d) => {
    area.value = d.reason;
    if (d.photos.length) replace(photos, t("violations.appeal_photos", { count: d.photos.length }));
  });
  area.addEventListener("input", async () => { const d = await draftP; d.reason = area.value; await setDraft(store, key, d); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = await draftP;
    d.reason = area.value.trim();
    if (!d.reason) { replace(note, t("violations.appeal_reason_needed")); return; }
    await enqueue(store, { type: "violation.appeal", payload: { violation_id: violation.id, reason: d.reason, photos: d.photos },
      blobs: d.photos });
    await clearDraft(store, key);
    rerender();
  });
  replace(form,
    h("label", { for: area.id }, t("violations.appeal_reason")), area,
    h("div", { class: "photo-row" }, photoInput(store, `appeal-${violation.id}`, t("violations.appeal_photo"), async (sha256) => {
      const d = await draftP;
      if (!d.photos.includes(sha256) && d.photos.length < 10) d.photos.push(sha256);
      await setDraft(store, key, d);
      replace(photos, t("violations.appeal_photos", { count: d.photos.length }));
    }), photos),
    note,
    h("button", { type: "submit" }, t("violations.appeal_send")));
  return form;
}

/** Appeal boxes the courier opened: they stay open when a sync redraws the screen. */
const opened = new Set();

/** Is the courier typing in this screen (a sync then waits for the next redraw, so nothing is snatched away)? */
export function typing(view) {
  const active = document.activeElement;
  return Boolean(active && view.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
}

function violationItem(store, v, localAppeal, rerender) {
  const appeal = v.appeal;
  let appealPart = null;
  if (appeal) {
    appealPart = h("div", { class: "appeal-state" },
      h("p", {}, h("strong", {}, t(`violations.appeal_state.${appeal.status}`))),
      h("p", {}, t("violations.appeal_text", { reason: appeal.reason })),
      appeal.decision_reason ? h("p", {}, t("violations.decision", { reason: appeal.decision_reason })) : null);
  } else if (localAppeal && localAppeal.state !== "rejected") {
    appealPart = h("p", { class: "badge pending" }, t("violations.appeal_pending"));
  } else if (v.status === "open") {
    // appeal_exists / violation_voided are never offered: only an open violation without an appeal is.
    appealPart = [
      localAppeal ? h("p", { class: "alert" }, t("violations.appeal_rejected", {
        why: codeText(localAppeal.result?.code) })) : null,
      h("details", { class: "appeal-box", open: opened.has(v.id),
        ontoggle: (event) => (event.target.open ? opened.add(v.id) : opened.delete(v.id)) },
      h("summary", { class: "button secondary" }, t("violations.appeal")), appealForm(store, v, rerender))];
  }
  return h("li", { class: `violation ${v.status}`, id: `violation-${v.id}`, "data-status": v.status },
    h("h3", {}, word(`violations.code.${v.code}`, v.code)),
    h("p", {}, t(`violations.severity.${v.severity}`), " · ", formatDateTime(v.occurred_at), " · ",
      h("span", { class: "status" }, t(`violations.status.${v.status}`))),
    v.decision_reason && !appeal ? h("p", {}, t("violations.decision", { reason: v.decision_reason })) : null,
    appealPart);
}

async function draw(params, view, { news = false } = {}) {
  const store = await deviceStore();
  const [record] = await listEntities(store, "courier");
  const back = h("a", { class: "button secondary", href: "#/shift" }, t("violations.back"));
  const rerender = () => draw(params, view);
  if (!record) return void screen(view, h("h1", {}, t("violations.title")), h("p", {}, t("violations.none_held")), back);
  const courier = record.data;
  const local = appealOps(await allOps(store));
  const violations = courier.violations || [];
  // A sync's news drawn while the courier began typing (the draw reads the store first) waits for the next redraw.
  if (news && typing(view)) return;
  screen(view,
    h("h1", {}, t("violations.title")),
    h("section", { class: `grade grade-${courier.grade || "none"}`, id: "grade" },
      h("p", { class: "grade-letter" }, courier.grade ? t("violations.grade", { grade: courier.grade }) : t("violations.grade_none")),
      courier.grade_score !== null && courier.grade_score !== undefined
        ? h("p", { id: "grade-score" }, t("violations.score", { score: courier.grade_score })) : null,
      courier.grade_as_of ? h("p", { class: "muted" }, t("violations.as_of", { time: formatDateTime(courier.grade_as_of) })) : null,
      (courier.grade_reasons || []).length
        ? h("ul", { class: "reasons", id: "grade-reasons" }, courier.grade_reasons.map((r) => h("li", {}, reasonText(r)))) : null),
    h("h2", {}, t("violations.list")),
    violations.length
      ? h("ul", { class: "violations", id: "violations" }, violations.map((v) => violationItem(store, v, local[v.id], rerender)))
      : h("p", {}, t("violations.empty")),
    back);
}

route("/violations", (params, view) => {
  // A sync's news (the server took the appeal, quality decided it) redraws; the courier's own op redraws itself.
  const onChange = (event) => { if (event.detail?.seq == null && !typing(view)) draw(params, view, { news: true }); };
  syncEvents.addEventListener("change", onChange);
  draw(params, view);
  return () => syncEvents.removeEventListener("change", onChange);
});
