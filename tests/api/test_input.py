"""No input crashes a request; strings mean what they say; body and import limits are in force."""
import io
import json

import pytest
from marshmallow import ValidationError, fields
from sqlalchemy import func, select

from schemas.common import Schema
from schemas.limits import MAX_INT64
from server.extensions import db
from server.models import Courier, Task, TaskEvent, Vehicle

COURIERS = "/api/v1/dispatch/couriers"
TASKS = "/api/v1/dispatch/tasks"
IMPORT = "/api/v1/dispatch/tasks/import"


def _count(model) -> int:
    """Rows of a model, to show a refused request stored nothing."""
    return db.session.scalar(select(func.count()).select_from(model))


def _post_raw(client, path: str, body: str, headers: dict, content_type="application/json"):
    """POST a body exactly as written (json= would refuse to encode a lone surrogate)."""
    return client.post(path, data=body.encode("utf-8"), content_type=content_type, headers=headers)


# --- strings -------------------------------------------------------------------------------------

def test_lone_surrogate_in_a_name_is_422_naming_the_field(client, make):
    """A \\ud800 escape is valid JSON but no text: refused where it is, never a 500."""
    body = '{"name": "Li \\ud800 Wei", "phone": "13800000000", "employee_no": "E1"}'
    response = _post_raw(client, COURIERS, body, make.headers("dispatcher"))
    assert response.status_code == 422 and response.json["code"] == "validation_failed"
    assert set(response.json["fields"]) == {"name"}
    assert response.json["title"] == "Validation failed"
    assert _count(Courier) == 0


def test_lone_surrogate_in_a_courier_note_is_422(client, make):
    """The handheld's online note path refuses it too; the task history is unchanged."""
    courier = make.courier()
    token = make.device(courier)["token"]
    task = make.task(courier=courier)
    events = _count(TaskEvent)
    response = _post_raw(client, f"/api/v1/me/tasks/{task['id']}/notes", '{"text": "x\\udc00"}',
                         {"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and set(response.json["fields"]) == {"text"}
    assert _count(TaskEvent) == events


@pytest.mark.parametrize("name", [
    "Li\x00Wei", "Li\x1b[31mWei", "Li\rWei", "Li\nWei", "Li\tWei", "Li\x85Wei",
    "Li\u202eieW", "Li\u2066Wei", "   ", "\u3000", ""])
def test_unsafe_or_blank_names_are_refused(client, make, name):
    """Control characters, bidi overrides and blank names are refused by the one Text field."""
    response = client.post(COURIERS, json={"name": name, "phone": "13800000000", "employee_no": "E1"},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422 and set(response.json["fields"]) == {"name"}
    assert _count(Courier) == 0


def test_names_are_stripped_and_notes_keep_their_lines(client, make):
    """Surrounding whitespace goes; a free-text note keeps line breaks (CRLF as LF) but not NUL."""
    courier = make.courier(name="  Li Wei \t")
    assert courier["name"] == "Li Wei"
    task = make.task()
    headers = make.headers("dispatcher")
    response = client.post(f"{TASKS}/{task['id']}/notes", json={"text": "gate 12\r\n\tring twice\n"},
                           headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["history"][-1]["text"] == "gate 12\n\tring twice"
    response = client.post(f"{TASKS}/{task['id']}/notes", json={"text": "gate\x00"}, headers=headers)
    assert response.status_code == 422 and set(response.json["fields"]) == {"text"}


@pytest.mark.parametrize("change,field", [
    ({"waybill_no": "WBE\n001"}, "waybill_no"),
    ({"recipient": {"name": "Ann", "phone": "138\n00000000", "address": "1 Main St"}},
     "recipient.phone"),
    ({"parcels": [{"parcel_no": "P1", "description": "box\x07"}]}, "parcels.0.description"),
    ({"kind": "deli\nvery"}, "kind"),
    ({"fees": [{"code": "delivery\u202e", "amount": 100}]}, "fees.0.code"),
])
def test_line_breaks_and_controls_in_task_fields_are_refused(client, make, change, field):
    """One-line fields refuse line breaks and controls anywhere; nothing is stored."""
    response = client.post(TASKS, json=make.task_spec(**change), headers=make.headers("dispatcher"))
    assert response.status_code == 422 and set(response.json["fields"]) == {field}, response.json
    assert _count(Task) == 0


def test_trailing_newline_is_not_a_second_value(client, make):
    """"WBE001\\n" is WBE001 (a duplicate), a phone keeps no newline, and patterns match whole values."""
    from schemas.common import full_match
    make.task(waybill_no="WBE001")
    response = client.post(TASKS, json=make.task_spec(waybill_no="WBE001\n"),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 409 and response.json["code"] == "duplicate_waybill"
    assert make.courier(phone="13800000000\n")["phone"] == "13800000000"
    with pytest.raises(ValidationError):
        full_match(r"[0-9]+", "digits")("123\n")
    assert _count(Task) == 1


def test_base_schema_covers_a_field_declared_without_text():
    """A plain String or Integer someone adds later is still checked by the base schema."""
    class Careless(Schema):
        """A schema written without the house field types."""

        name = fields.String()
        count = fields.Integer()

    with pytest.raises(ValidationError) as refused:
        Careless().load({"name": "a\x00b", "count": 2**64})
    assert set(refused.value.messages) == {"name", "count"}
    assert Careless().load({"name": "a\tb", "count": MAX_INT64}) == {"name": "a\tb", "count": MAX_INT64}


# --- identifiers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["E001 ", "e001", " e001\u3000"])
def test_employee_numbers_are_normalised_and_unique(client, make, variant):
    """Trimmed and upper-cased, so a variant of a taken number is the same number: 409."""
    assert make.courier(employee_no="E001")["employee_no"] == "E001"
    response = client.post(COURIERS, json={"name": "Li", "phone": "13800000000", "employee_no": variant},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 409 and response.json["code"] == "duplicate_employee_no"
    assert _count(Courier) == 1


def test_waybills_and_plates_are_normalised(client, make):
    """Waybills and plates are stored upper-case; a lower-case repeat is a duplicate."""
    headers = make.headers("dispatcher")
    task = make.task(waybill_no=" wbe001 ")
    assert task["waybill_no"] == "WBE001"
    response = client.post(TASKS, json=make.task_spec(waybill_no="WBE001"), headers=headers)
    assert response.status_code == 409 and response.json["code"] == "duplicate_waybill"
    found = client.get(TASKS, query_string={"waybill_no": "wbe001"}, headers=headers).json["items"]
    assert [t["id"] for t in found] == [task["id"]]
    assert make.vehicle(plate="ab1234")["plate"] == "AB1234"
    response = client.post("/api/v1/dispatch/vehicles", json={"plate": "AB1234 ", "kind": "van"},
                           headers=headers)
    assert response.status_code == 409 and response.json["code"] == "duplicate_plate"
    assert (_count(Task), _count(Vehicle)) == (1, 1)


# --- times and integers --------------------------------------------------------------------------

@pytest.mark.parametrize("start,end", [
    ("0001-01-01T00:00:00+14:00", "2026-01-01T00:00:00+00:00"),
    ("2026-01-01T00:00:00+00:00", "9999-12-31T20:00:00-12:00"),
    ("9999-12-31T20:00:00-12:00", "9999-12-31T22:00:00-12:00"),
    ("1999-12-31T23:59:59+00:00", "2026-01-01T00:00:00+00:00"),
    ("2026-01-01T00:00:00", "2026-01-01T02:00:00+00:00"),
])
def test_window_times_outside_the_range_are_422(client, make, start, end):
    """Times are aware, in the years 2000-2099 as written; no local date overflows."""
    spec = make.task_spec(window={"start": start, "end": end})
    response = client.post(TASKS, json=spec, headers=make.headers("dispatcher"))
    assert response.status_code == 422, response.json
    assert {"window.start", "window.end"} & set(response.json["fields"])
    assert _count(Task) == 0


@pytest.mark.parametrize("path", [
    "/api/v1/dispatch/ops?cursor=18446744073709551616",
    "/api/v1/dispatch/conflicts?cursor=18446744073709551616",
    f"/api/v1/dispatch/ops?cursor={MAX_INT64 + 1}",
    "/api/v1/dispatch/tasks?limit=18446744073709551616",
])
def test_query_integers_beyond_64_bits_are_422(client, make, path):
    """Cursors and limits are bounded by the shared query schemas."""
    response = client.get(path, headers=make.headers("dispatcher"))
    assert response.status_code == 422 and response.json["code"] == "validation_failed"
    assert set(response.json["fields"]) <= {"cursor", "limit"}


def test_path_id_beyond_64_bits_is_404(client, make):
    """An <int:...> route id that no BIGINT can hold matches nothing."""
    response = client.post("/api/v1/dispatch/conflicts/18446744073709551616/resolve",
                           json={"resolution": "followed_up", "note": "x"},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 404 and response.json["code"] == "not_found"


def test_integer_fields_in_bodies_stay_within_64_bits(client, make):
    """A huge count is refused by its range, not by the database."""
    spec = make.task_spec(parcels=[{"parcel_no": "P1", "count": 1}], cod_amount=1)
    body = json.dumps(spec).replace('"count": 1', f'"count": {2**64}').replace(
        '"cod_amount": 1', f'"cod_amount": {2**70}')
    response = _post_raw(client, TASKS, body, make.headers("dispatcher"))
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"parcels.0.count", "cod_amount"}


# --- JSON parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [65, 1000, 10_000])
def test_deeply_nested_json_is_400(client, make, depth):
    """Nesting beyond 64 levels is refused before anything recurses over it."""
    response = _post_raw(client, TASKS, "[" * depth + "]" * depth, make.headers("dispatcher"))
    assert response.status_code == 400 and response.json["code"] == "invalid_json"
    assert "64" in response.json["detail"] and response.json["title"] == "Invalid JSON"


def test_json_within_the_depth_limit_is_parsed():
    """64 levels are fine."""
    from server.jsonio import loads
    assert loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(ValueError):
        loads("[" * 65 + "]" * 65)
    with pytest.raises(ValueError):
        loads('{"a": ' * 65 + "1" + "}" * 65)


def test_malformed_json_is_400_invalid_json(client, make):
    """Broken JSON is a 400 whose title says so; nothing is stored."""
    response = _post_raw(client, COURIERS, '{"name": "Li",', make.headers("dispatcher"))
    assert response.status_code == 400 and response.json["code"] == "invalid_json"
    assert response.json["title"] == "Invalid JSON" and response.json["status"] == 400
    response = client.post(COURIERS, data=b'{"name": "\xff"}', content_type="application/json",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 400 and response.json["code"] == "invalid_json"
    assert _count(Courier) == 0


def test_json_body_with_another_content_type_is_415(client, make):
    """A body the route cannot read says to send application/json instead of 'missing' fields."""
    body = '{"name": "Li", "phone": "13800000000", "employee_no": "E1"}'
    response = _post_raw(client, COURIERS, body, make.headers("dispatcher"), content_type="text/plain")
    assert response.status_code == 415 and response.json["code"] == "unsupported_media_type"
    assert "application/json" in response.json["detail"]
    assert _count(Courier) == 0


def test_schema_errors_stay_422_with_matching_title(client, make):
    """Validation failures keep their 422, code, fields, and a title that agrees."""
    response = client.post(COURIERS, json={"name": "Li"}, headers=make.headers("dispatcher"))
    assert response.status_code == 422 and response.json["status"] == 422
    assert response.json["title"] == "Validation failed" and response.json["fields"]


# --- body limits ---------------------------------------------------------------------------------

def test_json_body_limit_is_in_force_as_configured(client, app):
    """The app as created by create_app refuses an unauthenticated 2 MB enroll, naming 1 MB."""
    assert app.config["MAX_CONTENT_LENGTH"] == app.config["JSON_BODY_LIMIT"] == 1024 * 1024
    response = client.post("/api/v1/devices/enroll",
                           json={"code": "x" * (2 * 1024 * 1024), "device_name": "h"})
    assert response.status_code == 413 and response.json["code"] == "body_too_large"
    assert "1048576 bytes" in response.json["detail"]


def test_per_route_limits_still_allow_larger_bodies(client, make):
    """Push (5 MB) and import (10 MB) read bodies past 1 MB, and name their own limit beyond it."""
    courier = make.courier()
    device = make.device(courier)
    headers = {"Authorization": f"Bearer {device['token']}", "Fieldops-Protocol": "1"}
    big = {"device_id": device["device_id"], "ops": [], "pad": "x" * (2 * 1024 * 1024)}
    response = client.post("/api/v1/sync/push", json=big, headers=headers)
    assert response.status_code == 422 and set(response.json["fields"]) == {"pad"}
    big["pad"] = "x" * (6 * 1024 * 1024)
    response = client.post("/api/v1/sync/push", json=big, headers=headers)
    assert response.status_code == 413 and str(5 * 1024 * 1024) in response.json["detail"]
    body = CSV_HEADER + "".join(_csv_row(f"CSV{n:05d}") for n in range(20_000))
    assert len(body) > 2 * 1024 * 1024
    response = client.post(IMPORT, data=body, content_type="text/csv", headers=make.headers("dispatcher"))
    assert response.status_code == 422 and "rows" in response.json["fields"]


def test_unreadable_csv_is_422_not_500(client, make):
    """A cell beyond the csv module's field limit is named by its line."""
    body = CSV_HEADER + _csv_row("CSV0001", fees="x" * 200_000)
    response = client.post(IMPORT, data=body, content_type="text/csv", headers=make.headers("dispatcher"))
    assert response.status_code == 422 and set(response.json["fields"]) == {"rows.2"}
    assert _count(Task) == 0


# --- CSV imports ---------------------------------------------------------------------------------

CSV_HEADER = ("waybill_no,kind,recipient_name,recipient_phone,address,lat,lon,window_start,"
              "window_end,cod_amount,fees,parcel_no,parcel_description,parcel_count\n")


def _csv_row(waybill: str, cod: str = "", fees: str = "", count: str = "1") -> str:
    """One CSV data row."""
    return (f"{waybill},delivery,Ann,13900000001,1 Main St,,,2026-11-22T09:00:00+08:00,"
            f"2026-11-22T11:00:00+08:00,{cod},{fees},P1,box,{count}\n")


@pytest.mark.parametrize("cells,field", [
    ({"count": "--5"}, "rows.2.parcel_count"),
    ({"count": "²"}, "rows.2.parcel_count"),
    ({"cod": "--5"}, "rows.2.cod_amount"),
    ({"cod": "٣"}, "rows.2.cod_amount"),
    ({"fees": "d:--1"}, "rows.2.fees"),
    ({"count": "99999999999999999999999"}, "rows.2.parcel_count"),
])
def test_csv_number_cells_that_are_not_numbers_are_422(client, make, cells, field):
    """Cells int() cannot read are named by line and column; nothing is stored."""
    response = client.post(IMPORT, data=CSV_HEADER + _csv_row("CSV0001", **cells),
                           content_type="text/csv", headers=make.headers("dispatcher"))
    assert response.status_code == 422, response.json
    assert set(response.json["fields"]) == {field}
    assert _count(Task) == 0


def test_csv_import_cap_is_5000_tasks(client, make):
    """5,001 waybill groups are refused before any is validated, as for JSON."""
    body = CSV_HEADER + "".join(_csv_row(f"CSV{n:05d}") for n in range(5001))
    response = client.post(IMPORT, data={"file": (io.BytesIO(body.encode()), "tasks.csv")},
                           content_type="multipart/form-data", headers=make.headers("dispatcher"))
    assert response.status_code == 422 and "5000" in response.json["fields"]["rows"][0]
    assert _count(Task) == 0


def test_json_import_of_a_non_json_body_says_so(client, make):
    """The import reads JSON through the same parser: malformed is 400, not a 500 or a 422."""
    response = _post_raw(client, IMPORT, "[{", make.headers("dispatcher"))
    assert response.status_code == 400 and response.json["code"] == "invalid_json"


def test_migration_normalises_older_identifiers(app):
    """Rows written before normalisation are trimmed and upper-cased by 0003."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text as sql

    from server.database import MIGRATIONS_DIR
    db.session.add(Courier(name="Old", phone="13800000000", employee_no=" e042\t"))
    db.session.commit()
    downgrade(directory=MIGRATIONS_DIR, revision="0002_sync_docs")
    upgrade(directory=MIGRATIONS_DIR)
    db.session.remove()
    assert db.session.scalar(sql("SELECT employee_no FROM couriers")) == "E042"


def test_employee_number_race_is_409(app, make, monkeypatch):
    """A number that appears between the service's check and its insert is a 409, not a 500."""
    from server.auth import Actor
    from server.errors import Conflict
    from server.services import couriers
    make.courier(employee_no="E500")
    monkeypatch.setattr(couriers, "exists", lambda _query: False)
    actor = Actor(kind="system", id=None)
    with pytest.raises(Conflict) as raised:
        couriers.create(actor=actor, name="Li", phone="13800000000", employee_no="E500")
    assert raised.value.code == "duplicate_employee_no"
    assert _count(Courier) == 1
