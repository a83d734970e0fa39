"""What the courier app's browser tests share: the build's check, a courier with a van and tasks made through the
dispatch API, opening the app, and cutting the browser off the network for real (page and service worker).

Cutting off (docs/decisions.md, "Issue 25: the offline switch"): DevTools' network emulation is per target, and a
target that starts later (a Background Sync waking a stopped service worker, a new version, another tab) would escape
a cut made on the targets running now. set_offline therefore keeps a DevTools connection of its own to the browser
target (chromedriver's execute_cdp_cmd reaches the page's session only and gives no events): every target, present
and future, is attached and held at its start until the emulation of the moment is applied; while offline, DevTools'
interception (browser-wide and each worker's) fails whatever still gets that far. The one request it cannot stop is
the browser's own update check of a registered worker's script (UPDATE_CHECK). count_requests, and set_offline given
the app, are how a test proves that nothing else got through.
"""
import itertools
import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from urllib.request import urlopen

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_SOURCE = os.path.join(ROOT, "courier-app")
DIST = os.path.join(APP_SOURCE, "dist")
BUILD = "cd courier-app && npm ci && npm run build"
DEPOT = "SH01"  # the demo's depot (server/demo.py)
_OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
_INTERCEPTED = ("service_worker", "shared_worker")  # their requests failed by interception too while offline
_ONLINE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


def require_app() -> None:
    """Skip the calling module when courier-app/dist is not built (saying how to build it), or fail it under
    FIELDOPS_REQUIRE_BROWSER=1 (as in .ci/run, which builds it first)."""
    if os.path.isfile(os.path.join(DIST, "index.html")):
        return
    reason = f"the courier app is not built ({DIST}/index.html missing): run `{BUILD}` (scripts/test.sh does)"
    if os.environ.get("FIELDOPS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"app browser tests required (FIELDOPS_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


def use_build(app) -> None:
    """Serve this checkout's build at /app (the test config may name another folder)."""
    app.config["COURIER_APP_DIR"] = DIST


def courier_with_day(make, *, tasks: int = 3, templates: bool = True, **task_overrides) -> dict:
    """A courier of depot SH01 with a van of their own and `tasks` tasks assigned, all through the dispatch HTTP
    API (as the demo's first courier), and a fresh enrollment code for them.

    Returns {"courier", "van", "tasks", "code"}. templates=True also puts the default checklist templates in
    place (reference data the migrations seed and the test fixtures wipe) so that a shift can start.
    """
    courier = make.courier(depot=DEPOT)
    van = make.vehicle(kind="van")
    answer = make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                               headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    if templates:
        from server.services import checklists
        checklists.seed_defaults()
    made = [make.task(courier=courier, **task_overrides) for _ in range(tasks)]
    return {"courier": courier, "van": answer.json, "tasks": made, "code": enrollment_code(make, courier)}


def enrollment_code(make, courier: dict) -> str:
    """A fresh single-use enrollment code for the courier (POST /dispatch/couriers/{id}/enrollments)."""
    answer = make.client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                              headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    return answer.json["code"]


def app_link(live_server: str, code: str) -> str:
    """The app link an enrollment QR of the demo carries: the app opens already holding the code."""
    return f"{live_server}/app/#/enroll?code={code}"


def open_app(page, live_server: str, path: str = "/", *, controlled: bool = False):
    """Open the app at a hash route (the shell loaded, its script run); controlled=True also waits until the
    service worker controls the page (a first visit installs it and clients.claim() takes the page)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page.get(f"{live_server}/app/#{path}")
    WebDriverWait(page, 30).until(lambda driver: driver.execute_script(
        "return document.readyState === 'complete' && !!document.getElementById('view')"))
    if controlled:
        wait_controlled(page)
    return page.find_element(By.ID, "view")


def click(page, css: str, timeout: float = 30) -> None:
    """Click an element (scrolled into view first), found again if the screen redrew itself between finding and clicking (a sync's news
    redraws the bar and the screen: the element found a moment ago is then stale)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def once(driver) -> bool:
        element = driver.find_element(By.CSS_SELECTOR, css)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()
        return True
    WebDriverWait(page, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(once)


def wait_controlled(page, timeout: float = 30) -> None:
    """Wait until a service worker controls the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, timeout).until(
        lambda driver: driver.execute_script("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)"))


def service_workers(page) -> list[str]:
    """The target ids of the running service workers of the page's origin."""
    origin = page.execute_script("return location.origin")
    targets = page.execute_cdp_cmd("Target.getTargets", {})["targetInfos"]
    return [t["targetId"] for t in targets if t["type"] == "service_worker" and t["url"].startswith(origin + "/")]


class _NetworkCut:
    """A DevTools connection of the tests' own to the browser target, cutting every target off the network.

    chromedriver's execute_cdp_cmd talks to the page's session only and hands back no events, so a worker that
    starts later (a Background Sync waking a stopped service worker, a new version installing, a new tab) would
    escape a cut made on the targets running now. This connection asks the browser to attach it to every target,
    present and future (Target.setAutoAttach on the browser target, flatten, waitForDebuggerOnStart): a new
    target is held before its first line runs until the network emulation of the moment is applied to it
    (Network.enable + Network.emulateNetworkConditions), then let go (Runtime.runIfWaitingForDebugger).
    """

    def __init__(self, driver):
        import websocket  # selenium's own dependency (websocket-client)

        address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        with urlopen(f"http://{address}/json/version", timeout=10) as answer:
            url = json.load(answer)["webSocketDebuggerUrl"]
        self.socket = websocket.create_connection(url, timeout=None, suppress_origin=True)
        self.offline = False
        self.sessions: dict[str, str] = {}  # session id -> target type
        self.attached: list[dict] = []  # every target attached (for the tests' own checks)
        self.failed: list[str] = []  # the requests the browser-wide interception failed
        self.counting = None  # (app, its wsgi_app, the requests seen) while set_offline counts
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.answers: dict[int, threading.Event] = {}
        threading.Thread(target=self._read, daemon=True).start()
        self.call("Target.setDiscoverTargets", {"discover": True})
        self.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True})

    def send(self, method: str, params: dict, session: str | None = None) -> threading.Event:
        """Send a command (to a target's session when given); the event set when it is answered."""
        number = next(self.ids)
        message = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        answered = self.answers[number] = threading.Event()
        self.socket.send(json.dumps(message))
        return answered

    def call(self, method: str, params: dict, session: str | None = None) -> None:
        """Send a command and wait for its answer (whatever it is)."""
        if not self.send(method, params, session).wait(10):
            raise TimeoutError(f"DevTools did not answer {method}")

    def _conditions(self) -> dict:
        return _OFFLINE if self.offline else _ONLINE

    def _read(self) -> None:
        """Answers and events, until the browser goes: a new target gets the emulation, then runs."""
        while True:
            try:
                message = json.loads(self.socket.recv())
            except Exception:  # the browser quit: nothing left to cut
                return
            if "id" in message:
                event = self.answers.pop(message["id"], None)
                if event:
                    event.set()
            elif message.get("method") == "Target.attachedToTarget":
                params = message["params"]
                session, info = params["sessionId"], params["targetInfo"]
                with self.lock:
                    self.sessions[session] = info["type"]
                    self.attached.append({"type": info["type"], "url": info["url"],
                                          "waiting": params["waitingForDebugger"]})
                    # One session's commands run in order: the emulation is in place before the target runs.
                    self.send("Network.enable", {}, session)
                    self.send("Network.emulateNetworkConditions", self._conditions(), session)
                    if self.offline and info["type"] in _INTERCEPTED:
                        self.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
                if params["waitingForDebugger"]:
                    self.send("Runtime.runIfWaitingForDebugger", {}, session)
            elif message.get("method") == "Fetch.requestPaused":
                # Only while offline is the browser's interception on: every request that still got this far
                # (the browser's own, for a service worker's script) fails as a cut network fails it.
                self.failed.append(message["params"]["request"]["url"])
                self.send("Fetch.failRequest", {"requestId": message["params"]["requestId"],
                                                "errorReason": "InternetDisconnected"}, message.get("sessionId"))
            elif message.get("method") == "Target.detachedFromTarget":
                with self.lock:
                    self.sessions.pop(message["params"]["sessionId"], None)

    def set(self, offline: bool) -> None:
        """The emulation for every attached target, and for every one attached from now on."""
        # First the browser-wide interception (the browser's own requests, which no target's emulation covers).
        if offline:
            self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        else:
            self.call("Fetch.disable", {})
        with self.lock:
            self.offline = offline
            answers = [self.send("Network.emulateNetworkConditions", self._conditions(), session)
                       for session in self.sessions]
            answers += [self.send("Fetch.enable" if offline else "Fetch.disable",
                                  {"patterns": [{"urlPattern": "*"}]} if offline else {}, session)
                        for session, kind in self.sessions.items() if kind in _INTERCEPTED]
        for answered in answers:
            answered.wait(10)


def network_cut(page) -> _NetworkCut:
    """The driver's cut (made at the first call: from then on every new target is held until it is covered)."""
    cut = getattr(page, "_fieldops_network_cut", None)
    if cut is None:
        cut = page._fieldops_network_cut = _NetworkCut(page)
    return cut


def set_offline(page, offline: bool, app=None) -> None:
    """Cut the browser off the network (True) or give it back (False): the page, its service workers and every
    target that starts while offline (a worker woken by Background Sync, a new version, another tab).

    Given the live server's app, the cut is also proved: every request reaching it is counted until the network is
    given back, and giving it back asserts that nothing got through (assert_nothing_got_through).
    """
    cut = network_cut(page)
    if not offline and cut.counting:
        app, inner, seen = cut.counting
        cut.counting = None
        app.wsgi_app = inner
        _set(page, cut, False)
        assert_nothing_got_through(seen)
        return
    _set(page, cut, offline)
    if offline and app is not None and not cut.counting:
        seen: list[str] = []
        inner = app.wsgi_app

        def counting(environ, start_response):
            seen.append(_request(environ))
            return inner(environ, start_response)

        cut.counting = (app, inner, seen)
        app.wsgi_app = counting


def _set(page, cut: _NetworkCut, offline: bool) -> None:
    cut.set(offline)
    # The page's own session too (chromedriver's): navigator.onLine and the online/offline events follow it.
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions", _OFFLINE if offline else _ONLINE)


def _request(environ) -> str:
    """A request as count_requests lists it."""
    return (f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
            + (" (update check)" if environ.get("HTTP_SERVICE_WORKER") == "script" else ""))


UPDATE_CHECK = "GET /app/sw.js (update check)"


@contextmanager
def count_requests(app):
    """Count the requests that reach the live server while the block runs: yields the list of them ("METHOD
    /path"; a service worker's script fetched by the browser for an already registered worker is UPDATE_CHECK)."""
    seen: list[str] = []
    inner = app.wsgi_app

    def counting(environ, start_response):
        seen.append(_request(environ))
        return inner(environ, start_response)

    app.wsgi_app = counting
    try:
        yield seen
    finally:
        app.wsgi_app = inner


def assert_nothing_got_through(seen: list[str]) -> None:
    """While offline, no request reached the server but the browser's own update check of the app's worker: the
    one fetch DevTools cannot cut (docs/decisions.md, "Issue 25: the offline switch"). It changes nothing."""
    assert [request for request in seen if request != UPDATE_CHECK] == [], f"reached the server offline: {seen}"


def window_from_now(hours: float = 1, length: float = 2) -> dict:
    """A task window starting `hours` from now (for task_overrides)."""
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=length)).isoformat()}
