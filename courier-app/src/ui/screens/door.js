// The door (#/tasks/:id/door): the handover as the company's rules order it. Each step is an op queued on the
// device (offline first); a step the rules forbid is not offered, and the screen says why in words. Unfinished
// input (the method, names, counts, photos, the signature's strokes) is kept in the drafts store, so a reload or
// a restart mid-handover comes back to where the courier was.
import { h, replace } from "../dom.js";
import { register, t } from "../i18n.js";
import { route } from "../router.js";
import { getEntity, listEntities, getDraft, setDraft } from "../../core/store.js";
import { enqueue, opsFor, allOps, addBlob } from "../../core/queue.js";
import { doorState, openShift } from "../../core/rules.js";
import { pinMatches } from "../../core/pin.js";
import { formatClock } from "../../core/time.js";
import { syncEvents } from "../../core/events.js";
import { session, syncNow, dataOf } from "../session.js";
import { codeText, KNOWN_CODES } from "../codes.js";
import { yuan as formatYuan, safeHref, maskName } from "../format.js";
import { photoButton, preview } from "../camera.js";
import { signaturePad } from "../signature.js";
import {
  isOwnName, pinTries, inspectionRows, rowsNeedingPhoto, inspectPayload, opStateKey, PIN_MAX_FAILURES, alreadyQueued,
} from "../handover-logic.js";
import { doorWords } from "./door-words.js";

register(doorWords);

/** The app's one device store (the screens' shared session). */
export async function deviceStore() {
  return (await session()).store;
}

/** The device's position {lat, lon}, or an error (never invented). */
export function position(timeout = 15000) {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("no geolocation")); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude }), reject,
      { enableHighAccuracy: true, timeout, maximumAge: 60_000 });
  });
}

/** Send the queue and pull now (the auto sync does it too); says how it went. */
export function syncButton(store, say, after) {
  return h("button", { class: "button secondary", type: "button", "data-act": "sync", onclick: async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const outcome = await syncNow();
      if (outcome.error) {
        const key = `door.sync.${outcome.error}`;
        say(t("door.sync_failed", { why: t(key) === key ? outcome.error : t(key) }), "error");
      } else {
        say(t("door.synced", { pushed: outcome.pushed, pulled: outcome.pulled }));
      }
    } finally {
      button.disabled = false;
      after();
    }
  } }, t("door.sync_now"));
}

/** A position when the device has one soon, else {} (the op's lat/lon are optional). */
export async function maybePosition() {
  try { return await position(5000); } catch { return {}; }
}

/** Words for a reason code (a rule on the device or the server's rejection): the door's own phrasing of the
 * rule where it has one, else the app's words for the code (codes.js). */
export function reasonText(code, params = {}) {
  const key = `door.reason.${code}`;
  const text = t(key, params);
  return text === key ? codeText(code, params) : text;
}

function knownReason(code) {
  return Boolean(code) && (t(`door.reason.${code}`) !== `door.reason.${code}` || KNOWN_CODES.includes(code));
}

/** Queue an op; on the device's own refusal (no shift) say so. Returns the op or null. */
export async function queueStep(store, say, spec) {
  // A one-time step queued twice (a double tap while the position is read, up to 5 s; another tab): the second
  // would only come back refused. Judged on the task as the queue leaves it, at the moment of queueing.
  const record = await getEntity(store, "task", spec.entityId);
  if (alreadyQueued(record ? dataOf(record) : null, await opsFor(store, spec.entityId), spec.type)) {
    say(t("door.already_queued"), "error");
    return null;
  }
  try {
    const op = await enqueue(store, spec);
    say("");
    say.track?.(op);
    return op;
  } catch (error) {
    if (error && error.code) say(reasonText(error.code), "error");
    else say(String(error?.message || error), "error");
    return null;
  }
}

/** Whether a `change` event of the core says something the screen shows changed (a sync that moved anything). */
export function changedSomething(detail) {
  if (!detail || detail.seq != null) return false;
  const sync = detail.sync;
  return !sync || Boolean(sync.pushed || sync.pulled || sync.rejected);
}

/** The status line every screen of the door writes to. An error or a confirmation is said next to the action that
 * caused it (moved into that step's section, scrolled into view; role=status announces it), not at the top of a
 * long page. `el.home` is where it goes when the action is in no step (the sync button in the header). */
export function statusLine() {
  const el = h("p", { class: "door-status", role: "status", "aria-live": "polite" });
  el.op = opLine();
  el.box = h("div", { class: "door-said" }, el, el.op);
  el.anchor = null;
  el.say = (text, kind = "info") => {
    el.textContent = text;
    el.dataset.kind = kind;
    const active = document.activeElement;
    const step = active && active.closest ? active.closest("[data-step], [data-path]") : null;
    el.anchor = step ? `[data-${step.dataset.step ? "step" : "path"}="${step.dataset.step || step.dataset.path}"]` : null;
    el.place(step ? step.closest(".door-screen, #view") || document : document);
    if (text && el.isConnected) el.scrollIntoView({ block: "nearest" });
  };
  el.say.track = (op) => el.op.track(op);
  /** Put the line where its message belongs: in the anchored step when it is on the screen, else home. */
  el.place = (root) => {
    const step = el.anchor && root.querySelector ? root.querySelector(el.anchor) : null;
    const box = el.box;
    if (step) { if (box.parentNode !== step) step.append(box); } else if (el.home && el.home.isConnected && el.home.nextSibling !== box) el.home.after(box);
  };
  return el;
}

/** What became of the last step queued here, said as it is now (never stale): saved on the phone while offline,
 * sending while online, then the server's answer (applied; a conflict is applied too, for dispatch to review). */
export function opLine() {
  const el = h("p", { class: "door-op", role: "status", "aria-live": "polite" });
  el.seq = null;
  el.ops = [];
  el.track = (op) => { el.seq = op ? op.seq : null; };
  // Going on or off line changes what is true of a pending step ("sending" / "saved on this phone").
  const again = () => { if (el.isConnected) el.show(el.ops); else { removeEventListener("online", again); removeEventListener("offline", again); } };
  addEventListener("online", again);
  addEventListener("offline", again);
  el.show = (ops) => {
    el.ops = ops;
    const op = el.seq == null ? null : ops.find((o) => o.seq === el.seq);
    if (!op) { el.textContent = ""; delete el.dataset.state; return; }
    const key = opStateKey(op.state, globalThis.navigator ? navigator.onLine : true);
    // Named: the line may stand in another step's section than the step it is about.
    const name = t(`door.op.${op.type}`);
    el.textContent = t("door.op_named", { step: name === `door.op.${op.type}` ? op.type : name, state: t(`door.op_${key}`) });
    el.dataset.state = key;
    el.dataset.kind = key === "rejected" ? "error" : "info";
  };
  return el;
}

/** Server answers about this task (rejected and conflicting ops) and queued ops the rules refuse on this device
 * (the task's `local.refused`: the server will refuse them too), each in words. */
export function problems(ops, task = null) {
  const refusedHere = (task?.local?.refused || []).map((r) => ({ type: r.type, state: "refused_here", result: { code: r.reason } }));
  const bad = [...ops.filter((op) => op.state === "rejected" || op.state === "conflict"), ...refusedHere];
  if (!bad.length) return null;
  return h("section", { class: "card door-problems", "aria-labelledby": "door-problems-h" },
    h("h2", { id: "door-problems-h" }, t("door.problems")),
    h("ul", {}, bad.map((op) => h("li", { "data-rejected": op.type },
      h("strong", {}, t(`door.op.${op.type}`) || op.type), " — ",
      reasonText(op.result?.code || op.state),
      // The server's detail is for people and in English: shown only for a code the app has no words for.
      op.result?.detail && !knownReason(op.result?.code) ? h("span", { class: "detail", lang: "en" }, ` (${op.result.detail})`) : null))));
}

export function shiftBanner() {
  return h("p", { class: "banner warn", "data-reason": "shift_required" }, reasonText("shift_required"), " ",
    h("a", { href: "#/shift", class: "button" }, t("door.to_shift")));
}

function stepSection(n, key, state, body) {
  const blocked = state && !state.allowed;
  return h("section", { class: `card door-step${blocked ? " blocked" : ""}`, "data-step": key, "aria-labelledby": `step-${key}` },
    h("h2", { id: `step-${key}` }, h("span", { class: "step-no" }, String(n)), t(`door.step.${key}`)),
    body);
}

function done(text) {
  return h("p", { class: "done" }, h("span", { "aria-hidden": "true" }, "✓ "), text);
}

function notNow(state, task = null) {
  // Waiting for an accepted inspection the customer refused: say that, and what is left (the refusal).
  const refused = state.reason === "inspection_required" && task?.handover?.inspection === "refused";
  return h("p", { class: "reason", "data-reason": state.reason }, refused ? t("door.inspection_was_refused") : reasonText(state.reason));
}

async function render({ id }, view) {
  const store = await deviceStore();
  const status = statusLine();
  const say = status.say;
  let timer = null;
  // The draft is the one source of truth for what the courier typed or chose: handlers read it when they run
  // (never a copy taken at the last draw, which typing since has outdated) and change it through keep/keepPart.
  let draft = (await getDraft(store, `door:${id}`)) || {};
  const keep = (patch) => { draft = { ...draft, ...patch }; return setDraft(store, `door:${id}`, draft); };
  const forms = {
    /** The form `name` of the draft now, over its defaults. */
    read: (name, defaults = {}) => ({ ...defaults, ...(draft[name] || {}) }),
    /** Change some fields of the form `name`, keeping the others as the draft has them now. */
    keep: (name, defaults, patch) => keep({ [name]: { ...defaults, ...(draft[name] || {}), ...patch } }),
    /** Whether the section `name` is open (kept across draws), and keep it so. */
    isOpen: (name) => (Array.isArray(draft.open) ? draft.open : []).includes(name),
    setOpen: (name, open) => (forms.isOpen(name) === open ? null
      : keep({ open: open ? [...(draft.open || []), name] : (draft.open || []).filter((n) => n !== name) })),
  };
  // The PIN being typed: kept across redraws (a sync's news between typing and "verify" must not empty the
  // field), in memory only: a PIN is never written to the draft.
  let typedPin = "";

  // Draws overlap (an action's, a sync's news): only the newest may replace the screen, or an older one, begun
  // before an op was queued, would put the step back on the screen.
  let generation = 0;
  async function draw() {
    const mine = ++generation;
    const current = () => mine === generation;
    clearInterval(timer);
    const entity = await getEntity(store, "task", id);
    if (!entity) {
      // Gone from this device: said as the server answered this device's ops on it (reassigned or cancelled by
      // dispatch while the courier was offline), else "not on this device".
      const mineHere = await opsFor(store, id);
      const gone = [...mineHere].reverse().find((op) => op.state === "conflict"
        && ["reassigned", "cancelled_by_dispatch"].includes(op.result?.code));
      const why = gone ? t(`door.gone.${gone.result.code}`, { waybill: gone.label || "" }) : t("door.no_task");
      if (current()) replace(view, h("section", { class: "card" }, h("h1", {}, t("door.title")), h("p", { "data-gone": gone ? gone.result.code : "" }, why),
        h("div", { class: "row" }, syncButton(store, say, draw), h("a", { href: "#/", class: "button" }, t("door.back_day")))), status.box);
      status.op.show(mineHere);
      return;
    }
    if (entity.data.kind === "pickup") { location.hash = `/tasks/${id}/pickup`; return; }
    const ops = await opsFor(store, id);
    const now = new Date();
    const shift = openShift(await allOps(store), now);
    // The core's rules: the task as this device's queue leaves it, and each step allowed or not, with why.
    const state = doorState(entity.data, ops, { now, shift, giftDisclosed: Boolean(draft.gift_told) });
    const task = state.task;
    const hs = task.handover || {};
    const courier = (await listEntities(store, "courier"))[0]?.data || {};
    const pending = ops.filter((op) => op.state === "pending").length;
    const due = state.amount_due || 0;
    const dueText = formatYuan(due);

    const header = h("header", { class: "card door-head" },
      h("h1", {}, t("door.title")),
      h("p", {}, h("span", { class: "waybill" }, task.waybill_no), " · ", maskName(task.recipient?.name)),
      due > 0 ? h("p", { class: "amount" }, t("door.due", { amount: dueText })) : null,
      pending ? h("p", { class: "pending", "data-pending": pending }, t("door.pending", { n: pending })) : null,
      h("div", { class: "row" }, syncButton(store, say, draw), h("a", { href: `#/tasks/${id}`, class: "button secondary" }, t("door.back_task"))));

    // 1. Arrived
    const arrivedText = task.arrived_at || task.appointment?.arrived_at;
    const arrive = (arrivedText
      ? done(t("door.arrived_at", { time: formatClock(arrivedText) }))
      : state.arrive.allowed
        ? h("button", { class: "button primary", "data-act": "arrive", onclick: async () => {
          let where;
          try { where = await position(); } catch { say(t("door.need_position"), "error"); return; }
          if (await queueStep(store, say, { type: "stop.arrive", entityId: id, payload: where })) draw();
        } }, t("door.arrive"))
        : notNow(state.arrive));

    // 2. The recipient
    let verify;
    if (hs.recipient_verified) {
      verify = done(t("door.verified", { method: t(`door.method.${hs.verify_method}`) }));
    } else if (!state.verify.allowed) {
      verify = notNow(state.verify);
    } else {
      const tries = pinTries(draft.pin_hash === task.handover?.pin?.hash ? draft : {});
      // Locked on this device: when dispatch required the PIN there is no other way, only a new PIN.
      const lockedKey = task.pin_required ? "door.pin_locked_required" : "door.pin_locked_local";
      const method = task.pin_required ? "pin" : (draft.method || "id_check");
      const methods = task.pin_required ? ["pin"] : ["id_check", "pin", "known_recipient", "proxy"];
      const nameIn = h("input", { id: "v-name", name: "name", maxlength: 100, autocomplete: "off", value: draft.name || "",
        oninput: (e) => keep({ name: e.target.value }) });
      const relIn = h("input", { id: "v-rel", name: "relation", maxlength: 100, value: draft.relation || "",
        oninput: (e) => keep({ relation: e.target.value }) });
      const pinIn = h("input", { id: "v-pin", name: "pin", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6,
        autocomplete: "off", "aria-describedby": "v-pin-help", value: typedPin, oninput: (e) => { typedPin = e.target.value; } });
      verify = h("form", { class: "stack", onsubmit: async (e) => {
        e.preventDefault();
        const name = nameIn.value.trim();
        if (!name) { say(t("door.need_name"), "error"); nameIn.focus(); return; }
        const chosen = task.pin_required ? "pin" : (draft.method || "id_check");
        const payload = { method: chosen, name };
        if (chosen === "proxy") {
          if (!relIn.value.trim()) { say(t("door.need_relation"), "error"); relIn.focus(); return; }
          payload.relation = relIn.value.trim();
        }
        if (chosen === "pin") {
          const pin = pinIn.value.trim();
          if (!/^\d{6}$/.test(pin)) { say(t("door.pin_format"), "error"); pinIn.focus(); return; }
          if (tries.locked) { say(t(lockedKey, { max: PIN_MAX_FAILURES }), "error"); return; }
          if (task.handover?.pin && !(await pinMatches(pin, task.handover.pin))) {
            const wrong = tries.wrong + 1;
            await keep({ pin_wrong: wrong, pin_hash: task.handover.pin.hash });
            say(wrong >= PIN_MAX_FAILURES ? t(lockedKey, { max: PIN_MAX_FAILURES })
              : t("door.pin_wrong", { left: PIN_MAX_FAILURES - wrong, max: PIN_MAX_FAILURES }), "error");
            pinIn.value = typedPin = "";
            draw();
            return;
          }
          payload.pin = pin;
        }
        if (await queueStep(store, say, { type: "pod.verify_recipient", entityId: id, payload: { ...payload, ...(await maybePosition()) } })) {
          typedPin = "";
          draw();
        }
      } },
      h("fieldset", {}, h("legend", {}, t("door.method")),
        methods.map((m) => h("label", { class: "door-choice" },
          h("input", { type: "radio", name: "method", value: m, checked: m === method,
            onchange: () => { keep({ method: m }); draw(); } }), t(`door.method.${m}`)))),
      h("label", { for: "v-name" }, t("door.recipient_name")), nameIn,
      method === "proxy" ? [h("label", { for: "v-rel" }, t("door.relation")), relIn] : null,
      method === "pin" ? [
        h("label", { for: "v-pin" }, t("door.pin")), pinIn,
        h("p", { id: "v-pin-help", class: "hint" }, tries.locked ? t(lockedKey, { max: PIN_MAX_FAILURES })
          : t("door.pin_help", { left: tries.left, max: PIN_MAX_FAILURES }))] : null,
      h("button", { class: "button primary", type: "submit", "data-act": "verify", disabled: method === "pin" && tries.locked }, t("door.verify")));
    }

    // 3. Inspection
    let inspect;
    if (hs.inspection) {
      inspect = h("div", {}, done(t(`door.inspection.${hs.inspection}`)),
        h("ul", { class: "items" }, (hs.items || []).map((item) => {
          const expected = item.expected ?? (task.parcels || []).find((p) => p.parcel_no === item.parcel_no)?.count;
          return h("li", {}, `${item.parcel_no}: ${item.counted}${expected !== undefined ? ` / ${expected}` : ""} · ${t(`door.condition.${item.condition}`)}`);
        })));
    } else if (!state.inspect.allowed) {
      inspect = notNow(state.inspect);
    } else {
      const rows = inspectionRows(task, draft);
      const save = () => keep({ items: rows.map(({ parcel_no, counted, condition, photo }) => ({ parcel_no, counted, condition, photo })) });
      const missing = rowsNeedingPhoto(rows);
      const previews = await Promise.all(rows.map((row) => preview(store, row.photo, t("door.photo_of", { parcel: row.parcel_no }))));
      inspect = h("div", { class: "stack" },
        h("p", { class: "phrase", lang: "zh-CN" }, h("span", { class: "say" }, t("door.say")), " ", "请仔细查收你的快件！"),
        rows.map((row, i) => h("fieldset", { class: "parcel", "data-parcel": row.parcel_no },
          h("legend", {}, `${row.parcel_no} ${row.description}`),
          h("p", { class: "hint" }, t("door.expected", { n: row.expected })),
          h("label", { for: `count-${i}` }, t("door.counted")),
          h("input", { id: `count-${i}`, type: "number", min: 0, max: 9999, inputmode: "numeric", value: row.counted,
            "data-count": row.parcel_no, oninput: (e) => {
              const n = Number.parseInt(e.target.value, 10);
              row.counted = Number.isInteger(n) && n >= 0 ? n : 0;
              save();
            } }),
          h("div", { class: "door-choices", role: "radiogroup", "aria-label": t("door.condition") },
            ["ok", "damaged", "missing"].map((c) => h("label", { class: "door-choice" },
              h("input", { type: "radio", name: `cond-${i}`, value: c, checked: row.condition === c, "data-condition": `${row.parcel_no}:${c}`,
                onchange: async () => { row.condition = c; await save(); draw(); } }), t(`door.condition.${c}`)))),
          row.condition !== "ok" ? h("div", { class: "door-photos" },
            previews[i],
            photoButton(store, { label: row.photo ? t("door.retake") : t("door.take_photo"), name: `parcel-${i}`,
              onPhoto: async (sha) => { row.photo = sha; await save(); say(t("door.photo_kept")); draw(); },
              onError: () => say(t("door.photo_failed"), "error") }),
            row.photo ? null : h("p", { class: "reason", "data-reason": "photo_required" }, reasonText("photo_required"))) : null)),
        missing.length ? h("p", { class: "reason" }, t("door.photo_first", { parcels: missing.join(", ") })) : null,
        h("div", { class: "row" },
          ["accept", "refuse"].map((answer) => h("button", { class: `button ${answer === "accept" ? "primary" : "secondary"}`,
            "data-act": `inspect-${answer}`, disabled: missing.length > 0, onclick: async () => {
              if (rowsNeedingPhoto(rows).length) return;
              const payload = inspectPayload(rows, answer === "accept");
              if (await queueStep(store, say, { type: "pod.inspect", entityId: id, payload: { ...payload, ...(await maybePosition()) }, blobs: payload.photos })) {
                draw();
              }
            } }, t(`door.customer_${answer}s`)))));
    }

    // 4. Payment
    let pay = null;
    if (due > 0) {
      if (hs.paid || hs.paid_amount != null) pay = done(t("door.paid", { amount: formatYuan(hs.paid_amount ?? due), method: t(`door.pay.${hs.paid_method}`) }));
      else if (!state.pay.allowed) pay = notNow(state.pay, task);
      else {
        pay = h("div", { class: "stack" },
          h("p", { class: "amount big" }, t("door.collect_exactly", { amount: dueText })),
          h("div", { class: "row" }, ["cash", "qr"].map((m) => h("button", { class: "button primary", "data-act": `pay-${m}`,
            onclick: async () => {
              const payload = { amount: state.pay.amount, method: m, ...(await maybePosition()) };
              if (await queueStep(store, say, { type: "pod.collect_payment", entityId: id, payload })) draw();
            } }, t(`door.pay.${m}`), " ", dueText))));
      }
    }

    // 5. Gift
    const gift = task.gift_description ? h("label", { class: "door-choice gift" },
      h("input", { type: "checkbox", name: "gift", checked: Boolean(draft.gift_told) || hs.signed, disabled: hs.signed || Boolean(hs.outcome),
        "data-act": "gift", onchange: async (e) => { await keep({ gift_told: e.target.checked }); draw(); } }),
      t("door.gift_told", { gift: task.gift_description })) : null;

    // 6. Signature
    let sign;
    if (hs.signed || hs.outcome) {
      sign = hs.signed ? done(t("door.signed")) : null;
    } else if (!state.sign.allowed) {
      sign = notNow(state.sign, task);
    } else {
      const pad = signaturePad({ label: t("door.signature"), strokes: draft.strokes || [], onChange: (s) => keep({ strokes: s }) });
      const signer = h("input", { id: "s-name", name: "signer_name", maxlength: 100, autocomplete: "off",
        value: draft.signer_name ?? draft.name ?? "", oninput: (e) => keep({ signer_name: e.target.value, own_ok: false }) });
      const warn = h("p", { class: "reason", "data-warning": "own_name", hidden: true }, t("door.own_name"));
      sign = h("div", { class: "stack" },
        h("p", { class: "hint" }, t("door.sign_here")), pad.el,
        h("button", { class: "button secondary", type: "button", "data-act": "clear-signature", onclick: () => pad.clear() }, t("door.clear")),
        h("label", { for: "s-name" }, t("door.signer_name")), signer, warn,
        h("button", { class: "button primary", "data-act": "sign", onclick: async () => {
          const name = signer.value.trim();
          if (pad.isEmpty()) { say(t("door.empty_signature"), "error"); return; }
          if (!name) { say(t("door.need_signer"), "error"); signer.focus(); return; }
          if (task.gift_description && !draft.gift_told) { say(reasonText("gift_not_disclosed"), "error"); return; }
          if (isOwnName(name, courier.name) && !warn.dataset.confirmed) {
            warn.hidden = false;
            warn.dataset.confirmed = "1";
            say(t("door.own_name"), "error");
            return;
          }
          let where;
          try { where = await position(); } catch { say(t("door.need_position"), "error"); return; }
          const sha = await addBlob(store, await pad.toBlob(), "image/png");
          const payload = { signature: sha, signer_name: name, gift_disclosed: Boolean(task.gift_description && draft.gift_told), ...where };
          if (await queueStep(store, say, { type: "pod.sign", entityId: id, payload, blobs: [sha] })) draw();
        } }, t("door.sign")));
    }

    // 7. Done
    const outcome = hs.outcome ? h("section", { class: "card door-done", "data-outcome": hs.outcome, "aria-labelledby": "done-h" },
      h("h2", { id: "done-h" }, t(`door.outcome.${hs.outcome}`)),
      hs.alternate_place ? h("p", {}, t(`door.place.${hs.alternate_place}`)) : null,
      hs.receipt?.number ? h("p", { "data-receipt": hs.receipt.number }, t("door.receipt", { number: hs.receipt.number }),
        safeHref(hs.receipt.url) ? [" ", h("a", { href: safeHref(hs.receipt.url), class: "link", target: "_blank", rel: "noopener noreferrer" }, t("door.receipt_link"))] : null)
        : h("p", { "data-receipt": "" }, t("door.receipt_later"))) : null;

    // Other outcomes
    const other = hs.outcome ? null : await otherPaths({ store, id, task, state, forms, say, draw, ops, shift });

    if (!current()) return;
    // The steps shown are numbered as shown (no gift: no gap); after a finished handover only the steps done stay.
    const finished = Boolean(hs.outcome);
    const steps = [
      ["arrive", state.arrive, arrive, Boolean(arrivedText)],
      ["verify", state.verify, verify, Boolean(hs.recipient_verified)],
      ["inspect", state.inspect, inspect, Boolean(hs.inspection)],
      ["pay", state.pay, pay, Boolean(hs.paid || hs.paid_amount != null)],
      ["gift", null, gift, Boolean(hs.signed)],
      ["sign", state.sign, sign, Boolean(hs.signed)],
    ].filter(([, , body, isDone]) => body && (!finished || isDone));
    replace(view, header, status.box, shift ? null : shiftBanner(), problems(ops, task),
      steps.map(([key, stepState, body], i) => stepSection(i + 1, key, stepState, body)),
      outcome, other);
    status.home = header;
    status.place(view);
    status.op.show(ops);

    // The countdown of the wait before "customer absent".
    const left = view.querySelector("[data-countdown]");
    if (left) {
      const readyAt = new Date(state.absent.ready_at).getTime();
      timer = setInterval(() => {
        const ms = readyAt - Date.now();
        if (ms <= 0) { clearInterval(timer); draw(); return; }
        left.textContent = t("door.wait_left", { time: mmss(ms) });
      }, 1000);
    }
  }

  await draw();
  const onVisible = () => { if (document.visibilityState === "visible") draw(); };
  document.addEventListener("visibilitychange", onVisible);
  // A sync's news redraws the screen only when it changed something (an offline round changes nothing: redrawing
  // then would only take the focus from the field the courier is typing in). Our own queued ops draw themselves.
  const onChange = (event) => { if (changedSomething(event.detail)) draw(); };
  syncEvents.addEventListener("change", onChange);
  return () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
    syncEvents.removeEventListener("change", onChange);
  };
}

function mmss(ms) {
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function otherPaths({ store, id, task, state, forms, say, draw, ops, shift }) {
  // Refusal: after an inspection, with a reason, a note and photos. Every field reads and writes the draft itself.
  const REFUSE = { reason: "damaged", note: "", photos: [] };
  const refuse = forms.read("refuse", REFUSE);
  let refuseBody;
  if (!state.refuse.allowed) refuseBody = notNow(state.refuse);
  else {
    const previews = await Promise.all(refuse.photos.map((sha, i) => preview(store, sha, t("door.refusal_photo", { n: i + 1 }))));
    refuseBody = h("div", { class: "stack" },
      h("label", { for: "r-reason" }, t("door.refuse_reason")),
      h("select", { id: "r-reason", name: "reason", onchange: (e) => forms.keep("refuse", REFUSE, { reason: e.target.value }) },
        ["damaged", "quality", "wrong_item", "other"].map((r) => h("option", { value: r, selected: refuse.reason === r }, t(`door.refuse.${r}`)))),
      h("label", { for: "r-note" }, t("door.note")),
      h("textarea", { id: "r-note", name: "note", maxlength: 500, oninput: (e) => forms.keep("refuse", REFUSE, { note: e.target.value }) }, refuse.note),
      h("div", { class: "door-photos" }, previews,
        refuse.photos.length < 10 ? photoButton(store, { label: t("door.take_photo"), name: "refuse",
          onPhoto: async (sha) => { await forms.keep("refuse", REFUSE, { photos: [...forms.read("refuse", REFUSE).photos, sha] }); draw(); },
          onError: () => say(t("door.photo_failed"), "error") }) : null),
      h("button", { class: "button danger", "data-act": "refuse", onclick: async () => {
        const now = forms.read("refuse", REFUSE);
        const payload = { reason: now.reason, photos: now.photos, ...(now.note.trim() ? { note: now.note.trim() } : {}), ...(await maybePosition()) };
        if (await queueStep(store, say, { type: "pod.refuse", entityId: id, payload, blobs: now.photos })) draw();
      } }, t("door.refuse_send")));
  }

  // Deliver elsewhere: only with recorded consent.
  const consent = task.handover?.consent_place;
  const ALT = { place: consent || "locker", via: consent ? "customer_link" : "contact", reference: "" };
  const alt = forms.read("alt", ALT);
  let altBody;
  if (!state.alternate.allowed) altBody = notNow(state.alternate);
  else {
    altBody = h("div", { class: "stack" },
      consent ? h("p", {}, t("door.consented", { place: t(`door.place.${consent}`), note: task.handover.consent_note || "" })) : null,
      h("label", { for: "a-place" }, t("door.place")),
      h("select", { id: "a-place", name: "place", onchange: (e) => forms.keep("alt", ALT, { place: e.target.value }) },
        ["locker", "station", "neighbour"].map((p) => h("option", { value: p, selected: alt.place === p }, t(`door.place.${p}`)))),
      h("label", { for: "a-ref" }, t("door.reference")),
      h("input", { id: "a-ref", name: "reference", maxlength: 100, value: alt.reference,
        oninput: (e) => forms.keep("alt", ALT, { reference: e.target.value }) }),
      h("button", { class: "button secondary", "data-act": "alternate", onclick: async () => {
        const current = forms.read("alt", ALT);
        const via = consent && current.place === consent ? "customer_link" : "contact";
        if (via === "contact" && !current.reference.trim()) { say(t("door.need_reference"), "error"); return; }
        // The consent for this place and way, as the server will judge it.
        const entity = await getEntity(store, "task", id);
        const judged = doorState(entity.data, ops, { now: new Date(), shift, place: current.place, via, reference: current.reference }).alternate;
        if (!judged.allowed) { say(reasonText(judged.reason), "error"); return; }
        const payload = { place: current.place, authorization: { via, ...(current.reference.trim() ? { reference: current.reference.trim() } : {}) }, photos: [], ...(await maybePosition()) };
        if (await queueStep(store, say, { type: "pod.deliver_alternate", entityId: id, payload })) draw();
      } }, t("door.alternate_send")));
  }

  // Customer absent: only after the wait, with a contact attempt since arriving.
  const left = state.absent.ready_at ? new Date(state.absent.ready_at).getTime() - Date.now() : 0;
  let absentBody;
  if (state.absent.allowed) {
    absentBody = h("button", { class: "button secondary", "data-act": "absent", onclick: async () => {
      const waited = Math.min(1440, state.absent.waited_minutes);
      if (await queueStep(store, say, { type: "stop.customer_absent", entityId: id, payload: { waited_minutes: waited } })) draw();
    } }, t("door.absent_send"));
  } else {
    absentBody = h("div", {}, notNow(state.absent),
      left > 0 ? h("p", { class: "countdown", "data-countdown": "" }, t("door.wait_left", { time: mmss(left) })) : null,
      h("a", { href: `#/tasks/${id}`, class: "link" }, t("door.call_first")));
  }

  return h("section", { class: "card door-other", "aria-labelledby": "other-h" },
    h("h2", { id: "other-h" }, t("door.other")),
    [["refuse", refuseBody], ["alternate", altBody], ["absent", absentBody]].map(([path, body]) =>
      // Open stays open across draws (a photo taken, a sync's news): the courier is in the middle of it.
      h("details", { "data-path": path, open: forms.isOpen(path), ontoggle: (e) => forms.setOpen(path, e.target.open) },
        h("summary", {}, t(`door.step.${path}`)), body)));
}

route("/tasks/:id/door", render);
