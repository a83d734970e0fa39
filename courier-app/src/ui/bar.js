// The header bar: the app's name, online/offline, the count of ops not yet synced (a link to the queue screen),
// and the language switch. Redrawn on the core's syncEvents "change", on online/offline, and on language change.
import { h, replace } from "./dom.js";
import { register, t, currentLang, setLang } from "./i18n.js";
import { render as renderRoute } from "./router.js";
import { session } from "./session.js";
import { syncEvents, syncStatus } from "../core/sync.js";
import "./words.js";

register({
  zh: { "bar.online": "在线", "bar.offline": "离线", "bar.pending": "待同步 {n}", "bar.problems": "被拒 {n}", "bar.conflicts": "调度复核 {n}",
        "bar.queue": "同步队列", "bar.lang": "English", "bar.lang.label": "切换到英文", "bar.settings": "设置" },
  en: { "bar.online": "Online", "bar.offline": "Offline", "bar.pending": "{n} to sync", "bar.problems": "{n} refused", "bar.conflicts": "{n} for review",
        "bar.queue": "Sync queue", "bar.lang": "中文", "bar.lang.label": "Switch to Chinese", "bar.settings": "Settings" },
});

/** Switch the language and redraw the bar and the screen. */
export function switchLang(code) {
  setLang(code);
  drawBar();
  renderRoute();
}

export async function drawBar() {
  const bar = document.getElementById("bar");
  if (!bar) return;
  let pending = 0, problems = 0, conflicts = 0;
  try {
    const { store } = await session();
    ({ pending, rejected: problems, conflicts = 0 } = await syncStatus(store));
  } catch { /* no store yet: nothing pending */ }
  const online = navigator.onLine;
  document.title = t("app.name");
  replace(bar,
    h("div", { class: "bar-row" },
      h("a", { class: "bar-name", href: "#/" }, t("app.name")),
      h("button", { id: "lang", type: "button", class: "bar-lang secondary", lang: currentLang() === "zh" ? "en" : "zh-CN",
        "aria-label": t("bar.lang.label"), onclick: () => switchLang(currentLang() === "zh" ? "en" : "zh") }, t("bar.lang"))),
    h("div", { class: "bar-row" },
      h("span", { id: "net", class: online ? "net on" : "net off", role: "status" }, online ? t("bar.online") : t("bar.offline")),
      h("a", { id: "bar-queue", class: "bar-queue" + (problems ? " bad" : ""), href: "#/sync", "aria-label": `${t("bar.queue")}: ${t("bar.pending", { n: pending })}${problems ? ", " + t("bar.problems", { n: problems }) : ""}${conflicts ? ", " + t("bar.conflicts", { n: conflicts }) : ""}` },
        t("bar.pending", { n: pending }), problems ? ` · ${t("bar.problems", { n: problems })}` : null,
        // A conflict was applied: counted apart, not in red as a refusal.
        conflicts ? ["\u00a0· ", h("span", { class: "bar-review" }, t("bar.conflicts", { n: conflicts }))] : null),
      h("a", { class: "bar-settings", href: "#/settings" }, t("bar.settings"))));
}

export function startBar() {
  document.documentElement.lang = currentLang() === "zh" ? "zh-CN" : "en";
  window.addEventListener("online", drawBar);
  window.addEventListener("offline", drawBar);
  syncEvents.addEventListener("change", drawBar);
  return drawBar();
}
