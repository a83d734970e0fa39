"""Input found by the hostile-client review: refused with a 4xx naming the field, nothing stored."""
import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import StaffUser


@pytest.mark.parametrize("query", ["from=0001-01-01T00:00:00%2B14:00", "to=9999-12-31T23:00:00-12:00",
                                   "from=1999-12-31T23:59:59Z", "to=2100-01-01T00:00:00Z"])
def test_audit_times_out_of_range_are_422_naming_the_field(client, make, query):
    """The audit filter's times were loaded without the range check: 0001-01-01+14:00 was a 500."""
    response = client.get(f"/api/v1/admin/audit?{query}", headers=make.headers("admin"))
    assert response.status_code == 422, response.json
    assert set(response.json["fields"]) == {query.split("=")[0]}


def _staff_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(StaffUser))


@pytest.mark.parametrize("username", ["bo\nb", "bo\tb", "bo b", "\u202ebob", "bob\x00", " "])
def test_usernames_match_the_whole_pattern(client, make, username):
    """`^...$` let `bob\\n` through as a second user beside `bob`; now the whole value must match."""
    headers = make.headers("admin")
    before = _staff_count()
    response = client.post("/api/v1/admin/staff", json={"username": username, "role": "dispatcher"},
                           headers=headers)
    assert response.status_code == 422, response.json
    assert set(response.json["fields"]) == {"username"}
    assert _staff_count() == before


def test_usernames_are_unique_whatever_their_case_and_surrounding_spaces(client, make):
    """`Bob`, `BOB` and ` bob ` beside `bob` are one person to whoever reads the audit log."""
    headers = make.headers("admin")
    first = client.post("/api/v1/admin/staff", json={"username": "bob", "role": "dispatcher"}, headers=headers)
    assert first.status_code == 201, first.json
    before = _staff_count()
    for username in ("Bob", "BOB", " bob ", "bob\n"):
        response = client.post("/api/v1/admin/staff", json={"username": username, "role": "quality"},
                               headers=headers)
        assert response.status_code == 409, (username, response.json)
        assert set(response.json["fields"]) == {"username"}
    assert _staff_count() == before


@pytest.mark.parametrize(("method", "path", "size", "limit"), [
    ("post", "/api/v1/dispatch/couriers", 2 * 1024 * 1024, 1024 * 1024),
    ("post", "/api/v1/sync/push", 6 * 1024 * 1024, 5 * 1024 * 1024),
    ("put", "/api/v1/attachments/" + "a" * 64, 11 * 1024 * 1024, 10 * 1024 * 1024),
    ("post", "/api/v1/dispatch/tasks/import", 11 * 1024 * 1024, 10 * 1024 * 1024)])
@pytest.mark.parametrize("token", [None, "fos_not-a-token"])
def test_oversize_bodies_without_valid_credentials_are_413_naming_the_limit(client, method, path, size,
                                                                            limit, token):
    """docs/security.md: a larger body, even without credentials, gets 413 naming the limit.
    Routes behind a token answered 401 instead, and the per-route limits were unknown before auth."""
    headers = {"Fieldops-Protocol": "1", **({"Authorization": f"Bearer {token}"} if token else {})}
    response = getattr(client, method)(path, data=b"x" * size, content_type="application/json",
                                       headers=headers)
    assert response.status_code == 413, response.json
    assert response.json["code"] == "body_too_large" and f"{limit} bytes" in response.json["detail"]


def test_bodies_within_a_route_limit_still_reach_auth(client):
    """Between the default and the push limit, an unauthenticated push is still a plain 401."""
    response = client.post("/api/v1/sync/push", data=b"x" * (2 * 1024 * 1024), content_type="application/json",
                           headers={"Fieldops-Protocol": "1"})
    assert response.status_code == 401
