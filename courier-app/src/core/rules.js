// The company's rules as the server applies them (server/services/handover.py, appointments.py), evaluated on
// the device so that a step the rules forbid is not offered and the app can say why, offline. Pure functions:
// no I/O, no clock but the `now` given. The server judges every op again on push; where the two could differ
// (a PIN failure count, a consent withdrawn meanwhile) the server's word comes back as the op's result.
import { parseTime } from "./time.js";

/** Ops that hand parcels over: the server applies one outside a shift but records work_without_shift_check. */
export const HANDOVER_OPS = Object.freeze([
  "pod.verify_recipient", "pod.inspect", "pod.collect_payment", "pod.sign", "pod.refuse",
  "pod.deliver_alternate", "pickup.collect",
]);

// The server's defaults (docs/protocol.md): the device cannot read the server's configuration, so it uses the
// documented defaults; a server configured otherwise still decides on push, and its answer is what stands.
/** A shift covers work for at most this long after its start (FIELDOPS_SHIFT_MAX_HOURS). */
export const MAX_SHIFT_HOURS = 16;
/** An arrival further than this from the stop is not an arrival (FIELDOPS_HANDOVER_MAX_DISTANCE_M). */
export const HANDOVER_MAX_DISTANCE_M = 200;
/** The customer may be reported absent this long after a counted arrival (FIELDOPS_MIN_WAIT_MINUTES). */
export const MIN_WAIT_MINUTES = 10;
/** A reached call counts as consent to an alternate place this long (FIELDOPS_HANDOVER_CONSENT_CALL_HOURS). */
export const CONSENT_CALL_HOURS = 4;
/** A late notice is in time this long before the window starts (FIELDOPS_NOTICE_LEAD_MINUTES). */
export const NOTICE_LEAD_MINUTES = 30;

/** Task statuses still open for work (schemas/vocab.py OPEN_STATUSES). */
export const OPEN_STATUSES = Object.freeze(["unassigned", "assigned", "arrived"]);
// Outcomes that fail the day's attempt when reported after a counted arrival (vocab ATTEMPT_FAILURES).
const ATTEMPT_FAILURES = ["customer_absent", "address_unknown", "refused"];
// Appointment statuses of a decided window: a new agreement after one is a new attempt.
const DECIDED = ["kept", "late", "missed", "not_attempted", "review"];

const ms = (text) => parseTime(text)?.getTime() ?? null;

/**
 * Great-circle distance in metres (haversine, Earth radius 6,371 km, as server/geo.py).
 * @returns {number}
 */
export function distanceM(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const p1 = lat1 * rad;
  const p2 = lat2 * rad;
  const dp = p2 - p1;
  const dl = (lon2 - lon1) * rad;
  const h = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.min(1, Math.sqrt(h)));
}

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
    if (op.state === "held") continue; // another courier's, never sent under this enrollment
    if (op.type === "shift.end") return null;
    const started = parseTime(op.device_time);
    if (!started || now.getTime() - started.getTime() > MAX_SHIFT_HOURS * 3600_000) return null;
    return { vehicle_id: op.entity_id, started_at: op.device_time, seq: op.seq };
  }
  return null;
}

/**
 * What a delivery's customer pays at the door, in fen: the task's `amount_due` when the server sent it,
 * else COD plus the published fees (handover.amount_due).
 * @param {object} task
 * @returns {number}
 */
export function amountDue(task) {
  if (typeof task?.amount_due === "number") return task.amount_due;
  return (task?.cod_amount ?? 0) + (task?.fees ?? []).reduce((sum, fee) => sum + (fee.amount ?? 0), 0);
}

/**
 * Whether an op's effect is still missing from the pulled task: an op the server has not answered, or one
 * answered with a version newer than the one the store holds (the push result was not stored: an archived
 * duplicate, a store replaced by a pull that began earlier). An op taken (`taken`: a pull's last_seq said so)
 * or answered at or below the held version is already in it: applying it again would count it twice.
 */
function notYetIn(op, task) {
  if (op.state === "pending") return true;
  if (!["applied", "conflict"].includes(op.state)) return false;
  const version = op.result?.entity?.version;
  return typeof version === "number" && version > (task.version ?? 0);
}

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** A handover as the server starts one (handover._of), for tasks pulled before their first step. */
function emptyHandover() {
  return { recipient_verified: false, verify_method: null, inspection: null, items: [], discrepancy: false,
    paid: false, paid_amount: null, paid_method: null, signed: false, outcome: null, alternate_place: null,
    not_at_address: false, consent_place: null, consent_note: null, pin: null };
}

function emptyAppointment(task) {
  return { status: "unconfirmed", attempt: 1, window: task.window ?? null, needs_new_appointment: false,
    exception: null, arrived_at: null, notice: null, clock_suspect: false, windows: [], contact_attempts: [] };
}

/**
 * The task as the courier's own still-unanswered ops leave it: what they did offline shows at once. Each op is
 * applied only if the rules allow it on the state so far (as the server will judge it); one they refuse is
 * listed in `local.refused` with its reason, and changes nothing.
 * @param {object} task the pulled task's data
 * @param {Array<object>} ops queued ops (any; those about this task are used, in seq order)
 * @returns {object} a copy of the task with `local: {ops: [seq…], refused: [{seq, reason}]}`
 */
export function localTask(task, ops) {
  const out = clone(task);
  out.handover = { ...emptyHandover(), ...(out.handover ?? {}) };
  out.appointment = out.appointment ? { ...emptyAppointment(out), ...out.appointment } : emptyAppointment(out);
  out.appointment.contact_attempts = [...(out.appointment.contact_attempts ?? [])];
  out.appointment.windows = [...(out.appointment.windows ?? [])];
  out.notes = [...(out.notes ?? [])];
  out.local = { ops: [], refused: [] };
  const mine = ops.filter((op) => op.entity_id === task.id && notYetIn(op, task)).sort((a, b) => a.seq - b.seq);
  for (const op of mine) {
    const at = parseTime(op.device_time) ?? new Date(0);
    // Shift and the gift flag are judged when the op was queued (enqueue and the screen): here, only the task.
    const reason = refusalOf(op, out, at);
    if (reason) {
      out.local.refused.push({ seq: op.seq, type: op.type, reason });
      continue;
    }
    applyOp(out, op, at);
    out.local.ops.push(op.seq);
  }
  return out;
}

const STEP_OF_OP = {
  "pod.verify_recipient": "verify", "pod.inspect": "inspect", "pod.collect_payment": "pay", "pod.sign": "sign",
  "pod.refuse": "refuse", "pod.deliver_alternate": "alternate", "stop.customer_absent": "absent",
  "appointment.confirm": "confirm", "appointment.reschedule": "reschedule", "pickup.collect": "pickup",
};

function refusalOf(op, task, at) {
  const step = STEP_OF_OP[op.type];
  if (!step) return null;
  const p = op.payload ?? {};
  // What a step's own payload decides (the screens build it; an op built wrong is refused here as on push).
  if (op.type === "pod.collect_payment" && STEP_CHECKS.pay(task, { shift: true }).allowed &&
    p.amount !== amountDue(task)) return "amount_mismatch";
  if (op.type === "pod.verify_recipient" && task.pin_required && (p.method !== "pin" || !p.pin)) {
    return task.handover.outcome || task.kind === "pickup" ? STEP_CHECKS.verify(task, { shift: true }).reason
      : "pin_required";
  }
  const check = STEP_CHECKS[step];
  const verdict = check(task, { now: at, shift: true, giftDisclosed: Boolean(op.payload?.gift_disclosed),
    place: op.payload?.place, via: op.payload?.authorization?.via, reference: op.payload?.authorization?.reference });
  return verdict.allowed ? null : verdict.reason;
}

function open(task) {
  return OPEN_STATUSES.includes(task.status);
}

function finish(task, outcome, status, at) {
  task.handover.outcome = outcome;
  if (open(task)) {
    task.status = status;
    task.finished_at = at.toISOString();
  }
}

function agree(task, window, op) {
  const appointment = task.appointment;
  if (DECIDED.includes(appointment.status)) appointment.attempt = (appointment.attempt ?? 1) + 1;
  appointment.windows.push({ start: window.start, end: window.end, status: "agreed", attempt: appointment.attempt,
    outcome: null, via: op.payload.via ?? "phone", device_time: op.device_time, pending: true });
  Object.assign(appointment, { status: "confirmed", window: { ...window }, arrived_at: null, notice: null,
    needs_new_appointment: false, exception: null });
  task.window = { ...window };
  if (task.status === "failed") {
    task.status = "assigned";
    task.failure_reason = null;
    task.finished_at = null;
  }
}

function applyOp(task, op, at) {
  const p = op.payload ?? {};
  const { handover, appointment } = task;
  switch (op.type) {
    case "stop.arrive": {
      const { lat, lon } = task.recipient ?? {};
      const known = typeof lat === "number" && typeof lon === "number";
      // Beyond 200 m (the server's default limit) an arrival is kept in the history only: nothing changes.
      if (known && distanceM(p.lat, p.lon, lat, lon) > HANDOVER_MAX_DISTANCE_M) return;
      if (task.status === "assigned") task.status = "arrived";
      if (open(task) && !task.arrived_at) task.arrived_at = op.device_time;
      if (open(task) && !appointment.arrived_at) {
        appointment.arrived_at = op.device_time;
        const end = ms(appointment.window?.end ?? task.window?.end);
        if (["unconfirmed", "confirmed"].includes(appointment.status) && end !== null) {
          appointment.status = at.getTime() <= end ? "kept" : "late";
        }
      }
      return;
    }
    case "task.note":
      task.notes.unshift({ at: null, device_time: op.device_time, actor_kind: "courier", text: p.text,
        photos: p.photos ?? [], pending: true });
      return;
    case "appointment.contact": {
      appointment.contact_attempts.push({ outcome: p.outcome, attempt: appointment.attempt, note: p.note ?? null,
        device_time: op.device_time, received_at: null, pending: true });
      if (ATTEMPT_FAILURES.includes(p.outcome) && appointment.arrived_at && open(task)) {
        failAttempt(task, p.outcome, at);
      } else if (["wrong_number", ...ATTEMPT_FAILURES].includes(p.outcome)) {
        appointment.exception = p.outcome;
        task.needs_review = true;
      }
      return;
    }
    case "appointment.confirm":
      agree(task, p.window, op);
      return;
    case "appointment.reschedule":
      if (p.customer_agreed) agree(task, p.window, op);
      else appointment.windows.push({ start: p.window.start, end: p.window.end, status: "proposed", outcome: null,
        reason: p.reason, device_time: op.device_time, pending: true });
      return;
    case "appointment.late_notice": {
      const start = ms(appointment.window?.start ?? task.window?.start);
      const inTime = start !== null && at.getTime() <= start - NOTICE_LEAD_MINUTES * 60_000;
      appointment.notice = { at: op.device_time, eta: p.eta, reason: p.reason,
        in_time: Boolean(appointment.notice?.in_time) || inTime };
      return;
    }
    case "stop.customer_absent":
      failAttempt(task, "customer_absent", at);
      return;
    case "pod.verify_recipient":
      Object.assign(handover, { recipient_verified: true, verify_method: p.method });
      return;
    case "pod.inspect": {
      const counted = Object.fromEntries((p.items ?? []).map((item) => [item.parcel_no, item]));
      const expected = Object.fromEntries((task.parcels ?? []).map((parcel) => [parcel.parcel_no, parcel.count]));
      const numbers = [...new Set([...Object.keys(expected), ...Object.keys(counted)])].sort();
      handover.items = numbers.map((no) => ({ parcel_no: no, expected: expected[no] ?? 0,
        counted: counted[no]?.counted ?? 0, condition: counted[no]?.condition ?? "missing" }));
      handover.discrepancy = handover.items.some((item) => item.counted !== item.expected);
      handover.inspection = p.customer_accepted ? "accepted" : "refused";
      return;
    }
    case "pod.collect_payment":
      Object.assign(handover, { paid: true, paid_amount: p.amount, paid_method: p.method });
      return;
    case "pod.sign":
      Object.assign(handover, { signed: true, signer_name: p.signer_name, gift_disclosed: Boolean(p.gift_disclosed) });
      finish(task, "delivered", "delivered", at);
      return;
    case "pod.refuse":
      handover.refusal_reason = p.reason;
      finish(task, "refused", "refused", at);
      return;
    case "pod.deliver_alternate":
      Object.assign(handover, { alternate_place: p.place, authorization: p.authorization ?? null });
      finish(task, "delivered", "delivered", at);
      return;
    case "pickup.collect":
      Object.assign(handover, { signed: true, signer_name: p.signer_name, fees: p.fees ?? [],
        items: (p.parcels ?? []).map((x) => ({ parcel_no: x.parcel_no, description: x.description, counted: x.count })) });
      if (p.payment) Object.assign(handover, { paid: true, paid_amount: p.payment.amount, paid_method: p.payment.method });
      finish(task, "collected", "collected", at);
      return;
    default:
      // parcel.scan moves no version; other ops (shift.*, create ops) are not about the task.
  }
}

function failAttempt(task, reason, at) {
  const { appointment } = task;
  Object.assign(appointment, { needs_new_appointment: true, exception: reason });
  task.needs_review = true;
  if (open(task)) {
    task.status = "failed";
    task.failure_reason = reason;
    task.finished_at = at.toISOString();
  }
}

const ok = (extra = {}) => ({ allowed: true, reason: null, ...extra });
const no = (reason, extra = {}) => ({ allowed: false, reason, ...extra });

// Each step's checks, in the order the server makes them (the first refusal is the one the server would give).
// `ctx.shift`: whether a shift is open (handover ops need one on the device, as the reference client).
function handoverGate(task, ctx, { pickup = false } = {}) {
  if ((task.kind === "pickup") !== pickup) return no("wrong_task_kind");
  if (task.handover.outcome) return no("handover_closed");
  if (!ctx.shift) return no("shift_required");
  return null;
}

function consentCall(task, now) {
  const earliest = now.getTime() - CONSENT_CALL_HOURS * 3600_000;
  return (task.appointment.contact_attempts ?? []).some((attempt) => {
    const t = ms(attempt.device_time ?? attempt.received_at);
    return attempt.outcome === "reached" && t !== null && t >= earliest && t <= now.getTime();
  });
}

const STEP_CHECKS = {
  arrive(task, ctx) {
    // The server keeps any arrival; on a finished task it changes nothing, so the app does not offer one.
    if (!open(task)) return no("task_closed");
    // stop.arrive is work too: outside a shift it records work_without_shift_check.
    if (!ctx.shift) return no("shift_required");
    return ok({ done: Boolean(task.arrived_at) });
  },
  verify(task, ctx) {
    return handoverGate(task, ctx) ?? ok({ pin: Boolean(task.pin_required), done: task.handover.recipient_verified });
  },
  inspect(task, ctx) {
    return handoverGate(task, ctx) ?? ok({ done: task.handover.inspection === "accepted" });
  },
  pay(task, ctx) {
    const due = amountDue(task);
    if (task.handover.paid_amount != null || task.handover.paid) return no("already_paid", { amount: due });
    const gate = handoverGate(task, ctx);
    if (gate) return { ...gate, amount: due };
    // Nothing due: there is no payment step (any amount would be amount_mismatch).
    if (due <= 0) return no("nothing_due", { amount: 0 });
    if (task.handover.inspection !== "accepted") return no("inspection_required", { amount: due });
    return ok({ amount: due });
  },
  sign(task, ctx) {
    const gate = handoverGate(task, ctx);
    if (gate) return gate;
    if (task.handover.inspection !== "accepted") return no("inspection_required");
    if (task.cod_amount && !(task.handover.paid_amount != null || task.handover.paid)) return no("payment_required");
    if (task.gift_description && !ctx.giftDisclosed) return no("gift_not_disclosed", { gift: task.gift_description });
    if (!task.handover.recipient_verified) return no("recipient_unverified");
    return ok({ gift: task.gift_description ?? null });
  },
  refuse(task, ctx) {
    const gate = handoverGate(task, ctx);
    if (gate) return gate;
    if (!task.handover.inspection) return no("inspection_required");
    if (task.handover.paid_amount != null || task.handover.paid) return no("already_paid");
    return ok();
  },
  alternate(task, ctx) {
    const gate = handoverGate(task, ctx);
    if (gate) return gate;
    if (task.pin_required) return no("pin_required");
    const consentPlace = task.handover.consent_place ?? null;
    const called = consentCall(task, ctx.now);
    // A given op names its place and way; the screen asks before any is chosen: is there a consent at all?
    let authorised;
    if (ctx.via === "customer_link") authorised = Boolean(consentPlace) && consentPlace === ctx.place;
    else if (ctx.via === "contact") authorised = called && Boolean(String(ctx.reference ?? "").trim());
    else authorised = Boolean(consentPlace) || called;
    if (!authorised) return no("authorization_required");
    if (task.cod_amount && !(task.handover.paid_amount != null || task.handover.paid)) return no("payment_required");
    return ok({ consent_place: consentPlace, contact: called });
  },
  absent(task, ctx) {
    if (!open(task)) return no("task_closed");
    const arrived = ms(task.appointment.arrived_at);
    if (arrived === null) return no("wait_too_short", { wait: "arrival" });
    const readyAt = arrived + MIN_WAIT_MINUTES * 60_000;
    if (ctx.now.getTime() < readyAt) {
      return no("wait_too_short", { wait: "minutes", ready_at: new Date(readyAt).toISOString() });
    }
    const called = (task.appointment.contact_attempts ?? []).some((a) => ms(a.device_time) !== null &&
      ms(a.device_time) >= arrived);
    if (!called) return no("wait_too_short", { wait: "contact" });
    return ok({ waited_minutes: Math.floor((ctx.now.getTime() - arrived) / 60_000) });
  },
  contact() {
    return ok(); // always taken: a call is a fact, whatever the task's state
  },
  confirm(task) {
    return open(task) || task.status === "failed" ? ok() : no("task_closed");
  },
  reschedule(task) {
    return open(task) || task.status === "failed" ? ok() : no("task_closed");
  },
  late_notice(task, ctx) {
    // The server takes a notice on any task; on a finished one it tells the customer nothing useful.
    if (!open(task)) return no("task_closed");
    const start = ms(task.appointment.window?.start ?? task.window?.start);
    return ok({ in_time: start !== null && ctx.now.getTime() <= start - NOTICE_LEAD_MINUTES * 60_000 });
  },
  pickup(task, ctx) {
    return handoverGate(task, ctx, { pickup: true }) ?? ok({ fees: task.fees ?? [] });
  },
};

/** The steps doorState answers for, in the order the door takes them. */
export const DOOR_STEPS = Object.freeze(Object.keys(STEP_CHECKS));

/**
 * Which steps the courier may take now, and why not: for each step (arrive, verify, inspect, pay, sign, refuse,
 * alternate, absent, contact, confirm, reschedule, late_notice, pickup) `{allowed, reason}`, reason being the
 * protocol's rejection code the server would give (inspection_required, payment_required, wait_too_short …),
 * or `shift_required` (no shift open on the device), `task_closed` for a finished task, `nothing_due` for a
 * payment when nothing is due. Some steps add facts the screen shows (`amount` to take, `ready_at` of a wait,
 * `pin` needed, `done`).
 * @param {object} task the pulled task's data
 * @param {Array<object>} ops queued ops: the task's (for its overlay) and the shift ops, unless `shift` is given
 * @param {{now?: Date, shift?: object|null|boolean, giftDisclosed?: boolean, place?: string, via?: string,
 *   reference?: string}} [options] shift: openShift()'s answer (computed from `ops` when absent);
 *   giftDisclosed: the courier ticked that they told the customer about the gift
 * @returns {Record<string, {allowed: boolean, reason: string|null}> & {amount_due: number, task: object}}
 */
export function doorState(task, ops, options = {}) {
  const now = options.now ?? new Date();
  const shift = "shift" in options ? options.shift : openShift(ops, now);
  const current = localTask(task, ops);
  const ctx = { now, shift: Boolean(shift), giftDisclosed: Boolean(options.giftDisclosed), place: options.place,
    via: options.via, reference: options.reference };
  const state = { amount_due: amountDue(current), task: current };
  for (const step of DOOR_STEPS) state[step] = STEP_CHECKS[step](current, ctx);
  return state;
}
