// The pickup (#/tasks/:id/pickup): the parcels taken (the task's expected ones prefilled), the fees — only
// published codes (the pulled `fee_code` entities): exactly dispatch's quote when the task carries one, else
// chosen from the list with their amounts — an optional payment of exactly the fees charged, and the sender's
// signature with their name. One op, pickup.collect, queued offline; the input is kept as a draft until sent.
import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { route } from "../router.js";
import { getEntity, listEntities, getDraft, setDraft } from "../../core/store.js";
import { opsFor, allOps, addBlob } from "../../core/queue.js";
import { doorState, openShift } from "../../core/rules.js";
import { yuan as formatYuan, maskName, safeHref } from "../format.js";
import { feeName } from "../words.js";
import { signaturePad } from "../signature.js";
import { parseYuan, pickupFees, chargedFees, isOwnName } from "../handover-logic.js";
import { syncEvents } from "../../core/events.js";
import { deviceStore, position, queueStep, reasonText, statusLine, problems, shiftBanner, syncButton, changedSomething } from "./door.js";

/** The parcels to record: the draft's, else the task's expected ones. */
export function pickupParcels(task, draft) {
  if (Array.isArray(draft.parcels) && draft.parcels.length) return draft.parcels.map((p) => ({ ...p }));
  const parcels = (task.parcels || []).map((p) => ({ parcel_no: p.parcel_no, description: p.description || "", count: p.count }));
  return parcels.length ? parcels : [{ parcel_no: `${task.waybill_no || task.id}-1`, description: "", count: 1 }];
}

async function render({ id }, view) {
  const store = await deviceStore();
  const status = statusLine();
  const say = status.say;
  let draft = (await getDraft(store, `pickup:${id}`)) || {};
  const keep = (patch) => { draft = { ...draft, ...patch }; return setDraft(store, `pickup:${id}`, draft); };

  // Draws overlap (an action's, a sync's news): only the newest may replace the screen, or an older one, begun
  // before an op was queued, would put the step back on the screen.
  let generation = 0;
  async function draw() {
    const mine = ++generation;
    const current = () => mine === generation;
    const entity = await getEntity(store, "task", id);
    if (!entity) {
      if (current()) replace(view, h("section", { class: "card" }, h("h1", {}, t("pickup.title")), h("p", {}, t("door.no_task")),
        h("div", { class: "row" }, syncButton(store, say, draw), h("a", { href: "#/", class: "button" }, t("door.back_day")))), status.box);
      return;
    }
    const ops = await opsFor(store, id);
    const shift = openShift(await allOps(store), new Date());
    const state = doorState(entity.data, ops, { now: new Date(), shift });
    const task = state.task;
    const hs = task.handover || {};
    const published = (await listEntities(store, "fee_code")).map((e) => e.data).filter((f) => f && f.code);
    const courier = (await listEntities(store, "courier"))[0]?.data || {};
    // The status line next to the action that spoke, and the last queued step's fate as it is now.
    const settle = () => { status.home = head; status.place(view); status.op.show(ops); };
    const head = h("header", { class: "card door-head" }, h("h1", {}, t("pickup.title")),
      h("p", {}, h("span", { class: "waybill" }, task.waybill_no), " · ", maskName(task.recipient?.name)),
      h("div", { class: "row" }, syncButton(store, say, draw), h("a", { href: `#/tasks/${id}`, class: "button secondary" }, t("door.back_task"))));

    if (hs.outcome) {
      if (current()) replace(view, head, status.box, problems(ops, task), h("section", { class: "card door-done", "data-outcome": hs.outcome },
        h("h2", {}, t(`door.outcome.${hs.outcome}`)),
        hs.receipt?.number ? h("p", { "data-receipt": hs.receipt.number }, t("door.receipt", { number: hs.receipt.number }),
          safeHref(hs.receipt.url) ? [" ", h("a", { href: safeHref(hs.receipt.url), class: "link", target: "_blank", rel: "noopener noreferrer" }, t("door.receipt_link"))] : null)
          : h("p", { "data-receipt": "" }, t("door.receipt_later"))));
      settle();
      return;
    }
    if (task.kind !== "pickup") {
      if (current()) replace(view, head, h("p", { class: "reason", "data-reason": "wrong_task_kind" }, reasonText("wrong_task_kind")));
      return;
    }
    const gate = state.pickup; // shift_required (or closed): the banner or the reason says why, nothing is sent

    const parcels = pickupParcels(task, draft);
    const saveParcels = () => keep({ parcels });
    const offer = pickupFees(task, published);
    const amounts = draft.fee_amounts || {};
    const fees = offer.fees.map((fee) => ({ ...fee, name: feeName(fee.code, fee.name), amount: offer.quoted ? fee.amount : (amounts[fee.code] ?? null) }));
    const charged = chargedFees(fees, published.length ? published : fees);
    const totalEl = h("p", { class: "amount", "data-total": charged.total }, t("pickup.total", { amount: formatYuan(charged.total) }));
    const refreshTotal = () => {
      const now = chargedFees(fees, published.length ? published : fees);
      totalEl.dataset.total = now.total;
      totalEl.textContent = t("pickup.total", { amount: formatYuan(now.total) });
    };

    const parcelRows = h("div", { class: "stack" }, parcels.map((p, i) => h("fieldset", { class: "parcel", "data-parcel": p.parcel_no },
      h("legend", {}, p.parcel_no),
      h("label", { for: `pd-${i}` }, t("pickup.description")),
      h("input", { id: `pd-${i}`, maxlength: 200, value: p.description, oninput: (e) => { p.description = e.target.value; saveParcels(); } }),
      h("label", { for: `pc-${i}` }, t("pickup.count")),
      h("input", { id: `pc-${i}`, type: "number", min: 1, max: 9999, inputmode: "numeric", value: p.count,
        oninput: (e) => { const n = Number.parseInt(e.target.value, 10); p.count = Number.isInteger(n) ? n : 0; saveParcels(); } }),
      parcels.length > 1 ? h("button", { class: "button secondary", type: "button", onclick: async () => {
        parcels.splice(i, 1); await saveParcels(); draw(); } }, t("pickup.remove")) : null)),
    h("button", { class: "button secondary", type: "button", "data-act": "add-parcel", onclick: async () => {
      parcels.push({ parcel_no: `${task.waybill_no || id}-${parcels.length + 1}`, description: "", count: 1 });
      await saveParcels(); draw(); } }, t("pickup.add_parcel")));

    let feeBody;
    if (offer.quoted) {
      feeBody = h("div", {}, h("p", {}, t("pickup.quoted")),
        h("ul", { class: "items" }, fees.map((f) => h("li", { "data-fee": f.code }, `${f.name}: ${formatYuan(f.amount)}`))));
    } else if (!published.length) {
      feeBody = h("p", { class: "reason" }, t("pickup.no_fees"));
    } else {
      feeBody = h("div", { class: "stack" }, fees.map((f, i) => [
        h("label", { for: `fee-${i}` }, t("pickup.fee_amount", { name: f.name })),
        h("input", { id: `fee-${i}`, inputmode: "decimal", "data-fee": f.code, value: f.amount === null ? "" : (f.amount / 100).toFixed(2),
          oninput: (e) => {
            const fen = e.target.value.trim() === "" ? null : parseYuan(e.target.value);
            e.target.setAttribute("aria-invalid", fen === null && e.target.value.trim() !== "" ? "true" : "false");
            f.amount = fen;
            keep({ fee_amounts: { ...(draft.fee_amounts || {}), [f.code]: fen } });
            refreshTotal();
          } })]));
    }

    const payChoice = draft.pay_method || "none";
    const pay = h("fieldset", {}, h("legend", {}, t("pickup.pay_now")),
      ["none", "cash", "qr"].map((m) => h("label", { class: "door-choice" },
        h("input", { type: "radio", name: "pay", value: m, checked: payChoice === m, "data-pay": m,
          onchange: () => keep({ pay_method: m }) }), m === "none" ? t("pickup.no_payment") : t(`door.pay.${m}`))));

    const pad = signaturePad({ label: t("door.signature"), strokes: draft.strokes || [], onChange: (s) => keep({ strokes: s }) });
    const signer = h("input", { id: "p-signer", maxlength: 100, value: draft.signer_name ?? task.recipient?.name ?? "", autocomplete: "off",
      oninput: (e) => keep({ signer_name: e.target.value }) });
    const warn = h("p", { class: "reason", hidden: true, "data-warning": "own_name" }, t("door.own_name"));

    const send = h("button", { class: "button primary", "data-act": "collect", disabled: !gate.allowed, onclick: async () => {
      const list = parcels.map((p) => ({ parcel_no: p.parcel_no, description: p.description.trim(), count: p.count }));
      if (!list.length || list.some((p) => !p.description || !(p.count >= 1))) { say(t("pickup.need_parcel"), "error"); return; }
      if (!offer.quoted && fees.some((f) => f.amount === null && (draft.fee_amounts || {})[f.code] !== undefined && (draft.fee_amounts || {})[f.code] !== null)) {
        say(t("pickup.bad_amount"), "error"); return;
      }
      const now = chargedFees(fees, published.length ? published : fees);
      if (now.unknown.length) { say(reasonText("fee_not_published"), "error"); return; }
      const name = signer.value.trim();
      if (pad.isEmpty()) { say(t("door.empty_signature"), "error"); return; }
      if (!name) { say(t("door.need_signer"), "error"); signer.focus(); return; }
      if (isOwnName(name, courier.name) && !warn.dataset.confirmed) {
        warn.hidden = false; warn.dataset.confirmed = "1"; say(t("door.own_name"), "error"); return;
      }
      let where = {};
      try { where = await position(5000); } catch { /* optional for a pickup */ }
      const sha = await addBlob(store, await pad.toBlob(), "image/png");
      const payload = { parcels: list, fees: now.fees, signature: sha, signer_name: name, ...where };
      const method = (await getDraft(store, `pickup:${id}`))?.pay_method || "none";
      if (method !== "none" && now.total > 0) payload.payment = { amount: now.total, method };
      if (await queueStep(store, say, { type: "pickup.collect", entityId: id, payload, blobs: [sha] })) draw();
    } }, t("pickup.send"));

    if (current()) replace(view, head, status.box, shift ? null : shiftBanner(),
      gate.allowed || !shift ? null : h("p", { class: "reason", "data-reason": gate.reason }, reasonText(gate.reason)), problems(ops, task),
      h("section", { class: "card", "data-step": "parcels", "aria-labelledby": "pk-parcels" }, h("h2", { id: "pk-parcels" }, t("pickup.parcels")), parcelRows),
      h("section", { class: "card", "data-step": "fees", "aria-labelledby": "pk-fees" }, h("h2", { id: "pk-fees" }, t("pickup.fees")), feeBody, totalEl, pay),
      h("section", { class: "card", "data-step": "sign", "aria-labelledby": "pk-sign" }, h("h2", { id: "pk-sign" }, t("door.step.sign")),
        // One column as at the door: the clear button, the name's label and the send button each on a line of their own.
        h("div", { class: "stack" }, h("p", { class: "hint" }, t("pickup.sign_here")), pad.el,
          h("button", { class: "button secondary", type: "button", "data-act": "clear-signature", onclick: () => pad.clear() }, t("door.clear")),
          h("label", { for: "p-signer" }, t("pickup.signer_name")), signer, warn, send)));
    if (current()) settle();
  }

  await draw();
  // A sync's news redraws the screen only when it changed something (an offline round changes nothing: redrawing
  // then would only take the focus from the field the courier is typing in). Our own queued ops draw themselves.
  const onChange = (event) => { if (changedSomething(event.detail)) draw(); };
  syncEvents.addEventListener("change", onChange);
  return () => syncEvents.removeEventListener("change", onChange);
}

route("/tasks/:id/pickup", render);
