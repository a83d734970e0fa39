"""The access matrix: every route of the URL map × every caller, the expected status read from its declared roles.

Nothing here lists the protected routes: each (rule, method) of `app.url_map` is
called once by each caller, and what it must answer follows from the roles its
view declares (`server.auth.require`, the spec's `x-fieldops-roles`). A route
that declares no roles must be listed in PUBLIC, with what it answers, or the
test fails; so a new route cannot escape the matrix. Couriers are also checked
on ownership: courier A's own ids answer, courier B gets 404 for them (never a
403 that would say they exist).
"""
import hashlib
import re

import pytest

from schemas.vocab import STAFF_ROLES
from server.config import FailureLimit
from server.services import staff

# The order matters: a foreign caller goes before the owner, and non-admins before the
# admin whose call may change the object (a revoked token, a deactivated courier).
CALLERS = ("none", "bad_token", "revoked_device", "courier_b", "courier_a",
           *sorted(STAFF_ROLES, key=lambda role: role == "admin"))
AUTH_FAILURES = ("none", "bad_token", "revoked_device")

# Routes that declare no roles: what every caller (any token, or none) gets for the values below.
PUBLIC = {
    ("GET", "/healthz"): 200,
    ("GET", "/readyz"): 200,
    ("GET", "/static/<path:filename>"): 200,
    ("GET", "/api/v1/openapi.json"): 200,
    ("GET", "/api/v1/docs"): 200,
    ("GET", "/api/v1/docs/<path:filename>"): 200,
    ("GET", "/api/v1/receipts/keys"): 200,
    ("POST", "/api/v1/devices/enroll"): 422,  # an empty body; codes are limited (tests/api/test_auth_limits.py)
    ("GET", "/c/<token>"): 404,
    ("POST", "/c/<token>/confirm"): 404,
    ("POST", "/c/<token>/slot"): 404,
    ("POST", "/c/<token>/instructions"): 404,
    ("POST", "/c/<token>/consent"): 404,
    ("POST", "/c/<token>/consent/withdraw"): 404,
    ("POST", "/c/<token>/rating"): 404,
    ("GET", "/r/<token>"): 404,
    ("GET", "/r/<token>.json"): 404,
    ("GET", "/r/<token>/qr.<fmt>"): 404,
    ("POST", "/r/<token>/claim"): 404,
    ("POST", "/c/<token>/complaint"): 404,
    ("POST", "/r/<token>/complaint"): 404,
    # Loopback only unless FIELDOPS_METRICS_TOKEN is set (the test client calls from 127.0.0.1);
    # its refusals are tests/test_metrics.py's.
    ("GET", "/metrics"): 200,
    # They lead to the console (whose own routes are tests/console/test_access.py's).
    ("GET", "/"): 302,
    ("GET", "/dispatch"): 302,
    # The courier app's files (server/courier_app.py): the shell and its assets are public, as any web page's;
    # the app's data comes through the API with the device's token.
    ("GET", "/app"): 301,
    ("GET", "/app/"): 200,
    ("GET", "/app/<path:path>"): 200,
}
CONSOLE_PREFIX = "/console"
# Public routes' path values (links and receipt tokens that are not valid: a valid one is a capability).
PUBLIC_VALUES = {"/static/<path:filename>": {"filename": "customer.css"},
                 "/api/v1/docs/<path:filename>": {"filename": "swagger-ui.css"},
                 "/app/": {"path": "manifest.webmanifest"}, "/c/": {"token": "foc_not-a-link"}, "/r/": {"token": "for_" + "x" * 43}}

# Path parameters of courier routes: an owned one names courier A's object (courier B must get 404);
# a shared one is the same object for every courier. A new parameter on a courier route must be named here.
COURIER_OWNED = {"task_id"}
COURIER_SHARED = {"sha256"}
# Bodies with which the owner's call succeeds, so that the foreign caller's 404 is the ownership check.
OWNER_BODIES = {
    ("POST", "/api/v1/me/tasks/<task_id>/notes"): {"text": "at the gate"},
    ("POST", "/api/v1/me/tasks/<task_id>/arrive"): {"lat": 31.23, "lon": 121.47},
}
# Staff routes whose object belongs to another staff user: the roles that see it as missing (404).
STAFF_FOREIGN = {("POST", "/api/v1/admin/tokens/<int:token_id>/revoke"): {"dispatcher", "quality", "maintenance"}}

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def declared_roles(app, rule, method: str) -> tuple | None:
    """The roles the view of this rule and method requires (None: it declares none)."""
    view = app.view_functions[rule.endpoint]
    view_class = getattr(view, "view_class", None)
    func = getattr(view_class, method.lower(), None) if view_class else view
    return getattr(func, "_fieldops_roles", None)


def served(app) -> list[tuple[str, object]]:
    """Every (method, rule) of the URL map, without the HEAD and OPTIONS Flask adds on its own."""
    cells = []
    for rule in app.url_map.iter_rules():
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        implicit = {"OPTIONS"} | ({"HEAD"} if not hasattr(view_class, "head") else set())
        cells += [(method, rule) for method in sorted(rule.methods - implicit)]
    return sorted(cells, key=lambda cell: (cell[1].rule, cell[0]))


def _fill(rule: str, values: dict) -> str:
    """The rule with each placeholder replaced by its value."""
    return _PARAM.sub(lambda match: str(values[match.group(1)]), rule)


@pytest.fixture
def world(client, make, app):
    """Couriers A and B with a task each, a revoked device, a token per staff role, and real ids for staff routes."""
    # Every cell of the failing callers is a counted failure: the limits are tested in test_auth_limits.py.
    for setting in ("AUTH_TOKEN_FAILURES_PER_ADDRESS", "AUTH_TOKEN_FAILURES_PER_TOKEN",
                    "RECEIPT_TOKEN_FAILURES_PER_ADDRESS", "CUSTOMER_LINK_FAILURES_PER_ADDRESS"):
        app.config[setting] = FailureLimit(100_000, 300)
    courier_a, courier_b, courier_c = make.courier(), make.courier(), make.courier()
    device_a, device_b = make.device(courier_a), make.device(courier_b)
    revoked = make.device(courier_a, name="old handheld")
    dispatcher = make.headers("dispatcher")
    assert client.post(f"/api/v1/dispatch/devices/{revoked['device_id']}/revoke",
                       headers=dispatcher).status_code == 200
    task_a, task_c = make.task(courier=courier_a), make.task(courier=courier_c)
    device_c = make.device(courier_c)
    image = b"\x89PNG\r\n\x1a\nmatrix signature"
    sha256 = hashlib.sha256(image).hexdigest()
    upload = client.put(f"/api/v1/attachments/{sha256}", data=image, content_type="image/png",
                        headers={"Authorization": f"Bearer {device_a['token']}", "Fieldops-Protocol": "1"})
    assert upload.status_code == 201, upload.json
    victim, victim_token = staff.create(username="victim", role="dispatcher")
    code = client.post(f"/api/v1/dispatch/couriers/{courier_c['id']}/enrollments", headers=dispatcher).json["code"]
    link = client.post(f"/api/v1/dispatch/tasks/{task_c['id']}/customer-link", json={}, headers=dispatcher)
    assert link.status_code == 201, link.json
    tokens = {"none": None, "bad_token": "fos_" + "b" * 43, "revoked_device": revoked["token"],
              "courier_a": device_a["token"], "courier_b": device_b["token"],
              **{role: make.token(role) for role in STAFF_ROLES}}
    staff_values = {"courier_id": courier_c["id"], "vehicle_id": make.vehicle()["id"], "task_id": task_c["id"],
                    "device_id": device_c["device_id"], "staff_id": victim.id, "token_id": victim.tokens[0].id,
                    "link_id": re.search(r"customer-links/([^/]+)/", link.json["qr_png"]).group(1), "code": code, "fmt": "png", "sha256": sha256,
                    "name": "sync-maintain", "figure": "on_time_delivery", "number": "FO-20000101-00001",
                    "template_id": "k-none", "subscription_id": "w-none", "conflict_id": 999999,
                    "defect_id": 999999, "complaint_id": 999999, "entry_id": 999999, "delivery_id": 999999,
                    "parcel_id": 999999,
                    "claim_id": 999999, "incident_id": 999999,
                    "course_id": 999999, "session_id": 999999, "inspection_id": 999999, "violation_id": 999999,
                    "exception_id": 999999, "depot": "NO-DEPOT"}
    courier_values = {"task_id": task_a["id"], "sha256": sha256}
    return {"tokens": tokens, "staff": staff_values, "courier": courier_values,
            "victim_token": victim_token}


def _request(client, method: str, url: str, token: str | None, body: dict):
    """One cell's request: the protocol header a handheld sends, the caller's token if any."""
    headers = {"Fieldops-Protocol": "1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.open(url, method=method, json=body, headers=headers)


def _problem(response, method: str, code: str) -> str | None:
    """Why an error answer is not the problem+json of this code (HEAD answers carry no body)."""
    if method == "HEAD":
        return None
    if response.mimetype != "application/problem+json" or (response.json or {}).get("code") != code:
        return f"not problem+json {code!r}: {response.mimetype} {response.get_data(as_text=True)[:120]!r}"
    return None


def _judge(status: int, response, *, method: str, caller: str, roles: tuple | None, owned: bool,
           foreign_roles: set, public: int | None) -> str | None:
    """What is wrong with this answer for this caller, or None."""
    if status >= 500:
        return f"{status} (a server error)"
    if roles is None:
        return None if status == public else f"{status}, expected {public} as for anyone"
    if caller in AUTH_FAILURES:
        return (f"{status}, expected 401" if status != 401 else _problem(response, method, "unauthorized"))
    role = "courier" if caller.startswith("courier_") else caller
    if role not in roles:
        return f"{status}, expected 403" if status != 403 else _problem(response, method, "forbidden")
    if caller == "courier_b" and owned or caller in foreign_roles:
        return None if status == 404 else f"{status}, expected 404 for another's object"
    if caller == "courier_a" and owned:
        return None if status < 300 else f"{status}, expected success for its own object"
    return f"{status}, refused an allowed role" if status in (401, 403) else None


def test_every_route_times_every_caller(app, client, world, tmp_path):
    """One request per (route, method, caller); statuses follow the declared roles; couriers never see others'."""
    # A build of the courier app of its own: the same answers whether or not courier-app/dist was built.
    for name in ("index.html", "manifest.webmanifest"):
        (tmp_path / name).write_text("{}")
    app.config["COURIER_APP_DIR"] = str(tmp_path)
    problems, counted, denied = [], 0, 0
    # The console (cookie sessions, not bearer tokens) has its own matrix: tests/console/test_access.py.
    cells = [(method, rule) for method, rule in served(app) if not rule.rule.startswith(CONSOLE_PREFIX)]
    undeclared = [f"{method} {rule.rule}" for method, rule in cells
                  if declared_roles(app, rule, method) is None and (method, rule.rule) not in PUBLIC]
    assert not undeclared, f"routes with no declared roles and not listed as public: {undeclared}"
    stale = set(PUBLIC) - {(method, rule.rule) for method, rule in cells}
    assert not stale, f"PUBLIC lists routes the app does not serve: {stale}"
    for method, rule in cells:
        roles = declared_roles(app, rule, method)
        params = set(rule.arguments)
        courier_route = roles is not None and "courier" in roles
        if courier_route:
            unknown = params - COURIER_OWNED - COURIER_SHARED
            assert not unknown, f"{method} {rule.rule}: say whether {unknown} is courier-owned or shared"
        owned = courier_route and bool(params & COURIER_OWNED)
        if owned:
            assert (method, rule.rule) in OWNER_BODIES or method in ("GET", "HEAD"), \
                f"{method} {rule.rule}: add a body with which the owner succeeds to OWNER_BODIES"
        body = OWNER_BODIES.get((method, rule.rule), {})
        for caller in CALLERS:
            if roles is None:
                values = next((v for prefix, v in PUBLIC_VALUES.items() if rule.rule.startswith(prefix)), {})
                values = {"fmt": "png", **values}
            elif caller.startswith("courier_") and courier_route:
                values = world["courier"]
            else:
                values = world["staff"]
            url = _fill(rule.rule, values)
            response = _request(client, method, url, world["tokens"][caller], body)
            counted += 1
            denied += response.status_code in (401, 403) or (owned and caller == "courier_b")
            wrong = _judge(response.status_code, response, method=method, caller=caller, roles=roles,
                           owned=owned, foreign_roles=STAFF_FOREIGN.get((method, rule.rule), set()),
                           public=PUBLIC.get((method, rule.rule)))
            if wrong:
                problems.append(f"{method} {rule.rule} as {caller}: {wrong}")
    print(f"\naccess matrix: {len(cells)} routes x {len(CALLERS)} callers = {counted} requests, "
          f"{denied} denied (401/403, or 404 for another courier's task)")
    assert not problems, "\n".join(problems)
    # The owner of the revoked token is still refused: the admin's call revoked it, the 404s did not.
    assert _request(client, "GET", "/api/v1/dispatch/tasks", world["victim_token"], {}).status_code == 401


def test_spec_states_the_roles_each_route_enforces(app, client):
    """The spec's x-fieldops-roles are the roles the views enforce; a public operation says it needs no token."""
    spec = client.get("/api/v1/openapi.json").json
    mismatched = []
    for method, rule in served(app):
        if not rule.rule.startswith("/api/v1/") or (method, rule.rule) in PUBLIC and rule.rule.endswith(
                ("openapi.json", "/docs", "<path:filename>")):
            continue
        operation = spec["paths"][_PARAM.sub(r"{\1}", rule.rule)][method.lower()]
        roles = declared_roles(app, rule, method)
        stated = operation.get("x-fieldops-roles")
        if (list(roles) if roles else None) != stated or (roles is None and operation.get("security") != []):
            mismatched.append(f"{method} {rule.rule}: enforces {roles}, spec says {stated}")
    assert not mismatched, "\n".join(mismatched)
