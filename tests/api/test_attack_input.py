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


def test_control_characters_in_route_ids_are_404_on_every_route(client, make):
    """A NUL in a path id reached the database: PostgreSQL refuses NUL in text, a 500 on every route
    that takes a string id (tasks, couriers, vehicles, devices, attachments, /me)."""
    courier = make.courier()
    device = make.device(courier)
    handheld = {"Authorization": f"Bearer {device['token']}", "Fieldops-Protocol": "1"}
    dispatcher, admin = make.headers("dispatcher"), make.headers("admin")
    for bad in ("%00", "t-1%00", "a%1Bb", "%7F"):
        for method, path, headers in [
                ("get", f"/api/v1/dispatch/tasks/{bad}", dispatcher),
                ("post", f"/api/v1/dispatch/tasks/{bad}/assign", dispatcher),
                ("get", f"/api/v1/dispatch/couriers/{bad}", dispatcher),
                ("patch", f"/api/v1/dispatch/couriers/{bad}", dispatcher),
                ("get", f"/api/v1/dispatch/couriers/{bad}/devices", dispatcher),
                ("post", f"/api/v1/dispatch/couriers/{bad}/deactivate", dispatcher),
                ("post", f"/api/v1/dispatch/couriers/{bad}/enrollments", dispatcher),
                ("get", f"/api/v1/dispatch/vehicles/{bad}", dispatcher),
                ("patch", f"/api/v1/dispatch/vehicles/{bad}", dispatcher),
                ("post", f"/api/v1/dispatch/devices/{bad}/revoke", dispatcher),
                ("get", f"/api/v1/dispatch/attachments/{bad}", dispatcher),
                ("get", f"/api/v1/dispatch/enrollments/{bad}/qr.png", dispatcher),
                ("post", f"/api/v1/admin/staff/{bad}/tokens", admin),
                ("get", f"/api/v1/me/tasks/{bad}", handheld),
                ("post", f"/api/v1/me/tasks/{bad}/notes", handheld),
                ("post", f"/api/v1/me/tasks/{bad}/arrive", handheld),
                ("head", f"/api/v1/attachments/{bad}", handheld),
                ("put", f"/api/v1/attachments/{bad}", handheld)]:
            response = getattr(client, method)(path, headers=headers, json={})
            assert response.status_code == 404, (method, path, response.status_code)


IMPORT = "/api/v1/dispatch/tasks/import"
CSV_HEADER = ("waybill_no,kind,recipient_name,recipient_phone,address,lat,lon,window_start,"
              "window_end,cod_amount,fees,parcel_no,parcel_description,parcel_count\n")


def _csv_row(waybill: str, cod: str = "", fees: str = "", count: str = "1", extra: str = "") -> str:
    return (f"{waybill},delivery,Ann,13900000001,1 Main St,,,2026-11-22T09:00:00+08:00,"
            f"2026-11-22T11:00:00+08:00,{cod},{fees},P1,box,{count}{extra}\n")


def _tasks() -> int:
    from server.models import Task
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Task))


@pytest.mark.parametrize(("cells", "field"), [
    ({"cod": "9" * 5000}, "rows.2.cod_amount"), ({"count": "9" * 5000}, "rows.2.parcel_count"),
    ({"fees": "delivery:" + "9" * 5000}, "rows.2.fees"), ({"cod": "9" * 31}, "rows.2.cod_amount"),
    ({"extra": ",x"}, "rows.2")])
def test_csv_cells_too_long_for_int_or_beyond_the_header_are_422(client, make, cells, field):
    """A number cell of 5,000 digits made int() raise (a 500); a row with more cells than the header
    was imported with the extra cells dropped."""
    response = client.post(IMPORT, data=CSV_HEADER + _csv_row("CSV0001", **cells), content_type="text/csv",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422, response.json
    assert field in response.json["fields"]
    assert _tasks() == 0


def test_csv_with_a_repeated_column_is_422(client, make):
    """With `kind` twice, the last cell silently won."""
    body = CSV_HEADER.strip() + ",kind\n" + _csv_row("CSV0001").strip() + ",pickup\n"
    response = client.post(IMPORT, data=body, content_type="text/csv", headers=make.headers("dispatcher"))
    assert response.status_code == 422 and set(response.json["fields"]) == {"header"}, response.json
    assert _tasks() == 0


@pytest.mark.parametrize("employee_no", ["E1001\u200b", "\u200bE1001", "E10\u00ad01", "\ufeffE1001", "\uff25\uff11\uff10\uff10\uff11",
                                         "e1001\u3000"])
def test_identifiers_that_look_like_a_taken_one_are_refused(client, make, employee_no):
    """`E1001` plus a zero-width space, a soft hyphen or a BOM, or written in full-width letters, was a
    second courier that reads exactly like the first."""
    make.courier(employee_no="E1001")
    from server.models import Courier
    db.session.rollback()
    before = db.session.scalar(select(func.count()).select_from(Courier))
    response = client.post("/api/v1/dispatch/couriers", headers=make.headers("dispatcher"),
                           json={"name": "Twin", "phone": "13800000009", "employee_no": employee_no})
    assert response.status_code in (409, 422), response.json
    assert set(response.json["fields"]) == {"employee_no"}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Courier)) == before


@pytest.mark.parametrize("number", [2**31, 2**40, 2**63 - 1])
def test_integer_route_ids_beyond_their_columns_are_404(client, make, number):
    """Token and conflict ids are INTEGER columns: PostgreSQL failed (500) on a route id between
    2**31 and 2**63, which the converter let through as a 64-bit value."""
    admin = make.headers("admin")
    assert client.post(f"/api/v1/admin/tokens/{number}/revoke", headers=admin).status_code == 404
    response = client.post(f"/api/v1/dispatch/conflicts/{number}/resolve", headers=admin,
                           json={"resolution": "followed_up"})
    assert response.status_code == 404


def test_a_note_naming_a_photo_not_uploaded_names_the_field(client, make):
    """The 422 attachment_missing said which hashes, but named no field."""
    courier = make.courier()
    task = make.task(courier=courier)
    device = make.device(courier)
    response = client.post(f"/api/v1/me/tasks/{task['id']}/notes", headers={"Authorization": f"Bearer {device['token']}"},
                           json={"text": "photo", "photos": ["ab" * 32]})
    assert response.status_code == 422 and response.json["code"] == "attachment_missing"
    assert set(response.json["fields"]) == {"photos.0"}


def test_hostile_query_values_on_every_listed_route_are_problems_never_500s(client, make):
    """Every GET the spec lists, each of its query parameters at once set to NUL, a direction override, a tag
    character, 40 digits or the last day of year 9999: an answer below 500, a problem when it is an error (held)."""
    spec = client.get("/api/v1/openapi.json").json
    headers = make.headers("admin")
    answered = 0
    for path, operations in spec["paths"].items():
        names = [p["name"] for p in operations.get("get", {}).get("parameters", []) if p.get("in") == "query"]
        if not names or "{" in path:
            continue
        for value in ("\x00", "\u202eabc", "\U000e0041", "9" * 40, "9999-12-31T23:59:59-12:00"):
            response = client.get(path, query_string={name: value for name in names}, headers=headers)
            assert response.status_code < 500, (path, value, response.get_data(as_text=True)[:300])
            if response.status_code >= 400:
                assert response.mimetype == "application/problem+json", (path, value)
            answered += 1
    assert answered > 50
