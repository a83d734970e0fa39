// The door's pure logic: amounts, the signer-name check, the PIN check, drafts restored after a reload,
// pickup fees, and the door's steps as the rules allow them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pbkdf2Sync } from "node:crypto";
import {
  formatYuan, parseYuan, nameKey, isOwnName, pinMatchesLocal, pinTries, inspectionRows, rowsNeedingPhoto,
  inspectPayload, pickupFees, chargedFees, overlay, steps, waitLeftMs, PIN_MAX_FAILURES,
} from "../src/ui/handover-logic.js";

const SHA = "a".repeat(64);

test("amounts are integer fen shown as yuan with two decimals; typed yuan parse back exactly", () => {
  assert.equal(formatYuan(6190), "¥61.90");
  assert.equal(formatYuan(5), "¥0.05");
  assert.equal(formatYuan(0), "¥0.00");
  assert.equal(formatYuan(100000000), "¥1000000.00");
  assert.throws(() => formatYuan(61.9));
  assert.equal(parseYuan("12"), 1200);
  assert.equal(parseYuan("12.5"), 1250);
  assert.equal(parseYuan(" 0.07 "), 7);
  assert.equal(parseYuan("12,30"), 1230);
  for (const bad of ["", "1.234", "-3", "abc", "1e3", null]) assert.equal(parseYuan(bad), null, String(bad));
});

test("the signer's name is compared after NFKC, without case, spaces or invisible characters", () => {
  assert.equal(nameKey(" Wang  Wei "), "wangwei");
  assert.ok(isOwnName("王 伟", "王伟"));
  assert.ok(isOwnName("ＷＡＮＧ　Ｗｅｉ", "wang wei"), "full-width letters and an ideographic space");
  assert.ok(isOwnName("wang\u200bwei", "Wang Wei"), "a zero-width space");
  assert.ok(!isOwnName("李娜", "王伟"));
  assert.ok(!isOwnName("", ""), "an empty name is never the courier's");
});

function pinState(pin, salt = "9f8e", iterations = 1000) {
  return { algorithm: "pbkdf2_sha256", salt, iterations,
    hash: pbkdf2Sync(Buffer.from(pin, "utf8"), Buffer.from(salt, "utf8"), iterations, 32, "sha256").toString("hex") };
}

test("the PIN is checked offline as PBKDF2-HMAC-SHA256 over the salt's text", async () => {
  const state = pinState("042917");
  assert.equal(await pinMatchesLocal("042917", state), true);
  assert.equal(await pinMatchesLocal("042918", state), false);
  assert.equal(await pinMatchesLocal("042917", { ...state, algorithm: "md5" }), false);
  assert.equal(await pinMatchesLocal("042917", null), false);
});

test("wrong PINs are counted on the device; at the server's limit the device stops checking", () => {
  assert.deepEqual(pinTries({}), { wrong: 0, left: PIN_MAX_FAILURES, locked: false });
  assert.deepEqual(pinTries({ pin_wrong: 4 }), { wrong: 4, left: 1, locked: false });
  assert.deepEqual(pinTries({ pin_wrong: 5 }), { wrong: 5, left: 0, locked: true });
  assert.deepEqual(pinTries({ pin_wrong: "9" }), { wrong: 0, left: 5, locked: false }, "a corrupt draft counts nothing");
});

const TASK = { id: "t-1", kind: "delivery", status: "arrived", amount_due: 6190, arrived_at: "2026-12-07T09:00:00+08:00",
  parcels: [{ parcel_no: "P1", description: "shoes", count: 2 }, { parcel_no: "P2", description: "mug", count: 1 }],
  handover: { recipient_verified: false, inspection: null, paid: false, outcome: null } };

test("a reload restores the inspection from the draft, for the parcels the task still holds", () => {
  const fresh = inspectionRows(TASK, {});
  assert.deepEqual(fresh.map((r) => [r.parcel_no, r.expected, r.counted, r.condition, r.photo]),
    [["P1", 2, 2, "ok", null], ["P2", 1, 1, "ok", null]]);
  const draft = { items: [{ parcel_no: "P2", counted: 0, condition: "damaged", photo: SHA },
    { parcel_no: "GONE", counted: 3, condition: "ok" }, { parcel_no: "P1", counted: -1, condition: "burnt", photo: "x" }] };
  const rows = inspectionRows(TASK, draft);
  assert.deepEqual(rows.map((r) => [r.parcel_no, r.counted, r.condition, r.photo]),
    [["P1", 2, "ok", null], ["P2", 0, "damaged", SHA]]);
  assert.deepEqual(rowsNeedingPhoto(rows), []);
  assert.deepEqual(rowsNeedingPhoto([{ ...rows[1], photo: null }]), ["P2"]);
  assert.deepEqual(inspectPayload(rows, true), { items: [{ parcel_no: "P1", counted: 2, condition: "ok" },
    { parcel_no: "P2", counted: 0, condition: "damaged" }], customer_accepted: true, photos: [SHA] });
});

test("a pickup charges exactly dispatch's quote when there is one, else chosen published fees", () => {
  const published = [{ code: "stairs", name: "楼层费" }, { code: "packing", name: "包装费" }];
  const quoted = pickupFees({ fees: [{ code: "packing", amount: 500 }] }, published);
  assert.deepEqual(quoted, { quoted: true, fees: [{ code: "packing", name: "包装费", amount: 500 }] });
  const open = pickupFees({ fees: [] }, published);
  assert.equal(open.quoted, false);
  assert.deepEqual(open.fees.map((f) => f.code), ["packing", "stairs"]);
  const chosen = [{ code: "packing", amount: 300 }, { code: "stairs", amount: null }, { code: "rush", amount: 999 }];
  assert.deepEqual(chargedFees(chosen, published), { fees: [{ code: "packing", amount: 300 }, { code: "rush", amount: 999 }], total: 1299, unknown: ["rush"] });
});

const SHIFT = { vehicle_id: "v-1", started_at: "2026-12-07T08:00:00+08:00", seq: 1 };
const NOW = new Date("2026-12-07T01:05:00Z"); // 09:05 in Shanghai: 5 minutes after the arrival

function op(seq, type, payload, state = "pending") {
  return { seq, type, payload, state, device_time: "2026-12-07T09:01:00+08:00" };
}

test("the door offers payment only after an accepted inspection, signing only after verification and payment", () => {
  let s = steps(TASK, [], { now: NOW, shift: SHIFT });
  assert.deepEqual(s.pay, { allowed: false, reason: "inspection_required" });
  assert.deepEqual(s.sign, { allowed: false, reason: "recipient_unverified" });
  assert.deepEqual(s.refuse, { allowed: false, reason: "inspection_required" });
  assert.deepEqual(s.alternate, { allowed: false, reason: "payment_required" });
  assert.equal(s.verify.allowed, true);
  const ops = [op(2, "pod.verify_recipient", { method: "pin", name: "李娜" }),
    op(3, "pod.inspect", { items: [], customer_accepted: true })];
  const local = overlay(TASK, ops);
  s = steps(local, ops, { now: NOW, shift: SHIFT });
  assert.equal(s.pay.allowed, true);
  assert.deepEqual(s.sign, { allowed: false, reason: "payment_required" });
  const paid = overlay(TASK, [...ops, op(4, "pod.collect_payment", { amount: 6190, method: "cash" })]);
  s = steps(paid, [], { now: NOW, shift: SHIFT });
  assert.deepEqual(s.pay, { allowed: false, reason: "already_paid" });
  assert.equal(s.sign.allowed, true);
  assert.deepEqual(s.refuse, { allowed: false, reason: "already_paid" });
  const rejected = overlay(TASK, [op(3, "pod.inspect", { customer_accepted: true }, "rejected")]);
  assert.equal(rejected.handover.inspection, null, "a refused op leaves nothing behind");
});

test("without an open shift no handover step is offered; a closed handover offers nothing", () => {
  const s = steps(TASK, [], { now: NOW, shift: null });
  for (const key of ["verify", "inspect", "pay", "sign", "refuse", "alternate"]) assert.equal(s[key].reason, "shift_required", key);
  const closed = steps({ ...TASK, handover: { ...TASK.handover, outcome: "delivered" } }, [], { now: NOW, shift: SHIFT });
  for (const key of ["arrive", "verify", "inspect", "sign", "absent"]) assert.equal(closed[key].reason, "handover_closed", key);
});

test("customer absent only after 10 minutes and a contact since arriving; the countdown says how long", () => {
  const task = { ...TASK, appointment: { arrived_at: "2026-12-07T09:00:00+08:00", contact_attempts: [] } };
  assert.equal(waitLeftMs(task, NOW), 5 * 60_000);
  assert.deepEqual(steps(task, [], { now: NOW, shift: SHIFT }).absent, { allowed: false, reason: "wait_too_short" });
  const later = new Date("2026-12-07T01:11:00Z");
  assert.equal(waitLeftMs(task, later), 0);
  assert.equal(steps(task, [], { now: later, shift: SHIFT }).absent.reason, "wait_too_short", "no contact yet");
  const called = overlay(task, [{ seq: 5, type: "appointment.contact", payload: { outcome: "no_answer" }, state: "pending",
    device_time: "2026-12-07T09:03:00+08:00" }]);
  assert.equal(steps(called, [], { now: later, shift: SHIFT }).absent.allowed, true);
  const before = { ...task, appointment: { ...task.appointment,
    contact_attempts: [{ outcome: "no_answer", device_time: "2026-12-07T08:50:00+08:00" }] } };
  assert.equal(steps(before, [], { now: later, shift: SHIFT }).absent.allowed, false, "a call before arriving does not count");
});

test("delivering elsewhere needs the customer's consent or a reached contact within 4 hours", () => {
  const paid = { ...TASK, handover: { ...TASK.handover, paid: true } };
  assert.equal(steps(paid, [], { now: NOW, shift: SHIFT }).alternate.reason, "authorization_required");
  const consent = { ...paid, handover: { ...paid.handover, consent_place: "locker" } };
  assert.equal(steps(consent, [], { now: NOW, shift: SHIFT }).alternate.allowed, true);
  const reached = { ...paid, appointment: { contact_attempts: [{ outcome: "reached", device_time: "2026-12-07T05:30:00+08:00" }] } };
  assert.equal(steps(reached, [], { now: NOW, shift: SHIFT }).alternate.allowed, true);
  const old = { ...paid, appointment: { contact_attempts: [{ outcome: "reached", device_time: "2026-12-07T04:00:00+08:00" }] } };
  assert.equal(steps(old, [], { now: NOW, shift: SHIFT }).alternate.reason, "authorization_required");
});
