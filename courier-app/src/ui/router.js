// Hash routes (#/tasks/t-1/door): each screen module calls route(pattern, render); render(params, view)
// draws into the <main> element and may return a cleanup function. The app shell works offline from the
// service worker's cache, so every screen reads the device's own store, never the network.

const routes = [];
let cleanup = null;

/** Register a screen: pattern like "/tasks/:id/door"; render(params, viewElement) -> optional cleanup. */
export function route(pattern, render) {
  const names = [];
  const regex = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, n) => (names.push(n), "([^/]+)")) + "$");
  routes.push({ regex, names, render });
}

/** Go to a path (pushes history). */
export function go(path) {
  if (location.hash === "#" + path) render();
  else location.hash = path;
}

/** The current path (without # and without a ?query, which a screen reads from location.hash itself). */
export function currentPath() {
  return location.hash.replace(/^#/, "").split("?")[0] || "/";
}

/** Draw the screen for the current hash. */
export async function render() {
  const view = document.getElementById("view");
  const path = currentPath();
  if (cleanup) { try { cleanup(); } catch { /* a screen's cleanup never blocks the next screen */ } }
  cleanup = null;
  for (const { regex, names, render: draw } of routes) {
    const match = path.match(regex);
    if (!match) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
    cleanup = (await draw(params, view)) || null;
    view.focus({ preventScroll: true });
    return;
  }
  location.hash = "/";
}

export function start() {
  window.addEventListener("hashchange", render);
  return render();
}
