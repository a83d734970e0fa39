// The queue: everything the courier does is written here first, with its seq, and sent later.
// An op is the courier's only record of what happened until the server answers, so nothing here
// ever deletes one; it only changes state.
import { getMeta } from "./store.js";
import { deviceTime } from "./time.js";
import { HANDOVER_OPS, openShift } from "./rules.js";
import { announce } from "./events.js";

/** Ops that create an entity: the device names it with a fresh UUID, base_version 0 (protocol "Create ops"). */
export const CREATE_OPS = Object.freeze({
  "checklist.submit": "checklist_submission",
  "violation.appeal": "violation_appeal",
});

/**
 * The state of an op another courier queued on this phone before it was enrolled for the courier holding it now:
 * kept (never sent, never pruned) under a negative key outside the seq numbering, and sent again only once its
 * own courier enrolls this phone again (device.enroll). Screens read them through `heldOps` only.
 */
export const HELD = "held";

/** An op refused on the device before it was queued (nothing was written); `code` says why. */
export class LocalRefusal extends Error {
  /** @param {string} code e.g. "shift_required" @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = "LocalRefusal";
    this.code = code;
  }
}

function entityFor(type) {
  if (CREATE_OPS[type]) return CREATE_OPS[type];
  if (type.startsWith("shift.")) return "vehicle";
  return "task";
}

/**
 * Queue what the courier did. The seq comes from meta `next_seq` in the same IndexedDB transaction as the
 * op is written, so two tabs (or the page and the service worker) never give two ops one seq: IndexedDB
 * runs readwrite transactions over the same stores one after the other.
 * A handover op (pod.*, pickup.collect) without an open shift is refused here (LocalRefusal
 * `shift_required`), as the reference client does: the server would apply it and record a violation.
 * @param {import("idb").IDBPDatabase} store
 * @param {{type: string, entity?: string, entityId?: string, payload?: object, blobs?: string[], now?: Date}} op
 *   entity defaults from the type (task; vehicle for shift.*; the created kind for create ops);
 *   entityId is ignored for create ops (a fresh UUID is made)
 * @returns {Promise<object>} the queued op
 */
export async function enqueue(store, { type, entity, entityId, payload = {}, blobs = [], now = new Date() }) {
  if (!type) throw new TypeError("enqueue: type is required");
  const create = Boolean(CREATE_OPS[type]);
  const kind = create ? CREATE_OPS[type] : (entity ?? entityFor(type));
  const id = create ? globalThis.crypto.randomUUID().toLowerCase() : entityId;
  if (!create && !id) throw new TypeError(`enqueue: ${type} needs an entityId`);
  if (HANDOVER_OPS.includes(type)) {
    // Read outside the write transaction: an await on a non-IDB promise inside it would let it commit.
    const shiftOps = (await store.getAll("queue")).filter((op) => op.type.startsWith("shift.") && op.state !== HELD);
    if (!openShift(shiftOps, now)) {
      throw new LocalRefusal("shift_required", "No shift is open on this device: start the shift first.");
    }
  }
  const tx = store.transaction(["meta", "queue", "entities"], "readwrite");
  const meta = tx.objectStore("meta");
  const seq = (await meta.get("next_seq")) ?? 1;
  const seen = create ? undefined : await tx.objectStore("entities").get([kind, id]);
  const courier = await meta.get("courier_id");
  const op = {
    seq,
    op_id: globalThis.crypto.randomUUID(),
    // Whose act this is: an op is sent only under an enrollment of this courier (device.enroll holds the ops of
    // another courier instead of sending them under the new identity).
    courier_id: courier ?? null,
    type,
    entity: kind,
    entity_id: id,
    // The version this device last saw; 0 when it never saw the entity (a create, or before the first pull).
    base_version: create ? 0 : (seen?.version ?? 0),
    device_time: deviceTime(now),
    payload,
    blobs: [...blobs],
    state: "pending",
    result: null,
    queued_at: now.toISOString(),
    // Kept on the device only (never sent): the task's waybill as the courier saw it, so that an op on a task
    // dispatch has since reassigned or cancelled (gone from the pulled scope) is still named on the screens.
    label: seen?.data?.waybill_no ?? null,
  };
  // add(), not put(): a seq already taken would fail the transaction instead of overwriting an op.
  await tx.objectStore("queue").add(op);
  await meta.put(seq + 1, "next_seq");
  await tx.done;
  announce("change", { seq, entity_id: id });
  return op;
}

/**
 * Keep a photo or signature on the device until it is uploaded; returns its sha256 (lowercase hex),
 * the name ops use for it. The same bytes twice are one blob.
 * @param {import("idb").IDBPDatabase} store
 * @param {Blob|ArrayBuffer|Uint8Array} blob
 * @param {string} [type] the content type when `blob` is raw bytes
 * @returns {Promise<string>}
 */
export async function addBlob(store, blob, type = "application/octet-stream") {
  const asBlob = blob instanceof Blob ? blob : new Blob([blob], { type });
  const bytes = await asBlob.arrayBuffer();
  const sha256 = await sha256Hex(bytes);
  const tx = store.transaction("blobs", "readwrite");
  const held = await tx.store.get(sha256);
  if (!held) await tx.store.put({ sha256, blob: asBlob, type: asBlob.type || type, uploaded: 0 });
  await tx.done;
  return sha256;
}

/**
 * Lowercase hex SHA-256 of bytes or text (WebCrypto).
 * @param {ArrayBuffer|Uint8Array|string} data
 */
export async function sha256Hex(data) {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A kept blob `{sha256, blob, type, uploaded}` (uploaded: 0 not yet, 1 stored by the server, 2 refused for
 * its content), or undefined.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} sha256
 */
export function getBlob(store, sha256) {
  return store.get("blobs", sha256);
}

/**
 * Every op about one entity (a task, a van), in seq order.
 * @param {import("idb").IDBPDatabase} store
 * @param {string} entityId
 */
export async function opsFor(store, entityId) {
  const ops = await store.getAllFromIndex("queue", "entity_id", entityId);
  return ops.filter((op) => op.state !== HELD).sort((a, b) => a.seq - b.seq);
}

/**
 * Ops another courier queued on this phone and never sent (state `held`), oldest first: shown, never sent under
 * this enrollment.
 * @param {import("idb").IDBPDatabase} store
 */
export async function heldOps(store) {
  const ops = await store.getAllFromIndex("queue", "state", HELD);
  return ops.sort((a, b) => b.seq - a.seq);
}

/**
 * Ops the server has not answered yet, in seq order.
 * @param {import("idb").IDBPDatabase} store
 */
export async function pendingOps(store) {
  const ops = await store.getAllFromIndex("queue", "state", "pending");
  return ops.sort((a, b) => a.seq - b.seq);
}

/**
 * Ops the server rejected or answered with a conflict, in seq order; each has `result` with the server's
 * `code`, `detail` and `fields`.
 * @param {import("idb").IDBPDatabase} store
 */
export async function problemOps(store) {
  const rejected = await store.getAllFromIndex("queue", "state", "rejected");
  const conflicts = await store.getAllFromIndex("queue", "state", "conflict");
  return [...rejected, ...conflicts].sort((a, b) => a.seq - b.seq);
}

/**
 * Every op, in seq order (the shift screen and rules need the whole history).
 * @param {import("idb").IDBPDatabase} store
 */
export async function allOps(store) {
  return (await store.getAll("queue")).filter((op) => op.state !== HELD);
}

/**
 * Forget blobs the server holds (or refused) that no unanswered op names any more.
 * @param {import("idb").IDBPDatabase} store
 * @returns {Promise<number>} how many were dropped
 */
export async function pruneBlobs(store) {
  const named = new Set((await pendingOps(store)).flatMap((op) => op.blobs));
  const tx = store.transaction("blobs", "readwrite");
  let dropped = 0;
  for (const blob of await tx.store.getAll()) {
    if (blob.uploaded && !named.has(blob.sha256)) {
      await tx.store.delete(blob.sha256);
      dropped += 1;
    }
  }
  await tx.done;
  return dropped;
}

/** How long answered ops stay on the device: done ones a few days (the day's history), problems longer. */
export const KEEP_DONE_DAYS = 3;
export const KEEP_PROBLEM_DAYS = 14;

/**
 * Forget answered ops past their keeping time, so a phone used for months does not carry every op it ever made.
 * Unanswered ops are never dropped (they are the courier's only record); `next_seq` is in meta, so a seq is
 * never reused. By then every pulled version holds their effects (localTask needs none of them).
 * @param {import("idb").IDBPDatabase} store
 * @param {Date} [now]
 * @returns {Promise<number>} how many were dropped
 */
export async function pruneOps(store, now = new Date()) {
  const tx = store.transaction("queue", "readwrite");
  let dropped = 0;
  let cursor = await tx.store.openCursor();
  while (cursor) {
    const op = cursor.value;
    const days = ["rejected", "conflict"].includes(op.state) ? KEEP_PROBLEM_DAYS : KEEP_DONE_DAYS;
    const at = Date.parse(op.answered_at ?? op.queued_at ?? op.device_time);
    if (op.state !== "pending" && op.state !== HELD && !Number.isNaN(at) && now.getTime() - at > days * 86_400_000) {
      await cursor.delete();
      dropped += 1;
    }
    cursor = await cursor.continue();
  }
  await tx.done;
  return dropped;
}

/**
 * The highest seq this device has assigned (0 before the first op): push's `last_seq`.
 * @param {import("idb").IDBPDatabase} store
 */
export async function lastAssignedSeq(store) {
  return (await getMeta(store, "next_seq", 1)) - 1;
}
