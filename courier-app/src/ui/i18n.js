// Words of the app: Chinese by default, English by the switch (kept on the device). Each screen module registers
// its own words beside its code: register({zh: {...}, en: {...}}); a key missing in a language is a test failure.

const words = { zh: {}, en: {} };
const LANG_KEY = "fieldops.lang";
let lang = (typeof localStorage !== "undefined" && localStorage.getItem(LANG_KEY)) || "zh";

/** Add a module's words (both languages must carry the same keys). */
export function register(table) {
  for (const code of Object.keys(words)) Object.assign(words[code], table[code] || {});
}

/** The word for key in the current language, with {name} placeholders filled from params. */
export function t(key, params = {}) {
  const text = words[lang][key] ?? words.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function currentLang() {
  return lang;
}

/** Switch language (zh or en) and remember it on this device. */
export function setLang(code) {
  if (!(code in words)) throw new Error(`unknown language ${code}`);
  lang = code;
  localStorage.setItem(LANG_KEY, code);
  document.documentElement.lang = code === "zh" ? "zh-CN" : "en";
}

/** Every registered key, per language (for the test that both languages are complete). */
export function allWords() {
  return words;
}
