// A task's page (#/tasks/:id): the masked customer, the phone (a tel: link that records a contact attempt and asks
// its outcome), the address (a geo: link opens the map app), parcels, COD and fees, gift, notes, the history, the
// state of its ops, and the buttons to go on (arrive, the door or the pickup, the appointment) with the rules'
// reasons for any the rules forbid.
import { h, replace } from "../dom.js";
import { register, t, currentLang } from "../i18n.js";
import { route } from "../router.js";
import { session, flash, flashText } from "../session.js";
import { codeText, KNOWN_CODES } from "../codes.js";
import { drawBar } from "../bar.js";
import { word, statusWord, feeName, FINISHED } from "../words.js";
import { yuan, windowText, when, maskName } from "../format.js";
import { loadTask, alerts, alertClass, ALERT_WORDS } from "../tasks.js";
import { enqueue, allOps } from "../../core/queue.js";
import { getDraft, setDraft, clearDraft, getMeta } from "../../core/store.js";
import { doorState, openShift } from "../../core/rules.js";
import { syncEvents } from "../../core/sync.js";
import { photoButton, preview } from "../camera.js";

/** A note carries at most this many photos (protocol.md, task.note). */
const NOTE_MAX_PHOTOS = 10;

export const OUTCOMES = ["reached", "no_answer", "wrong_number", "refused", "address_unknown"];

register({
  zh: {
    ...ALERT_WORDS.zh,
    "task.missing": "本机没有这个任务（可能已取消或改派）。", "task.customer": "收件人", "task.sender": "寄件人", "task.phone": "电话",
    "task.call": "拨打 {phone}", "task.phone.none": "没有电话号码",
    "task.call.ask": "通话结果如何？", "task.call.saved": "已记录联系结果：{outcome}", "task.call.cancel": "没有打通话，不记录",
    "task.address": "地址", "task.map": "在地图中打开", "task.parcels": "包裹", "task.parcel.line": "{no}：{desc} × {count}",
    "task.money": "应收", "task.cod": "代收货款", "task.due": "合计应收", "task.nothing.due": "无需收款",
    "task.gift": "随件赠品：{gift}（签收前须告知客户）", "task.window": "时段", "task.appt": "预约",
    "task.notes": "备注", "task.note.add": "添加备注", "task.note.text": "备注内容", "task.note.saved": "备注已保存，待同步",
    "task.note.empty": "请先写备注内容",
    "task.note.photo": "备注照片 {n}", "task.note.photo.add": "拍照附上", "task.note.photo.failed": "照片未能保存，请重拍",
    "task.note.photo.max": "每条备注最多 {max} 张照片", "task.note.photos": "{n} 张照片",
    "task.history": "记录", "task.history.none": "暂无记录", "task.attempt": "第 {n} 次",
    "task.window.line": "{window} · {status}", "task.contact.line": "{at} 联系客户：{outcome}",
    "task.notice.line": "已通知迟到，预计 {eta}：{reason}（{counted}）", "task.notice.in.time": "算作提前通知",
    "task.notice.late": "不算提前通知",
    "task.ops": "本机操作", "task.ops.none": "没有操作", "task.op.line": "{type} · {at}",
    "task.actions": "下一步", "task.arrive": "到达", "task.arrive.locating": "正在定位…",
    "task.arrive.saved": "已记录到达，待同步", "task.arrive.retry": "重新定位",
    "task.geo.denied": "未允许定位：请在浏览器设置中允许定位后重试。没有位置不能记录到达。",
    "task.geo.unavailable": "暂时无法定位：请到开阔处重试。没有位置不能记录到达。",
    "task.geo.timeout": "定位超时：请重试。没有位置不能记录到达。", "task.geo.none": "此浏览器不能定位，不能记录到达。",
    "task.door": "上门交接", "task.shift": "去开始班次", "task.pickup": "上门揽收", "task.appointment": "预约与通知",
    "task.not.offered": "{action}：{reason}", "task.closed": "任务已结束。",
    "task.failure": "本次未成功：{reason}",
    "failure.customer_absent": "客户不在", "failure.address_unknown": "地址不详", "failure.refused": "客户拒绝",
  },
  en: {
    ...ALERT_WORDS.en,
    "task.missing": "This task is not on this phone (it may have been cancelled or reassigned).", "task.customer": "Recipient", "task.sender": "Sender",
    "task.phone": "Phone", "task.call": "Call {phone}", "task.phone.none": "No phone number",
    "task.call.ask": "How did the call go?", "task.call.saved": "Contact recorded: {outcome}", "task.call.cancel": "No call made, record nothing",
    "task.address": "Address", "task.map": "Open in maps", "task.parcels": "Parcels", "task.parcel.line": "{no}: {desc} × {count}",
    "task.money": "To collect", "task.cod": "Cash on delivery", "task.due": "Total due", "task.nothing.due": "Nothing to collect",
    "task.gift": "Gift with the parcel: {gift} (tell the customer before signing)", "task.window": "Window", "task.appt": "Appointment",
    "task.notes": "Notes", "task.note.add": "Add note", "task.note.text": "Note", "task.note.saved": "Note saved, to sync",
    "task.note.empty": "Write the note first",
    "task.note.photo": "Note photo {n}", "task.note.photo.add": "Add a photo", "task.note.photo.failed": "The photo could not be kept: take it again",
    "task.note.photo.max": "A note takes at most {max} photos", "task.note.photos": "{n} photo(s)",
    "task.history": "History", "task.history.none": "Nothing yet", "task.attempt": "attempt {n}",
    "task.window.line": "{window} · {status}", "task.contact.line": "{at} contact: {outcome}",
    "task.notice.line": "Late notice, ETA {eta}: {reason} ({counted})", "task.notice.in.time": "counts as notice",
    "task.notice.late": "does not count as notice",
    "task.ops": "This phone's actions", "task.ops.none": "None", "task.op.line": "{type} · {at}",
    "task.actions": "Next", "task.arrive": "I have arrived", "task.arrive.locating": "Finding your location…",
    "task.arrive.saved": "Arrival recorded, to sync", "task.arrive.retry": "Locate again",
    "task.geo.denied": "Location not allowed: allow it in the browser's settings and retry. No arrival without a location.",
    "task.geo.unavailable": "Location unavailable right now: retry in the open. No arrival without a location.",
    "task.geo.timeout": "Location timed out: retry. No arrival without a location.", "task.geo.none": "This browser cannot locate: no arrival can be recorded.",
    "task.door": "At the door", "task.shift": "Start the shift", "task.pickup": "Pickup", "task.appointment": "Appointment and notice",
    "task.not.offered": "{action}: {reason}", "task.closed": "The task is finished.",
    "task.failure": "This attempt failed: {reason}",
    "failure.customer_absent": "customer absent", "failure.address_unknown": "address unknown", "failure.refused": "customer refused",
  },
});

export { maskName }; // format.js's: every screen masks the customer's name the same way

/** The map app's link: geo:lat,lon?q=lat,lon(address); without coordinates, geo:0,0?q=address. */
export function mapLink(recipient) {
  const { lat, lon, address } = recipient || {};
  if (typeof lat === "number" && typeof lon === "number") return `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(address || "")})`;
  return `geo:0,0?q=${encodeURIComponent(address || "")}`;
}

/**
 * The company's standard phrase of a call ("您好！我是xx快递公司的，您的xx快件已到，请问今天有时间接收吗？") for this
 * task: the company's name as the server has it (FIELDOPS_COMPANY_NAME, from the pull; none set: "the courier"),
 * the parcel named by its waybill and count (never a free-text description, which may be in another language);
 * a pickup's phrase asks when to collect.
 */
export function callPhrase(task, lang = currentLang(), company = null) {
  const waybill = task.waybill_no || "";
  const n = (task.parcels || []).reduce((sum, p) => sum + (Number.isInteger(p.count) ? p.count : 0), 0) || 1;
  const pickup = task.kind === "pickup";
  if (lang === "zh") {
    const who = company ? `${company}的` : "快递员";
    return pickup ? `您好！我是${who}，来取您要寄的快件（运单 ${waybill}），请问今天什么时候方便？`
      : `您好！我是${who}，您的快件（运单 ${waybill}，共 ${n} 件）已到，请问今天有时间接收吗？`;
  }
  const who = company ? `from ${company}` : "your courier";
  return pickup ? `Hello! I'm ${who}, here to collect the parcel you are sending (waybill ${waybill}). When would suit you today?`
    : `Hello! I'm ${who}; your parcel (waybill ${waybill}, ${n} item${n === 1 ? "" : "s"}) has arrived. Do you have time to receive it today?`;
}

function section(title, id, ...children) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-h` }, h("h2", { id: `${id}-h` }, title), ...children);
}

/** The op's line on the page and the queue screen: type, device time, state, the code in words and the server's
 * detail (the server writes it in English, for people). */
export function opLine(op) {
  const code = op.result?.code ?? op.code ?? null;
  const detail = op.result?.detail ?? op.detail ?? null;
  return h("li", { class: `op op-${op.state}`, "data-seq": op.seq, "data-state": op.state },
    h("span", { class: "op-head" }, t("task.op.line", { type: word("op", op.type), at: when(op.device_time) }),
      h("span", { class: `op-state ${op.state}` }, word("state", op.state))),
    code ? h("span", { class: "op-code", "data-code": code }, codeText(code)) : null,
    // The server's detail is for people and in English: shown only for a code the app has no words for.
    detail && op.state !== "applied" && !KNOWN_CODES.includes(code) ? h("span", { class: "op-detail muted", lang: "en" }, detail) : null);
}

async function draw(view, id) {
  const { store } = await session();
  const loaded = await loadTask(store, id);
  if (!loaded) { replace(view, h("p", { id: "task-missing" }, t("task.missing")), h("a", { class: "button", href: "#/" }, t("back"))); return; }
  const { task, pulled, ops } = loaded;
  const now = new Date();
  const every = await allOps(store);
  const company = await getMeta(store, "company_name", null);
  let state = {};
  state = doorState(pulled, ops, { now, shift: openShift(every, now) });
  const finished = FINISHED.has(task.status);
  const message = h("p", { id: "task-message", class: "message", role: "status" }, flashText());
  const recipient = task.recipient || {};
  const appt = task.appointment || null;

  // The call: the tel: link opens the dialer; the outcome is asked on return and queued as appointment.contact.
  const callKey = `call:${task.id}`;
  const outcomePanel = h("div", { id: "call-outcome", class: "outcome-panel", hidden: true });
  async function askOutcome(call) {
    outcomePanel.hidden = false;
    replace(outcomePanel, h("p", { class: "question" }, t("task.call.ask")),
      h("div", { class: "choice-grid" }, OUTCOMES.map((outcome) => h("button", { type: "button", class: "secondary", "data-outcome": outcome,
        onclick: async () => {
          await enqueue(store, { type: "appointment.contact", entityId: task.id, payload: { outcome }, now: new Date(call.at) });
          await clearDraft(store, callKey);
          flash("task.call.saved", { outcome: word("outcome", outcome) });
          drawBar();
          await draw(view, id);
        } }, word("outcome", outcome)))),
      h("button", { type: "button", class: "link", onclick: async () => { await clearDraft(store, callKey); outcomePanel.hidden = true; } }, t("task.call.cancel")));
  }
  const pendingCall = await getDraft(store, callKey);
  if (pendingCall) askOutcome(pendingCall);

  const phone = recipient.phone
    ? h("a", { id: "call", class: "button wide", href: `tel:${recipient.phone.replace(/[^\d+*#]/g, "")}`,
      onclick: async () => { const call = { at: new Date().toISOString() }; await setDraft(store, callKey, call); askOutcome(call); } },
      t("task.call", { phone: recipient.phone }))
    : h("p", {}, t("task.phone.none"));

  // Arrive: the device's position, never an invented one.
  const arriveMessage = h("p", { id: "arrive-message", class: "message", role: "alert" });
  const arrive = h("button", { id: "arrive", type: "button", class: "wide" }, t("task.arrive"));
  arrive.addEventListener("click", () => {
    if (!navigator.geolocation) { replace(arriveMessage, t("task.geo.none")); return; }
    arrive.disabled = true;
    replace(arriveMessage, t("task.arrive.locating"));
    navigator.geolocation.getCurrentPosition(async (position) => {
      const { latitude: lat, longitude: lon } = position.coords;
      await enqueue(store, { type: "stop.arrive", entityId: task.id, payload: { lat, lon } });
      flash("task.arrive.saved");
      drawBar();
      await draw(view, id);
    }, (error) => {
      arrive.disabled = false;
      arrive.textContent = t("task.arrive.retry");
      replace(arriveMessage, t(error.code === 1 ? "task.geo.denied" : error.code === 3 ? "task.geo.timeout" : "task.geo.unavailable"));
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
  });

  const forbidden = (action, step) => h("p", { class: "not-offered", "data-step": step },
    t("task.not.offered", { action, reason: codeText(state[step]?.reason) }));
  const offered = (step) => !state[step] || state[step].allowed;
  const isPickup = task.kind === "pickup";
  const doorSteps = isPickup ? ["pickup"] : ["verify", "inspect", "pay", "sign", "refuse", "alternate", "absent"];
  const doorAllowed = doorSteps.some((step) => offered(step));
  const firstReason = doorSteps.map((step) => state[step]).find((s) => s && !s.allowed);

  const actions = finished
    ? [h("p", {}, t("task.closed")), task.failure_reason ? h("p", {}, t("task.failure", { reason: t(`failure.${task.failure_reason}`) })) : null]
    : [
      offered("arrive") ? [arrive, arriveMessage] : [forbidden(t("task.arrive"), "arrive"),
        state.arrive?.reason === "shift_required" ? h("a", { class: "button secondary wide", href: "#/shift" }, t("task.shift")) : null],
      doorAllowed
        ? h("a", { id: "door", class: "button wide", href: `#/tasks/${encodeURIComponent(task.id)}/${isPickup ? "pickup" : "door"}` }, t(isPickup ? "task.pickup" : "task.door"))
        : h("p", { class: "not-offered", "data-step": "door" }, t("task.not.offered", { action: t(isPickup ? "task.pickup" : "task.door"), reason: codeText(firstReason?.reason) })),
    ];
  const apptLink = task.status !== "cancelled"
    ? h("a", { id: "appointment", class: "button secondary wide", href: `#/tasks/${encodeURIComponent(task.id)}/appointment` }, t("task.appointment")) : null;

  // Money: COD and the published fees, the total due.
  const fees = task.fees || [];
  const money = section(t("task.money"), "money",
    h("dl", { class: "pairs" },
      task.cod_amount ? [h("dt", {}, t("task.cod")), h("dd", { id: "cod" }, yuan(task.cod_amount))] : null,
      fees.map((fee) => [h("dt", {}, feeName(fee.code)), h("dd", {}, yuan(fee.amount))]),
      h("dt", {}, t("task.due")), h("dd", { id: "due" }, yuan(task.amount_due ?? (task.cod_amount || 0) + fees.reduce((s, f) => s + f.amount, 0)))));

  // History: windows with outcomes, contact attempts, notice.
  const windows = appt?.windows || [];
  const contacts = appt?.contact_attempts || [];
  const history = [
    ...windows.map((w) => h("li", { class: "history-window" },
      t("task.window.line", { window: windowText(w), status: w.outcome ? (word("appt", w.outcome) === w.outcome ? word("window.outcome", w.outcome) : word("appt", w.outcome)) : word("window.status", w.status) }),
      w.via ? ` · ${word("via", w.via)}` : "", w.attempt ? ` · ${t("task.attempt", { n: w.attempt })}` : "", w.reason ? ` · ${w.reason}` : "")),
    ...contacts.map((c) => h("li", { class: "history-contact" }, t("task.contact.line", { at: when(c.device_time), outcome: word("outcome", c.outcome) }), c.note ? ` · ${c.note}` : "")),
    appt?.notice ? h("li", { class: "history-notice" }, t("task.notice.line", { eta: when(appt.notice.eta), reason: appt.notice.reason || "",
      counted: t(appt.notice.in_time ? "task.notice.in.time" : "task.notice.late") })) : null,
  ].filter(Boolean);

  // Notes: text and up to 10 photos from the camera (kept on the device until uploaded; the draft keeps both).
  const noteText = h("textarea", { id: "note-text", maxlength: "2000", rows: "3" });
  const noteDraftKey = `note:${task.id}`;
  const photoDraftKey = `note-photos:${task.id}`;
  noteText.value = (await getDraft(store, noteDraftKey)) || "";
  noteText.addEventListener("input", () => setDraft(store, noteDraftKey, noteText.value));
  const notePhotos = (await getDraft(store, photoDraftKey)) || [];
  const notePreviews = (await Promise.all(notePhotos.map((sha, i) => preview(store, sha, t("task.note.photo", { n: i + 1 })))))
    .filter(Boolean);
  const noteForm = h("form", { id: "note-form", class: "stack" },
    h("label", { for: "note-text" }, t("task.note.text")), noteText,
    h("div", { class: "door-photos", id: "note-photos" }, notePreviews,
      notePhotos.length < NOTE_MAX_PHOTOS ? photoButton(store, { label: t("task.note.photo.add"), name: "note",
        onPhoto: async (sha) => {
          await setDraft(store, photoDraftKey, [...notePhotos, sha]);
          await draw(view, id);
        },
        onError: () => replace(message, t("task.note.photo.failed")) }) : h("p", { class: "muted" }, t("task.note.photo.max", { max: NOTE_MAX_PHOTOS }))),
    h("button", { type: "submit", class: "secondary" }, t("task.note.add")));
  noteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = noteText.value.trim();
    if (!text) { replace(message, t("task.note.empty")); return; }
    const photos = (await getDraft(store, photoDraftKey)) || [];
    await enqueue(store, { type: "task.note", entityId: task.id, payload: { text, photos }, blobs: photos });
    await clearDraft(store, noteDraftKey);
    await clearDraft(store, photoDraftKey);
    flash("task.note.saved");
    drawBar();
    await draw(view, id);
  });

  replace(view,
    h("a", { class: "back", href: "#/" }, "‹ ", t("back")),
    h("h1", { id: "task-title" }, task.waybill_no, " ", h("span", { class: "kind" }, word("kind", task.kind))),
    h("p", { class: "task-mid" }, h("span", { class: "status", id: "task-status" }, statusWord(task)),
      task.window?.start ? h("span", { class: "window" }, windowText(task.window)) : null,
      appt ? h("span", { class: `appt appt-${appt.status}`, id: "appt-status" }, word("appt", appt.status)) : null),
    h("p", { class: "alerts" }, alerts(task, ops).map(([key, params]) => h("span", { class: `alert ${alertClass(key)}` }, t(key, params)))),
    message,
    section(t("task.actions"), "actions", actions, apptLink),
    section(t(task.kind === "pickup" ? "task.sender" : "task.customer"), "customer",
      h("p", { id: "recipient" }, maskName(recipient.name)),
      finished ? null : [phone,
        // Said in Chinese, always (what the courier says to the customer); glossed in English by the switch.
        h("p", { id: "phrase", class: "phrase", lang: "zh-CN" }, callPhrase(task, "zh", company)),
        currentLang() === "zh" ? null : h("p", { class: "phrase-gloss muted", lang: "en" }, callPhrase(task, "en", company)),
        outcomePanel],
      h("h3", {}, t("task.address")),
      h("p", { id: "address" }, recipient.address || ""),
      h("a", { id: "map", class: "button secondary", href: mapLink(recipient) }, t("task.map"))),
    section(t("task.parcels"), "parcels", h("ul", {}, (task.parcels || []).map((p) =>
      h("li", {}, t("task.parcel.line", { no: p.parcel_no, desc: p.description || "", count: p.count }))))),
    money,
    task.gift_description ? h("p", { id: "gift", class: "alert info block" }, t("task.gift", { gift: task.gift_description })) : null,
    section(t("task.history"), "history", history.length ? h("ul", { class: "history" }, history) : h("p", { class: "muted" }, t("task.history.none"))),
    section(t("task.ops"), "task-ops", ops.length ? h("ul", { class: "ops" }, [...ops].sort((a, b) => b.seq - a.seq).map(opLine)) : h("p", { class: "muted" }, t("task.ops.none"))),
    section(t("task.notes"), "notes",
      h("ul", { class: "notes" }, (task.notes || []).map((note) => h("li", {}, h("span", { class: "muted" }, when(note.device_time || note.at)), " ", note.text,
        (note.photos || []).length ? h("span", { class: "muted", "data-note-photos": note.photos.length }, " · ", t("task.note.photos", { n: note.photos.length })) : null))),
      noteForm));
}


route("/tasks/:id", ({ id }, view) => {
  const redraw = () => draw(view, id);
  syncEvents.addEventListener("change", redraw);
  draw(view, id);
  return () => syncEvents.removeEventListener("change", redraw);
});
