// Push the queue, then pull the scope, exactly as docs/protocol.md says (push, attachments, pull, retry).
// Importable from the service worker: no DOM, globalThis only.
import { getMeta, setMeta } from "./store.js";
import { pendingOps, pruneBlobs, pruneOps } from "./queue.js";
import { deviceTime, setDepotTimeZone } from "./time.js";
import { ApiError, OfflineError, createApi } from "./api.js";
import { syncEvents, announce } from "./events.js";
import { openStore } from "./store.js";

export { syncEvents };

/** The push limits (protocol "Push"): at most 500 ops and 5 MiB of body; we stay under with room to spare. */
export const MAX_BATCH_OPS = 500;
export const MAX_BATCH_BYTES = 5 * 1024 * 1024 - 64 * 1024;
/** The kinds a pull's scope holds: only these are kept (a create op's result names others, never pulled). */
export const SCOPE_ENTITIES = Object.freeze(["task", "vehicle", "courier", "checklist_template"]);
/** The Web Lock and Background Sync tag shared by the page and the service worker. */
export const SYNC_LOCK = "fieldops-sync";
export const SYNC_TAG = "fieldops-sync";
// Upload refusals final for those bytes (attachments are named by their hash): the ops naming them are pushed
// anyway, and the server rejects them (attachment_refused, or attachment_never_uploaded after its wait)
// instead of the queue blocking behind them.
const REFUSED_CONTENT = ["unsafe_svg", "unsupported_content", "body_too_large", "hash_mismatch"];

/** Why a round ended early; `code` is what the status shows. */
class SyncStop extends Error {
  constructor(code, { retryAfter = null, cause } = {}) {
    super(code, { cause });
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function transient(err) {
  if (err instanceof OfflineError) return true;
  if (!(err instanceof ApiError)) return false;
  return err.status >= 500 || err.status === 429 || (err.status === 409 && err.code === "concurrent_update");
}

const defaultSleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/**
 * One request with the protocol's retry guidance: no answer, 5xx, 429 and 409 concurrent_update are resent
 * unchanged after an exponential backoff with jitter, never sooner than Retry-After.
 */
async function withRetry(call, ctx) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw new SyncStop("revoked", { cause: err });
      if (err instanceof ApiError && err.status === 426) throw new SyncStop("update_required", { cause: err });
      if (!transient(err)) throw new SyncStop(err.code ?? "failed", { cause: err });
      if (attempt + 1 >= ctx.maxAttempts) {
        throw new SyncStop(err instanceof OfflineError ? "offline" : err.code,
          { retryAfter: err.retryAfter ?? null, cause: err });
      }
      const backoff = Math.min(30, 0.25 * 2 ** attempt) * (0.5 + ctx.random());
      await ctx.sleep(Math.max(err.retryAfter ?? 0, backoff));
    }
  }
}

function clockOf(now) {
  if (typeof now === "function") return now;
  if (now instanceof Date) return () => now;
  return () => new Date();
}

/** The wire form of an op (what the server fingerprints: never changed once queued). */
function wireOp(op) {
  return { op_id: op.op_id, seq: op.seq, type: op.type, entity_id: op.entity_id, base_version: op.base_version,
    device_time: op.device_time, payload: op.payload };
}

const encoder = new TextEncoder();

/** The first ops of the queue that fit one push: ≤ 500 and under 5 MiB of body. */
function takeBatch(ops, maxOps) {
  const batch = [];
  let bytes = 512; // the envelope
  for (const op of ops) {
    const size = encoder.encode(JSON.stringify(wireOp(op))).length + 1;
    if (batch.length && (batch.length >= maxOps || bytes + size > MAX_BATCH_BYTES)) break;
    batch.push(op);
    bytes += size;
  }
  return batch;
}

async function uploadAttachments(store, api, ops, ctx) {
  const names = [...new Set(ops.flatMap((op) => op.blobs ?? []))].sort();
  for (const sha256 of names) {
    const held = await store.get("blobs", sha256);
    if (!held || held.uploaded) continue; // lost (the server will wait, then reject) or done
    let uploaded = 1;
    const there = await withRetry(() => api.headAttachment(sha256), ctx);
    if (!there) {
      try {
        await withRetry(() => api.putAttachment(sha256, held.blob), ctx);
      } catch (err) {
        if (!(err instanceof SyncStop && REFUSED_CONTENT.includes(err.cause?.code))) throw err;
        uploaded = 2; // refused for its content: final for these bytes, the op goes and is rejected
      }
    }
    await store.put("blobs", { ...held, uploaded });
  }
}

/** Record a push answer: each op's result, the entities it returns, and every op up to last_seq as taken. */
async function recordPush(store, answer, batch, answeredAt) {
  const tx = store.transaction(["queue", "entities"], "readwrite");
  const queue = tx.objectStore("queue");
  const entities = tx.objectStore("entities");
  let answered = 0;
  let rejected = 0;
  for (const result of answer.results ?? []) {
    const op = await queue.get(result.seq);
    if (!op || op.op_id !== result.op_id) continue; // not ours (cannot happen unless renumbered meanwhile)
    const { entity, ...rest } = result;
    // The entity's data lives in `entities`; the op keeps the rest and which version it left.
    const kept = { ...rest, entity: entity ? { entity: entity.entity, id: entity.id, version: entity.version,
      deleted: entity.deleted } : null };
    await queue.put({ ...op, state: result.status, result: kept, answered_at: answeredAt });
    answered += 1;
    if (result.status === "rejected") rejected += 1;
    if (entity && SCOPE_ENTITIES.includes(entity.entity)) {
      const held = await entities.get([entity.entity, entity.id]);
      if (entity.deleted) {
        if (held) await entities.delete([entity.entity, entity.id]);
      } else if (entity.data && (!held || (entity.version ?? 0) >= (held.version ?? 0))) {
        await entities.put({ entity: entity.entity, id: entity.id, version: entity.version, data: entity.data });
      }
    }
  }
  answered += await ackThrough(queue, answer.last_seq, answeredAt);
  await tx.done;
  return { answered, rejected, sent: batch.length };
}

/** Ops up to last_seq the server has (a push or pull said so) without their answer in hand: `taken`. */
async function ackThrough(queue, lastSeq, answeredAt) {
  if (typeof lastSeq !== "number" || lastSeq < 1) return 0;
  let n = 0;
  for (const op of await queue.index("state").getAll("pending")) {
    if (op.seq <= lastSeq) {
      await queue.put({ ...op, state: "taken", answered_at: answeredAt });
      n += 1;
    }
  }
  return n;
}

/** Push until the queue is empty or the server stops us; `tally` counts what was answered, even on a stop. */
async function push(store, api, ctx, tally) {
  const deviceId = await getMeta(store, "device_id");
  let maxOps = MAX_BATCH_OPS;
  let rounds = 0;
  for (;;) {
    const pending = await pendingOps(store);
    if (!pending.length) return;
    rounds += 1;
    if (rounds > ctx.maxRounds) throw new SyncStop("push_stalled");
    const batch = takeBatch(pending, maxOps);
    await uploadAttachments(store, api, batch, ctx);
    // One body per batch, resent unchanged on a lost answer (the server applies it once).
    const body = { device_id: deviceId, ops: batch.map(wireOp), device_now: deviceTime(ctx.clock()),
      last_seq: (await getMeta(store, "next_seq", 1)) - 1 };
    let answer;
    try {
      answer = await withRetry(() => api.push(body), ctx);
    } catch (err) {
      if (err instanceof SyncStop && err.cause?.status === 413 && maxOps > 1) {
        maxOps = Math.max(1, Math.floor(batch.length / 2)); // split the batch
        continue;
      }
      throw err;
    }
    const done = await recordPush(store, answer, batch, ctx.clock().toISOString());
    tally.pushed += done.answered;
    tally.rejected += done.rejected;
    if (answer.expected_seq != null) {
      // The server lacks ops we hold as answered (restored from a backup): they are still in the queue,
      // so they go again from where it asks.
      await reopenFrom(store, answer.expected_seq);
      continue;
    }
    if (answer.stopped_at != null) {
      throw new SyncStop(answer.stop_code || "stopped", { retryAfter: answer.retry_after ?? 5 });
    }
    if (!done.answered) throw new SyncStop("push_stalled"); // no progress: do not spin
  }
}

async function reopenFrom(store, expectedSeq) {
  const tx = store.transaction("queue", "readwrite");
  let cursor = await tx.store.openCursor(IDBKeyRange.lowerBound(expectedSeq));
  while (cursor) {
    if (cursor.value.state !== "pending") await cursor.update({ ...cursor.value, state: "pending", result: null });
    cursor = await cursor.continue();
  }
  await tx.done;
}

/**
 * The drift check over the local store: sha256 of the sorted `entity:id:version` lines joined by \n.
 * @param {import("idb").IDBPDatabase} store
 * @returns {Promise<{count: number, checksum: string}>}
 */
export async function localChecksum(store) {
  const lines = (await store.getAll("entities")).map((e) => `${e.entity}:${e.id}:${e.version}`);
  // Byte order, as the server sorts (a plain sort compares UTF-16 units, which differs outside the BMP).
  const bytes = lines.map((line) => [line, encoder.encode(line)]);
  bytes.sort(([, a], [, b]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  const digest = await globalThis.crypto.subtle.digest("SHA-256", encoder.encode(bytes.map(([l]) => l).join("\n")));
  const checksum = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { count: lines.length, checksum };
}

async function applyPage(store, page, fromScratch, answeredAt) {
  const tx = store.transaction(["entities", "meta", "queue"], "readwrite");
  const entities = tx.objectStore("entities");
  if (fromScratch) await entities.clear(); // a full listing replaces the store, cleared as it arrives
  for (const change of page.changes ?? []) {
    if (change.deleted) await entities.delete([change.entity, change.id]);
    else await entities.put({ entity: change.entity, id: change.id, version: change.version, data: change.data });
  }
  const taken = await ackThrough(tx.objectStore("queue"), page.last_seq, answeredAt);
  // The page and its cursor in one transaction: a crash between pages resumes from the last one applied.
  await tx.objectStore("meta").put(page.cursor, "cursor");
  if (page.timezone) await tx.objectStore("meta").put(page.timezone, "timezone");
  await tx.done;
  setDepotTimeZone(page.timezone);
  return taken;
}

async function pullPages(store, api, ctx) {
  let pulled = 0;
  let taken = 0;
  let resets = 0;
  for (;;) {
    const cursor = (await getMeta(store, "cursor")) ?? null;
    const page = await withRetry(() => api.pull({ cursor, limit: ctx.pageSize }), ctx);
    if (page.reset) {
      // A cursor the server cannot continue: drop it and list the scope again.
      resets += 1;
      if (resets > 2) throw new SyncStop("pull_reset_loop");
      await setMeta(store, "cursor", null);
      continue;
    }
    taken += await applyPage(store, page, cursor === null, ctx.clock().toISOString());
    // The company's name the courier says to customers (FIELDOPS_COMPANY_NAME; null when the server has none).
    if (page.company && "name" in page.company) await setMeta(store, "company_name", page.company.name ?? null);
    pulled += (page.changes ?? []).length;
    if (!page.has_more) return { pulled, taken, last: page };
  }
}

async function pull(store, api, ctx) {
  let pulled = 0;
  let taken = 0;
  for (let round = 0; round < 2; round += 1) {
    const result = await pullPages(store, api, ctx);
    pulled += result.pulled;
    taken += result.taken;
    const scope = result.last.scope;
    if (!scope) return { pulled, taken };
    const mine = await localChecksum(store);
    if (mine.count === scope.count && mine.checksum === scope.checksum) return { pulled, taken };
    // Drift: the next listing replaces the store (cleared when its first page arrives).
    await setMeta(store, "cursor", null);
  }
  throw new SyncStop("drift");
}

/** The depot's time zone the last pull named (meta `timezone`), put in use; Asia/Shanghai until a pull has. */
export async function loadDepotTimeZone(store) {
  setDepotTimeZone(await getMeta(store, "timezone", null));
}

/**
 * The status the screens show: pending ops, problem ops, the last sync and its error.
 * @param {import("idb").IDBPDatabase} store
 */
export async function syncStatus(store) {
  const [pending, rejected, conflicts] = await Promise.all([
    store.countFromIndex("queue", "state", "pending"),
    store.countFromIndex("queue", "state", "rejected"),
    store.countFromIndex("queue", "state", "conflict"),
  ]);
  return {
    // A conflict was applied (a field fact, dispatch reviews it): counted apart from the refused ops.
    pending, rejected, conflicts,
    lastSync: (await getMeta(store, "last_sync")) ?? null,
    error: (await getMeta(store, "sync_error")) ?? null,
    retryAt: (await getMeta(store, "retry_at")) ?? null,
    revoked: Boolean(await getMeta(store, "revoked")),
    updateRequired: Boolean(await getMeta(store, "update_required")),
  };
}

async function run(store, api, options) {
  const ctx = {
    clock: clockOf(options.now),
    sleep: options.sleep ?? defaultSleep,
    random: options.random ?? Math.random,
    maxAttempts: options.maxAttempts ?? 5,
    maxRounds: options.maxRounds ?? 50,
    pageSize: options.pageSize ?? 500,
  };
  const outcome = { pushed: 0, rejected: 0, pulled: 0, error: null, retryAfter: null };
  if (!(await getMeta(store, "token"))) {
    outcome.error = "not_enrolled";
    return outcome;
  }
  let pushError = null;
  try {
    await push(store, api, ctx, outcome);
  } catch (err) {
    if (!(err instanceof SyncStop)) throw err;
    pushError = err;
  }
  // After a transient stop the pull still runs (the courier sees dispatch's changes); after 401/426 nothing does.
  const fatal = pushError && ["revoked", "update_required", "offline"].includes(pushError.code);
  let pullError = null;
  if (!fatal) {
    try {
      const pulled = await pull(store, api, ctx);
      outcome.pulled = pulled.pulled;
      outcome.pushed += pulled.taken;
    } catch (err) {
      if (!(err instanceof SyncStop)) throw err;
      pullError = err;
    }
  }
  const stop = pushError ?? pullError;
  if (stop) {
    outcome.error = stop.code;
    outcome.retryAfter = stop.retryAfter;
  }
  const tx = store.transaction("meta", "readwrite");
  if (stop?.code === "revoked") await tx.store.put(true, "revoked");
  if (stop?.code === "update_required") await tx.store.put(true, "update_required");
  else await tx.store.delete("update_required");
  if (stop) await tx.store.put(stop.code, "sync_error");
  else await tx.store.delete("sync_error");
  if (stop?.retryAfter != null) {
    await tx.store.put(new Date(ctx.clock().getTime() + stop.retryAfter * 1000).toISOString(), "retry_at");
  } else {
    await tx.store.delete("retry_at");
  }
  if (!pullError && !fatal) await tx.store.put(ctx.clock().toISOString(), "last_sync");
  await tx.done;
  await pruneBlobs(store);
  await pruneOps(store, ctx.clock());
  announce("change", { sync: outcome });
  announce("status", await syncStatus(store));
  return outcome;
}

const inFlight = new Map();

/**
 * One sync round: upload the attachments pending ops name, push the queue, pull the scope.
 * One at a time per device: Web Locks across the page and the service worker where the browser has them,
 * and within one context a second call joins the round already running.
 * @param {import("idb").IDBPDatabase} store
 * @param {ReturnType<typeof createApi>} api
 * @param {{now?: Date|(() => Date), sleep?: (s: number) => Promise<void>, random?: () => number,
 *   maxAttempts?: number, pageSize?: number}} [options] now: the device clock (tests fix it)
 * @returns {Promise<{pushed: number, rejected: number, pulled: number, error: string|null,
 *   retryAfter: number|null}>} error: null, or revoked | update_required | offline | a stop code |
 *   drift | not_enrolled …; retryAfter: seconds the server asked to wait
 */
export function syncOnce(store, api, options = {}) {
  const key = store.name;
  if (inFlight.has(key)) return inFlight.get(key);
  const locks = globalThis.navigator?.locks;
  const round = (locks ? locks.request(SYNC_LOCK, () => run(store, api, options)) : run(store, api, options))
    .finally(() => inFlight.delete(key));
  inFlight.set(key, round);
  return round;
}

/**
 * Ask the browser for a Background Sync (the service worker then syncs when the network returns, even with
 * the page closed). False where there is none (Firefox, Safari): the timer and focus cover those.
 * @returns {Promise<boolean>}
 */
export async function registerBackgroundSync() {
  try {
    const registration = await globalThis.navigator?.serviceWorker?.ready;
    if (!registration?.sync) return false;
    await registration.sync.register(SYNC_TAG);
    return true;
  } catch {
    return false; // permission refused or not supported: not an error for the courier
  }
}

/**
 * What the service worker runs on a `sync` event: open the store, build the API on its own origin, sync once.
 * @param {{storeName?: string, base?: string}} [options]
 */
export async function syncFromWorker({ storeName = "fieldops", base = "/api/v1" } = {}) {
  const store = await openStore(storeName);
  try {
    const api = createApi({ base, getToken: () => getMeta(store, "token") });
    const outcome = await syncOnce(store, api);
    // What the worker's own round did, kept (meta worker_sync): the only trace of a sync made with no page open.
    await setMeta(store, "worker_sync", { at: new Date().toISOString(), pushed: outcome.pushed, error: outcome.error });
    // A round left unfinished: throwing makes the browser retry the sync event later.
    if (outcome.error === "offline") throw new Error("offline");
    return outcome;
  } finally {
    store.close();
  }
}

/**
 * Sync on its own: at once, when the network returns, when the app comes back to the front, every minute,
 * after a stop when the server said to retry, and shortly after an op is queued (with a Background Sync
 * registration for when the page is gone).
 * @param {import("idb").IDBPDatabase} store
 * @param {ReturnType<typeof createApi>} api
 * @param {{intervalMs?: number, debounceMs?: number}} [options]
 * @returns {() => void} stops it
 */
export function startAutoSync(store, api, { intervalMs = 60_000, debounceMs = 1_000 } = {}) {
  let stopped = false;
  let soon = null;
  let retry = null;
  const go = async () => {
    if (stopped) return;
    if (!(await getMeta(store, "token")) || (await getMeta(store, "revoked"))) return;
    const outcome = await syncOnce(store, api).catch(() => null);
    if (outcome?.retryAfter != null && !stopped) {
      clearTimeout(retry);
      retry = setTimeout(go, outcome.retryAfter * 1000 * (1 + Math.random() * 0.25));
    }
  };
  const later = () => {
    clearTimeout(soon);
    soon = setTimeout(go, debounceMs);
  };
  const onChange = (event) => {
    if (event.detail?.seq != null) {
      later();
      registerBackgroundSync();
    }
  };
  const onVisible = () => {
    if (globalThis.document?.visibilityState !== "hidden") go();
  };
  globalThis.addEventListener?.("online", go);
  globalThis.addEventListener?.("focus", go);
  globalThis.document?.addEventListener?.("visibilitychange", onVisible);
  syncEvents.addEventListener("change", onChange);
  const timer = setInterval(go, intervalMs);
  go();
  return () => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(soon);
    clearTimeout(retry);
    globalThis.removeEventListener?.("online", go);
    globalThis.removeEventListener?.("focus", go);
    globalThis.document?.removeEventListener?.("visibilitychange", onVisible);
    syncEvents.removeEventListener("change", onChange);
  };
}
