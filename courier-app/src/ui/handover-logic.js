// Pure helpers of the door and the pickup screens (no DOM, no storage): amounts in words, the signer-name
// check, the PIN check, the drafts a reload restores, the fees a pickup may charge. Unit-tested in Node.
import * as rules from "../core/rules.js";

/** The server locks a task's PIN after this many wrong ones (FIELDOPS_HANDOVER_PIN_MAX_FAILURES). */
export const PIN_MAX_FAILURES = 5;
/** The wait before "customer absent" (FIELDOPS_MIN_WAIT_MINUTES). */
export const MIN_WAIT_MINUTES = 10;
/** A contact's consent to an alternate place holds this long (FIELDOPS_HANDOVER_CONSENT_CALL_HOURS). */
export const CONSENT_CALL_HOURS = 4;

/** Integer fen as yuan with two decimals ("¥61.90"); never a float sum. */
export function formatYuan(fen) {
  const n = Number(fen);
  if (!Number.isInteger(n)) throw new TypeError(`formatYuan: ${fen} is not a whole number of fen`);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** Yuan typed by the courier ("12", "12.5", "12.50") as integer fen; null when it is not an amount. */
export function parseYuan(text) {
  const m = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(String(text ?? ""));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
}

// Zero-width and other invisible characters the server also ignores in names.
const INVISIBLE = /[\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]/gu;

/** A name as compared: NFKC, case folded, without spaces or invisible characters. */
export function nameKey(name) {
  return String(name ?? "").normalize("NFKC").toLowerCase().normalize("NFKC").replace(INVISIBLE, "");
}

/** Whether the signer's name is the courier's own (the app warns; the server's TR39 check is stricter). */
export function isOwnName(signerName, courierName) {
  const a = nameKey(signerName);
  return a !== "" && a === nameKey(courierName);
}

/** hex(PBKDF2-HMAC-SHA256(pin, salt as UTF-8 text, iterations)) === hash, through WebCrypto (protocol.md). */
export async function pinMatchesLocal(pin, state) {
  if (!state || state.algorithm !== "pbkdf2_sha256") return false;
  const enc = new TextEncoder();
  const key = await globalThis.crypto.subtle.importKey("raw", enc.encode(String(pin)), "PBKDF2", false, ["deriveBits"]);
  const bits = await globalThis.crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: enc.encode(state.salt), iterations: state.iterations }, key, 256);
  const hex = [...new Uint8Array(bits)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return hex === String(state.hash).toLowerCase();
}

/** The core's PIN check when it has one (src/core/pin.js is the core's), else the same computation here. */
export function pinCheck(pin, state) {
  return pinMatchesLocal(pin, state);
}

/**
 * The inspection rows: one per parcel of the task, with what the draft kept (counted, condition, photo) for
 * parcels the task still holds. A draft row for a parcel the task no longer has is dropped.
 */
export function inspectionRows(task, draft = {}) {
  const kept = new Map((draft.items || []).map((item) => [item.parcel_no, item]));
  return (task.parcels || []).map((parcel) => {
    const row = kept.get(parcel.parcel_no) || {};
    return {
      parcel_no: parcel.parcel_no,
      description: parcel.description || "",
      expected: parcel.count,
      counted: Number.isInteger(row.counted) && row.counted >= 0 ? row.counted : parcel.count,
      condition: ["ok", "damaged", "missing"].includes(row.condition) ? row.condition : "ok",
      photo: typeof row.photo === "string" && /^[0-9a-f]{64}$/.test(row.photo) ? row.photo : null,
    };
  });
}

/** Rows that still need a photo before pod.inspect may be sent (damaged or missing without one). */
export function rowsNeedingPhoto(rows) {
  return rows.filter((row) => row.condition !== "ok" && !row.photo).map((row) => row.parcel_no);
}

/** pod.inspect's payload from the rows and the customer's answer. */
export function inspectPayload(rows, customerAccepted) {
  const photos = [...new Set(rows.map((row) => row.photo).filter(Boolean))].slice(0, 10);
  return {
    items: rows.map(({ parcel_no, counted, condition }) => ({ parcel_no, counted, condition })),
    customer_accepted: Boolean(customerAccepted),
    photos,
  };
}

/** How many wrong PINs this device has seen typed for a task (the draft's count), and whether to stop asking. */
export function pinTries(draft = {}) {
  const wrong = Number.isInteger(draft.pin_wrong) ? draft.pin_wrong : 0;
  return { wrong, left: Math.max(0, PIN_MAX_FAILURES - wrong), locked: wrong >= PIN_MAX_FAILURES };
}

/**
 * The fees a pickup may charge: exactly dispatch's quote when the task carries fees (fixed, no choice), else
 * the published list to choose from (each with the amount the courier types).
 * @returns {{quoted: boolean, fees: Array<{code, name, amount}>}}
 */
export function pickupFees(task, published) {
  const names = new Map(published.map((fee) => [fee.code, fee.name]));
  if ((task.fees || []).length) {
    return { quoted: true, fees: task.fees.map((fee) => ({ code: fee.code, name: names.get(fee.code) || fee.code, amount: fee.amount })) };
  }
  return { quoted: false, fees: [...published].sort((a, b) => a.code.localeCompare(b.code)).map((fee) => ({ code: fee.code, name: fee.name, amount: null })) };
}

/** The fees charged (chosen ones with a positive amount) and their total; null amounts are not charged. */
export function chargedFees(fees, published) {
  const allowed = new Set(published.map((fee) => fee.code));
  const charged = fees.filter((fee) => Number.isInteger(fee.amount) && fee.amount > 0);
  const unknown = charged.filter((fee) => !allowed.has(fee.code)).map((fee) => fee.code);
  return { fees: charged.map(({ code, amount }) => ({ code, amount })), total: charged.reduce((s, f) => s + f.amount, 0), unknown };
}

// --- the task as the courier's own queue leaves it, and the door's steps ----------------------------------------

const FINISHED = new Set(["delivered", "refused", "collected", "cancelled"]);

/** The task with still-pending (or answered but not yet pulled) handover ops overlaid: the core's localTask. */
export function overlay(task, ops) {
  if (typeof rules.localTask === "function") return rules.localTask(task, ops);
  const out = { ...task, handover: { ...(task.handover || {}) }, appointment: { ...(task.appointment || {}) } };
  const h = out.handover;
  for (const op of [...ops].sort((a, b) => a.seq - b.seq)) {
    if (op.state !== "pending") continue; // answered ops are in the pulled task (or were refused)
    const p = op.payload || {};
    if (op.type === "stop.arrive") {
      out.arrived_at = out.arrived_at || op.device_time;
      out.local_arrived_at = out.local_arrived_at || op.device_time;
      if (out.status === "assigned") out.status = "arrived";
    } else if (op.type === "appointment.contact") {
      out.local_contacts = [...(out.local_contacts || []), { outcome: p.outcome, device_time: op.device_time }];
    } else if (op.type === "pod.verify_recipient") {
      Object.assign(h, { recipient_verified: true, verify_method: p.method });
    } else if (op.type === "pod.inspect") {
      h.inspection = p.customer_accepted ? "accepted" : "refused";
      h.items = p.items;
    } else if (op.type === "pod.collect_payment") {
      Object.assign(h, { paid: true, paid_amount: p.amount, paid_method: p.method });
    } else if (op.type === "pod.sign") {
      Object.assign(h, { signed: true, outcome: "delivered" });
    } else if (op.type === "pod.refuse") {
      h.outcome = "refused";
    } else if (op.type === "pod.deliver_alternate") {
      Object.assign(h, { outcome: "delivered", alternate_place: p.place });
    } else if (op.type === "pickup.collect") {
      h.outcome = "collected";
    } else if (op.type === "stop.customer_absent") {
      out.status = "failed";
      out.failure_reason = "customer_absent";
    }
  }
  return out;
}

function no(reason) {
  return { allowed: false, reason };
}
const YES = Object.freeze({ allowed: true, reason: null });

/** The newest counted arrival this device knows of (pulled or queued), as a Date, or null. */
export function arrivedAt(task) {
  const at = task.local_arrived_at || task.appointment?.arrived_at || task.arrived_at;
  return at ? new Date(at) : null;
}

/** Minutes left of the wait before "customer absent" (0 when over), or null without an arrival. */
export function waitLeftMs(task, now) {
  const at = arrivedAt(task);
  if (!at) return null;
  return Math.max(0, at.getTime() + MIN_WAIT_MINUTES * 60_000 - now.getTime());
}

function contacts(task) {
  return [...(task.appointment?.contact_attempts || []), ...(task.local_contacts || [])];
}

/**
 * Each door step {allowed, reason}: the core's doorState when it has one, else the same rules here (the codes are
 * the server's: protocol.md "Rules").
 */
export function steps(task, ops, { now = new Date(), shift = null } = {}) {
  if (typeof rules.doorState === "function") return rules.doorState(task, ops, { now, shift });
  const h = task.handover || {};
  const out = {};
  const closed = h.outcome || FINISHED.has(task.status);
  const due = task.amount_due || 0;
  const unpaid = due > 0 && !h.paid;
  const arrival = arrivedAt(task);
  out.arrive = closed ? no("handover_closed") : YES;
  const handover = (check) => {
    if (task.kind === "pickup") return no("wrong_task_kind");
    if (closed) return no("handover_closed");
    if (!shift) return no("shift_required");
    return check() || YES;
  };
  out.verify = handover(() => null);
  out.inspect = handover(() => null);
  out.pay = handover(() => (due <= 0 ? no("nothing_due") : h.paid ? no("already_paid")
    : h.inspection !== "accepted" ? no("inspection_required") : null));
  out.sign = handover(() => (!h.recipient_verified ? no("recipient_unverified")
    : h.inspection !== "accepted" ? no("inspection_required") : unpaid ? no("payment_required") : null));
  out.refuse = handover(() => (!h.inspection ? no("inspection_required") : h.paid ? no("already_paid") : null));
  out.alternate = handover(() => {
    if (unpaid) return no("payment_required");
    const cutoff = now.getTime() - CONSENT_CALL_HOURS * 3600_000;
    const reached = contacts(task).some((c) => c.outcome === "reached" && new Date(c.device_time).getTime() >= cutoff);
    return h.consent_place || reached ? null : no("authorization_required");
  });
  out.absent = (() => {
    if (closed) return no("handover_closed");
    if (!arrival || now.getTime() - arrival.getTime() < MIN_WAIT_MINUTES * 60_000) return no("wait_too_short");
    const since = contacts(task).some((c) => new Date(c.device_time).getTime() >= arrival.getTime());
    return since ? YES : no("wait_too_short");
  })();
  return out;
}
