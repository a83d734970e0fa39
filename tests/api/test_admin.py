"""Admin routes and CLI: staff, their tokens (shown once, last use, revocation) and the audit log."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select, update

from server.clock import utcnow
from server.extensions import db
from server.ids import hash_secret
from server.models import ApiToken, AuditEntry
from server.qr import qr_text

STAFF = "/api/v1/admin/staff"
TOKENS = "/api/v1/admin/tokens"
AUDIT = "/api/v1/admin/audit"


def _bearer(token: str) -> dict:
    """Authorization header for a raw token."""
    return {"Authorization": f"Bearer {token}"}


def _row(token: str) -> ApiToken:
    """The stored row of a raw token, freshly read."""
    db.session.expire_all()
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(token)))


def _works(client, token: str) -> int:
    """Status of a request any staff role may make with the token."""
    return client.get(TOKENS, headers=_bearer(token)).status_code


def _create(client, make, username: str, role: str):
    """Create a staff user through the API as admin."""
    return client.post(STAFF, json={"username": username, "role": role}, headers=make.headers("admin"))


def test_admin_creates_staff_whose_token_is_shown_once_and_works(client, make):
    """The answer carries the first token; it works; no later answer shows it or any hash."""
    response = _create(client, make, "ops.lead", "dispatcher")
    assert response.status_code == 201, response.json
    token, user = response.json["token"], response.json["staff"]
    assert token.startswith("fos_") and user["username"] == "ops.lead" and user["role"] == "dispatcher"
    assert [t["label"] for t in user["tokens"]] == ["first"]
    assert client.get("/api/v1/dispatch/tasks", headers=_bearer(token)).status_code == 200
    for path in (STAFF, TOKENS, AUDIT):
        later = client.get(path, headers=make.headers("admin"))
        assert later.status_code == 200
        assert token not in later.get_data(as_text=True)
        assert hash_secret(token) not in later.get_data(as_text=True)
        assert "token_hash" not in later.get_data(as_text=True)
    listed = client.get(STAFF, headers=make.headers("admin")).json["items"]
    assert {"ops.lead", _row(make.token("admin")).staff.username} == {u["username"] for u in listed}


@pytest.mark.parametrize("body,field", [
    ({"username": "x", "role": "superuser"}, "role"),
    ({"username": "", "role": "admin"}, "username"),
    ({"username": "has space", "role": "admin"}, "username"),
    ({"username": "a" * 65, "role": "admin"}, "username"),
    ({"role": "admin"}, "username"),
    ({"username": "x", "role": "admin", "token": "fos_mine"}, "token"),
])
def test_bad_staff_input_is_a_422_problem(client, make, body, field):
    """Unknown role, bad username, missing or unknown fields: 422 naming the field."""
    response = client.post(STAFF, json=body, headers=make.headers("admin"))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.json["fields"]


def test_duplicate_username_is_a_409(client, make):
    """A username is taken once; the second try changes nothing."""
    assert _create(client, make, "dup", "quality").status_code == 201
    again = _create(client, make, "dup", "admin")
    assert again.status_code == 409 and again.json["code"] == "duplicate_username"
    users = client.get(STAFF, headers=make.headers("admin")).json["items"]
    assert [u["role"] for u in users if u["username"] == "dup"] == ["quality"]


def test_admin_issues_another_token_shown_once(client, make):
    """A labelled token for a user: usable, listed with label and issuer, never shown again."""
    user = _create(client, make, "night", "maintenance").json["staff"]
    response = client.post(f"{STAFF}/{user['id']}/tokens", json={"label": "tablet 3"},
                           headers=make.headers("admin"))
    assert response.status_code == 201, response.json
    token, issued = response.json["token"], response.json["api_token"]
    assert issued["label"] == "tablet 3" and issued["staff_id"] == user["id"]
    assert issued["created_by"] == _row(make.token("admin")).staff_id
    assert issued["revoked_at"] is None and issued["last_used_at"] is None
    assert _works(client, token) == 200
    listed = client.get(TOKENS, headers=make.headers("admin"))
    assert token not in listed.get_data(as_text=True)
    assert issued["id"] in {t["id"] for t in listed.json["items"]}
    unlabelled = client.post(f"{STAFF}/{user['id']}/tokens", json={}, headers=make.headers("admin"))
    assert unlabelled.status_code == 201 and unlabelled.json["api_token"]["label"] is None
    assert unlabelled.json["token"] != token


def test_issuing_for_unknown_staff_or_with_bad_label_fails(client, make):
    """No such user: 404; a label too long: 422."""
    missing = client.post(f"{STAFF}/s-none/tokens", json={}, headers=make.headers("admin"))
    assert missing.status_code == 404 and missing.json["code"] == "staff_not_found"
    user_id = _row(make.token("quality")).staff_id
    long = client.post(f"{STAFF}/{user_id}/tokens", json={"label": "x" * 65}, headers=make.headers("admin"))
    assert long.status_code == 422 and "label" in long.json["fields"]


def test_staff_see_their_own_tokens_and_admin_sees_all(client, make):
    """Non-admins list only their own tokens; an admin lists everybody's."""
    dispatcher, quality = make.token("dispatcher"), make.token("quality")
    dispatcher_id, quality_id = _row(dispatcher).staff_id, _row(quality).staff_id
    own = client.get(TOKENS, headers=_bearer(dispatcher)).json["items"]
    assert {t["staff_id"] for t in own} == {dispatcher_id}
    everyone = client.get(TOKENS, headers=make.headers("admin")).json["items"]
    assert {dispatcher_id, quality_id} <= {t["staff_id"] for t in everyone}
    assert all("token" not in t and "token_hash" not in t for t in everyone)


def test_owner_revokes_own_token_which_is_refused_at_once(client, make):
    """Revoked by its owner: the very next request with it is a 401."""
    token = make.token("dispatcher")
    token_id = _row(token).id
    response = client.post(f"{TOKENS}/{token_id}/revoke", headers=_bearer(token))
    assert response.status_code == 200 and response.json["revoked_at"] is not None
    refused = client.get(TOKENS, headers=_bearer(token))
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"


def test_another_users_token_is_404_to_non_admin_and_revocable_by_admin(client, make):
    """A non-admin cannot tell another's token from a missing one; an admin revokes it, idempotently."""
    victim = make.token("quality")
    victim_id = _row(victim).id
    for path in (f"{TOKENS}/{victim_id}/revoke", f"{TOKENS}/999999/revoke"):
        response = client.post(path, headers=make.headers("maintenance"))
        assert response.status_code == 404 and response.json["code"] == "token_not_found"
    assert _works(client, victim) == 200
    first = client.post(f"{TOKENS}/{victim_id}/revoke", headers=make.headers("admin"))
    assert first.status_code == 200
    assert _works(client, victim) == 401
    again = client.post(f"{TOKENS}/{victim_id}/revoke", headers=make.headers("admin"))
    assert again.status_code == 200 and again.json["revoked_at"] == first.json["revoked_at"]
    entries = client.get(AUDIT, query_string={"entity": "api_tokens", "entity_id": str(victim_id)},
                         headers=make.headers("admin")).json["items"]
    assert [e["action"] for e in entries] == ["token.revoke", "token.issue"]


def test_last_used_time_moves_at_most_once_a_minute(client, make, app):
    """The first use stamps it; the next requests write nothing; a minute on, it moves again."""
    token = make.token("dispatcher")
    assert _row(token).last_used_at is None
    assert _works(client, token) == 200
    first = _row(token).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    db.session.rollback()
    writes = []

    def spy(_conn, _cursor, statement, *_args):
        """Note every UPDATE of a token row."""
        if statement.lstrip().upper().startswith("UPDATE") and "api_tokens" in statement:
            writes.append(statement)
    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        for _ in range(5):
            assert _works(client, token) == 200
            assert client.get("/api/v1/dispatch/tasks", headers=_bearer(token)).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    assert writes == [] and _row(token).last_used_at == first
    earlier = first - timedelta(minutes=2)
    db.session.execute(update(ApiToken).where(ApiToken.id == _row(token).id).values(last_used_at=earlier))
    db.session.commit()
    assert _works(client, token) == 200
    assert _row(token).last_used_at > first
    listed = client.get(TOKENS, headers=_bearer(token)).json["items"]
    assert listed[0]["last_used_at"] is not None


def test_admin_changes_are_audited_with_actor_and_before_after(client, make):
    """Staff created, token issued, token revoked: each an entry by the admin, without secrets."""
    admin_id = _row(make.token("admin")).staff_id
    created = _create(client, make, "auditee", "quality").json
    user_id = created["staff"]["id"]
    first_token_id = created["staff"]["tokens"][0]["id"]
    client.post(f"{TOKENS}/{first_token_id}/revoke", headers=make.headers("admin"))
    page = client.get(AUDIT, query_string={"actor": admin_id}, headers=make.headers("quality"))
    assert page.status_code == 200
    entries = page.json["items"]
    assert [(e["action"], e["entity"]) for e in entries] == [
        ("token.revoke", "api_tokens"), ("token.issue", "api_tokens"), ("staff.create", "staff_users")]
    assert all(e["actor"] == admin_id for e in entries)
    revoke, issue, create = entries
    assert revoke["before"]["revoked_at"] is None and revoke["after"]["revoked_at"] is not None
    assert issue["before"] is None and issue["after"]["staff_id"] == user_id
    assert create["after"]["username"] == "auditee" and create["entity_id"] == user_id
    assert all("token_hash" not in (e["after"] or {}) for e in entries)
    by_entity = client.get(AUDIT, query_string={"entity": "staff_users", "entity_id": user_id},
                           headers=make.headers("admin")).json["items"]
    assert [e["action"] for e in by_entity] == ["staff.create"]


def test_audit_filters_by_time_and_pages_newest_first(client, make):
    """from is inclusive, to exclusive, offsets honoured; pages have no repeats and no gaps."""
    dispatcher_id = _row(make.token("dispatcher")).staff_id
    couriers = [make.courier() for _ in range(5)]
    base = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    for n, courier in enumerate(couriers):
        db.session.execute(update(AuditEntry).where(AuditEntry.entity_id == courier["id"])
                           .values(at=base + timedelta(hours=n)))
    db.session.commit()
    headers = make.headers("quality")

    def get(**query):
        response = client.get(AUDIT, query_string={"actor": dispatcher_id, **query}, headers=headers)
        assert response.status_code == 200, response.json
        return response.json

    window = get(**{"from": "2026-01-01T18:30:00+08:00", "to": "2026-01-01T13:00:00Z"})
    assert [e["entity_id"] for e in window["items"]] == [couriers[2]["id"], couriers[1]["id"]]
    assert [e["entity_id"] for e in get(to="2026-01-01T11:00:00Z")["items"]] == [couriers[0]["id"]]
    assert get(actor="s-nobody")["items"] == []
    seen, cursor = [], None
    while True:
        page = get(limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [e["entity_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [c["id"] for c in reversed(couriers)]


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-01-01T10:00:00"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ({"cursor": "9" * 30}, "cursor"),
    ({"cursor": "0"}, "cursor"),
    ({"cursor": "abc"}, "cursor"),
    ({"limit": "501"}, "limit"),
    ({"entity": "x" * 33}, "entity"),
])
def test_bad_audit_queries_are_422_problems(client, make, query, field):
    """Naive or unparsable dates, a backwards range, absurd cursors, unknown filters: 422."""
    response = client.get(AUDIT, query_string=query, headers=make.headers("admin"))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.json["fields"]


def test_cli_lists_staff_issues_and_revokes_tokens(app, make):
    """list-staff shows last use but no secret; issue-token prints a working token last; revoke-token kills it."""
    client, runner = app.test_client(), app.test_cli_runner()
    dispatcher = make.token("dispatcher")
    username = _row(dispatcher).staff.username
    assert _works(client, dispatcher) == 200
    issued = runner.invoke(args=["issue-token", username, "--label", "cli"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip().splitlines()[-1]
    listing = runner.invoke(args=["list-staff"])
    assert listing.exit_code == 0, listing.output
    assert f"{username}\tdispatcher" in listing.output
    first, cli = [line for line in listing.output.splitlines() if line.startswith("  token")]
    assert "\tfirst\t" in first and "last used 20" in first
    assert "\tcli\t" in cli and "last used never" in cli and "valid" in cli
    assert token not in listing.output and dispatcher not in listing.output
    assert hash_secret(token) not in listing.output
    assert token.startswith("fos_") and _works(client, token) == 200
    revoked = runner.invoke(args=["revoke-token", str(_row(token).id)])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert _works(client, token) == 401 and _works(client, dispatcher) == 200
    assert runner.invoke(args=["issue-token", "nobody"]).exit_code != 0
    missing = runner.invoke(args=["revoke-token", "999999"])
    assert missing.exit_code != 0 and "No token" in missing.output
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.entity_id == str(_row(token).id)))
    assert sorted((e.action, e.staff_id) for e in entries) == [("token.issue", None), ("token.revoke", None)]


def test_cli_enroll_courier_prints_a_working_one_time_code(app, make):
    """By employee number or id: the code (last line) enrolls a handheld once; QR paths are printed."""
    client, runner = app.test_client(), app.test_cli_runner()
    courier = make.courier()
    for key in (courier["employee_no"], courier["id"]):
        result = runner.invoke(args=["enroll-courier", key])
        assert result.exit_code == 0, result.output
        code = result.output.strip().splitlines()[-1]
        assert f"/api/v1/dispatch/enrollments/{code}/qr.png" in result.output and "expires" in result.output
        # The app link a phone's camera opens, and its QR drawn for the terminal (issue 25).
        link = re.search(r"(http\S+/app/#/enroll\?code=\S+)", result.output).group(1)
        assert link.endswith(f"/app/#/enroll?code={code}") and qr_text(link) in result.output
        enrolled = client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "cli"})
        assert enrolled.status_code == 201 and enrolled.json["courier_id"] == courier["id"]
        reused = client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "again"})
        assert reused.status_code == 404
    unknown = runner.invoke(args=["enroll-courier", "E-none"])
    assert unknown.exit_code != 0 and "No courier" in unknown.output
    client.post(f"/api/v1/dispatch/couriers/{courier['id']}/deactivate", headers=make.headers("dispatcher"))
    inactive = runner.invoke(args=["enroll-courier", courier["id"]])
    assert inactive.exit_code != 0 and "inactive" in inactive.output


def test_a_deactivated_staff_users_tokens_stop_working_and_it_is_audited(client, make):
    """An admin deactivates a user: their token is refused from the next request; repeating changes nothing;
    their own account, an unknown id and a non-admin are refused."""
    created = _create(client, make, "leaver", "dispatcher").json
    user, token = created["staff"], created["token"]
    assert _works(client, token) == 200
    url = f"{STAFF}/{user['id']}/deactivate"
    assert client.post(url, headers=make.headers("dispatcher")).status_code == 403
    done = client.post(url, headers=make.headers("admin"))
    assert done.status_code == 200 and done.json["active"] is False and "password_hash" not in done.json
    assert _works(client, token) == 401
    again = client.post(url, headers=make.headers("admin"))
    assert again.status_code == 200 and again.json["active"] is False
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.deactivate")).all()
    assert [(e.entity_id, e.before["active"], e.after["active"]) for e in entries] == [(user["id"], True, False)]
    missing = client.post(f"{STAFF}/s-nobody/deactivate", headers=make.headers("admin"))
    assert missing.status_code == 404 and missing.json["code"] == "staff_not_found"
    own = client.post(f"{STAFF}/{_row(make.token('admin')).staff_id}/deactivate", headers=make.headers("admin"))
    assert own.status_code == 409 and own.json["code"] == "cannot_deactivate_self"
