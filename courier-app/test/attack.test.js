// Attacks on the core and the screens' helpers (issue 25, helper attack25): a phone handed to another courier
// with unsent ops, bad values from the server reaching the screens, the door's rules under double clicks and
// built-wrong ops, a device clock that is wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { freshStore } from "./helpers.js";
import { createApi } from "../src/core/api.js";
import { enroll, forget } from "../src/core/device.js";
import { getMeta, setMeta } from "../src/core/store.js";
import {
  enqueue, allOps, opsFor, pendingOps, heldOps, pruneOps, LocalRefusal, HELD,
} from "../src/core/queue.js";
import { doorState, localTask, openShift } from "../src/core/rules.js";
import { syncOnce } from "../src/core/sync.js";
import { FakeServer } from "./fake-server.js";
import { hhmm, when, windowText, depotDate, safeHref } from "../src/ui/format.js";

/** An enrollment answer per call: the couriers in turn, each a new device. */
function enrollApi(couriers) {
  let n = 0;
  return createApi({ base: "/api/v1", fetch: async () => {
    const courier = couriers[n];
    n += 1;
    return new Response(JSON.stringify({ device_id: `d-${n}`, courier_id: courier, token: `fod_${n}` }),
      { status: 201 });
  } });
}

test("a phone handed to another courier: the first courier's unsent ops are held, never sent as the second's", async () => {
  const store = await freshStore();
  const api = enrollApi(["c-A", "c-B", "c-A"]);
  await enroll(store, api, { code: "ABCDE23456", deviceName: "x" });
  const note = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "A's note" } });
  const check = await enqueue(store, { type: "checklist.submit", payload: { kind: "conduct.pre_shift", answers: [] } });
  const start = await enqueue(store, { type: "shift.start", entityId: "v-1", payload: { odometer: 10 } });
  assert.equal(note.courier_id, "c-A");

  // Settings → re-enroll: the identity is forgotten (courier_id too), then courier B enrolls this phone.
  await forget(store);
  await enroll(store, api, { code: "ABCDE23456", deviceName: "x" });
  assert.deepEqual(await pendingOps(store), [], "A's ops must not be sent under B's device");
  assert.deepEqual((await heldOps(store)).map((op) => op.op_id), [note.op_id, check.op_id, start.op_id]);
  assert.ok((await heldOps(store)).every((op) => op.state === HELD && op.seq < 0));
  // Nothing of A's counts for B: not the shift A opened, not A's ops on the task.
  assert.deepEqual(await allOps(store), []);
  assert.deepEqual(await opsFor(store, "t-1"), []);
  await assert.rejects(enqueue(store, { type: "pod.inspect", entityId: "t-9", payload: {} }),
    (err) => err instanceof LocalRefusal && err.code === "shift_required");
  // B's own numbering starts at 1, as a new device's must.
  const bNote = await enqueue(store, { type: "task.note", entityId: "t-2", payload: { text: "B's note" } });
  assert.equal(bNote.seq, 1);
  assert.equal(bNote.courier_id, "c-B");
  // Held ops are unsent: the daily pruning never drops them, however old.
  assert.equal(await pruneOps(store, new Date(Date.now() + 60 * 86_400_000)), 0);
  assert.equal((await heldOps(store)).length, 3);

  // A enrolls this phone again: A's ops come back, oldest first, from seq 1; B's unsent note is held in turn.
  await forget(store);
  await enroll(store, api, { code: "ABCDE23456", deviceName: "x" });
  const back = await pendingOps(store);
  assert.deepEqual(back.map((op) => [op.seq, op.op_id]), [[1, note.op_id], [2, check.op_id], [3, start.op_id]]);
  assert.ok(back.every((op) => op.state === "pending" && op.held_seq === undefined));
  assert.equal(await getMeta(store, "next_seq"), 4);
  assert.deepEqual((await heldOps(store)).map((op) => op.op_id), [bNote.op_id]);
});

test("held ops are not pushed: a sync after the hand-over sends only the new courier's ops", async () => {
  const server = new FakeServer();
  server.put("task", "t-1", { status: "assigned" });
  const store = await freshStore();
  await setMeta(store, "token", server.token);
  await setMeta(store, "device_id", "d-old");
  await setMeta(store, "courier_id", "c-A");
  await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "A's" } });
  // B enrolls (the server's answer names the fake server's device and token).
  const enrollB = createApi({ base: "/api/v1", fetch: async () => new Response(
    JSON.stringify({ device_id: server.deviceId, courier_id: "c-B", token: server.token }), { status: 201 }) });
  await enroll(store, enrollB, { code: "ABCDE23456", deviceName: "x" });
  const mine = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "B's" } });
  const api = createApi({ base: "http://fake.test/api/v1", fetch: server.fetch, getToken: () => getMeta(store, "token") });
  const result = await syncOnce(store, api, { now: new Date(), sleep: async () => {}, random: () => 0.5 });
  assert.equal(result.error, null);
  const sent = server.requests.filter((r) => r.path.endsWith("/sync/push")).flatMap((r) => JSON.parse(r.body).ops);
  assert.deepEqual(sent.map((op) => op.op_id), [mine.op_id]);
  assert.equal(sent[0].seq, 1);
  assert.equal((await heldOps(store)).length, 1);
});

test("ops queued before any enrollment (no courier on them) still go with the first enrollment", async () => {
  const store = await freshStore();
  const early = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "early" } });
  assert.equal(early.courier_id, null);
  await enroll(store, enrollApi(["c-A"]), { code: "ABCDE23456", deviceName: "x" });
  assert.deepEqual((await pendingOps(store)).map((op) => op.op_id), [early.op_id]);
  assert.deepEqual(await heldOps(store), []);
});

test("an unreadable time in the data shows as nothing, never throws (the day and task screens stay up)", () => {
  for (const bad of ["garbage", "2026-13-45T99:99:99Z", "2026-12-07T23:59:60Z"]) {
    assert.equal(hhmm(bad), "", bad);
    assert.equal(when(bad), "", bad);
    assert.equal(depotDate(bad), "", bad);
    assert.equal(windowText({ start: bad, end: bad }), "", bad);
  }
  assert.equal(windowText({ start: "2030-01-02T01:00:00Z", end: "nonsense" }), "01-02 09:00–");
  assert.equal(hhmm("2026-12-07T06:30:00Z"), "14:30");
});

test("a link from the data is offered only as http(s): no javascript:, data: or other scheme", () => {
  assert.equal(safeHref("https://fieldops.example/r/abc?x=1"), "https://fieldops.example/r/abc?x=1");
  assert.equal(safeHref("/r/abc"), "http://localhost/r/abc");
  for (const bad of ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>x</script>",
    "vbscript:x", "file:///etc/passwd", "", "   ", null, undefined, 42, { href: "https://x" }]) {
    assert.equal(safeHref(bad), null, String(bad));
  }
});

// The door under a hostile or unlucky hand: double clicks, stale drafts, an op built wrong.
const NOW = new Date("2026-12-07T02:00:00Z");
const at = (minutes) => new Date(NOW.getTime() + minutes * 60_000).toISOString();
const STOP = { lat: 31.2304, lon: 121.4737 };
function task(extra = {}) {
  return {
    id: "t-1", kind: "delivery", status: "assigned", version: 4, cod_amount: 5000,
    fees: [{ code: "cod_fee", amount: 190 }], amount_due: 5190, gift_description: "<img src=x onerror=alert(1)>",
    pin_required: false, recipient: { name: "<script>alert(1)</script>", phone: "javascript:alert(1)", address: "\"><b>x", ...STOP },
    parcels: [{ parcel_no: "P1", description: "box", count: 1 }], window: { start: at(60), end: at(180) },
    arrived_at: null, notes: [], appointment: null, handover: null, ...extra,
  };
}
let seq = 0;
function op(type, payload = {}, minutes = 0, entityId = "t-1", entity = "task") {
  seq += 1;
  return { seq, op_id: `op-${seq}`, type, entity, entity_id: entityId, base_version: 4, device_time: at(minutes),
    payload, blobs: [], state: "pending", result: null };
}
const shift = () => op("shift.start", { odometer: 1 }, -60, "v-1", "vehicle");
const arrive = () => op("stop.arrive", { lat: 31.2305, lon: 121.4737 }, 0);
const inspect = (accepted = true) => op("pod.inspect", { items: [{ parcel_no: "P1", counted: 1, condition: "ok" }],
  customer_accepted: accepted, photos: [] }, 2);
const pay = (amount = 5190) => op("pod.collect_payment", { amount, method: "cash" }, 3);

test("the door: a double-clicked payment counts once, another amount is refused, no pay before inspection", () => {
  const ops = [shift(), arrive(), op("pod.verify_recipient", { method: "id_check", name: "w" }, 1)];
  assert.equal(doorState(task(), ops, { now: NOW }).pay.reason, "inspection_required");
  const twice = [...ops, inspect(), pay(), pay()];
  const local = localTask(task(), twice);
  assert.equal(local.handover.paid_amount, 5190);
  assert.deepEqual(local.local.refused.map((r) => r.reason), ["already_paid"]);
  assert.equal(doorState(task(), twice, { now: NOW }).pay.reason, "already_paid");
  const other = localTask(task(), [...ops, inspect(), pay(1)]);
  assert.equal(other.handover.paid, false);
  assert.deepEqual(other.local.refused.map((r) => r.reason), ["amount_mismatch"]);
  // A refused inspection leaves no payment (a stale draft's pay button queued anyway).
  const refused = localTask(task(), [...ops, inspect(false), pay()]);
  assert.equal(refused.handover.paid, false);
  assert.deepEqual(refused.local.refused.map((r) => r.reason), ["inspection_required"]);
});

test("the door: customer absent before the wait and a place without consent are not offered", () => {
  const ops = [shift(), arrive(), op("appointment.contact", { outcome: "no_answer" }, 1)];
  const early = doorState(task(), ops, { now: new Date(NOW.getTime() + 5 * 60_000) });
  assert.equal(early.absent.allowed, false);
  assert.equal(early.absent.reason, "wait_too_short");
  const alternate = doorState(task(), ops, { now: NOW, place: "neighbour", via: "contact" });
  assert.equal(alternate.alternate.allowed, false);
  assert.equal(alternate.alternate.reason, "authorization_required");
});

test("a wrong device clock: ops keep the time given, a shift from 2099 is no shift for a fixed clock", () => {
  const past = op("shift.start", { odometer: 1 }, 0, "v-1", "vehicle");
  past.device_time = "1970-01-01T08:00:00+08:00";
  assert.equal(openShift([past], NOW), null, "a start from 1970 is more than 16 hours ago");
  const future = { ...past, seq: past.seq + 1, op_id: "future", device_time: "2099-01-01T08:00:00+08:00" };
  // A start ahead of the clock: the server moves it to its receipt (protocol "Never later than its receipt");
  // the device counts it open rather than hide the courier's own shift.
  assert.ok(openShift([future], NOW));
});

test("markup in the data stays data: the overlay copies names and notes as text, never changes them", () => {
  const t = localTask(task({ notes: [{ text: "<script>alert(1)</script>", at: at(0) }] }), []);
  assert.equal(t.recipient.name, "<script>alert(1)</script>");
  assert.equal(t.notes[0].text, "<script>alert(1)</script>");
  assert.equal(t.gift_description, "<img src=x onerror=alert(1)>");
});

test("a one-time door step tapped twice is queued once; one the rules refused may be redone", async () => {
  const { alreadyQueued } = await import("../src/ui/handover-logic.js");
  const ops = [shift(), arrive(), op("pod.verify_recipient", { method: "id_check", name: "w" }, 1), inspect()];
  assert.equal(alreadyQueued(task(), ops, "pod.collect_payment"), false);
  const paid = [...ops, pay()];
  assert.equal(alreadyQueued(task(), paid, "pod.collect_payment"), true);
  assert.equal(alreadyQueued(task(), paid, "pod.inspect"), true);
  // A payment refused on the device (a wrong amount from a stale draft) does not block the right one.
  assert.equal(alreadyQueued(task(), [...ops, pay(1)], "pod.collect_payment"), false);
  // An answered one is the server's to judge (already_paid), not a double tap.
  const answered = [...ops, { ...pay(), state: "applied", result: { status: "applied", entity: { version: 5 } } }];
  assert.equal(alreadyQueued(task(), answered, "pod.collect_payment"), false);
  // Steps that may repeat are never held back: an arrival, a note.
  assert.equal(alreadyQueued(task(), [...ops, arrive()], "stop.arrive"), false);
});
