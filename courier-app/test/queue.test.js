// The queue: seq atomicity and order, op fields, device time with the local offset, blobs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freshStore } from "./helpers.js";
import { getMeta, setMeta } from "../src/core/store.js";
import {
  enqueue, addBlob, getBlob, opsFor, pendingOps, problemOps, pruneBlobs, lastAssignedSeq, LocalRefusal,
} from "../src/core/queue.js";
import { deviceTime } from "../src/core/time.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("seqs are 1, 2, 3 … in the order the courier acted, and next_seq follows", async () => {
  const store = await freshStore();
  const a = await enqueue(store, { type: "stop.arrive", entityId: "t-1", payload: { lat: 31.2, lon: 121.4 } });
  const b = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "gate code 1234" } });
  const c = await enqueue(store, { type: "task.note", entityId: "t-2", payload: { text: "dog" } });
  assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
  assert.equal(await getMeta(store, "next_seq"), 4);
  assert.equal(await lastAssignedSeq(store), 3);
  assert.deepEqual((await pendingOps(store)).map((op) => op.seq), [1, 2, 3]);
  assert.deepEqual((await opsFor(store, "t-1")).map((op) => op.type), ["stop.arrive", "task.note"]);
});

test("concurrent enqueues (two tabs on one database) never share a seq and leave no gap", async () => {
  const store = await freshStore();
  // A second connection to the same database, as a second tab or the service worker would hold.
  const { openStore } = await import("../src/core/store.js");
  const other = await openStore(store.name);
  const made = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    enqueue(i % 2 ? other : store, { type: "task.note", entityId: `t-${i}`, payload: { text: `n${i}` } })));
  const seqs = made.map((op) => op.seq).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
  assert.equal(new Set(made.map((op) => op.op_id)).size, 40);
  const stored = await pendingOps(store);
  assert.equal(stored.length, 40);
  // Each stored op is the one its caller got back (no overwrite under a shared seq).
  for (const op of made) assert.equal(stored.find((s) => s.seq === op.seq).op_id, op.op_id);
  assert.equal(await getMeta(store, "next_seq"), 41);
  other.close();
});

test("an op carries a fresh op_id, the pulled version as base_version (0 unseen) and state pending", async () => {
  const store = await freshStore();
  await store.put("entities", { entity: "task", id: "t-9", version: 7, data: { id: "t-9", waybill_no: "WB9" } });
  const seen = await enqueue(store, { type: "stop.arrive", entityId: "t-9", payload: { lat: 1, lon: 2 } });
  const unseen = await enqueue(store, { type: "stop.arrive", entityId: "t-unknown", payload: { lat: 1, lon: 2 } });
  assert.equal(seen.base_version, 7);
  assert.equal(unseen.base_version, 0);
  assert.match(seen.op_id, UUID);
  assert.notEqual(seen.op_id, unseen.op_id);
  assert.equal(seen.state, "pending");
  assert.equal(seen.result, null);
  assert.equal(seen.entity, "task");
  assert.equal(seen.label, "WB9"); // the waybill, kept on the device: the task may leave the scope
  assert.equal(unseen.label, null);
  const shift = await enqueue(store, { type: "shift.start", entityId: "v-1", payload: { odometer: 10 } });
  assert.equal(shift.entity, "vehicle");
});

test("create ops get a fresh lowercase UUID entity_id and base_version 0", async () => {
  const store = await freshStore();
  await store.put("entities", { entity: "checklist_submission", id: "x", version: 3, data: {} });
  const a = await enqueue(store, { type: "checklist.submit", entityId: "x", payload: { template_id: "ct-1" } });
  const b = await enqueue(store, { type: "violation.appeal", payload: { violation_id: 4, reason: "no" } });
  assert.match(a.entity_id, UUID);
  assert.match(b.entity_id, UUID);
  assert.notEqual(a.entity_id, "x");
  assert.equal(a.base_version, 0);
  assert.equal(b.base_version, 0);
  assert.equal(a.entity, "checklist_submission");
  assert.equal(b.entity, "violation_appeal");
});

test("a handover op without an open shift is refused and nothing is queued", async () => {
  const store = await freshStore();
  const now = new Date("2026-12-07T01:00:00Z");
  await assert.rejects(
    enqueue(store, { type: "pod.inspect", entityId: "t-1", payload: {}, now }),
    (err) => err instanceof LocalRefusal && err.code === "shift_required");
  assert.equal((await pendingOps(store)).length, 0);
  assert.equal(await getMeta(store, "next_seq"), undefined);
  await enqueue(store, { type: "shift.start", entityId: "v-1", payload: { odometer: 5 }, now });
  const op = await enqueue(store, { type: "pod.inspect", entityId: "t-1", payload: {}, now });
  assert.equal(op.seq, 2);
  // 17 hours later the shift no longer covers work.
  const later = new Date(now.getTime() + 17 * 3600_000);
  await assert.rejects(enqueue(store, { type: "pod.sign", entityId: "t-1", payload: {}, now: later }),
    { code: "shift_required" });
});

test("problemOps lists rejected and conflict ops with the server's code", async () => {
  const store = await freshStore();
  for (let i = 0; i < 4; i += 1) await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "x" } });
  const states = ["applied", "rejected", "conflict", "pending"];
  for (const [i, state] of states.entries()) {
    const op = await store.get("queue", i + 1);
    await store.put("queue", { ...op, state, result: state === "pending" ? null : { status: state, code: `c${i}` } });
  }
  const problems = await problemOps(store);
  assert.deepEqual(problems.map((op) => [op.seq, op.result.code]), [[2, "c1"], [3, "c2"]]);
  assert.deepEqual((await pendingOps(store)).map((op) => op.seq), [4]);
});

test("device_time is the device clock with its local UTC offset, not Z", () => {
  const date = new Date("2026-12-07T01:14:03.456Z");
  const text = deviceTime(date);
  assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
  assert.equal(new Date(text).getTime(), Math.floor(date.getTime() / 1000) * 1000);
});

// The zone is fixed per process: run a child under several TZ values.
const here = fileURLToPath(new URL("../src/core/time.js", import.meta.url));
for (const [tz, expected] of [
  ["Asia/Shanghai", "2026-12-07T09:14:03+08:00"],
  ["UTC", "2026-12-07T01:14:03+00:00"],
  ["America/St_Johns", "2026-12-06T21:44:03-03:30"],
  ["Asia/Kathmandu", "2026-12-07T06:59:03+05:45"],
]) {
  test(`device_time under TZ=${tz}`, () => {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e",
      `import { deviceTime } from ${JSON.stringify(here)}; ` +
      `process.stdout.write(deviceTime(new Date("2026-12-07T01:14:03Z")));`],
    { env: { ...process.env, TZ: tz } }).toString();
    assert.equal(out, expected);
  });
}

test("an op's device_time uses the given clock and the local offset", async () => {
  const store = await freshStore();
  const now = new Date("2026-12-07T01:14:03Z");
  const op = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "x" }, now });
  assert.equal(op.device_time, deviceTime(now));
  assert.equal(new Date(op.device_time).getTime(), now.getTime());
});

test("addBlob names the bytes by their sha256, keeps the type, once", async () => {
  const store = await freshStore();
  // sha256("abc") — FIPS 180-2 test vector.
  const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const sha = await addBlob(store, new Blob(["abc"], { type: "image/png" }));
  assert.equal(sha, abc);
  assert.equal(await addBlob(store, new TextEncoder().encode("abc")), abc);
  const kept = await getBlob(store, abc);
  assert.equal(kept.type, "image/png");
  assert.equal(kept.uploaded, 0);
  assert.equal(await kept.blob.text(), "abc");
  assert.equal((await store.getAll("blobs")).length, 1);
});

test("a blob is kept until uploaded and no pending op names it", async () => {
  const store = await freshStore();
  const sha = await addBlob(store, new Blob(["photo"], { type: "image/jpeg" }));
  await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "x", photos: [sha] }, blobs: [sha] });
  assert.equal(await pruneBlobs(store), 0); // not uploaded
  await store.put("blobs", { ...(await getBlob(store, sha)), uploaded: 1 });
  assert.equal(await pruneBlobs(store), 0); // its op is still unanswered
  const op = await store.get("queue", 1);
  await store.put("queue", { ...op, state: "applied", result: { status: "applied" } });
  assert.equal(await pruneBlobs(store), 1);
  assert.equal(await getBlob(store, sha), undefined);
});

test("meta: set, read, remove", async () => {
  const store = await freshStore();
  await setMeta(store, "cursor", "abc");
  assert.equal(await getMeta(store, "cursor"), "abc");
  await setMeta(store, "cursor", null);
  assert.equal(await getMeta(store, "cursor", "none"), "none");
});

test("answered ops are forgotten after their keeping time; unanswered ones never", async () => {
  const { pruneOps } = await import("../src/core/queue.js");
  const store = await freshStore();
  const then = new Date("2026-12-01T01:00:00Z");
  for (let i = 0; i < 4; i += 1) await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "x" }, now: then });
  const states = ["applied", "rejected", "taken", "pending"];
  for (const [i, state] of states.entries()) {
    const op = await store.get("queue", i + 1);
    await store.put("queue", { ...op, state, answered_at: state === "pending" ? undefined : then.toISOString() });
  }
  assert.equal(await pruneOps(store, new Date("2026-12-03T01:00:00Z")), 0);
  assert.equal(await pruneOps(store, new Date("2026-12-05T01:00:00Z")), 2); // applied and taken, after 3 days
  assert.deepEqual((await store.getAll("queue")).map((op) => op.state), ["rejected", "pending"]);
  assert.equal(await pruneOps(store, new Date("2027-02-01T01:00:00Z")), 1); // the rejection after 14 days
  assert.deepEqual((await store.getAll("queue")).map((op) => op.state), ["pending"]);
  const next = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "y" } });
  assert.equal(next.seq, 5); // a seq is never reused
});
