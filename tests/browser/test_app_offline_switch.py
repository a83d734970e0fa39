"""set_offline (tests/browser/courier_app.py) truly cuts the browser off: while it is on, no request of the page
nor of its service worker reaches the server; switched off, both reach it again.

A service worker of the test's own (not the app's) makes the fetches a service worker can make: one for a
request of the page it answers, one on its own (as Background Sync does), so the switch is proved whatever
the app's worker does.
"""
import pytest

from tests.browser.conftest import require_browser
from tests.browser.courier_app import UPDATE_CHECK, count_requests, open_app, set_offline, wait_controlled

require_browser()

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>probe</title></head>
<body><main id="view"></main><script src="probe.js"></script></body></html>"""
PROBE = """window.probe = navigator.serviceWorker.register("/app/sw.js", {scope: "/app/"});"""
WORKER = """
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  if (new URL(event.request.url).pathname !== "/app/through-worker") return;
  event.respondWith(fetch("/app/from-worker").then((r) => new Response("reached " + r.status),
                                                    (e) => new Response("failed " + e.name)));
});
self.addEventListener("message", (event) => {
  if (event.data !== "fetch") return;
  event.waitUntil(fetch("/app/worker-alone").then((r) => event.source.postMessage("reached " + r.status),
                                                   (e) => event.source.postMessage("failed " + e.name)));
});
"""
FETCHES = {
    "page": "fetch('/app/from-page').then(r => done('reached ' + r.status), e => done('failed ' + e.name))",
    "worker answering the page": "fetch('/app/through-worker').then(r => r.text()).then(done, e => done('x ' + e))",
    "worker on its own": "navigator.serviceWorker.onmessage = (m) => done(m.data);"
                         "navigator.serviceWorker.controller.postMessage('fetch')",
}
# What the browser itself fetches for a page: a worker registered now (its script), the update check of the
# running one (as every navigation and the browser's own 24-hour check do).
BROWSER_FETCHES = {
    "a new worker registered": "navigator.serviceWorker.register('/app/sw.js?second', {scope: '/app/second/'})"
                               ".then(() => done('registered'), e => done('failed ' + e.name))",
    "the update check": "navigator.serviceWorker.ready.then(r => r.update())"
                        ".then(() => done('updated'), e => done('failed ' + e.name))",
}


@pytest.fixture
def probe_app(app, tmp_path):
    """The probe pages served at /app instead of the build."""
    for name, text in (("index.html", PAGE), ("probe.js", PROBE), ("sw.js", WORKER)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    app.config["COURIER_APP_DIR"] = str(tmp_path)
    return app


def _fetch(page, how: str) -> str:
    """Run one of the fetches in the page; what it said."""
    page.set_script_timeout(20)
    return page.execute_async_script("const done = arguments[arguments.length - 1];" +
                                     {**FETCHES, **BROWSER_FETCHES}[how])


def _stop_workers(page) -> None:
    """Stop every service worker of the browser, and wait until none runs (the next event starts a fresh one)."""
    from selenium.webdriver.support.ui import WebDriverWait

    page.execute_cdp_cmd("ServiceWorker.enable", {})
    page.execute_cdp_cmd("ServiceWorker.stopAllWorkers", {})
    WebDriverWait(page, 10).until(lambda driver: not [
        t for t in driver.execute_cdp_cmd("Target.getTargets", {})["targetInfos"] if t["type"] == "service_worker"])


def test_offline_means_nothing_reaches_the_server(page, live_server, probe_app):
    """Offline: every fetch fails and the server counts no request at all; online again: all three reach it."""
    open_app(page, live_server)
    wait_controlled(page)  # the first visit's worker claims the page
    try:
        set_offline(page, True)
        with count_requests(probe_app) as seen:
            answers = {how: _fetch(page, how) for how in FETCHES}
        assert seen == []
        assert answers == {"page": "failed TypeError", "worker answering the page": "failed TypeError",
                           "worker on its own": "failed TypeError"}
        # A worker that was not running when the network was cut: stopped, then woken by the page (as a
        # Background Sync wakes one), it starts already cut off; and the browser's own fetches for the page.
        _stop_workers(page)
        with count_requests(probe_app) as seen:
            woken = _fetch(page, "worker on its own")
            browser = {how: _fetch(page, how) for how in BROWSER_FETCHES}
            page.refresh()  # a navigation too: the worker does not answer it, the network is gone
        # The update check alone gets through: made by the browser process outside any target, neither the
        # targets' emulation nor DevTools' interception (browser-wide or the worker's) sees it.
        assert seen == [UPDATE_CHECK]
        assert woken == "failed TypeError"
        assert browser == {"a new worker registered": "failed TypeError", "the update check": "updated"}
    finally:
        set_offline(page, False)
    open_app(page, live_server, controlled=True)
    with count_requests(probe_app) as seen:
        answers = {how: _fetch(page, how) for how in FETCHES}
    assert answers == {how: "reached 404" for how in FETCHES}
    assert sorted(seen) == ["GET /app/from-page", "GET /app/from-worker", "GET /app/worker-alone"]
