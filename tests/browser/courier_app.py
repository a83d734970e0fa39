"""What the courier app's browser tests share: the build's check, a courier with a van and tasks made through the
dispatch API, opening the app, and cutting the browser off the network for real (page and service worker).

Cutting off (docs/decisions.md, "Issue 25: the platform"): in Chromium 156, DevTools' network emulation on the
page's target does NOT reach the service worker: a fetch the service worker makes (for the page's request it
answers, or on its own, as Background Sync does) still reaches the server. set_offline therefore applies the
same emulation to every service worker target too, through a session attached to it (Target.attachToTarget +
Target.sendMessageToTarget, the only way chromedriver's execute_cdp_cmd can reach another target).
count_requests is how a test proves that nothing got through.
"""
import json
import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP_SOURCE = os.path.join(ROOT, "courier-app")
DIST = os.path.join(APP_SOURCE, "dist")
BUILD = "cd courier-app && npm ci && npm run build"
DEPOT = "SH01"  # the demo's depot (server/demo.py)
_OFFLINE = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
_ONLINE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
_sessions: dict[int, list[str]] = {}  # per driver: the service worker sessions set_offline attached


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


def wait_controlled(page, timeout: float = 30) -> None:
    """Wait until a service worker controls the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, timeout).until(
        lambda driver: driver.execute_script("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)"))


def _service_workers(page) -> list[str]:
    """The target ids of the running service workers of the page's origin."""
    origin = page.execute_script("return location.origin")
    targets = page.execute_cdp_cmd("Target.getTargets", {})["targetInfos"]
    return [t["targetId"] for t in targets if t["type"] == "service_worker" and t["url"].startswith(origin + "/")]


def _send(page, session: str, method: str, params: dict) -> None:
    """A DevTools command to another target through its attached session (the answer is not read)."""
    page.execute_cdp_cmd("Target.sendMessageToTarget", {"sessionId": session, "message": json.dumps(
        {"id": uuid.uuid4().int % 2**31, "method": method, "params": params})})


def set_offline(page, offline: bool) -> None:
    """Cut the browser off the network (True) or give it back (False): the page and its service worker both.

    A stopped service worker is first woken (a message to the controller starts it), so that it has a target
    to attach to; one registered while offline is not cut: tests that need one register it before.
    """
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions", _OFFLINE if offline else _ONLINE)
    key = id(page)
    for session in _sessions.pop(key, []):
        _send(page, session, "Network.emulateNetworkConditions", _ONLINE)
        page.execute_cdp_cmd("Target.detachFromTarget", {"sessionId": session})
    if not offline:
        return
    from selenium.webdriver.support.ui import WebDriverWait

    if page.execute_script("const sw = navigator.serviceWorker; if (!(sw && sw.controller)) return false; "
                           "sw.controller.postMessage({type: 'fieldops-test-wake'}); return true;"):
        WebDriverWait(page, 10).until(lambda _driver: _service_workers(page))
    sessions = []
    for target in _service_workers(page):
        session = page.execute_cdp_cmd("Target.attachToTarget", {"targetId": target, "flatten": False})["sessionId"]
        _send(page, session, "Network.enable", {})
        _send(page, session, "Network.emulateNetworkConditions", _OFFLINE)
        sessions.append(session)
    _sessions[key] = sessions


@contextmanager
def count_requests(app):
    """Count the requests that reach the live server while the block runs: yields the list of their paths."""
    seen: list[str] = []
    inner = app.wsgi_app

    def counting(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        return inner(environ, start_response)

    app.wsgi_app = counting
    try:
        yield seen
    finally:
        app.wsgi_app = inner


def window_from_now(hours: float = 1, length: float = 2) -> dict:
    """A task window starting `hours` from now (for task_overrides)."""
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=length)).isoformat()}
