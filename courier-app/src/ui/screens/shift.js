// #/shift — the shift's state and its checks, as the company's rules order them: the conduct check, the van's
// pre-trip check, then shift.start; the post-trip check, then shift.end. A step the rules forbid is not offered
// and the screen says why (a grounded van, a check not done today). Everything is queued offline and shown as
// pending until the server answers; a rejection is shown in words.
import { h, replace } from "../dom.js";

/** Draw this screen: its content in the wrapper its styles are scoped to (app.css, .checks-screen). */
function screen(view, ...children) {
  return replace(view, h("div", { class: "checks-screen" }, ...children));
}
import { register, t } from "../i18n.js";
import { route } from "../router.js";
import { listEntities } from "../../core/store.js";
import { enqueue, allOps } from "../../core/queue.js";
import { formatDateTime } from "../../core/time.js";
import { shiftState, checkOdometer } from "../checks.js";
import { deviceStore, heldVehicle, position, itemLabel, defectLabel } from "./checklist.js";
import { codeText } from "../codes.js";
import { typing } from "./violations.js";
import { syncEvents } from "../../core/sync.js";

register({
  zh: {
    "shift.title": "班次",
    "shift.van": "车辆 {plate}",
    "shift.van_status.in_service": "可用",
    "shift.van_status.out_of_service": "停用",
    "shift.van_status.retired": "已报废",
    "shift.open_defects": "未修复问题 {count} 个",
    "shift.none": "还没有开始班次。",
    "shift.open": "班次进行中，{time} 开始",
    "shift.pending": "等待上传",
    "shift.applied": "已上传",
    "shift.step.conduct.pre_shift": "1. 上岗前仪容检查",
    "shift.step.vehicle.pre_trip": "2. 车辆出车检查",
    "shift.step.start": "3. 开始班次",
    "shift.step.vehicle.post_trip": "1. 车辆收车检查",
    "shift.step.end": "2. 结束班次",
    "shift.done_at": "已完成 {time}",
    "shift.not_done": "今天还没有做",
    "shift.not_done_in_shift": "本班次还没有做",
    "shift.do_check": "开始检查",
    "shift.redo_check": "重新检查",
    "shift.odometer": "里程表读数（公里）",
    "shift.start": "开始班次",
    "shift.end": "结束班次",
    "shift.odometer_needed": "请填写里程表读数。",
    "shift.odometer_below": "结束读数 {end} 低于开始读数 {start}：请核对里程表。仍然提交会被标记。",
    "shift.why.vehicle_out_of_service": "车辆已停用：维修人员确认修复前不能出车，不能开始班次。",
    "shift.why.grounded_by_check": "出车检查发现安全项不合格：{items}。车辆已停用，维修人员确认修复前不能出车；修复后请重新做出车检查。",
    "shift.why.checklist_required": "开始班次前须完成今天的检查：{items}。",
    "shift.why.no_vehicle": "本机没有分配给你的车辆：请联系调度，联网同步。",
    "shift.why.shift_already_started": "班次已经开始。",
    "shift.why.end_checklist_required": "结束班次前须完成车辆收车检查。",
    "shift.no_position": "没有位置：班次照样记录，但不带位置。",
    "shift.rejected": "服务器拒绝了{what}：{why}",
    "shift.op.shift.start": "开始班次",
    "shift.op.shift.end": "结束班次",
    "shift.op.checklist.submit": "检查",
    "shift.violations": "我的违规与申诉",
    "shift.home": "返回首页",
  },
  en: {
    "shift.title": "Shift",
    "shift.van": "Van {plate}",
    "shift.van_status.in_service": "in service",
    "shift.van_status.out_of_service": "out of service",
    "shift.van_status.retired": "retired",
    "shift.open_defects": "{count} open defects",
    "shift.none": "No shift started.",
    "shift.open": "Shift open since {time}",
    "shift.pending": "waiting to upload",
    "shift.applied": "uploaded",
    "shift.step.conduct.pre_shift": "1. Conduct before the shift",
    "shift.step.vehicle.pre_trip": "2. Van pre-trip check",
    "shift.step.start": "3. Start the shift",
    "shift.step.vehicle.post_trip": "1. Van post-trip check",
    "shift.step.end": "2. End the shift",
    "shift.done_at": "Done {time}",
    "shift.not_done": "Not done today",
    "shift.not_done_in_shift": "Not done in this shift",
    "shift.do_check": "Start the check",
    "shift.redo_check": "Check again",
    "shift.odometer": "Odometer (km)",
    "shift.start": "Start the shift",
    "shift.end": "End the shift",
    "shift.odometer_needed": "Enter the odometer reading.",
    "shift.odometer_below": "The end reading {end} is below the start reading {start}: check the odometer. Sent as it is, it is flagged.",
    "shift.why.vehicle_out_of_service": "The van is out of service: maintenance must certify the repair before it goes out. The shift cannot start.",
    "shift.why.grounded_by_check": "The pre-trip check failed a safety item: {items}. The van is grounded until maintenance certifies the repair; after it, check the van again.",
    "shift.why.checklist_required": "Before the shift, today's checks: {items}.",
    "shift.why.no_vehicle": "No van is assigned to you on this phone: ask dispatch, then sync.",
    "shift.why.shift_already_started": "The shift has started.",
    "shift.why.end_checklist_required": "Do the van's post-trip check before ending the shift.",
    "shift.no_position": "No position: the shift is recorded without one.",
    "shift.rejected": "The server refused {what}: {why}",
    "shift.op.shift.start": "shift start",
    "shift.op.shift.end": "shift end",
    "shift.op.checklist.submit": "a check",
    "shift.violations": "My violations and appeals",
    "shift.home": "Home",
  },
});

/** A server rejection of a shift op or a check, in words (ui/codes.js), with the server's detail. */
function rejection(op) {
  const code = op.result?.code;
  return h("p", { class: "alert rejected", "data-code": code || "" },
    t("shift.rejected", { what: t(`shift.op.${op.type}`), why: codeText(code) }),
    op.result?.detail ? h("span", { class: "detail" }, ` (${op.result.detail})`) : null);
}

function stateBadge(op) {
  if (!op) return null;
  return h("span", { class: `badge ${op.state}` }, op.state === "pending" ? t("shift.pending") : t("shift.applied"));
}

function checkStep(kind, check, stepKey) {
  const notDone = kind === "vehicle.post_trip" ? t("shift.not_done_in_shift") : t("shift.not_done");
  return h("li", { class: `step ${check ? "done" : "todo"}`, id: `step-${kind.replace(".", "-")}` },
    h("h2", {}, t(stepKey)),
    h("p", {}, check ? [t("shift.done_at", { time: formatDateTime(check.device_time) }), " ", stateBadge(check.op)] : notDone),
    h("a", { class: `button${check ? " secondary" : ""}`, href: `#/checklist/${kind}`, id: `do-${kind.replace(".", "-")}` },
      check ? t("shift.redo_check") : t("shift.do_check")));
}

async function draw(_params, view, { news = false } = {}) {
  const store = await deviceStore();
  const vehicle = await heldVehicle(store);
  const templates = (await listEntities(store, "checklist_template")).map((e) => e.data);
  const ops = await allOps(store);
  const now = new Date();
  const state = shiftState({ ops, templates, vehicle, now });
  const relevant = ops.filter((op) => ["shift.start", "shift.end", "checklist.submit"].includes(op.type));
  // The rejections still standing: of the last 16 h, and not followed by an op of the same kind the server took
  // (a shift started after a refused one, a check made again).
  const kindOf = (op) => (op.type === "checklist.submit" ? `check:${op.payload.template_id}` : op.type);
  const lastTaken = {};
  for (const op of relevant) if (op.state !== "rejected") lastTaken[kindOf(op)] = Math.max(lastTaken[kindOf(op)] ?? 0, op.seq);
  const today = relevant.filter((op) => op.state === "rejected" && now - new Date(op.device_time) < 16 * 3600_000 &&
    op.seq > (lastTaken[kindOf(op)] ?? 0));
  const message = h("div", { id: "shift-message", role: "status", "aria-live": "polite" });

  const van = vehicle
    ? h("section", { class: `van ${vehicle.status}`, id: "van" },
      h("p", {}, h("strong", {}, t("shift.van", { plate: vehicle.plate })), " · ",
        h("span", { id: "van-status" }, state.groundedHere && vehicle.status === "in_service"
          ? t("shift.van_status.out_of_service") : t(`shift.van_status.${vehicle.status}`))),
      vehicle.open_defects ? h("p", {}, t("shift.open_defects", { count: vehicle.open_defects })) : null,
      (vehicle.defects || []).length ? h("ul", { class: "defects", id: "van-defects" }, vehicle.defects.map((d) => h("li", {},
        `${defectLabel(templates, d)} · ${t(`checklist.severity.${d.severity}`)}`))) : null)
    : null;

  /** The odometer field: [its label and input, the input]. */
  const odometer = (id, value) => {
    const input = h("input", { id, type: "number", inputmode: "numeric", min: "0", max: "10000000", step: "1", value: value ?? "" });
    return [h("div", { class: "field" }, h("label", { for: id }, t("shift.odometer")), input), input];
  };

  async function queueShift(kind, input) {
    const value = input.value === "" ? NaN : Number(input.value);
    if (!Number.isInteger(value) || value < 0) { replace(message, h("p", { class: "warn" }, t("shift.odometer_needed"))); return false; }
    const where = await position();
    const payload = { odometer: value, ...(where || {}) };
    await enqueue(store, { type: `shift.${kind}`, entityId: kind === "start" ? vehicle.id : state.shift.vehicle_id, payload });
    if (!where) sessionStorage.setItem("fieldops.shift.no_position", "1");
    return true;
  }

  let steps;
  if (!state.shift) {
    const preTripItems = templates.find((tpl) => tpl.id === state.preTrip?.op.payload.template_id)?.items || [];
    const labelOf = (code) => { const item = preTripItems.find((i) => i.code === code); return item ? itemLabel(item) : code; };
    const why = state.startReason === "grounded_by_check"
      ? t("shift.why.grounded_by_check", { items: state.preTrip.critical.map(labelOf).join("、") })
      : state.startReason === "checklist_required"
        ? t("shift.why.checklist_required", { items: state.missing.map((k) => t(`checklist.title.${k}`)).join("、") })
        : state.startReason ? t(`shift.why.${state.startReason}`) : null;
    const [field, input] = odometer("start-odometer", checkOdometer(state.preTrip));
    const start = state.canStart
      ? h("button", { type: "button", id: "start-shift", onclick: async () => { if (await queueShift("start", input)) draw(_params, view); } }, t("shift.start"))
      : null;
    steps = h("ol", { class: "steps" },
      checkStep("conduct.pre_shift", state.conduct, "shift.step.conduct.pre_shift"),
      checkStep("vehicle.pre_trip", state.preTrip, "shift.step.vehicle.pre_trip"),
      h("li", { class: "step", id: "step-start" }, h("h2", {}, t("shift.step.start")),
        why ? h("p", { class: "alert", id: "start-why" }, why) : null,
        state.canStart ? [field, start] : null));
  } else {
    const startOp = ops.find((op) => op.seq === state.shift.seq);
    const startOdo = startOp?.payload?.odometer ?? null;
    const [field, input] = odometer("end-odometer", checkOdometer(state.postTrip));
    const warn = h("p", { class: "warn", id: "odometer-warn", hidden: true });
    const check = () => {
      const end = Number(input.value);
      const below = input.value !== "" && startOdo !== null && end < startOdo;
      warn.hidden = !below;
      replace(warn, below ? t("shift.odometer_below", { end, start: startOdo }) : "");
    };
    input.addEventListener("input", check);
    steps = h("ol", { class: "steps" },
      checkStep("vehicle.post_trip", state.postTrip, "shift.step.vehicle.post_trip"),
      h("li", { class: "step", id: "step-end" }, h("h2", {}, t("shift.step.end")),
        state.canEnd ? [field, warn, h("button", { type: "button", id: "end-shift",
          onclick: async () => { if (await queueShift("end", input)) draw(_params, view); } }, t("shift.end"))]
          : h("p", { class: "alert", id: "end-why" }, t("shift.why.end_checklist_required"))));
    queueMicrotask(check);
  }

  // A sync's news drawn while the courier began typing (the draw reads the store first) waits for the next redraw.
  if (news && typing(view)) return;
  const shiftOp = state.shift ? ops.find((op) => op.seq === state.shift.seq) : null;
  const noPosition = sessionStorage.getItem("fieldops.shift.no_position");
  sessionStorage.removeItem("fieldops.shift.no_position");
  screen(view,
    h("h1", {}, t("shift.title")),
    van,
    h("p", { id: "shift-state", class: state.shift ? "ok" : "" },
      state.shift ? [t("shift.open", { time: formatDateTime(state.shift.started_at) }), " ", stateBadge(shiftOp)] : t("shift.none")),
    noPosition ? h("p", { class: "warn" }, t("shift.no_position")) : null,
    today.length ? h("section", { id: "shift-problems" }, today.map(rejection)) : null,
    steps,
    message,
    h("p", { class: "links" }, h("a", { href: "#/violations", class: "button secondary" }, t("shift.violations")),
      h("a", { href: "#/", class: "button secondary" }, t("shift.home"))));
}

route("/shift", (params, view) => {
  // A sync's news (the van grounded or repaired, a rejection) redraws; the courier's own op redraws itself.
  const onChange = (event) => { if (event.detail?.seq == null && !typing(view)) draw(params, view, { news: true }); };
  syncEvents.addEventListener("change", onChange);
  draw(params, view);
  return () => syncEvents.removeEventListener("change", onChange);
});
