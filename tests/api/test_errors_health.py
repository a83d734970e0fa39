"""Errors are problem+json everywhere; health and readiness probes; the OpenAPI spec."""
import os

import pytest


def test_malformed_json_is_a_problem_not_500(client, make):
    """Broken JSON is a 400 problem with a stable code."""
    response = client.post("/api/v1/dispatch/tasks", data="{not json", content_type="application/json",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "invalid_json"
    for key in ("type", "title", "status", "detail", "code", "request_id"):
        assert key in response.json


def test_body_too_large_is_413(client, make):
    """Past the configured 1 MB limit the body is refused before it is parsed."""
    response = client.post("/api/v1/dispatch/tasks", json={"pad": "x" * (1024 * 1024)},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 413 and response.json["code"] == "body_too_large"


def _target(path: str, length: int) -> str:
    """path with a query that makes the request target exactly `length` characters."""
    return f"{path}?pad={'x' * (length - len(path) - len('?pad='))}"


def test_an_overlong_url_is_a_414_problem_before_anything_else(client, app, make):
    """Past the app's URI limit (path and query, as sent): 414 uri_too_long, before routing, credentials and body.
    At the limit the request goes on as usual."""
    limit = app.config["URI_LIMIT"]
    for method, path, headers in (("GET", "/api/v1/me/tasks", {}), ("GET", "/api/v1/nowhere", {}),
                                  ("POST", "/api/v1/dispatch/tasks", make.headers("dispatcher"))):
        response = client.open(_target(path, limit + 1), method=method, headers=headers, json={})
        assert response.status_code == 414, (path, response.status_code)
        assert response.mimetype == "application/problem+json" and response.json["code"] == "uri_too_long"
        assert str(limit) in response.json["detail"]
    # At the limit it goes on: to the first check after the length, the query's (pad is no parameter of it).
    at_limit = client.get(_target("/api/v1/me/tasks", limit)).json
    assert at_limit["code"] == "validation_failed" and list(at_limit["fields"]) == ["pad"]
    assert client.get("/api/v1/dispatch/tasks/" + "t" * limit, headers=make.headers("dispatcher")).status_code == 414
    # The receipt page's machine form answers the same problem; its human form a page with the same status.
    assert client.get(f"/r/for_{'A' * limit}.json").json["code"] == "uri_too_long"
    assert client.get(f"/r/for_{'A' * limit}").status_code == 414


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/api/v1/nowhere", 404, "not_found"),
    ("DELETE", "/api/v1/dispatch/tasks", 405, "method_not_allowed"),
])
def test_routing_errors_are_problems(client, method, path, status, code):
    """Unknown routes and methods answer problem+json too."""
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json" and response.json["code"] == code


def test_request_id_is_echoed(client):
    """A caller's request id comes back, or one is made."""
    assert client.get("/healthz", headers={"X-Request-Id": "abc12345"}).headers["X-Request-Id"] == "abc12345"
    assert len(client.get("/healthz").headers["X-Request-Id"]) == 32


def test_health_and_readiness(app, client):
    """Liveness is trivial; readiness names each check: the database reads and takes a write (rolled back: no
    row kept), its migrations are at head, the attachment store takes a file (deleted again)."""
    from sqlalchemy import func, select

    from server.extensions import db
    from server.models import SyncState

    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ok", "database": "ok", "migrations": "head", "storage": "ok"}
    assert not db.session.scalar(select(func.count()).select_from(SyncState).where(SyncState.key.like("readyz%")))
    assert not [name for name in os.listdir(app.config["ATTACHMENTS_DIR"]) if name.startswith(".readyz")]


def test_a_busy_database_is_still_ready(app, client, make):
    """Readiness waits for the writer like any write and counts contention as ready (every host shares it, and every
    writer rides it out): SQLite, with the write lock held past a writer's wait, says 200 "busy"; PostgreSQL's probe
    writes a row of its own, which no lock on the device or the tasks holds up."""
    from tests.sync.test_busy import _short_waits, _writer_held

    with _short_waits(app), _writer_held(make.device(make.courier())["device_id"]):
        ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["database"] == ("busy" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "ok")


def test_readiness_reports_schema_behind(client, app):
    """A database not at the migrations' head is not ready."""
    from sqlalchemy import text

    from server.extensions import db
    with db.engine.begin() as conn:
        head = conn.scalar(text("SELECT version_num FROM alembic_version"))
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json["migrations"] == "behind"
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})


def test_openapi_spec_lists_the_contract(client):
    """The spec is served and documents the main routes and the problem schema."""
    spec = client.get("/api/v1/openapi.json").json
    for path in ("/api/v1/dispatch/tasks", "/api/v1/devices/enroll", "/api/v1/me/tasks"):
        assert path in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]


@pytest.mark.parametrize("keep_fails", [False, True], ids=["kept", "keep fails"])
def test_a_refusal_over_http_keeps_only_what_it_keeps(app, make, caplog, keep_fails):
    """No route reaches a rule with a keep today; the handler still rolls back the half-made change and keeps the rest."""
    from server.errors import RuleViolation, handle_domain_error
    from server.extensions import db
    from server.models import Task

    task_id = make.task()["id"]

    def keep():
        """What the refusal leaves behind: a flag for dispatch."""
        db.session.get(Task, task_id).needs_review = True
        if keep_fails:
            raise RuntimeError("disk full")

    with app.test_request_context("/api/v1/dispatch/tasks"):
        db.session.get(Task, task_id).gift_description = "half-made"
        response = handle_domain_error(RuleViolation("Refused.", code="some_rule", keep=keep))
        assert response.status_code == 422 and response.json["code"] == "some_rule"
    db.session.expire_all()
    stored = db.session.get(Task, task_id)
    assert stored.gift_description is None and stored.needs_review is (not keep_fails)
    assert ("could not keep" in caplog.text) is keep_fails


def test_a_refusal_s_facts_cannot_overwrite_the_problem_s_own_members():
    """A claim's or an incident's status beside the problem's: `status` is the HTTP status (RFC 9457), so a
    refusal that would put an entity's status there is a programming error, caught where it is raised."""
    import pytest

    from server.errors import Conflict

    for member in ("status", "code", "title", "detail", "type", "fields", "instance"):
        with pytest.raises(ValueError, match=member):
            Conflict("wrong status", code="x_wrong_status", extra={member: "confirmed"})
    assert Conflict("wrong status", extra={"claim_status": "paid"}).extra == {"claim_status": "paid"}
