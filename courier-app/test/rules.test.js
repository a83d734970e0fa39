// The rules at the door: every forbidden step has its reason, in the server's order; the offline overlay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { doorState, localTask, openShift, amountDue, distanceM, DOOR_STEPS } from "../src/core/rules.js";

const NOW = new Date("2026-12-07T02:00:00Z");
const at = (minutes) => new Date(NOW.getTime() + minutes * 60_000).toISOString();
const STOP = { lat: 31.2304, lon: 121.4737 };
const NEAR = { lat: 31.2310, lon: 121.4737 }; // ~67 m north
const FAR = { lat: 31.2340, lon: 121.4737 }; // ~400 m north

function task(extra = {}) {
  return {
    id: "t-1", kind: "delivery", status: "assigned", version: 4, cod_amount: 5000,
    fees: [{ code: "cod_fee", amount: 190 }], amount_due: 5190, gift_description: null, pin_required: false,
    recipient: { name: "王*", phone: "138****0000", address: "x", ...STOP },
    parcels: [{ parcel_no: "P1", description: "box", count: 2 }],
    window: { start: at(60), end: at(180) }, arrived_at: null, notes: [],
    appointment: { status: "confirmed", attempt: 1, window: { start: at(60), end: at(180) }, arrived_at: null,
      notice: null, needs_new_appointment: false, exception: null, windows: [], contact_attempts: [] },
    handover: null,
    ...extra,
  };
}

let seq = 0;
function op(type, payload = {}, { minutes = 0, state = "pending", result = null, entityId = "t-1" } = {}) {
  seq += 1;
  return { seq, op_id: `op-${seq}`, type, entity: "task", entity_id: entityId, base_version: 4,
    device_time: at(minutes), payload, blobs: [], state, result };
}
const shiftStart = (minutes = -60) => ({ ...op("shift.start", { odometer: 1 }, { minutes, entityId: "v-1" }),
  entity: "vehicle" });

const arrive = (minutes = 0, where = NEAR) => op("stop.arrive", where, { minutes });
const verify = (minutes = 1) => op("pod.verify_recipient", { method: "id_check", name: "王" }, { minutes });
const inspect = (accepted = true, minutes = 2) => op("pod.inspect", {
  items: [{ parcel_no: "P1", counted: 2, condition: "ok" }], customer_accepted: accepted, photos: [] }, { minutes });
const pay = (amount = 5190, minutes = 3) => op("pod.collect_payment", { amount, method: "cash" }, { minutes });
const sign = (minutes = 4, extra = {}) => op("pod.sign", { signature: "a".repeat(64), signer_name: "王",
  ...NEAR, gift_disclosed: false, ...extra }, { minutes });

const reasons = (state) => Object.fromEntries(DOOR_STEPS.map((s) => [s, state[s].reason]));

test("before anything: arrive, verify, inspect, contact allowed; pay, sign, refuse, absent say why", () => {
  const s = doorState(task(), [shiftStart()], { now: NOW });
  assert.deepEqual(reasons(s), {
    arrive: null, verify: null, inspect: null, pay: "inspection_required", sign: "inspection_required",
    refuse: "inspection_required", alternate: "authorization_required", absent: "wait_too_short", contact: null,
    confirm: null, reschedule: null, late_notice: null, pickup: "wrong_task_kind",
  });
  assert.equal(s.amount_due, 5190);
  assert.equal(s.pay.amount, 5190);
  assert.equal(s.absent.wait, "arrival");
});

test("without an open shift every handover step and the arrival say shift_required", () => {
  for (const ops of [[], [shiftStart(-17 * 60)], [shiftStart(), op("shift.end", {}, { minutes: -5 })]]) {
    const s = doorState(task(), ops, { now: NOW });
    for (const step of ["arrive", "verify", "inspect", "sign", "refuse", "alternate"]) {
      assert.equal(s[step].reason, "shift_required", step);
    }
    assert.equal(s.contact.allowed, true);
  }
  // A rejected shift.start opened nothing; the shift before it still counts if it is open.
  const rejected = { ...shiftStart(-10), state: "rejected", result: { status: "rejected", code: "checklist_required" } };
  assert.equal(doorState(task(), [rejected], { now: NOW }).verify.reason, "shift_required");
  assert.equal(doorState(task(), [shiftStart(-120), rejected], { now: NOW }).verify.allowed, true);
  // The shift may also be given (the screen holds it).
  assert.equal(doorState(task(), [], { now: NOW, shift: { vehicle_id: "v-1" } }).verify.allowed, true);
});

test("the door in order: each step opens the next, and sign names what is missing first", () => {
  const ops = [shiftStart()];
  const check = (expected) => {
    const s = doorState(task(), ops, { now: new Date(NOW.getTime() + 5 * 60_000) });
    for (const [step, reason] of Object.entries(expected)) assert.equal(s[step].reason, reason, step);
    return s;
  };
  check({ pay: "inspection_required", sign: "inspection_required" });
  ops.push(arrive());
  ops.push(inspect(true));
  let s = check({ pay: null, sign: "payment_required", refuse: null });
  assert.equal(s.pay.amount, 5190);
  ops.push(pay());
  s = check({ pay: "already_paid", sign: "recipient_unverified", refuse: "already_paid" });
  ops.push(verify());
  s = check({ sign: null, alternate: "authorization_required" });
  ops.push(sign());
  s = check({ verify: "handover_closed", inspect: "handover_closed", pay: "already_paid", sign: "handover_closed",
    refuse: "handover_closed", alternate: "handover_closed", absent: "task_closed", arrive: "task_closed",
    confirm: "task_closed", reschedule: "task_closed", late_notice: "task_closed", contact: null });
  assert.equal(s.task.status, "delivered");
  assert.equal(s.task.handover.outcome, "delivered");
});

test("a refused inspection: no payment, no signature; a refusal is offered", () => {
  const s = doorState(task(), [shiftStart(), arrive(), inspect(false)], { now: NOW });
  assert.equal(s.pay.reason, "inspection_required");
  assert.equal(s.sign.reason, "inspection_required");
  assert.equal(s.refuse.allowed, true);
  const refused = doorState(task(), [shiftStart(), arrive(), inspect(false),
    op("pod.refuse", { reason: "damaged", photos: [] }, { minutes: 3 })], { now: NOW });
  assert.equal(refused.task.status, "refused");
  assert.equal(refused.sign.reason, "handover_closed");
});

test("no COD and no fees: no payment step; sign needs no payment", () => {
  const free = task({ cod_amount: 0, fees: [], amount_due: 0 });
  const s = doorState(free, [shiftStart(), inspect(true), verify()], { now: NOW });
  assert.equal(s.amount_due, 0);
  assert.equal(s.pay.reason, "nothing_due");
  assert.equal(s.sign.allowed, true);
  assert.equal(amountDue({ cod_amount: 100, fees: [{ amount: 20 }, { amount: 5 }] }), 125);
});

test("a gift: sign needs the disclosure flag", () => {
  const gift = task({ cod_amount: 0, fees: [], amount_due: 0, gift_description: "a mug" });
  const ops = [shiftStart(), inspect(true), verify()];
  assert.equal(doorState(gift, ops, { now: NOW }).sign.reason, "gift_not_disclosed");
  assert.equal(doorState(gift, ops, { now: NOW }).sign.gift, "a mug");
  assert.equal(doorState(gift, ops, { now: NOW, giftDisclosed: true }).sign.allowed, true);
  // Order as the server's: payment before the gift, the gift before the recipient check.
  assert.equal(doorState({ ...gift, cod_amount: 10, amount_due: 10 }, ops, { now: NOW }).sign.reason,
    "payment_required");
  assert.equal(doorState(gift, [shiftStart(), inspect(true)], { now: NOW }).sign.reason, "gift_not_disclosed");
});

test("customer absent: arrival, then 10 minutes, then a contact attempt made after the arrival", () => {
  const t = task();
  const ops = [shiftStart(), op("appointment.contact", { outcome: "no_answer" }, { minutes: -30 })];
  assert.deepEqual([doorState(t, ops, { now: NOW }).absent.reason, doorState(t, ops, { now: NOW }).absent.wait],
    ["wait_too_short", "arrival"]);
  ops.push(arrive(0));
  let s = doorState(t, ops, { now: new Date(NOW.getTime() + 9 * 60_000) });
  assert.deepEqual([s.absent.reason, s.absent.wait, s.absent.ready_at], ["wait_too_short", "minutes", at(10)]);
  s = doorState(t, ops, { now: new Date(NOW.getTime() + 10 * 60_000) });
  assert.deepEqual([s.absent.reason, s.absent.wait], ["wait_too_short", "contact"]); // the morning's call is not it
  ops.push(op("appointment.contact", { outcome: "no_answer" }, { minutes: 5 }));
  s = doorState(t, ops, { now: new Date(NOW.getTime() + 10 * 60_000) });
  assert.equal(s.absent.allowed, true);
  assert.equal(s.absent.waited_minutes, 10);
  ops.push(op("stop.customer_absent", { waited_minutes: 10 }, { minutes: 10 }));
  s = doorState(t, ops, { now: new Date(NOW.getTime() + 11 * 60_000) });
  assert.equal(s.task.status, "failed");
  assert.equal(s.task.failure_reason, "customer_absent");
  assert.equal(s.task.appointment.needs_new_appointment, true);
  assert.equal(s.absent.reason, "task_closed");
  assert.equal(s.confirm.allowed, true); // a failed task takes a new appointment
});

test("an arrival further than 200 m is not an arrival (no status, no wait)", () => {
  const s = doorState(task(), [shiftStart(), arrive(0, FAR), op("appointment.contact", { outcome: "no_answer" },
    { minutes: 1 })], { now: new Date(NOW.getTime() + 15 * 60_000) });
  assert.equal(s.task.status, "assigned");
  assert.equal(s.task.arrived_at, null);
  assert.equal(s.absent.wait, "arrival");
  assert.ok(distanceM(STOP.lat, STOP.lon, FAR.lat, FAR.lon) > 200);
  assert.ok(distanceM(STOP.lat, STOP.lon, NEAR.lat, NEAR.lon) < 200);
  const near = localTask(task(), [arrive(0, NEAR)]);
  assert.equal(near.status, "arrived");
  assert.equal(near.arrived_at, at(0));
  assert.equal(near.appointment.status, "kept"); // before the window's end
});

test("alternate place: consent on the customer's page, or a reached call within 4 hours; PIN tasks never", () => {
  const ops = [shiftStart()];
  const consent = task({ cod_amount: 0, fees: [], amount_due: 0,
    handover: { consent_place: "neighbour", consent_note: "room 302" } });
  let s = doorState(consent, ops, { now: NOW });
  assert.equal(s.alternate.allowed, true);
  assert.equal(s.alternate.consent_place, "neighbour");
  assert.equal(doorState(consent, ops, { now: NOW, via: "customer_link", place: "locker" }).alternate.reason,
    "authorization_required");
  const plain = task({ cod_amount: 0, fees: [], amount_due: 0 });
  assert.equal(doorState(plain, ops, { now: NOW }).alternate.reason, "authorization_required");
  const oldCall = [...ops, op("appointment.contact", { outcome: "reached" }, { minutes: -5 * 60 })];
  assert.equal(doorState(plain, oldCall, { now: NOW }).alternate.reason, "authorization_required");
  const call = [...ops, op("appointment.contact", { outcome: "reached" }, { minutes: -30 })];
  s = doorState(plain, call, { now: NOW });
  assert.equal(s.alternate.allowed, true);
  assert.equal(doorState(plain, call, { now: NOW, via: "contact", reference: " " }).alternate.reason,
    "authorization_required");
  assert.equal(doorState(plain, call, { now: NOW, via: "contact", reference: "call 10:05" }).alternate.allowed, true);
  // COD unpaid: consent is not enough.
  assert.equal(doorState(task(), call, { now: NOW }).alternate.reason, "payment_required");
  assert.equal(doorState({ ...plain, pin_required: true }, call, { now: NOW }).alternate.reason, "pin_required");
});

test("pickup tasks: pod steps are wrong_task_kind, pickup is offered once", () => {
  const pickup = task({ kind: "pickup", cod_amount: 0, fees: [{ code: "pickup_fee", amount: 800 }], amount_due: 800 });
  let s = doorState(pickup, [shiftStart()], { now: NOW });
  for (const step of ["verify", "inspect", "pay", "sign", "refuse", "alternate"]) {
    assert.equal(s[step].reason, "wrong_task_kind", step);
  }
  assert.equal(s.pickup.allowed, true);
  assert.deepEqual(s.pickup.fees, [{ code: "pickup_fee", amount: 800 }]);
  s = doorState(pickup, [shiftStart(), op("pickup.collect", { parcels: [{ parcel_no: "N1", description: "x",
    count: 1 }], fees: [{ code: "pickup_fee", amount: 800 }], signature: "b".repeat(64), signer_name: "李" })],
  { now: NOW });
  assert.equal(s.task.status, "collected");
  assert.equal(s.pickup.reason, "handover_closed");
  assert.equal(doorState(pickup, [], { now: NOW }).pickup.reason, "shift_required");
});

test("late notice: in time only 30 minutes before the window starts", () => {
  const t = task();
  assert.equal(doorState(t, [], { now: new Date(NOW.getTime() + 30 * 60_000) }).late_notice.in_time, true);
  assert.equal(doorState(t, [], { now: new Date(NOW.getTime() + 31 * 60_000) }).late_notice.in_time, false);
  const noticed = localTask(t, [op("appointment.late_notice", { eta: at(200), reason: "traffic" }, { minutes: 10 })]);
  assert.deepEqual(noticed.appointment.notice, { at: at(10), eta: at(200), reason: "traffic", in_time: true });
});

test("appointments overlaid: confirm, an unagreed reschedule, contact outcomes", () => {
  const w = { start: at(300), end: at(360) };
  const t = localTask(task({ appointment: { ...task().appointment, status: "kept" } }), [
    op("appointment.reschedule", { window: { start: at(400), end: at(460) }, reason: "later", customer_agreed: false }),
    op("appointment.confirm", { window: w, via: "phone" }),
    op("appointment.contact", { outcome: "wrong_number" }),
  ]);
  assert.deepEqual(t.window, w);
  assert.equal(t.appointment.status, "confirmed");
  assert.equal(t.appointment.attempt, 2); // after a decided window, a new attempt
  assert.deepEqual(t.appointment.windows.map((x) => x.status), ["proposed", "agreed"]);
  assert.equal(t.appointment.exception, "wrong_number");
  assert.equal(t.appointment.contact_attempts.length, 1);
  // refused after a counted arrival fails the attempt.
  const failed = localTask(task(), [arrive(0), op("appointment.contact", { outcome: "refused" }, { minutes: 1 })]);
  assert.equal(failed.status, "failed");
  assert.equal(failed.failure_reason, "refused");
});

test("localTask applies only unanswered ops, or answers newer than the held version: never twice", () => {
  const held = task({ version: 6, notes: [{ text: "already in", device_time: at(-5) }] });
  const ops = [
    op("task.note", { text: "already in" }, { state: "applied", result: { status: "applied", entity: { version: 5 } } }),
    op("task.note", { text: "taken" }, { state: "taken" }),
    op("task.note", { text: "rejected" }, { state: "rejected", result: { status: "rejected", code: "x" } }),
    op("task.note", { text: "newer" }, { state: "applied", result: { status: "applied", entity: { version: 7 } } }),
    op("task.note", { text: "conflict at 6" }, { state: "conflict", result: { status: "conflict", entity: { version: 6 } } }),
    op("task.note", { text: "pending" }),
    op("task.note", { text: "another task" }, { entityId: "t-2" }),
  ];
  const t = localTask(held, ops);
  assert.deepEqual(t.notes.map((n) => n.text), ["pending", "newer", "already in"]);
  assert.deepEqual(t.local.ops, [ops[3].seq, ops[5].seq]);
  assert.equal(held.notes.length, 1); // the pulled task is not changed
});

test("a pending payment already in the pulled task is not counted twice (already_paid after a pull)", () => {
  const paid = task({ version: 9, handover: { inspection: "accepted", paid: true, paid_amount: 5190 } });
  const answered = op("pod.collect_payment", { amount: 5190, method: "cash" },
    { state: "applied", result: { status: "applied", entity: { version: 9 } } });
  const t = localTask(paid, [answered]);
  assert.deepEqual(t.local, { ops: [], refused: [] });
  assert.equal(doorState(paid, [shiftStart(), answered], { now: NOW }).pay.reason, "already_paid");
});

test("an op the rules refuse changes nothing and is listed with its reason", () => {
  const t = localTask(task(), [sign(0), pay(5190, 1), inspect(true, 2), pay(999, 3), pay(5190, 4)]);
  assert.deepEqual(t.local.refused.map((r) => r.reason), ["inspection_required", "inspection_required",
    "amount_mismatch"]);
  assert.equal(t.handover.paid_amount, 5190);
  assert.equal(t.status, "assigned");
  const pinTask = task({ pin_required: true });
  assert.deepEqual(localTask(pinTask, [verify()]).local.refused.map((r) => r.reason), ["pin_required"]);
  assert.equal(doorState(pinTask, [shiftStart()], { now: NOW }).verify.pin, true);
});

test("openShift: newest non-rejected shift op, a start at most 16 hours old", () => {
  assert.equal(openShift([], NOW), null);
  const start = shiftStart(-60);
  assert.deepEqual(openShift([start], NOW), { vehicle_id: "v-1", started_at: start.device_time, seq: start.seq });
  assert.equal(openShift([start], new Date(NOW.getTime() + 15 * 3600_000)).seq, start.seq);
  assert.equal(openShift([start], new Date(NOW.getTime() + 16 * 3600_000)), null);
  const end = { ...op("shift.end", { odometer: 2 }, { minutes: -1, entityId: "v-1" }) };
  assert.equal(openShift([start, end], NOW), null);
  const rejectedEnd = { ...end, state: "rejected", result: { status: "rejected", code: "checklist_required" } };
  assert.equal(openShift([start, rejectedEnd], NOW).seq, start.seq);
});
