// Hash routes (#/tasks/t-1/door): each screen module calls route(pattern, render); render(params, view)
// draws into the <main> element and may return a cleanup function. The app shell works offline from the
// service worker's cache, so every screen reads the device's own store, never the network.

const routes = [];
let cleanup = null;
let visits = 0;

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

/** Draw the screen for the current hash.
 *
 * A screen's render is async (it reads the store before its first draw), so the courier may move on before it
 * returns its cleanup. Each visit therefore draws into a container of its own: a screen left while it was still
 * drawing draws into a container no longer on the page (never over the next screen), and its cleanup (its sync
 * listeners, its timers) runs as soon as it is returned, so it cannot redraw itself later either. */
export async function render() {
  const view = document.getElementById("view");
  const path = currentPath();
  const visit = ++visits;
  if (cleanup) { try { cleanup(); } catch { /* a screen's cleanup never blocks the next screen */ } }
  cleanup = null;
  for (const { regex, names, render: draw } of routes) {
    const match = path.match(regex);
    if (!match) continue;
    const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
    const screen = document.createElement("div");
    screen.className = "screen";
    view.replaceChildren(screen);
    const done = (await draw(params, screen)) || null;
    if (visit !== visits) {
      if (done) { try { done(); } catch { /* as above */ } }
      return;
    }
    cleanup = done;
    view.focus({ preventScroll: true });
    return;
  }
  location.hash = "/";
}

export function start() {
  window.addEventListener("hashchange", render);
  return render();
}
