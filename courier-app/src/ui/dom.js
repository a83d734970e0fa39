// A tiny DOM builder: h("button", {class: "big", onclick: f}, "text", child). No innerHTML anywhere:
// every string the server or the courier typed is set as text, never parsed as markup.

/** Make an element: attributes (on* as listeners, class, dataset via data-*), then children (strings, nodes, arrays, null). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. The field the courier is in (by its id) keeps the focus and the caret: a
 * redraw (a sync's news, a timer) must not take the keyboard away mid-word. */
export function replace(el, ...children) {
  const active = globalThis.document?.activeElement;
  const focused = active && active.id && el.contains(active) ? active : null;
  const caret = focused ? selection(focused) : null;
  el.replaceChildren();
  append(el, children);
  const again = focused ? el.querySelector(`#${CSS.escape(focused.id)}`) : null;
  if (again && again.tagName === focused.tagName) {
    again.focus({ preventScroll: true });
    if (caret) try { again.setSelectionRange(caret[0], caret[1]); } catch { /* a field without a caret */ }
  }
  return el;
}

function selection(field) {
  try {
    return field.selectionStart == null ? null : [field.selectionStart, field.selectionEnd];
  } catch {
    return null;
  }
}
