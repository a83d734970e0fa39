// Pure helpers of the door and the pickup screens (no DOM, no storage): typed amounts, the signer-name check, the
// PIN tries counted on the device, the drafts a reload restores, the fees a pickup may charge. Unit-tested in Node.
// The rules themselves (what the door offers, the local task, the PIN's hash) are the core's (src/core/rules.js,
// pin.js); amounts are shown with format.js's yuan.

import { localTask } from "../core/rules.js";

/** Steps a handover takes once: a second one is refused by the server (already_paid, handover_closed …). */
export const ONCE_STEPS = Object.freeze(["pod.verify_recipient", "pod.inspect", "pod.collect_payment", "pod.sign",
  "pod.refuse", "pod.deliver_alternate", "stop.customer_absent", "pickup.collect"]);

/**
 * Whether a one-time step of this type is already queued and counted on the task (a double tap while the position
 * was being read, a second tab): a pending op of the type that the rules applied. One the rules refused on the
 * device does not count (the step is offered again and may be redone).
 * @param {object} task the pulled task @param {object[]} ops its ops @param {string} type
 */
export function alreadyQueued(task, ops, type) {
  if (!task || !ONCE_STEPS.includes(type)) return false;
  const applied = new Set(localTask(task, ops).local.ops);
  return ops.some((op) => op.type === type && op.state === "pending" && applied.has(op.seq));
}

/** The server locks a task's PIN after this many wrong ones (FIELDOPS_HANDOVER_PIN_MAX_FAILURES). */
export const PIN_MAX_FAILURES = 5;

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

/**
 * What is true of a queued step now, as the words' key (door.op_<key>): `offline` (saved on this phone, sent when
 * online), `sending` (pending while online), `applied` (the server has it: applied, or taken by a lost answer),
 * `conflict` (applied as a field fact, for dispatch to review) or `rejected`.
 */
export function opStateKey(state, online) {
  if (state === "pending") return online ? "sending" : "offline";
  if (state === "applied" || state === "taken") return "applied";
  return state === "conflict" ? "conflict" : "rejected";
}
