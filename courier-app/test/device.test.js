// Enrollment: what the camera or the keyboard gives, and the trade of the code for a token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { freshStore } from "./helpers.js";
import { parseEnrollment, enroll, isEnrolled, forget, EnrollmentError } from "../src/core/device.js";
import { createApi, ApiError, OfflineError } from "../src/core/api.js";
import { getMeta, setMeta } from "../src/core/store.js";
import { enqueue } from "../src/core/queue.js";

const ORIGIN = "https://ops.example.cn";
const opts = { origin: ORIGIN };

test("the server's QR: fieldops://enroll?code=…&server=…/api/v1 of this origin", () => {
  assert.deepEqual(parseEnrollment(`fieldops://enroll?code=ABCDE23456&server=${ORIGIN}/api/v1`, opts),
    { code: "ABCDE23456", server: `${ORIGIN}/api/v1` });
  // As the server encodes it (urlencode): the server URL percent-encoded.
  assert.deepEqual(
    parseEnrollment(`fieldops://enroll?code=ABCDE23456&server=${encodeURIComponent(`${ORIGIN}/api/v1`)}`, opts),
    { code: "ABCDE23456", server: `${ORIGIN}/api/v1` });
});

test("a QR naming another server is refused with other_server", () => {
  for (const other of ["https://evil.example.com/api/v1", "http://ops.example.cn/api/v1",
    "https://ops.example.cn:8443/api/v1"]) {
    assert.throws(() => parseEnrollment(`fieldops://enroll?code=ABCDE23456&server=${encodeURIComponent(other)}`,
      opts), (err) => err instanceof EnrollmentError && err.code === "other_server");
  }
  assert.throws(() => parseEnrollment("https://evil.example.com/app/#/enroll?code=ABCDE23456", opts),
    { code: "other_server" });
});

test("app links: #/enroll?code= and ?enroll=", () => {
  assert.deepEqual(parseEnrollment(`${ORIGIN}/app/#/enroll?code=abcde-23456`, opts),
    { code: "ABCDE23456", server: `${ORIGIN}/api/v1` });
  assert.deepEqual(parseEnrollment(`${ORIGIN}/app/?enroll=ABCDE23456`, opts),
    { code: "ABCDE23456", server: `${ORIGIN}/api/v1` });
  assert.throws(() => parseEnrollment(`${ORIGIN}/app/#/tasks`, opts), { code: "invalid_code" });
});

test("a typed code: case, spaces and dashes ignored", () => {
  assert.deepEqual(parseEnrollment(" abcde 23456 ", opts), { code: "ABCDE23456", server: null });
  assert.deepEqual(parseEnrollment("ABC-DE2-3456", opts), { code: "ABCDE23456", server: null });
});

test("bad codes: wrong length, letters outside the alphabet, other QR kinds", () => {
  for (const bad of ["", "ABCDE2345", "ABCDE234567", "ABCDE2345O", "ABCDE23451", "ABCDE2345I", "ABCDE2345L",
    "ABCDE_23456", "fieldops://other?code=ABCDE23456", "fieldops://enroll?server=x", "mailto:a@b.c",
    "https://ops.example.cn/app/?enroll=ABC"]) {
    assert.throws(() => parseEnrollment(bad, opts), { code: "invalid_code" }, bad);
  }
});

function fakeFetch(handler) {
  const calls = [];
  const fn = async (url, init) => {
    calls.push({ url, init });
    return handler(url, init);
  };
  fn.calls = calls;
  return fn;
}

const problem = (status, code, headers = {}) => new Response(JSON.stringify({ status, code, title: code }),
  { status, headers: { "Content-Type": "application/problem+json", ...headers } });

test("enroll stores device_id, courier_id and token; the token goes out as Bearer afterwards", async () => {
  const store = await freshStore();
  const fetch = fakeFetch((url, init) => {
    if (url.endsWith("/devices/enroll")) {
      assert.equal(init.method, "POST");
      assert.deepEqual(JSON.parse(init.body), { code: "ABCDE23456", device_name: "Pixel" });
      assert.equal(init.headers.Authorization, undefined);
      return new Response(JSON.stringify({ device_id: "d-1", courier_id: "c-1", token: "fod_x" }), { status: 201 });
    }
    return new Response(JSON.stringify({ changes: [], cursor: "c", has_more: false, last_seq: 0 }), { status: 200 });
  });
  const api = createApi({ base: `${ORIGIN}/api/v1`, fetch, getToken: () => getMeta(store, "token") });
  assert.equal(await isEnrolled(store), false);
  assert.deepEqual(await enroll(store, api, { code: "abcde-23456", deviceName: "Pixel" }),
    { device_id: "d-1", courier_id: "c-1" });
  assert.equal(await getMeta(store, "token"), "fod_x");
  assert.equal(await getMeta(store, "courier_id"), "c-1");
  assert.equal(await isEnrolled(store), true);
  await api.pull();
  const pull = fetch.calls.at(-1);
  assert.equal(pull.init.headers.Authorization, "Bearer fod_x");
  assert.equal(pull.init.headers["Fieldops-Protocol"], "1");
  await setMeta(store, "revoked", true);
  assert.equal(await isEnrolled(store), false);
  await forget(store);
  assert.equal(await getMeta(store, "token"), undefined);
});

test("enroll refusals surface the server's code", async () => {
  const store = await freshStore();
  for (const [answer, code] of [
    [problem(404, "enrollment_invalid"), "enrollment_invalid"],
    [problem(422, "courier_inactive"), "courier_inactive"],
    [problem(429, "rate_limited", { "Retry-After": "60" }), "rate_limited"],
    [problem(500, "internal_error"), "enrollment_failed"],
  ]) {
    const api = createApi({ base: `${ORIGIN}/api/v1`, fetch: async () => answer });
    await assert.rejects(enroll(store, api, { code: "ABCDE23456", deviceName: "x" }),
      (err) => err instanceof EnrollmentError && err.code === code &&
        (code !== "rate_limited" || err.retryAfter === 60));
  }
  const offline = createApi({ base: "/api/v1", fetch: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(enroll(store, offline, { code: "ABCDE23456", deviceName: "x" }), { code: "offline" });
  assert.equal(await getMeta(store, "token"), undefined);
});

test("a new identity renumbers the unsent ops from 1 and drops the old device's answered ones", async () => {
  const store = await freshStore();
  let n = 0;
  const api = createApi({ base: "/api/v1", fetch: async () => {
    n += 1;
    return new Response(JSON.stringify({ device_id: `d-${n}`, courier_id: "c-1", token: `fod_${n}` }),
      { status: 201 });
  } });
  await enroll(store, api, { code: "ABCDE23456", deviceName: "x" });
  const a = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "a" } });
  const b = await enqueue(store, { type: "task.note", entityId: "t-1", payload: { text: "b" } });
  await store.put("queue", { ...a, state: "applied", result: { status: "applied" } });
  await enroll(store, api, { code: "ABCDE23456", deviceName: "x" });
  const queue = await store.getAll("queue");
  assert.deepEqual(queue.map((op) => [op.seq, op.op_id]), [[1, b.op_id]]);
  assert.equal(await getMeta(store, "next_seq"), 2);
  assert.equal(await getMeta(store, "device_id"), "d-2");
});

test("api: problem+json becomes ApiError with code and retryAfter (header, else body)", async () => {
  const api = createApi({ base: "/api/v1", fetch: async () => problem(503, "database_busy", { "Retry-After": "2" }) });
  await assert.rejects(api.push({}), (err) => err instanceof ApiError && err.status === 503 &&
    err.code === "database_busy" && err.retryAfter === 2);
  const body = createApi({ base: "/api/v1", fetch: async () => new Response(
    JSON.stringify({ status: 429, code: "rate_limited", retry_after: 7 }), { status: 429 }) });
  await assert.rejects(body.pull(), { code: "rate_limited", retryAfter: 7 });
  const html = createApi({ base: "/api/v1", fetch: async () => new Response("<h1>Bad gateway</h1>", { status: 502 }) });
  await assert.rejects(html.pull(), { status: 502, code: "http_502", retryAfter: null });
});

test("api: network failure and timeout are OfflineError", async () => {
  const down = createApi({ base: "/api/v1", fetch: async () => { throw new TypeError("Failed to fetch"); } });
  await assert.rejects(down.push({}), (err) => err instanceof OfflineError && !err.timeout);
  const slow = createApi({ base: "/api/v1", timeoutMs: 50, fetch: (url, init) => new Promise((_, reject) => {
    init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
  }) });
  await assert.rejects(slow.pull(), (err) => err instanceof OfflineError && err.timeout);
});

test("api: attachments (HEAD 200/404, PUT bytes), protocol header and query", async () => {
  const fetch = fakeFetch((url, init) => {
    if (init.method === "HEAD") return new Response(null, { status: url.includes("aa") ? 200 : 404 });
    if (init.method === "PUT") return new Response(JSON.stringify({ sha256: "bb" }), { status: 201 });
    return new Response(JSON.stringify({ changes: [] }), { status: 200 });
  });
  const api = createApi({ base: "/api/v1/", fetch, getToken: async () => "fod_t" });
  assert.equal(await api.headAttachment("aa"), true);
  assert.equal(await api.headAttachment("bb"), false);
  assert.equal(await api.putAttachment("bb", new Blob(["x"])), 201);
  const put = fetch.calls[2];
  assert.equal(put.url, "/api/v1/attachments/bb");
  assert.equal(put.init.headers["Content-Type"], "application/octet-stream");
  assert.equal(put.init.headers["Fieldops-Protocol"], "1");
  await api.pull({ cursor: "x y", limit: 10 });
  assert.equal(fetch.calls[3].url, "/api/v1/sync/pull?cursor=x+y&limit=10");
  await api.pull();
  assert.equal(fetch.calls[4].url, "/api/v1/sync/pull");
});
