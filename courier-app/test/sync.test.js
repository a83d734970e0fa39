// syncOnce against an in-memory server that follows docs/protocol.md (test/fake-server.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { freshStore } from "./helpers.js";
import { FakeServer } from "./fake-server.js";
import { createApi } from "../src/core/api.js";
import { getMeta, setMeta, getEntity, listEntities } from "../src/core/store.js";
import { enqueue, addBlob, getBlob, pendingOps, problemOps } from "../src/core/queue.js";
import { syncOnce, localChecksum, syncEvents, syncStatus, MAX_BATCH_OPS } from "../src/core/sync.js";

const NOW = new Date("2026-12-07T01:00:00Z");

async function setup({ tasks = ["t-1"] } = {}) {
  const server = new FakeServer();
  for (const id of tasks) server.put("task", id, { status: "assigned" });
  const store = await freshStore();
  await setMeta(store, "token", server.token);
  await setMeta(store, "device_id", server.deviceId);
  const api = createApi({ base: "http://fake.test/api/v1", fetch: server.fetch,
    getToken: () => getMeta(store, "token") });
  const sleeps = [];
  const options = { now: NOW, sleep: async (s) => { sleeps.push(s); }, random: () => 0.5 };
  return { server, store, api, sleeps, options, sync: () => syncOnce(store, api, options) };
}

const pushes = (server) => server.requests.filter((r) => r.path.endsWith("/sync/push"));
const note = (store, text, entityId = "t-1") => enqueue(store, { type: "task.note", entityId, payload: { text }, now: NOW });

test("first sync pulls the scope; ops pushed with device_now and last_seq, results and entities recorded", async () => {
  const { server, store, sync } = await setup({ tasks: ["t-1", "t-2"] });
  let out = await sync();
  assert.deepEqual(out, { pushed: 0, rejected: 0, pulled: 2, error: null, retryAfter: null });
  assert.equal((await getEntity(store, "task", "t-1")).version, 1);
  await enqueue(store, { type: "stop.arrive", entityId: "t-1", payload: { lat: 1, lon: 2 }, now: NOW });
  await note(store, "hello");
  out = await sync();
  assert.equal(out.pushed, 2);
  assert.equal(out.error, null);
  const [push] = pushes(server);
  const body = JSON.parse(push.body);
  assert.equal(push.headers["Fieldops-Protocol"], "1");
  assert.equal(body.device_id, "d-1");
  assert.equal(body.last_seq, 2);
  assert.equal(new Date(body.device_now).getTime(), NOW.getTime());
  assert.deepEqual(body.ops.map((op) => [op.seq, op.type, op.base_version]), [[1, "stop.arrive", 1], [2, "task.note", 1]]);
  assert.deepEqual(Object.keys(body.ops[0]).sort(),
    ["base_version", "device_time", "entity_id", "op_id", "payload", "seq", "type"]);
  const queue = await store.getAll("queue");
  assert.deepEqual(queue.map((op) => op.state), ["applied", "applied"]);
  assert.equal(queue[1].result.entity.version, 3);
  const task = await getEntity(store, "task", "t-1");
  assert.equal(task.version, 3);
  assert.equal(task.data.status, "arrived");
  assert.deepEqual(await localChecksum(store), server.scope());
  assert.ok(await getMeta(store, "last_sync"));
});

test("the company's name comes with the pull and follows the server's setting", async () => {
  const { server, store, sync } = await setup();
  await sync();
  assert.equal(await getMeta(store, "company_name", null), null); // none set: the phrase names no company
  server.companyName = "顺达快递";
  await sync();
  assert.equal(await getMeta(store, "company_name"), "顺达快递");
});

test("rejected and conflict answers are kept with their code; conflicts still replace the entity", async () => {
  const { server, store, sync } = await setup();
  await sync();
  server.put("task", "t-1", { dispatch_version: 2 }); // dispatch changed the task after the device saw v1
  await enqueue(store, { type: "test.reject", entityId: "t-1", payload: {}, now: NOW });
  await note(store, "after dispatch's change");
  const out = await sync();
  assert.equal(out.rejected, 1);
  const problems = await problemOps(store);
  assert.deepEqual(problems.map((op) => [op.state, op.result.code]), [["rejected", "wait_too_short"],
    ["conflict", "stale_version"]]);
  const status = await syncStatus(store);
  assert.equal(status.rejected, 1); // a conflict was applied: not counted as refused
  assert.equal(status.conflicts, 1);
  assert.equal((await getEntity(store, "task", "t-1")).version, server.entities.get("task:t-1").version);
});

test("a lost answer (network drop after the commit) resends the same ops unchanged, applied once", async () => {
  const { server, store, sync, sleeps } = await setup();
  await sync();
  await note(store, "one");
  await note(store, "two");
  server.fault({ path: "/sync/push" }, { dropAfterCommit: true });
  const out = await sync();
  assert.equal(out.error, null);
  const [first, second] = pushes(server);
  assert.equal(second.body, first.body); // byte for byte
  assert.equal(server.applied.length, 2);
  const queue = await store.getAll("queue");
  assert.deepEqual(queue.map((op) => [op.state, op.result.duplicate]), [["applied", true], ["applied", true]]);
  assert.equal(sleeps.length, 1);
});

test("a lost answer and no network after it: the ops stay pending; the next round resends them, applied once", async () => {
  const { server, store, api, options } = await setup();
  await syncOnce(store, api, options);
  const op = await note(store, "one");
  server.fault({ path: "/sync/push" }, { dropAfterCommit: true });
  for (let i = 0; i < 4; i += 1) server.fault({ path: "/sync/push" }, { network: true });
  const out = await syncOnce(store, api, options);
  assert.equal(out.error, "offline");
  assert.equal(server.lastSeq, 1); // the server did take it
  assert.deepEqual((await pendingOps(store)).map((o) => o.op_id), [op.op_id]);
  assert.equal(server.requests.filter((r) => r.path.endsWith("/sync/pull")).length, 1); // no pull while offline
  const again = await syncOnce(store, api, options);
  assert.equal(again.error, null);
  const sent = pushes(server).map((r) => JSON.parse(r.body).ops);
  assert.deepEqual(sent.at(-1), sent[0]); // the same ops, unchanged
  const [after] = await store.getAll("queue");
  assert.equal(after.state, "applied");
  assert.equal(after.result.duplicate, true);
  assert.equal(server.applied.length, 1);
});

test("a pull's last_seq marks ops whose push answer was lost as taken", async () => {
  const { server, store, api, options } = await setup();
  await syncOnce(store, api, options);
  await note(store, "lost answer");
  // The server took seq 1 (another round's push whose answer never came back).
  const [op] = await pendingOps(store);
  server.push({ device_id: "d-1", ops: [{ ...op, state: undefined }] });
  server.fault({ path: "/sync/push" }, { status: 403, code: "forbidden" }); // this push cannot get through
  const out = await syncOnce(store, api, options);
  assert.equal(out.error, "forbidden");
  const [after] = await store.getAll("queue");
  assert.equal(after.state, "taken");
  assert.equal(after.result, null);
});

test("expected_seq: resend from where the server asks (a server restored from a backup)", async () => {
  const { server, store, sync } = await setup();
  await sync();
  for (const t of ["a", "b", "c"]) await note(store, t);
  await sync();
  assert.equal(server.lastSeq, 3);
  // The server loses ops 2 and 3 (restored from a backup).
  server.lastSeq = 1;
  server.taken.delete(2);
  server.taken.delete(3);
  server.opIds.clear();
  await note(store, "d");
  const out = await sync();
  assert.equal(out.error, null);
  const bodies = pushes(server).slice(1).map((r) => JSON.parse(r.body).ops.map((op) => op.seq));
  assert.deepEqual(bodies, [[4], [2, 3, 4]]);
  assert.equal(server.lastSeq, 4);
  assert.deepEqual((await store.getAll("queue")).map((op) => op.state), ["applied", "applied", "applied", "applied"]);
});

test("stopped_at: the ops before it are recorded, the round stops and says when to retry", async () => {
  const { server, store, sync } = await setup();
  await sync();
  for (const t of ["a", "b", "c"]) await note(store, t);
  server.fault({ path: "/sync/push" }, { stopAtSeq: 2, retryAfter: 5 });
  const out = await sync();
  assert.equal(out.error, "busy");
  assert.equal(out.retryAfter, 5);
  assert.equal(out.pushed, 1);
  assert.deepEqual((await store.getAll("queue")).map((op) => op.state), ["applied", "pending", "pending"]);
  assert.equal((await syncStatus(store)).retryAt, new Date(NOW.getTime() + 5000).toISOString());
  // The pull still ran (dispatch's news reaches the courier while the push waits).
  assert.ok(server.requests.some((r) => r.path.endsWith("/sync/pull")));
  const next = await sync();
  assert.equal(next.error, null);
  assert.deepEqual(JSON.parse(pushes(server).at(-1).body).ops.map((op) => op.seq), [2, 3]);
  assert.equal((await syncStatus(store)).retryAt, null);
});

test("503 with Retry-After and 409 concurrent_update: backoff honours Retry-After, same body resent", async () => {
  const { server, store, sync, sleeps } = await setup();
  await sync();
  await note(store, "x");
  server.fault({ path: "/sync/push" }, { status: 503, code: "database_busy", headers: { "Retry-After": "2" } });
  server.fault({ path: "/sync/push" }, { status: 409, code: "concurrent_update", headers: { "Retry-After": "1" } });
  server.fault({ path: "/sync/push" }, { status: 500, code: "internal_error" });
  server.fault({ path: "/sync/push" }, { status: 503, code: "database_unavailable", headers: { "Retry-After": "30" } });
  const out = await sync();
  assert.equal(out.error, null);
  assert.equal(sleeps[0], 2);
  assert.ok(sleeps[1] >= 1);
  assert.equal(sleeps[3], 30);
  const bodies = new Set(pushes(server).map((r) => r.body));
  assert.equal(bodies.size, 1);
  assert.equal(server.applied.length, 1);
});

test("backoff grows with jitter when there is no Retry-After, then gives up as offline", async () => {
  const { server, store, api } = await setup();
  await syncOnce(store, api, { now: NOW, sleep: async () => {} });
  await note(store, "x");
  for (let i = 0; i < 5; i += 1) server.fault({ path: "/sync/push" }, { network: true });
  const sleeps = [];
  let r = 0;
  const out = await syncOnce(store, api, { now: NOW, sleep: async (s) => { sleeps.push(s); },
    random: () => [0, 0.99][r++ % 2] });
  assert.equal(out.error, "offline");
  assert.equal(sleeps.length, 4);
  assert.deepEqual(sleeps.map((s) => Math.round(s * 1000) / 1000), [0.125, 0.745, 0.5, 2.98]);
  assert.equal((await pendingOps(store)).length, 1);
});

test("401: the device is marked revoked and the round stops (nothing else is sent)", async () => {
  const { server, store, sync } = await setup();
  await sync();
  await note(store, "x");
  server.token = "fod_other"; // dispatch revoked this device
  const before = server.requests.length;
  const out = await sync();
  assert.equal(out.error, "revoked");
  assert.equal(server.requests.length, before + 1);
  assert.equal(await getMeta(store, "revoked"), true);
  assert.equal((await syncStatus(store)).revoked, true);
  assert.equal((await pendingOps(store)).length, 1);
});

test("426: update_required is recorded", async () => {
  const { server, store, sync } = await setup();
  server.fault({ path: "/sync/pull" }, { status: 426, code: "protocol_unsupported" });
  const out = await sync();
  assert.equal(out.error, "update_required");
  assert.equal((await syncStatus(store)).updateRequired, true);
});

test("attachments: HEAD then PUT before the op, HEAD skips what is there, refused content pushes anyway", async () => {
  const { server, store, sync } = await setup();
  await sync();
  const photo = await addBlob(store, new Blob(["\xff\xd8jpeg"], { type: "image/jpeg" }));
  const there = await addBlob(store, new Blob(["already"], { type: "image/png" }));
  const svg = await addBlob(store, new Blob(["<svg><script>x</script></svg>"], { type: "image/svg+xml" }));
  server.attachments.add(there);
  await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "p", photos: [photo, there] },
    blobs: [photo, there], now: NOW });
  await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "svg", photos: [] }, blobs: [svg],
    now: NOW });
  const out = await sync();
  assert.equal(out.error, null);
  const calls = server.requests.filter((r) => r.path.includes("/attachments/")).map((r) => [r.method, r.path.slice(-64)]);
  const order = [photo, svg, there].sort();
  const expected = order.flatMap((sha) => (sha === there ? [["HEAD", sha]] : [["HEAD", sha], ["PUT", sha]]));
  assert.deepEqual(calls, expected);
  const pushIndex = server.requests.findIndex((r) => r.path.endsWith("/sync/push"));
  const lastUpload = server.requests.findLastIndex((r) => r.path.includes("/attachments/"));
  assert.ok(lastUpload < pushIndex);
  // Answered and uploaded: the blobs are gone from the device; the refused one too (final for its bytes).
  assert.equal(await getBlob(store, photo), undefined);
  assert.equal(await getBlob(store, svg), undefined);
  assert.equal((await pendingOps(store)).length, 0);
});

test("more than 500 ops go in batches of at most 500, each with the queue's last_seq", async () => {
  const { server, store, sync } = await setup();
  await sync();
  for (let i = 0; i < MAX_BATCH_OPS + 20; i += 1) await note(store, `n${i}`);
  const out = await sync();
  assert.equal(out.pushed, 520);
  const bodies = pushes(server).map((r) => JSON.parse(r.body));
  assert.deepEqual(bodies.map((b) => b.ops.length), [500, 20]);
  assert.deepEqual(bodies.map((b) => b.last_seq), [520, 520]);
  assert.equal(server.lastSeq, 520);
});

test("pull: pages until has_more is false; a cursor afterwards; tombstones delete", async () => {
  const { server, store, api, options } = await setup({ tasks: ["t-1", "t-2", "t-3", "t-4", "t-5"] });
  server.put("vehicle", "v-1", { plate: "沪A" });
  const out = await syncOnce(store, api, { ...options, pageSize: 2 });
  assert.equal(out.pulled, 6);
  const pulls = server.requests.filter((r) => r.path.endsWith("/sync/pull"));
  assert.equal(pulls.length, 3);
  assert.equal(new URLSearchParams(pulls[0].search).get("cursor"), null);
  assert.equal(new URLSearchParams(pulls[1].search).get("cursor"), "L2:6");
  server.remove("task", "t-2");
  server.put("task", "t-3", { status: "delivered" });
  await syncOnce(store, api, options);
  const last = server.requests.at(-1);
  assert.equal(new URLSearchParams(last.search).get("cursor"), "C6");
  assert.equal(await getEntity(store, "task", "t-2"), undefined);
  assert.equal((await getEntity(store, "task", "t-3")).data.status, "delivered");
  assert.deepEqual((await listEntities(store, "task")).map((e) => e.id), ["t-1", "t-3", "t-4", "t-5"]);
  assert.deepEqual(await localChecksum(store), server.scope());
});

test("reset: the cursor is dropped and the scope listed again, replacing the store", async () => {
  const { server, store, sync } = await setup({ tasks: ["t-1", "t-2"] });
  await sync();
  await store.put("entities", { entity: "task", id: "t-ghost", version: 9, data: {} }); // a stale leftover
  server.fault({ path: "/sync/pull" }, { reset: true });
  const out = await sync();
  assert.equal(out.error, null);
  const cursors = server.requests.filter((r) => r.path.endsWith("/sync/pull"))
    .map((r) => new URLSearchParams(r.search).get("cursor"));
  assert.deepEqual(cursors.slice(1), ["C2", null]);
  assert.equal(await getEntity(store, "task", "t-ghost"), undefined);
  assert.deepEqual(await localChecksum(store), server.scope());
});

test("checksum mismatch: drop the store and pull from scratch once; a second mismatch is drift", async () => {
  const { server, store, sync } = await setup({ tasks: ["t-1"] });
  await sync();
  // The local copy drifted (a bug, a lost write): the server's checksum tells.
  await store.put("entities", { entity: "task", id: "t-1", version: 99, data: {} });
  let out = await sync();
  assert.equal(out.error, null);
  assert.equal((await getEntity(store, "task", "t-1")).version, 1);
  const cursors = server.requests.filter((r) => r.path.endsWith("/sync/pull"))
    .map((r) => new URLSearchParams(r.search).get("cursor"));
  assert.deepEqual(cursors.slice(1), ["C1", null]);
  server.fault({ path: "/sync/pull" }, { badChecksum: true });
  server.fault({ path: "/sync/pull" }, { badChecksum: true });
  out = await sync();
  assert.equal(out.error, "drift");
});

test("a first pull replaces whatever the store held", async () => {
  const { server, store, sync } = await setup({ tasks: ["t-1"] });
  await store.put("entities", { entity: "task", id: "t-old", version: 1, data: {} });
  await sync();
  assert.deepEqual((await store.getAll("entities")).map((e) => e.id), ["t-1"]);
  assert.equal(server.requests.length, 1);
});

test("one round at a time: a second call joins the running one", async () => {
  const { server, store, api, options } = await setup();
  await note(store, "x");
  const [a, b] = [syncOnce(store, api, options), syncOnce(store, api, options)];
  assert.equal(a, b);
  await a;
  assert.equal(pushes(server).length, 1);
  assert.equal(server.applied.length, 1);
});

test("syncEvents: change after queueing and syncing, status with pending and rejected counts", async () => {
  const { store, sync } = await setup();
  const seen = [];
  const onChange = (e) => seen.push(["change", e.detail]);
  const onStatus = (e) => seen.push(["status", e.detail]);
  syncEvents.addEventListener("change", onChange);
  syncEvents.addEventListener("status", onStatus);
  await enqueue(store, { type: "test.reject", entityId: "t-1", payload: {}, now: NOW });
  await sync();
  syncEvents.removeEventListener("change", onChange);
  syncEvents.removeEventListener("status", onStatus);
  assert.equal(seen[0][0], "change");
  assert.equal(seen[0][1].seq, 1);
  const status = seen.find(([t]) => t === "status")[1];
  assert.equal(status.pending, 0);
  assert.equal(status.rejected, 1);
  assert.equal(status.error, null);
  assert.equal(status.lastSync, NOW.toISOString());
});

test("not enrolled: nothing is sent", async () => {
  const { server, store, sync } = await setup();
  await setMeta(store, "token", null);
  assert.equal((await sync()).error, "not_enrolled");
  assert.equal(server.requests.length, 0);
});

test("bodies stay under 5 MiB: big ops split into more batches; a 413 halves the batch", async () => {
  const { server, store, sync } = await setup();
  await sync();
  const big = "字".repeat(700_000); // ~2 MiB of UTF-8 each
  for (let i = 0; i < 3; i += 1) await note(store, big);
  await sync();
  const sizes = pushes(server).map((r) => [JSON.parse(r.body).ops.length, Buffer.byteLength(r.body)]);
  assert.deepEqual(sizes.map(([n]) => n), [2, 1]);
  for (const [, bytes] of sizes) assert.ok(bytes < 5 * 1024 * 1024, String(bytes));
  // A server with a smaller limit: 413 body_too_large splits the batch.
  for (let i = 0; i < 4; i += 1) await note(store, `small ${i}`);
  server.fault({ path: "/sync/push" }, { status: 413, code: "body_too_large" });
  const out = await sync();
  assert.equal(out.error, null);
  assert.deepEqual(pushes(server).slice(2).map((r) => JSON.parse(r.body).ops.length), [4, 2, 2]);
  assert.equal(server.lastSeq, 7);
});

test("Web Locks where the browser has them: the round runs under the shared lock", async () => {
  const { server, store, api, options } = await setup();
  const held = [];
  const previous = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", { configurable: true, value: { locks: {
    async request(name, callback) {
      held.push(name);
      return callback({ name });
    },
  } } });
  try {
    await note(store, "x");
    const out = await syncOnce(store, api, options);
    assert.equal(out.error, null);
    assert.deepEqual(held, ["fieldops-sync"]);
    assert.equal(server.applied.length, 1);
  } finally {
    if (previous) Object.defineProperty(globalThis, "navigator", previous);
    else delete globalThis.navigator;
  }
});
