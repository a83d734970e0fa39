"""Auth-failure limits: failures are limited per address and per credential; valid tokens never are."""
from datetime import timedelta

from sqlalchemy import event, func, select

from server import create_app
from server.auth import authenticate
from server.clock import utcnow
from server import config
from server.config import FailureLimit
from server.extensions import db
from server.models import AuthFailure


def _enrollment_code(client, make) -> str:
    """A fresh enrollment code for a new courier."""
    response = client.post(f"/api/v1/dispatch/couriers/{make.courier()['id']}/enrollments",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201
    return response.json["code"]


def _enroll(client, code: str, address: str = "127.0.0.1"):
    """POST /devices/enroll from an address."""
    return client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "PDA"},
                       environ_base={"REMOTE_ADDR": address})


def _bearer(token: str) -> dict:
    """Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def test_looping_revoked_handheld_never_locks_out_valid_callers_on_its_address(client, make):
    """A revoked handheld retrying forever gets 429 itself; a dispatcher and a good handheld on its NAT go on."""
    dispatcher = make.headers("dispatcher")
    courier = make.courier()
    revoked, good = make.device(courier), make.device(courier)
    assert client.post(f"/api/v1/dispatch/devices/{revoked['device_id']}/revoke",
                       headers=dispatcher).status_code == 200
    statuses = []
    for _ in range(40):
        statuses.append(client.get("/api/v1/me/tasks", headers=_bearer(revoked["token"])).status_code)
        assert client.get("/api/v1/dispatch/tasks", headers=dispatcher).status_code == 200
        assert client.get("/api/v1/me/tasks", headers=_bearer(good["token"])).status_code == 200
    assert statuses == [401] * 10 + [429] * 30
    limited = client.get("/api/v1/me/tasks", headers=_bearer(revoked["token"]))
    assert limited.json["code"] == "rate_limited" and limited.json["limit"] == "token_failures_per_token"
    assert 0 < int(limited.headers["Retry-After"]) <= 300
    # Its refused retries were not counted: the address still has budget for others' mistakes.
    assert client.get("/api/v1/me/tasks", headers=_bearer("fod_another-bad-token")).status_code == 401
    assert db.session.scalar(select(func.count()).select_from(AuthFailure)) == 2 * 10 + 2


def test_token_guesser_is_limited_per_address_but_valid_tokens_pass(client, app, make):
    """Many different bad tokens from one address: 429 for bad ones there only; good tokens still served."""
    app.config["AUTH_TOKEN_FAILURES_PER_ADDRESS"] = FailureLimit(5, 300)
    dispatcher = make.headers("dispatcher")
    for n in range(5):
        assert client.get("/api/v1/dispatch/tasks", headers=_bearer(f"fos_guess-{n}")).status_code == 401
    assert client.get("/api/v1/dispatch/tasks").status_code == 429  # no token at all: also a failure
    limited = client.get("/api/v1/dispatch/tasks", headers=_bearer("fos_guess-next"))
    assert limited.status_code == 429 and limited.json["limit"] == "token_failures_per_address"
    assert limited.mimetype == "application/problem+json"
    assert 0 < int(limited.headers["Retry-After"]) <= 300
    assert client.get("/api/v1/dispatch/tasks", headers=dispatcher).status_code == 200
    other = client.get("/api/v1/dispatch/tasks", headers=_bearer("fos_guess-next"),
                       environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 401


def test_enrollment_code_guesser_is_stopped_even_when_right(client, make):
    """Ten wrong codes from an address in 15 minutes, then 429 even for the right code; other addresses enroll."""
    code = _enrollment_code(client, make)
    for n in range(10):
        assert _enroll(client, f"WRONGCODE{n + 2}").status_code == 404
    refused = _enroll(client, code)
    assert refused.status_code == 429 and refused.json["limit"] == "enroll_failures_per_address"
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert _enroll(client, code, address="10.1.1.1").status_code == 201


def test_one_wrong_code_retried_is_stopped_per_code_before_the_address_budget(client, make):
    """A mistyped code retried in a loop (any spelling) is refused after 3; the depot can still enroll."""
    code = _enrollment_code(client, make)
    assert [_enroll(client, spelling).status_code for spelling in ("WRONG23456", "wrong23456", "WRONG-23456")] \
        == [404, 404, 404]
    for address in ("127.0.0.1", "10.2.2.2"):
        refused = _enroll(client, "WRONG23456", address=address)
        assert refused.status_code == 429 and refused.json["limit"] == "enroll_failures_per_code"
    assert _enroll(client, code).status_code == 201


def test_failure_rows_are_bounded_and_expire(client, app):
    """Old failures are deleted and no longer count; refused attempts add no rows."""
    app.config["AUTH_TOKEN_FAILURES_PER_TOKEN"] = FailureLimit(2, 60)
    long_ago = utcnow() - timedelta(hours=2)
    db.session.add_all([AuthFailure(key="auth:10.0.0.1", at=long_ago) for _ in range(3)])
    db.session.commit()
    for _ in range(5):
        client.get("/api/v1/dispatch/tasks", headers=_bearer("fos_same-bad"))
    keys = db.session.scalars(select(AuthFailure.key)).all()
    assert len(keys) == 4 and "auth:10.0.0.1" not in keys
    db.session.execute(AuthFailure.__table__.update().values(at=utcnow() - timedelta(seconds=61)))
    db.session.commit()
    assert client.get("/api/v1/dispatch/tasks", headers=_bearer("fos_same-bad")).status_code == 401


def test_a_valid_token_costs_one_query(app, make):
    """Resolving a good token is one SELECT: failures are only counted for failing requests."""
    token = make.token("dispatcher")
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with app.test_request_context("/api/v1/dispatch/tasks", headers=_bearer(token)):
            assert authenticate().role == "dispatcher"
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1 and "auth_failures" not in statements[0]


def test_proxy_hops_choose_which_address_is_limited(app, database_url, tmp_path, monkeypatch):
    """Behind one trusted proxy the X-Forwarded-For client is limited; with none the header is ignored."""
    monkeypatch.setenv("FIELDOPS_PROXY_HOPS", "1")
    behind_proxy = create_app(config.TestConfig(database_url, str(tmp_path)))
    for current in (behind_proxy, app):
        current.config["AUTH_TOKEN_FAILURES_PER_ADDRESS"] = FailureLimit(2, 300)

    def status(client, forwarded_for):
        return client.get("/api/v1/dispatch/tasks", headers={"X-Forwarded-For": forwarded_for}).status_code

    proxied = behind_proxy.test_client()
    with behind_proxy.app_context():
        assert [status(proxied, "203.0.113.5") for _ in range(3)] == [401, 401, 429]
        assert status(proxied, "203.0.113.6") == 401
        keys = set(db.session.scalars(select(AuthFailure.key)))
        db.session.remove()
        db.engine.dispose()
    assert keys == {"auth:203.0.113.5", "auth:203.0.113.6"}
    db.session.execute(AuthFailure.__table__.delete())
    db.session.commit()
    direct = app.test_client()
    assert [status(direct, f"203.0.113.{n}") for n in range(3)] == [401, 401, 429]
    assert set(db.session.scalars(select(AuthFailure.key))) == {"auth:127.0.0.1"}
