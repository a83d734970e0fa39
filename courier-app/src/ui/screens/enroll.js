// Enrollment (#/enroll, #/enroll?code=…): scan the dispatch's QR with the camera (BarcodeDetector + getUserMedia
// where the browser has both), or type the code; then a first sync, then the day.
import { h, replace } from "../dom.js";
import { register, t } from "../i18n.js";
import { route, go } from "../router.js";
import { session, syncNow } from "../session.js";
import { errorText } from "../codes.js";
import { drawBar } from "../bar.js";
import { parseEnrollment, enroll } from "../../core/device.js";
import { getMeta } from "../../core/store.js";
import { syncStatus } from "../../core/sync.js";


register({
  zh: {
    "enroll.title": "登记本机", "enroll.intro": "请扫描调度给您的登记二维码，或输入二维码下方的 10 位登记码。",
    "enroll.scan": "扫描二维码", "enroll.scan.stop": "停止扫描", "enroll.scan.none": "此浏览器不能扫码：请输入登记码。",
    "enroll.scan.denied": "无法使用相机（未允许或没有相机）：请输入登记码。", "enroll.scan.hint": "把二维码放在取景框内",
    "enroll.code": "登记码", "enroll.name": "本机名称", "enroll.name.default": "手机",
    "enroll.submit": "登记", "enroll.busy": "正在登记…", "enroll.syncing": "登记成功，正在下载今天的任务…",
        "enroll.code.empty": "请输入登记码",
    "enroll.retry.after": "请 {s} 秒后再试。",
    "enroll.revoked": "本机已被调度注销：请向调度索取新登记码重新登记。", "enroll.kept": "本机还有 {n} 项操作未发送，重新登记后会发送。",
  },
  en: {
    "enroll.title": "Enroll this phone", "enroll.intro": "Scan the enrollment QR dispatch gave you, or type the 10-character code under it.",
    "enroll.scan": "Scan the QR", "enroll.scan.stop": "Stop scanning", "enroll.scan.none": "This browser cannot scan: type the code.",
    "enroll.scan.denied": "The camera cannot be used (not allowed, or none): type the code.", "enroll.scan.hint": "Hold the QR inside the frame",
    "enroll.code": "Enrollment code", "enroll.name": "Name of this phone", "enroll.name.default": "Phone",
    "enroll.submit": "Enroll", "enroll.busy": "Enrolling…", "enroll.syncing": "Enrolled; downloading today's tasks…",
    "enroll.code.empty": "Type the enrollment code",
    "enroll.retry.after": "Try again in {s} seconds.",
    "enroll.revoked": "Dispatch revoked this phone: ask dispatch for a new code and enroll again.", "enroll.kept": "{n} actions on this phone are not sent yet; they go after re-enrollment.",
  },
});

const canScan = () => typeof window !== "undefined" && "BarcodeDetector" in window && !!navigator.mediaDevices?.getUserMedia;

/** The ?code= of the hash (#/enroll?code=ABC), if any. */
function codeFromHash() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query).get("code") || "";
}

export async function drawEnroll(view) {
  const { store } = await session();
  const revoked = Boolean(await getMeta(store, "revoked"));
  const unsent = (await getMeta(store, "token")) ? (await syncStatus(store)).pending : 0;
  let stream = null, timer = null;
  const message = h("p", { id: "enroll-message", class: "message", role: "alert" });
  const code = h("input", { id: "enroll-code", name: "code", autocomplete: "off", autocapitalize: "characters",
    spellcheck: "false", maxlength: "32", value: codeFromHash() });
  const name = h("input", { id: "enroll-name", name: "device_name", maxlength: "100", value: t("enroll.name.default") });
  const submit = h("button", { id: "enroll-submit", type: "submit" }, t("enroll.submit"));
  const video = h("video", { id: "enroll-video", class: "scan-video", muted: true, playsinline: true, hidden: true, "aria-label": t("enroll.scan.hint") });
  const scanButton = h("button", { id: "enroll-scan", type: "button", class: "secondary wide" }, t("enroll.scan"));

  function stopCamera() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    video.hidden = true;
    scanButton.textContent = t("enroll.scan");
  }

  async function startCamera() {
    if (stream) { stopCamera(); return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch {
      replace(message, t("enroll.scan.denied")); message.dataset.kind = "error";
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    scanButton.textContent = t("enroll.scan.stop");
    await video.play().catch(() => {});
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const look = async () => {
      if (!stream) return;
      try {
        const found = await detector.detect(video);
        if (found.length) {
          stopCamera();
          let parsed;
          try { parsed = parseEnrollment(found[0].rawValue); } catch (error) { replace(message, errorText(error)); message.dataset.kind = "error"; return; }
          code.value = parsed.code;
          form.requestSubmit();
          return;
        }
      } catch { /* a frame not ready yet: look again */ }
      timer = setTimeout(look, 250);
    };
    look();
  }
  scanButton.addEventListener("click", startCamera);

  const form = h("form", { id: "enroll-form", class: "stack", novalidate: true },
    h("label", { for: "enroll-code" }, t("enroll.code")), code,
    h("label", { for: "enroll-name" }, t("enroll.name")), name,
    submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!code.value.trim()) { replace(message, t("enroll.code.empty")); message.dataset.kind = "error"; code.focus(); return; }
    let typed;
    try { typed = parseEnrollment(code.value); } catch (error) { replace(message, errorText(error)); message.dataset.kind = "error"; code.focus(); return; }
    submit.disabled = true;
    replace(message, t("enroll.busy"));
    message.dataset.kind = "info";
    const { api } = await session();
    try {
      await enroll(store, api, { code: typed.code, deviceName: name.value.trim() || t("enroll.name.default") });
    } catch (error) {
      submit.disabled = false;
      replace(message, errorText(error), error.retryAfter ? " " + t("enroll.retry.after", { s: error.retryAfter }) : "");
      message.dataset.kind = "error";
      return;
    }
    replace(message, t("enroll.syncing"));
    await syncNow(); // a failed first sync is shown on the day list and the queue screen
    drawBar();
    go("/");
  });

  replace(view,
    h("h1", {}, t("enroll.title")),
    revoked ? h("p", { id: "enroll-revoked", class: "not-offered", role: "alert" }, t("enroll.revoked")) : null,
    unsent ? h("p", { class: "muted" }, t("enroll.kept", { n: unsent })) : null,
    h("p", {}, t("enroll.intro")),
    canScan() ? [scanButton, video] : h("p", { class: "muted" }, t("enroll.scan.none")),
    form, message);
  return stopCamera;
}

route("/enroll", (_params, view) => drawEnroll(view));
