// The shift's checks as the server judges them (docs/protocol.md "Checklists", "Shifts"), evaluated on the
// device so the shift screen offers only what the rules allow and says why. Pure: no DOM, no I/O, no clock
// but the `now` given; the screens (shift.js, checklist.js) read the store and pass what they hold.
import { depotTimeZone, parseTime } from "../core/time.js";
import { openShift } from "../core/rules.js";

/** The van's safety items: critical in every template version (protocol "Checks before work"). */
export const SAFETY_ITEMS = Object.freeze(["technical_condition", "safety_equipment"]);

/** The checks a shift needs, in the order the courier makes them. */
export const START_CHECKS = Object.freeze(["conduct.pre_shift", "vehicle.pre_trip"]);

/** An item's severity as the server counts it: a safety item is critical whatever its version says. */
export function severity(item) {
  return SAFETY_ITEMS.includes(item.code) ? "critical" : item.severity;
}

/** Is an answer given for this item (a photo item by its photo, the others by their value)? */
export function answered(item, answer) {
  if (!answer) return false;
  if (item.type === "photo") return Boolean(answer.photo);
  if (item.type === "text") return typeof answer.value === "string" && answer.value.trim() !== "";
  if (item.type === "number") return typeof answer.value === "number" && Number.isFinite(answer.value);
  return answer.value !== undefined && answer.value !== null && answer.value !== "";
}

/** Does this answer fail its item (pass_fail false, a number outside min/max, a failing choice)? */
export function fails(item, answer) {
  if (!answered(item, answer)) return false;
  const value = answer.value;
  if (item.type === "pass_fail") return value === false;
  if (item.type === "number") {
    return (item.min !== null && item.min !== undefined && value < item.min) ||
      (item.max !== null && item.max !== undefined && value > item.max);
  }
  if (item.type === "choice") return (item.failing_choices || []).includes(value);
  return false;
}

/**
 * Judge a filled-in checklist as the server will: `missing` required items, `failed` items, `photoMissing`
 * (failed items whose photo_required_on_failure is set, without a photo), `critical` (failed critical items).
 * @param {Array<object>} items the template's items
 * @param {Object<string, {value?: *, photo?: string}>} answers by item code
 */
export function judge(items, answers) {
  const missing = [];
  const failed = [];
  const photoMissing = [];
  const critical = [];
  for (const item of items) {
    const answer = answers[item.code];
    if (!answered(item, answer)) {
      if (item.required) missing.push(item.code);
      continue;
    }
    if (!fails(item, answer)) continue;
    failed.push(item.code);
    if (severity(item) === "critical") critical.push(item.code);
    if (item.photo_required_on_failure && !answer.photo) photoMissing.push(item.code);
  }
  return { missing, failed, photoMissing, critical, ready: missing.length === 0 && photoMissing.length === 0 };
}

/** The payload's answers: [{item, value, photo?}] for the answered items (a photo item by its photo alone). */
export function payloadAnswers(items, answers) {
  const out = [];
  for (const item of items) {
    const answer = answers[item.code];
    if (!answered(item, answer)) continue;
    if (item.type === "photo") out.push({ item: item.code, photo: answer.photo });
    else if (answer.photo && fails(item, answer)) out.push({ item: item.code, value: answer.value, photo: answer.photo });
    else out.push({ item: item.code, value: answer.value });
  }
  return out;
}

/** The depot's calendar day ("2026-12-07") of a time: the server counts "that day's" checks by it. */
export function depotDay(value, timeZone = depotTimeZone()) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return null;
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(date);
}

/**
 * The checklist ops that count, as {kind, vehicle_id, device_time, critical, state, seq, op}: every
 * checklist.submit this device queued and the server did not reject (pending ones count: the courier did it).
 * `templates` are the pulled checklist templates (their kind, and their items to tell a critical failure).
 */
export function madeChecks(ops, templates) {
  const byId = Object.fromEntries(templates.map((tpl) => [tpl.id, tpl]));
  return ops
    .filter((op) => op.type === "checklist.submit" && op.state !== "rejected")
    .map((op) => {
      const template = byId[op.payload.template_id];
      const answers = Object.fromEntries((op.payload.answers || []).map((a) => [a.item, a]));
      return {
        kind: template?.kind,
        vehicle_id: op.payload.vehicle_id || null,
        device_time: op.device_time,
        critical: template ? judge(template.items, answers).critical : [],
        state: op.state,
        seq: op.seq,
        op,
      };
    })
    .filter((check) => check.kind)
    .sort((a, b) => a.seq - b.seq);
}

/** The newest check of a kind (of that van, for vehicle checks) made on `day` at or before `now`, or null. */
export function latestCheck(checks, kind, { day, now, vehicleId = null, since = null }) {
  const found = checks.filter((check) => {
    const at = parseTime(check.device_time);
    if (check.kind !== kind || !at || at > now) return false;
    if (vehicleId && check.vehicle_id !== vehicleId) return false;
    if (since && at < since) return false;
    return day === null || depotDay(at) === day;
  });
  return found.length ? found[found.length - 1] : null;
}

/**
 * What the shift screen may offer, judged as the server does (shift.start / shift.end):
 * `{shift, conduct, preTrip, postTrip, grounded, canStart, startReason, canEnd, endReason, missing}`.
 * The van counts as grounded on this device when the pulled van is not in service, or when today's newest
 * pre-trip (queued here) failed a critical item: the server grounds the van at once, and a shift needs a
 * newer pre-trip after the repair.
 * @param {{ops: Array<object>, templates: Array<object>, vehicle: object|null, now: Date}} state
 */
export function shiftState({ ops, templates, vehicle, now }) {
  const shift = openShift(ops, now);
  const checks = madeChecks(ops, templates);
  const day = depotDay(now);
  const vehicleId = vehicle?.id ?? null;
  const conduct = latestCheck(checks, "conduct.pre_shift", { day, now });
  const preTrip = vehicleId ? latestCheck(checks, "vehicle.pre_trip", { day, now, vehicleId }) : null;
  const postTrip = shift ? latestCheck(checks, "vehicle.post_trip", {
    day: null, now, vehicleId: shift.vehicle_id, since: parseTime(shift.started_at),
  }) : null;
  const groundedHere = Boolean(preTrip && preTrip.critical.length);
  const outOfService = Boolean(vehicle && vehicle.status !== "in_service");
  const missing = [];
  if (!conduct) missing.push("conduct.pre_shift");
  if (!preTrip || groundedHere) missing.push("vehicle.pre_trip");
  let startReason = null;
  if (shift) startReason = "shift_already_started";
  else if (!vehicle) startReason = "no_vehicle";
  else if (outOfService) startReason = "vehicle_out_of_service";
  else if (groundedHere) startReason = "grounded_by_check";
  else if (missing.length) startReason = "checklist_required";
  let endReason = null;
  if (!shift) endReason = "shift_not_started";
  else if (!postTrip) endReason = "checklist_required";
  return {
    shift, conduct, preTrip, postTrip, missing,
    grounded: outOfService || groundedHere,
    groundedHere,
    canStart: startReason === null, startReason,
    canEnd: endReason === null, endReason,
  };
}

/** The odometer read in a van check (its `odometer` item), or null. */
export function checkOdometer(check) {
  const answer = (check?.op?.payload?.answers || []).find((a) => a.item === "odometer");
  return typeof answer?.value === "number" ? answer.value : null;
}

/** Does the van's last report need acknowledging in a pre-trip (it found defects)? */
export function needsAcknowledgement(vehicle) {
  const report = vehicle?.last_report;
  return Boolean(report && (report.failed?.length || report.defects?.length));
}
