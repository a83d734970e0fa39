// #/checklist/:kind — fill in a checklist of the pulled templates (conduct.pre_shift, vehicle.pre_trip,
// vehicle.post_trip …), offline: the template, the van and its last report come from the device's store; the
// answers are kept as a draft (a reload loses nothing), photos are kept as blobs until uploaded, and the
// check is queued as checklist.submit (a create op). The server judges it again (docs/protocol.md "Checklists").
import { h, replace } from "../dom.js";

/** Draw this screen: its content in the wrapper its styles are scoped to (app.css, .checks-screen). */
function screen(view, ...children) {
  return replace(view, h("div", { class: "checks-screen" }, ...children));
}
import { register, t, currentLang } from "../i18n.js";
import { route, go } from "../router.js";
import { listEntities, getDraft, setDraft, clearDraft } from "../../core/store.js";
import { enqueue } from "../../core/queue.js";
import { session } from "../session.js";
import { photoButton, preview } from "../camera.js";
import { formatDateTime } from "../../core/time.js";
import { judge, payloadAnswers, fails, severity, needsAcknowledgement } from "../checks.js";

register({
  zh: {
    "checklist.title.conduct.pre_shift": "上岗前仪容检查",
    "checklist.title.conduct.stop": "每站服务规范",
    "checklist.title.vehicle.pre_trip": "车辆出车检查",
    "checklist.title.vehicle.post_trip": "车辆收车检查",
    "checklist.no_template": "本机没有这个检查表：请联网同步一次。",
    "checklist.no_vehicle": "本机没有分配给你的车辆：请联系调度。",
    "checklist.van": "车辆 {plate}",
    "checklist.pass": "合格",
    "checklist.fail": "不合格",
    "checklist.required": "必填",
    "checklist.range": "合格范围 {range}",
    "checklist.fails_now": "不合格",
    "checklist.critical": "安全项：不合格则车辆停用",
    "checklist.photo": "拍照",
    "checklist.photo_needed": "不合格项须拍照",
    "checklist.photo_kept": "已拍照，上传前保存在本机",
    "checklist.photo_failed": "照片没有保存，请重拍。",
    "checklist.choice.tied": "已束起",
    "checklist.choice.not_applicable": "不适用",
    "checklist.choice.not_tied": "未束起",
    "checklist.last_report": "上一次车辆检查",
    "checklist.last_report_none": "该车还没有检查记录。",
    "checklist.last_report_by": "{time}，{kind}",
    "checklist.last_report_ok": "上一次检查没有发现问题。",
    "checklist.defect": "{label}（{severity}）：{status}",
    "checklist.defect_note": "维修说明：{note}",
    "checklist.severity.critical": "严重",
    "checklist.severity.major": "较重",
    "checklist.severity.minor": "轻微",
    "checklist.defect_status.open": "未修复",
    "checklist.defect_status.repaired": "已修复",
    "checklist.defect_status.no_repair_needed": "无需维修",
    "checklist.acknowledge": "我已查看上一次检查发现的问题及维修情况",
    "checklist.acknowledge_needed": "请先确认已查看上一次检查的问题。",
    "checklist.position": "位置",
    "checklist.position_get": "获取位置",
    "checklist.position_have": "已获取位置（{lat}, {lon}）",
    "checklist.position_none": "没有位置：请打开定位后重试。没有位置无法提交检查。",
    "checklist.position_wait": "正在获取位置…",
    "checklist.missing": "还有必填项未完成：{items}",
    "checklist.photo_missing": "不合格项须拍照：{items}",
    "checklist.will_ground": "安全项不合格：提交后车辆立即停用，维修人员确认修复前不能出车。",
    "checklist.submit": "提交检查",
    "checklist.queued": "检查已保存，联网后上传。",
    "checklist.back": "返回班次",
  },
  en: {
    "checklist.title.conduct.pre_shift": "Conduct before the shift",
    "checklist.title.conduct.stop": "Conduct at each stop",
    "checklist.title.vehicle.pre_trip": "Van pre-trip check",
    "checklist.title.vehicle.post_trip": "Van post-trip check",
    "checklist.no_template": "This checklist is not on this phone: sync once while online.",
    "checklist.no_vehicle": "No van is assigned to you on this phone: ask dispatch.",
    "checklist.van": "Van {plate}",
    "checklist.pass": "Pass",
    "checklist.fail": "Fail",
    "checklist.required": "required",
    "checklist.range": "Passing range {range}",
    "checklist.fails_now": "Fails",
    "checklist.critical": "Safety item: a failure grounds the van",
    "checklist.photo": "Take a photo",
    "checklist.photo_needed": "A failed item needs a photo",
    "checklist.photo_kept": "Photo taken, kept on this phone until uploaded",
    "checklist.photo_failed": "The photo was not kept: take it again.",
    "checklist.choice.tied": "Tied back",
    "checklist.choice.not_applicable": "Not applicable",
    "checklist.choice.not_tied": "Not tied back",
    "checklist.last_report": "The van's last check",
    "checklist.last_report_none": "This van has no check yet.",
    "checklist.last_report_by": "{time}, {kind}",
    "checklist.last_report_ok": "The last check found nothing wrong.",
    "checklist.defect": "{label} ({severity}): {status}",
    "checklist.defect_note": "Repair note: {note}",
    "checklist.severity.critical": "critical",
    "checklist.severity.major": "major",
    "checklist.severity.minor": "minor",
    "checklist.defect_status.open": "not repaired",
    "checklist.defect_status.repaired": "repaired",
    "checklist.defect_status.no_repair_needed": "no repair needed",
    "checklist.acknowledge": "I have read the last check's defects and their repair",
    "checklist.acknowledge_needed": "Confirm first that you read the last check's defects.",
    "checklist.position": "Position",
    "checklist.position_get": "Get position",
    "checklist.position_have": "Position found ({lat}, {lon})",
    "checklist.position_none": "No position: turn on location and try again. A check cannot be sent without it.",
    "checklist.position_wait": "Finding the position…",
    "checklist.missing": "Required items not done: {items}",
    "checklist.photo_missing": "Failed items need a photo: {items}",
    "checklist.will_ground": "A safety item failed: once sent the van is grounded until maintenance certifies the repair.",
    "checklist.submit": "Send the check",
    "checklist.queued": "Check saved; it is sent when online.",
    "checklist.back": "Back to the shift",
  },
});

/** The device's store (the screens' one session, ui/session.js). */
export async function deviceStore() {
  return (await session()).store;
}

/** The active template of a kind held on this device, or null. */
export async function templateOf(store, kind) {
  const held = (await listEntities(store, "checklist_template")).map((e) => e.data);
  return held.find((tpl) => tpl.kind === kind && tpl.status !== "retired") || null;
}

/** The courier's van as pulled, or null. */
export async function heldVehicle(store) {
  const [van] = await listEntities(store, "vehicle");
  return van ? van.data : null;
}

/** An item's label in the current language. */
export function itemLabel(item) {
  return (currentLang() === "en" ? item.label_en : item.label_zh) || item.label_en || item.code;
}

function words(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

/** Ask the device for its position; never invents one (null when it has none). */
export function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) { resolve(null); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: Number(p.coords.latitude.toFixed(6)), lon: Number(p.coords.longitude.toFixed(6)) }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });
}

/**
 * The camera (ui/camera.js: downscaled to a JPEG, kept on the device until uploaded) with the photo's preview:
 * `onphoto(sha256)` once the picture is kept. The input's id is photo-<name>.
 */
export function photoInput(store, name, label, onphoto) {
  const shown = h("span", { class: "photo-shown" });
  const button = photoButton(store, { label, name, onPhoto: async (sha256) => {
    onphoto(sha256);
    replace(shown, await preview(store, sha256, label));
  }, onError: () => replace(shown, h("span", { class: "warn" }, t("checklist.photo_failed"))) });
  return [button, shown];
}

/** A defect's item in the courier's language (from the van check templates held), else the server's label. */
export function defectLabel(templates, defect) {
  for (const tpl of templates) {
    const item = tpl.kind?.startsWith("vehicle.") && (tpl.items || []).find((i) => i.code === defect.item);
    if (item) return itemLabel(item);
  }
  return defect.label || defect.item;
}

/** The van's last report with its defects and their certificates (what the next driver acknowledges). */
export function lastReport(vehicle, templates = []) {
  const report = vehicle?.last_report;
  if (!report) return h("section", { class: "last-report", id: "last-report" }, h("h2", {}, t("checklist.last_report")),
    h("p", {}, t("checklist.last_report_none")));
  const defects = report.defects || [];
  return h("section", { class: "last-report", id: "last-report" },
    h("h2", {}, t("checklist.last_report")),
    h("p", {}, t("checklist.last_report_by", { time: formatDateTime(report.device_time),
      kind: t(`checklist.title.${report.kind}`) })),
    defects.length
      ? h("ul", { class: "defects" }, defects.map((d) => h("li", { class: `defect ${d.status}` },
        t("checklist.defect", { label: defectLabel(templates, d), severity: t(`checklist.severity.${d.severity}`),
          status: t(`checklist.defect_status.${d.status}`) }),
        d.note ? h("div", { class: "muted" }, t("checklist.defect_note", { note: d.note })) : null)))
      : h("p", {}, t("checklist.last_report_ok")));
}

const bounded = (x) => x !== null && x !== undefined;

/** A number item's passing range in words ("0–1 cm²", "≥ 0 km"), or just its unit. */
export function rangeText(item) {
  const unit = item.unit ? ` ${item.unit}` : "";
  if (bounded(item.min) && bounded(item.max)) return t("checklist.range", { range: `${item.min}–${item.max}${unit}` });
  if (bounded(item.max)) return t("checklist.range", { range: `≤ ${item.max}${unit}` });
  if (bounded(item.min) && item.min !== 0) return t("checklist.range", { range: `≥ ${item.min}${unit}` });
  return item.unit || "";
}

function itemControl(item, answer, update) {
  const name = `item-${item.code}`;
  if (item.type === "pass_fail") {
    return h("div", { class: "choices", role: "radiogroup", "aria-label": itemLabel(item) },
      [[true, "checklist.pass"], [false, "checklist.fail"]].map(([value, key]) => {
        const id = `${name}-${value ? "pass" : "fail"}`;
        return h("label", { class: "choice", for: id },
          h("input", { type: "radio", id, name, checked: answer?.value === value,
            onchange: () => update({ value }) }), t(key));
      }));
  }
  if (item.type === "choice") {
    return h("div", { class: "choices", role: "radiogroup", "aria-label": itemLabel(item) },
      (item.choices || []).map((choice) => {
        const id = `${name}-${choice}`;
        return h("label", { class: "choice", for: id },
          h("input", { type: "radio", id, name, checked: answer?.value === choice,
            onchange: () => update({ value: choice }) }), words(`checklist.choice.${choice}`, choice));
      }));
  }
  if (item.type === "number") {
    const input = h("input", { type: "number", id: name, inputmode: "decimal", step: "any",
      value: answer?.value ?? "", "aria-labelledby": `${name}-label`, "aria-describedby": `${name}-range` });
    input.addEventListener("change", () => update({ value: input.value === "" ? null : Number(input.value) }));
    return h("div", { class: "number" }, input, h("span", { id: `${name}-range`, class: "muted" }, rangeText(item)));
  }
  if (item.type === "text") {
    const area = h("textarea", { id: name, maxlength: "1000", rows: "2", "aria-labelledby": `${name}-label` }, answer?.value ?? "");
    area.addEventListener("change", () => update({ value: area.value }));
    return area;
  }
  return null; // a photo item: its photo is the answer (below)
}

async function draw(params, view) {
  const kind = params.kind;
  const store = await deviceStore();
  const template = await templateOf(store, kind);
  const vehicle = kind.startsWith("vehicle.") ? await heldVehicle(store) : null;
  const back = h("a", { class: "button secondary", href: "#/shift" }, t("checklist.back"));
  if (!template) return void screen(view, h("h1", {}, t(`checklist.title.${kind}`)), h("p", { class: "alert" }, t("checklist.no_template")), back);
  if (kind.startsWith("vehicle.") && !vehicle) return void screen(view, h("h1", {}, t(`checklist.title.${kind}`)), h("p", { class: "alert" }, t("checklist.no_vehicle")), back);
  const draftKey = `checklist:${kind}`;
  const draft = (await getDraft(store, draftKey)) || {};
  if (draft.template_id !== template.id || draft.version !== template.current) {
    Object.assign(draft, { template_id: template.id, version: template.current, answers: {}, acknowledged: false });
  }
  const form = h("form", { id: "checklist", class: "checklist", novalidate: true });
  const status = h("div", { id: "checklist-status", role: "status", "aria-live": "polite" });
  const positionLine = h("p", { id: "position" }, draft.position
    ? t("checklist.position_have", draft.position) : "");
  const submit = h("button", { type: "submit", id: "submit-check" }, t("checklist.submit"));

  const save = () => setDraft(store, draftKey, draft);
  function refresh() {
    const verdict = judge(template.items, draft.answers);
    const problems = [];
    if (verdict.missing.length) problems.push(t("checklist.missing", { items: names(verdict.missing) }));
    if (verdict.photoMissing.length) problems.push(t("checklist.photo_missing", { items: names(verdict.photoMissing) }));
    if (kind === "vehicle.pre_trip" && needsAcknowledgement(vehicle) && !draft.acknowledged) problems.push(t("checklist.acknowledge_needed"));
    if (kind.startsWith("vehicle.") && verdict.critical.length) problems.push(t("checklist.will_ground"));
    replace(status, problems.map((p) => h("p", { class: "warn" }, p)));
    for (const item of template.items) {
      const row = form.querySelector(`[data-item="${item.code}"]`);
      if (!row) continue;
      const failed = fails(item, draft.answers[item.code]);
      row.classList.toggle("failed", failed);
      const flag = row.querySelector(".fails-now");
      if (flag) flag.hidden = !failed;
      const photo = row.querySelector(".photo-need");
      if (photo) photo.hidden = !(failed && item.photo_required_on_failure && !draft.answers[item.code]?.photo);
      const photoRow = row.querySelector(".photo-row");
      if (photoRow && item.type !== "photo") photoRow.hidden = !failed;
    }
  }
  const names = (codes) => codes.map((code) => itemLabel(template.items.find((i) => i.code === code))).join("、");

  const rows = template.items.map((item) => {
    const update = (patch) => {
      draft.answers[item.code] = { ...(draft.answers[item.code] || {}), ...patch };
      save();
      refresh();
    };
    const answer = draft.answers[item.code];
    const photoState = h("span", { class: "photo-state" }, answer?.photo ? t("checklist.photo_kept") : "");
    if (answer?.photo) preview(store, answer.photo, itemLabel(item)).then((img) => img && photoState.after(img));
    // A photo goes with a failure (or is a photo item's answer): the camera is offered then.
    const needsPhoto = item.type === "photo" || item.photo_required_on_failure;
    return h("fieldset", { class: "item", "data-item": item.code },
      h("legend", { id: `item-${item.code}-label` }, itemLabel(item), item.required ? h("span", { class: "muted" }, ` (${t("checklist.required")})`) : null),
      severity(item) === "critical" && kind.startsWith("vehicle.") ? h("p", { class: "critical-note" }, t("checklist.critical")) : null,
      itemControl(item, answer, update),
      h("p", { class: "fails-now bad", hidden: true }, t("checklist.fails_now")),
      needsPhoto ? h("div", { class: "photo-row" },
        photoInput(store, item.code, t("checklist.photo"), (sha256) => {
          update({ photo: sha256 });
          replace(photoState, t("checklist.photo_kept"));
        }),
        photoState,
        item.type === "photo" ? null : h("p", { class: "photo-need warn", hidden: true }, t("checklist.photo_needed"))) : null);
  });

  const ack = kind === "vehicle.pre_trip" && needsAcknowledgement(vehicle)
    ? h("label", { class: "choice ack", for: "acknowledge" },
      h("input", { type: "checkbox", id: "acknowledge", checked: Boolean(draft.acknowledged),
        onchange: (e) => { draft.acknowledged = e.target.checked; save(); refresh(); } }),
      t("checklist.acknowledge"))
    : null;

  const locate = h("button", { type: "button", class: "secondary", id: "get-position", onclick: async () => {
    replace(positionLine, t("checklist.position_wait"));
    draft.position = await position();
    save();
    replace(positionLine, draft.position ? t("checklist.position_have", draft.position) : t("checklist.position_none"));
    positionLine.className = draft.position ? "" : "warn";
  } }, t("checklist.position_get"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    refresh();
    const verdict = judge(template.items, draft.answers);
    if (!verdict.ready) return;
    if (kind === "vehicle.pre_trip" && needsAcknowledgement(vehicle) && !draft.acknowledged) return;
    if (!draft.position) {
      draft.position = await position();
      save();
      if (!draft.position) { replace(positionLine, t("checklist.position_none")); positionLine.className = "warn"; return; }
    }
    const answers = payloadAnswers(template.items, draft.answers);
    const payload = { template_id: template.id, template_version: template.current, answers,
      lat: draft.position.lat, lon: draft.position.lon };
    if (kind.startsWith("vehicle.")) payload.vehicle_id = vehicle.id;
    if (kind === "vehicle.pre_trip" && vehicle.last_report && needsAcknowledgement(vehicle)) {
      payload.acknowledged_report_id = vehicle.last_report.id;
    }
    submit.disabled = true;
    await enqueue(store, { type: "checklist.submit", payload, blobs: answers.filter((a) => a.photo).map((a) => a.photo) });
    await clearDraft(store, draftKey);
    go("/shift");
  });

  replace(form,
    kind === "vehicle.pre_trip" ? lastReport(vehicle, [template]) : null,
    ack,
    rows,
    h("section", { class: "position" }, h("h2", {}, t("checklist.position")), positionLine, locate),
    status,
    h("div", { class: "actions" }, submit, back));
  screen(view,
    h("h1", {}, t(`checklist.title.${kind}`)),
    vehicle ? h("p", { class: "muted" }, t("checklist.van", { plate: vehicle.plate })) : null,
    form);
  refresh();
}

route("/checklist/:kind", draw);
