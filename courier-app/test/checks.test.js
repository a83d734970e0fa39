// The shift's checks judged on the device as the server judges them (src/ui/checks.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { judge, payloadAnswers, shiftState, depotDay, needsAcknowledgement, checkOdometer } from "../src/ui/checks.js";

const pf = (code, extra = {}) => ({ code, type: "pass_fail", required: true, severity: "minor",
  photo_required_on_failure: true, ...extra });
const VAN_ITEMS = [
  pf("body_clean"),
  { code: "paint_loss_cm2", type: "number", min: 0, max: 1, unit: "cm²", required: true, severity: "minor", photo_required_on_failure: true },
  pf("technical_condition", { severity: "major" }), // an older version's severity: a safety item is critical anyway
  { code: "odometer", type: "number", min: 0, max: null, required: true, severity: "minor", photo_required_on_failure: false },
  { code: "remarks", type: "text", required: false, severity: "minor", photo_required_on_failure: false },
];
const CONDUCT_ITEMS = [
  pf("uniform", { photo_required_on_failure: false }),
  { code: "hair", type: "choice", choices: ["tied", "not_applicable", "not_tied"], failing_choices: ["not_tied"],
    required: true, severity: "minor", photo_required_on_failure: false },
];
const TEMPLATES = [
  { id: "ct-1", kind: "conduct.pre_shift", current: 1, items: CONDUCT_ITEMS },
  { id: "vp-1", kind: "vehicle.pre_trip", current: 2, items: VAN_ITEMS },
  { id: "vq-1", kind: "vehicle.post_trip", current: 2, items: VAN_ITEMS },
];
const passing = { body_clean: { value: true }, paint_loss_cm2: { value: 0 }, technical_condition: { value: true }, odometer: { value: 1200 } };
const SHA = "a".repeat(64);

test("required items missing, failures, photos a failure needs, critical safety items", () => {
  assert.deepEqual(judge(VAN_ITEMS, {}).missing, ["body_clean", "paint_loss_cm2", "technical_condition", "odometer"]);
  const verdict = judge(VAN_ITEMS, { ...passing, paint_loss_cm2: { value: 1.5 }, technical_condition: { value: false } });
  assert.deepEqual(verdict.failed, ["paint_loss_cm2", "technical_condition"]);
  assert.deepEqual(verdict.photoMissing, ["paint_loss_cm2", "technical_condition"]);
  assert.deepEqual(verdict.critical, ["technical_condition"]);
  assert.equal(verdict.ready, false);
  const proven = judge(VAN_ITEMS, { ...passing, technical_condition: { value: false, photo: SHA } });
  assert.equal(proven.ready, true);
  assert.deepEqual(proven.critical, ["technical_condition"]);
  // The number's bounds are inclusive; no max means no upper bound; a failing choice fails.
  assert.deepEqual(judge(VAN_ITEMS, { ...passing, paint_loss_cm2: { value: 1 }, odometer: { value: 9e6 } }).failed, []);
  assert.deepEqual(judge(CONDUCT_ITEMS, { uniform: { value: true }, hair: { value: "not_tied" } }).failed, ["hair"]);
  assert.deepEqual(judge(CONDUCT_ITEMS, { uniform: { value: true }, hair: { value: "not_applicable" } }).failed, []);
  // A blank text or a number that is not one is no answer.
  assert.deepEqual(judge(VAN_ITEMS, { ...passing, odometer: { value: NaN }, remarks: { value: "  " } }).missing, ["odometer"]);
});

test("the payload carries answered items only, a photo only with a failure", () => {
  const answers = payloadAnswers(VAN_ITEMS, { ...passing, body_clean: { value: true, photo: SHA },
    technical_condition: { value: false, photo: SHA }, remarks: { value: "" } });
  assert.deepEqual(answers, [
    { item: "body_clean", value: true },
    { item: "paint_loss_cm2", value: 0 },
    { item: "technical_condition", value: false, photo: SHA },
    { item: "odometer", value: 1200 },
  ]);
});

let seq = 0;
function op(type, device_time, payload, extra = {}) {
  seq += 1;
  return { seq, type, device_time, payload, entity_id: extra.entity_id ?? `e-${seq}`, state: "pending", result: null, ...extra };
}
const check = (templateId, at, answers, vehicle_id = "v-1", extra = {}) => op("checklist.submit", at, {
  template_id: templateId, template_version: 1, vehicle_id: templateId === "ct-1" ? null : vehicle_id,
  answers: Object.entries(answers).map(([item, a]) => ({ item, ...a })),
}, extra);
const VAN = { id: "v-1", plate: "沪A1", status: "in_service" };
const NOW = new Date("2026-12-07T09:00:00+08:00");

test("the shift starts only after today's conduct check and a pre-trip without a critical failure", () => {
  assert.equal(shiftState({ ops: [], templates: TEMPLATES, vehicle: VAN, now: NOW }).startReason, "checklist_required");
  const conduct = check("ct-1", "2026-12-07T08:00:00+08:00", { uniform: { value: true }, hair: { value: "tied" } });
  let state = shiftState({ ops: [conduct], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.deepEqual(state.missing, ["vehicle.pre_trip"]);
  // Yesterday's pre-trip (by depot day) does not count.
  const old = check("vp-1", "2026-12-06T23:30:00+08:00", passing);
  assert.deepEqual(shiftState({ ops: [conduct, old], templates: TEMPLATES, vehicle: VAN, now: NOW }).missing, ["vehicle.pre_trip"]);
  // A critical failure grounds the van on this device at once (before the server says so).
  const grounding = check("vp-1", "2026-12-07T08:10:00+08:00", { ...passing, technical_condition: { value: false, photo: SHA } });
  state = shiftState({ ops: [conduct, grounding], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.equal(state.canStart, false);
  assert.equal(state.startReason, "grounded_by_check");
  assert.deepEqual(state.preTrip.critical, ["technical_condition"]);
  // The server's van out of service: not offered, whatever the checks.
  const minor = check("vp-1", "2026-12-07T08:20:00+08:00", { ...passing, body_clean: { value: false, photo: SHA } });
  assert.equal(shiftState({ ops: [conduct, minor], templates: TEMPLATES, vehicle: { ...VAN, status: "out_of_service" }, now: NOW })
    .startReason, "vehicle_out_of_service");
  // After the repair a newer pre-trip (a minor defect only) is the one that counts.
  state = shiftState({ ops: [conduct, grounding, minor], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.equal(state.canStart, true);
  assert.equal(checkOdometer(state.preTrip), 1200);
  // A check the server rejected counts for nothing.
  const rejected = check("ct-1", "2026-12-07T08:00:00+08:00", { uniform: { value: true }, hair: { value: "tied" } }, null, { state: "rejected" });
  assert.deepEqual(shiftState({ ops: [rejected, minor], templates: TEMPLATES, vehicle: VAN, now: NOW }).missing, ["conduct.pre_shift"]);
  // Another van's pre-trip is not this van's.
  const other = check("vp-1", "2026-12-07T08:30:00+08:00", passing, "v-2");
  assert.deepEqual(shiftState({ ops: [conduct, other], templates: TEMPLATES, vehicle: VAN, now: NOW }).missing, ["vehicle.pre_trip"]);
});

test("the shift ends after a post-trip made since it started; a rejected start opened nothing", () => {
  const conduct = check("ct-1", "2026-12-07T07:00:00+08:00", { uniform: { value: true }, hair: { value: "tied" } });
  const pre = check("vp-1", "2026-12-07T07:10:00+08:00", passing);
  const start = op("shift.start", "2026-12-07T07:20:00+08:00", { odometer: 1200 }, { entity_id: "v-1" });
  const earlyPost = check("vq-1", "2026-12-07T07:15:00+08:00", passing);
  let state = shiftState({ ops: [conduct, pre, earlyPost, start], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.equal(state.shift.vehicle_id, "v-1");
  assert.equal(state.startReason, "shift_already_started");
  assert.equal(state.endReason, "checklist_required");
  const post = check("vq-1", "2026-12-07T08:50:00+08:00", { ...passing, odometer: { value: 1260 } });
  state = shiftState({ ops: [conduct, pre, earlyPost, start, post], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.equal(state.canEnd, true);
  assert.equal(checkOdometer(state.postTrip), 1260);
  const refused = { ...start, state: "rejected", result: { status: "rejected", code: "training_required" } };
  state = shiftState({ ops: [conduct, pre, refused], templates: TEMPLATES, vehicle: VAN, now: NOW });
  assert.equal(state.shift, null);
  assert.equal(state.canStart, true);
});

test("depot day and the last report that needs acknowledging", () => {
  assert.equal(depotDay("2026-12-07T16:30:00Z"), "2026-12-08"); // 00:30 in Shanghai
  assert.equal(depotDay("2026-12-07T15:30:00Z"), "2026-12-07");
  assert.equal(needsAcknowledgement({ last_report: null }), false);
  assert.equal(needsAcknowledgement({ last_report: { id: "r", failed: [], defects: [] } }), false);
  assert.equal(needsAcknowledgement({ last_report: { id: "r", failed: ["body_clean"], defects: [{ item: "body_clean" }] } }), true);
});
