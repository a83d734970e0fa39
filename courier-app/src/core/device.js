// Enrollment: the QR (or a typed code) becomes this device's identity and token, kept in IndexedDB only.
import { getMeta, setMeta } from "./store.js";
import { ApiError } from "./api.js";
import { HELD } from "./queue.js";

/** The enrollment code's alphabet (no 0/O, 1/I/L) and length (docs/protocol.md "Enrollment"). */
export const CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
export const CODE_LENGTH = 10;

/** What the courier scanned or typed cannot enroll this app; `code` says why (the screen words it). */
export class EnrollmentError extends Error {
  /**
   * @param {string} code invalid_code | other_server | enrollment_invalid | courier_inactive | rate_limited |
   *   offline | enrollment_failed
   * @param {string} message
   * @param {{server?: string, retryAfter?: number|null}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "EnrollmentError";
    this.code = code;
    Object.assign(this, extra);
  }
}

function normaliseCode(raw) {
  const code = String(raw ?? "").toUpperCase().replace(/[\s-]+/g, "");
  const valid = code.length === CODE_LENGTH && [...code].every((c) => CODE_ALPHABET.includes(c));
  if (!valid) throw new EnrollmentError("invalid_code", "Not an enrollment code.");
  return code;
}

function appOrigin() {
  return globalThis.location?.origin ?? null;
}

/**
 * Read what the courier scanned or typed: the server's QR `fieldops://enroll?code=…&server=…/api/v1`, an app
 * link (`https://host/app/#/enroll?code=…` or `…/app/?enroll=…`) or a typed code (case, spaces and dashes
 * ignored). The app talks to its own origin only (its CSP allows nothing else), so a QR or link naming
 * another server is refused (`other_server`) rather than silently enrolling against the wrong one.
 * @param {string} text
 * @param {{origin?: string|null}} [options] the app's origin (default: location.origin where there is one)
 * @returns {{code: string, server: string|null}} server: the API base the QR named (null for a typed code)
 * @throws {EnrollmentError} invalid_code | other_server
 */
export function parseEnrollment(text, { origin = appOrigin() } = {}) {
  const input = String(text ?? "").trim();
  if (/^fieldops:/i.test(input)) {
    let url;
    try {
      url = new URL(input);
    } catch {
      throw new EnrollmentError("invalid_code", "Not an enrollment QR.");
    }
    // fieldops://enroll?… parses with host "enroll" (or an empty host and path "//enroll" in some engines).
    const target = (url.host || url.pathname.replace(/^\/+/, "")).toLowerCase();
    if (target !== "enroll") throw new EnrollmentError("invalid_code", "Not an enrollment QR.");
    const code = normaliseCode(url.searchParams.get("code"));
    const server = url.searchParams.get("server");
    if (server) checkSameOrigin(server, origin);
    return { code, server: server || null };
  }
  if (/^https?:\/\//i.test(input)) {
    let url;
    try {
      url = new URL(input);
    } catch {
      throw new EnrollmentError("invalid_code", "Not an enrollment link.");
    }
    const hashQuery = url.hash.includes("?") ? url.hash.slice(url.hash.indexOf("?") + 1) : "";
    const fromHash = new URLSearchParams(hashQuery);
    const raw = url.searchParams.get("enroll") ?? url.searchParams.get("code") ??
      fromHash.get("code") ?? fromHash.get("enroll");
    if (!raw) throw new EnrollmentError("invalid_code", "The link carries no enrollment code.");
    checkSameOrigin(url.href, origin);
    return { code: normaliseCode(raw), server: `${url.origin}/api/v1` };
  }
  return { code: normaliseCode(input), server: null };
}

function checkSameOrigin(server, origin) {
  let named;
  try {
    named = new URL(server).origin;
  } catch {
    throw new EnrollmentError("invalid_code", "The QR names no valid server.");
  }
  if (origin && named !== origin) {
    throw new EnrollmentError("other_server",
      `This code is for ${named}; this app belongs to ${origin}. Open the app from that server.`, { server: named });
  }
}

/**
 * Trade the code for this device's identity: stores device_id, courier_id and token in meta.
 * Refusals become EnrollmentError with the server's code (enrollment_invalid, courier_inactive, rate_limited
 * with `retryAfter`), or `offline` when there was no answer.
 * @param {import("idb").IDBPDatabase} store
 * @param {ReturnType<import("./api.js").createApi>} api
 * @param {{code: string, deviceName: string}} args code as typed or parsed (normalised here again)
 * @returns {Promise<{device_id: string, courier_id: string}>}
 */
export async function enroll(store, api, { code, deviceName }) {
  const normal = normaliseCode(code);
  let answer;
  try {
    answer = await api.enroll({ code: normal, device_name: String(deviceName || "Courier app").slice(0, 100) });
  } catch (err) {
    if (err instanceof ApiError) {
      const known = ["enrollment_invalid", "courier_inactive", "rate_limited"].includes(err.code);
      throw new EnrollmentError(known ? err.code : "enrollment_failed", err.message,
        { retryAfter: err.retryAfter, status: err.status });
    }
    if (err?.name === "OfflineError") throw new EnrollmentError("offline", err.message);
    throw err;
  }
  // One transaction: a device is enrolled with its token or not at all.
  const tx = store.transaction(["meta", "entities", "queue"], "readwrite");
  const meta = tx.objectStore("meta");
  const previous = await meta.get("device_id");
  if (previous !== answer.device_id) {
    // A new identity (re-enrollment after a revocation or a reset) is a new device to the server: its seqs
    // start at 1 and its scope is pulled afresh. Ops the old identity never had answered are renumbered
    // from 1 (keeping their op_id), answered ones leave the queue: they were the old device's.
    // Unsent ops another courier queued (the phone handed over) are never sent under this courier's identity:
    // they are held (kept, shown, under negative keys outside the seq numbering) and come back to the queue,
    // oldest first, when their own courier enrolls this phone again.
    await meta.delete("cursor");
    await meta.delete("last_sync");
    await tx.objectStore("entities").clear();
    const queue = tx.objectStore("queue");
    const ops = await queue.getAll();
    await queue.clear();
    const mine = (op) => !op.courier_id || op.courier_id === answer.courier_id;
    // Held ops keep their order under their keys (-1 first); pending ones are in seq order. Held ones are older
    // than any op of the identity just left, so they go first.
    const wereHeld = ops.filter((op) => op.state === HELD).sort((a, b) => b.seq - a.seq);
    const pending = ops.filter((op) => op.state === "pending").sort((a, b) => a.seq - b.seq);
    const unsent = [...wereHeld, ...pending];
    let seq = 1;
    for (const op of unsent.filter(mine)) {
      const { held_seq: _old, ...rest } = op;
      await queue.add({ ...rest, state: "pending", result: null, seq });
      seq += 1;
    }
    let key = -1;
    for (const op of unsent.filter((op) => !mine(op))) {
      await queue.add({ ...op, state: HELD, held_seq: op.held_seq ?? op.seq, seq: key });
      key -= 1;
    }
    await meta.put(seq, "next_seq");
  }
  await meta.put(answer.device_id, "device_id");
  await meta.put(answer.courier_id, "courier_id");
  await meta.put(answer.token, "token");
  await meta.delete("revoked");
  await tx.done;
  return { device_id: answer.device_id, courier_id: answer.courier_id };
}

/**
 * Whether this device holds a token (and dispatch has not revoked it, as far as the device knows).
 * @param {import("idb").IDBPDatabase} store
 */
export async function isEnrolled(store) {
  return Boolean(await getMeta(store, "token")) && !(await getMeta(store, "revoked"));
}

/**
 * Forget the device's identity and pulled scope (re-enrollment). Unsent ops stay in the queue: they are the
 * courier's only record of what happened, and the screens say they were never sent.
 * @param {import("idb").IDBPDatabase} store
 */
export async function forget(store) {
  const tx = store.transaction(["meta", "entities"], "readwrite");
  for (const key of ["token", "device_id", "courier_id", "cursor", "revoked", "last_sync"]) {
    await tx.objectStore("meta").delete(key);
  }
  await tx.objectStore("entities").clear();
  await tx.done;
}
