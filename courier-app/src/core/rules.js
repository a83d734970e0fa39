// The company's rules as the server applies them, evaluated on the device so that a step the rules
// forbid is not offered and the app can say why. Pure functions: no I/O, no clock but the `now` given.
import { parseTime } from "./time.js";

/** Ops that hand parcels over: the server applies one outside a shift but records work_without_shift_check. */
export const HANDOVER_OPS = Object.freeze([
  "pod.verify_recipient", "pod.inspect", "pod.collect_payment", "pod.sign", "pod.refuse",
  "pod.deliver_alternate", "pickup.collect",
]);

/** A shift covers work for at most this long after its start (the server's FIELDOPS_SHIFT_MAX_HOURS default). */
export const MAX_SHIFT_HOURS = 16;

/**
 * The shift this device has open, as the reference client (sync/client.py open_shift) counts it: its newest
 * shift op the server has not rejected, if that is a shift.start at most 16 hours old; else null.
 * @param {Array<object>} ops queued ops (any; only shift.* are looked at)
 * @param {Date} [now]
 * @returns {{vehicle_id: string, started_at: string, seq: number}|null}
 */
export function openShift(ops, now = new Date()) {
  const shifts = ops.filter((op) => op.type === "shift.start" || op.type === "shift.end")
    .sort((a, b) => b.seq - a.seq);
  for (const op of shifts) {
    if (op.state === "rejected" || op.result?.status === "rejected") continue; // it opened or ended nothing
    if (op.type === "shift.end") return null;
    const started = parseTime(op.device_time);
    if (!started || now.getTime() - started.getTime() > MAX_SHIFT_HOURS * 3600_000) return null;
    return { vehicle_id: op.entity_id, started_at: op.device_time, seq: op.seq };
  }
  return null;
}
