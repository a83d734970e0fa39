// Settings (#/settings): the language (zh/en), this device (its id, the courier), re-enroll or forget it.
import { h, replace } from "../dom.js";
import { register, t, currentLang } from "../i18n.js";
import { route, go } from "../router.js";
import { session } from "../session.js";
import { drawBar, switchLang } from "../bar.js";
import { getMeta } from "../../core/store.js";
import { pendingOps } from "../../core/queue.js";
import { isEnrolled, forget } from "../../core/device.js";

register({
  zh: { "settings.title": "设置", "settings.lang": "语言", "settings.device": "本机", "settings.device.id": "设备编号：{id}",
        "settings.courier": "快递员编号：{id}", "settings.not.enrolled": "本机尚未登记。",
        "settings.reenroll": "重新登记", "settings.reenroll.help": "用调度给的新登记码重新登记（本机被注销或换人时）。未发送的操作会保留并随新身份发送。",
        "settings.forget": "清除本机数据", "settings.forget.help": "删除令牌、任务和队列。",
        "settings.forget.pending": "还有 {n} 项操作未同步，清除后将丢失！", "settings.forget.confirm": "确定清除？此操作不能撤销。",
        "settings.forgotten": "本机数据已清除。" },
  en: { "settings.title": "Settings", "settings.lang": "Language", "settings.device": "This phone", "settings.device.id": "Device id: {id}",
        "settings.courier": "Courier id: {id}", "settings.not.enrolled": "This phone is not enrolled.",
        "settings.reenroll": "Enroll again", "settings.reenroll.help": "Enroll with a new code from dispatch (after a revocation, or another courier). Unsent actions are kept and sent under the new identity.",
        "settings.forget": "Erase this phone's data", "settings.forget.help": "Deletes the token, the tasks and the queue.",
        "settings.forget.pending": "{n} actions are not synced yet and will be lost!", "settings.forget.confirm": "Erase now? This cannot be undone.",
        "settings.forgotten": "This phone's data was erased." },
});

async function draw(view) {
  const { store } = await session();
  const enrolled = await isEnrolled(store);
  const pending = enrolled ? (await pendingOps(store)).length : 0;
  const message = h("p", { id: "settings-message", class: "message", role: "status" });
  const langButton = (code, label) => h("button", { type: "button", id: `lang-${code}`, lang: code === "zh" ? "zh-CN" : "en",
    class: currentLang() === code ? "" : "secondary", "aria-pressed": currentLang() === code ? "true" : "false",
    onclick: () => switchLang(code) }, label);
  const forgetButton = h("button", { type: "button", id: "forget", class: "danger" }, t("settings.forget"));
  forgetButton.addEventListener("click", async () => {
    if (!window.confirm(t("settings.forget.confirm"))) return;
    await forget(store);
    drawBar();
    go("/enroll");
  });
  replace(view,
    h("h1", {}, t("settings.title")),
    h("section", { class: "card" }, h("h2", {}, t("settings.lang")), h("div", { class: "row2" }, langButton("zh", "中文"), langButton("en", "English"))),
    h("section", { class: "card" }, h("h2", {}, t("settings.device")),
      enrolled ? [h("p", { id: "device-id" }, t("settings.device.id", { id: await getMeta(store, "device_id") })),
        h("p", {}, t("settings.courier", { id: await getMeta(store, "courier_id") }))] : h("p", {}, t("settings.not.enrolled")),
      h("p", { class: "muted" }, t("settings.reenroll.help")),
      h("a", { id: "reenroll", class: "button wide", href: "#/enroll" }, t("settings.reenroll")),
      enrolled ? [h("p", { class: "muted" }, t("settings.forget.help")),
        pending ? h("p", { class: "error-text" }, t("settings.forget.pending", { n: pending })) : null, forgetButton] : null),
    message);
}

route("/settings", (_params, view) => { draw(view); });
