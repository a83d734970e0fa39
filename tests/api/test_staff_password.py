"""PUT /api/v1/admin/staff/{id}/password: an admin sets a staff user's console password (issue 24)."""
import pytest

from tests.console.conftest import csrf_in

STAFF = "/api/v1/admin/staff"
AUDIT = "/api/v1/admin/audit"
NEW = "a brand new password"


def _staff(client, make, username: str = "ops.li", role: str = "dispatcher") -> str:
    """A staff user made through the API; their id."""
    response = client.post(STAFF, json={"username": username, "role": role}, headers=make.headers("admin"))
    assert response.status_code == 201, response.json
    return response.json["staff"]["id"]


def _sign_in(app, username: str, password: str):
    """The answer to the console's real sign-in form, and the client that posted it."""
    browser = app.test_client()
    token = csrf_in(browser.get("/console/login").get_data(as_text=True))
    return browser.post("/console/login", data={"csrf_token": token, "username": username, "password": password}), \
        browser


def test_admin_sets_a_password_that_signs_in_and_ends_the_old_sessions(app, client, make):
    """The password set works on the console's sign-in form; a session opened with the old one ends; the answer and
    the audit entry never hold the password or its hash."""
    user_id = _staff(client, make)
    response = client.put(f"{STAFF}/{user_id}/password", json={"password": "first password!"},
                          headers=make.headers("admin"))
    assert response.status_code == 200, response.json
    assert response.json["id"] == user_id and response.json["username"] == "ops.li"
    assert "first password!" not in response.get_data(as_text=True) and "argon2" not in response.get_data(as_text=True)
    signed_in, old_browser = _sign_in(app, "ops.li", "first password!")
    assert signed_in.status_code == 303 and old_browser.get("/console/").status_code == 200

    again = client.put(f"{STAFF}/{user_id}/password", json={"password": NEW}, headers=make.headers("admin"))
    assert again.status_code == 200
    assert old_browser.get("/console/").status_code == 303  # the old session ended with the new password
    assert _sign_in(app, "ops.li", "first password!")[0].status_code == 401
    assert _sign_in(app, "ops.li", NEW)[0].status_code == 303

    entries = client.get(AUDIT, headers=make.headers("admin")).json
    mine = [entry for entry in entries["items"] if entry["entity_id"] == user_id
            and entry["action"] == "staff.set_password"]
    assert len(mine) == 2 and mine[0]["after"]["password_set_at"]
    text = str(entries)
    assert NEW not in text and "first password!" not in text and "argon2" not in text and "password_hash" not in text


@pytest.mark.parametrize("role", ["dispatcher", "quality", "maintenance", "integration"])
def test_only_an_admin_sets_a_password(client, make, role):
    """Every other staff role is refused 403, and the password is not set."""
    user_id = _staff(client, make)
    response = client.put(f"{STAFF}/{user_id}/password", json={"password": NEW}, headers=make.headers(role))
    assert response.status_code == 403 and response.json["code"] == "forbidden"
    assert client.put(f"{STAFF}/{user_id}/password", json={"password": NEW}).status_code == 401


@pytest.mark.parametrize("body,code", [
    ({"password": "short"}, "password_too_short"),
    ({"password": " " * 12}, "password_blank"),
    ({"password": "x" * 1025}, "validation_failed"),
    ({"password": 1234567890123}, "validation_failed"),
    ({"password": None}, "validation_failed"),
    ({}, "validation_failed"),
])
def test_a_bad_password_is_refused_naming_the_field(app, client, make, body, code):
    """Too short (under FIELDOPS_CONSOLE_PASSWORD_MIN_LENGTH), only spaces, too long, not a string, missing: 422
    naming `password`; nothing changes."""
    user_id = _staff(client, make)
    response = client.put(f"{STAFF}/{user_id}/password", json=body, headers=make.headers("admin"))
    assert response.status_code == 422, response.json
    assert response.json["code"] == code and "password" in response.json["fields"]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert _sign_in(app, "ops.li", "short")[0].status_code == 401


def test_the_minimum_length_is_the_setting(app, client, make):
    """FIELDOPS_CONSOLE_PASSWORD_MIN_LENGTH decides: one character fewer is refused, exactly that many is taken."""
    user_id = _staff(client, make)
    minimum = app.config["CONSOLE_PASSWORD_MIN_LENGTH"]
    short = client.put(f"{STAFF}/{user_id}/password", json={"password": "p" * (minimum - 1)},
                       headers=make.headers("admin"))
    assert short.status_code == 422 and str(minimum) in short.json["detail"]
    assert client.put(f"{STAFF}/{user_id}/password", json={"password": "p" * minimum},
                      headers=make.headers("admin")).status_code == 200


def test_an_unknown_staff_user_is_404(client, make):
    """No such staff id: 404 staff_not_found (a malformed one too)."""
    for staff_id in ("s-" + "0" * 26, "nobody"):
        response = client.put(f"{STAFF}/{staff_id}/password", json={"password": NEW}, headers=make.headers("admin"))
        assert response.status_code == 404, (staff_id, response.json)
        assert response.json["code"] == "staff_not_found"


def test_the_route_is_in_the_openapi_spec(client):
    """Documented: PUT with the PasswordIn schema (a write-only password), admin only."""
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/admin/staff/{staff_id}/password"]["put"]
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert schema["required"] == ["password"] and schema["properties"]["password"]["writeOnly"] is True
    assert {"200", "403", "404", "422"} <= set(operation["responses"])
