"""Dispatch task API: creation, validation, duplicates, import, listing, assignment, history."""
import io

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, Task


def _count_tasks() -> int:
    return db.session.scalar(select(func.count()).select_from(Task))


def test_create_returns_id_version_status_and_stores_money_in_fen(client, make):
    """A created task answers 201 with id, version 1 and status unassigned."""
    response = client.post("/api/v1/dispatch/tasks", json=make.task_spec(cod_amount=12345),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201
    body = response.json
    assert body["id"].startswith("t-") and body["version"] == 1 and body["status"] == "unassigned"
    assert body["cod_amount"] == 12345 and body["fees"] == [{"code": "delivery", "amount": 1200}]
    assert body["recipient"]["phone"].startswith("139")


def test_duplicate_waybill_is_409_and_stores_nothing(client, make):
    """The second task with a waybill number is refused and nothing changes."""
    spec = make.task_spec()
    assert client.post("/api/v1/dispatch/tasks", json=spec,
                       headers=make.headers("dispatcher")).status_code == 201
    before = _count_tasks()
    response = client.post("/api/v1/dispatch/tasks", json=dict(spec, cod_amount=1),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "duplicate_waybill"
    assert _count_tasks() == before


@pytest.mark.parametrize("change,field", [
    ({"kind": "teleport"}, "kind"),
    ({"cod_amount": -1}, "cod_amount"),
    ({"cod_amount": 12.5}, "cod_amount"),
    ({"parcels": []}, "parcels"),
    ({"recipient": {"name": "x", "phone": "not-a-phone", "address": "a"}}, "recipient.phone"),
    ({"recipient": {"name": "x", "phone": "13900000000", "address": "a", "lat": 91}}, "recipient.lat"),
    ({"window": {"start": "2026-11-22T10:00:00+08:00", "end": "2026-11-22T09:00:00+08:00"}}, "window.end"),
    ({"window": {"start": "2026-11-22T10:00:00", "end": "2026-11-22T12:00:00"}}, "window.start"),
    ({"fees": [{"code": "rush", "amount": 500}]}, "fees.0.code"),
    ({"unexpected": 1}, "unexpected"),
])
def test_bad_task_input_is_422_naming_the_field(client, make, change, field):
    """Each kind of bad input names its field, and stores nothing."""
    response = client.post("/api/v1/dispatch/tasks", json=make.task_spec(**change),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert field in response.json["fields"], response.json
    assert _count_tasks() == 0


def test_import_json_all_or_nothing_names_every_bad_row(client, make):
    """Two bad rows among good ones: both named, nothing stored."""
    existing = make.task()
    good = make.task_spec()
    bad_fee = make.task_spec(fees=[{"code": "private_rush", "amount": 900}])
    dup_existing = make.task_spec(waybill_no=existing["waybill_no"])
    bad_kind = make.task_spec(kind="nope")
    before = _count_tasks()
    response = client.post("/api/v1/dispatch/tasks/import", json=[good, bad_kind, bad_fee],
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"tasks.1.kind"}  # schema errors come first
    response = client.post("/api/v1/dispatch/tasks/import", json=[good, bad_fee, dup_existing],
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"tasks.1.fees.0.code", "tasks.2.waybill_no"}
    assert _count_tasks() == before
    response = client.post("/api/v1/dispatch/tasks/import", json=[good, make.task_spec()],
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201 and response.json["created"] == 2
    assert _count_tasks() == before + 2


def test_a_pickup_carries_no_cod_and_the_cod_fee_needs_a_cod_amount(client, make):
    """Dispatch one at a time, an import, an upstream manifest: one rule, each naming the field; a pickup with its
    fees alone and a COD delivery with its COD fee are taken."""
    from tests.api.test_manifests import reasons, upload
    cod_fee = [{"code": "delivery", "amount": 1200}, {"code": "cod_service", "amount": 200}]
    pickup_cod = make.task_spec(kind="pickup", cod_amount=4990, fees=[{"code": "delivery", "amount": 1200}])
    pickup_cod_fee = make.task_spec(kind="pickup", cod_amount=0, fees=cod_fee)
    delivery_cod_fee = make.task_spec(cod_amount=0, fees=cod_fee)
    dispatcher = make.headers("dispatcher")
    for spec, field in ((pickup_cod, "cod_amount"), (pickup_cod_fee, "fees.1.code"), (delivery_cod_fee, "fees.1.code")):
        response = client.post("/api/v1/dispatch/tasks", json=spec, headers=dispatcher)
        assert response.status_code == 422 and set(response.json["fields"]) == {field}, response.json
    response = client.post("/api/v1/dispatch/tasks/import", json=[pickup_cod, pickup_cod_fee, make.task_spec()],
                           headers=dispatcher)
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"tasks.0.cod_amount", "tasks.1.fees.1.code"}
    assert _count_tasks() == 0
    report = upload(client, make, [pickup_cod, pickup_cod_fee, delivery_cod_fee])
    assert reasons(report) == {1: {("cod_amount", "cod_on_pickup")}, 2: {("fees.1.code", "cod_fee_without_cod")},
                               3: {("fees.1.code", "cod_fee_without_cod")}}
    assert _count_tasks() == 0
    for spec in (make.task_spec(kind="pickup", cod_amount=0, fees=[{"code": "delivery", "amount": 1200}]),
                 make.task_spec(cod_amount=4990, fees=cod_fee)):
        assert client.post("/api/v1/dispatch/tasks", json=spec, headers=dispatcher).status_code == 201
    assert _count_tasks() == 2


def test_import_rejects_duplicates_within_the_batch(client, make):
    """The same waybill twice in one import names the second row."""
    spec = make.task_spec()
    response = client.post("/api/v1/dispatch/tasks/import", json={"tasks": [spec, spec]},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert response.json["fields"] == {"tasks.1.waybill_no": ["Repeats tasks.0."]}


CSV_HEADER = ("waybill_no,kind,recipient_name,recipient_phone,address,lat,lon,window_start,"
              "window_end,cod_amount,fees,parcel_no,parcel_description,parcel_count\n")


def test_import_csv_groups_parcels_by_waybill(client, make):
    """Rows sharing a waybill become one task with several parcels."""
    body = CSV_HEADER + (
        "CSV0001,delivery,Ann,13900000001,1 Main St,31.2,121.4,2026-11-22T09:00:00+08:00,"
        "2026-11-22T11:00:00+08:00,4990,delivery:1200;cod_service:200,P1,box,2\n"
        "CSV0001,,,,,,,,,,,P2,bag,1\n"
        "CSV0002,pickup,Bob,13900000002,2 Main St,,,2026-11-22T13:00:00+08:00,"
        "2026-11-22T15:00:00+08:00,,,P3,,\n")
    response = client.post("/api/v1/dispatch/tasks/import", data=body, content_type="text/csv",
                           headers=make.headers("dispatcher"))
    assert response.status_code == 201, response.json
    first = client.get(f"/api/v1/dispatch/tasks/{response.json['ids'][0]}",
                       headers=make.headers("dispatcher")).json
    assert [p["parcel_no"] for p in first["parcels"]] == ["P1", "P2"]
    assert first["fees"] == [{"code": "delivery", "amount": 1200}, {"code": "cod_service", "amount": 200}]
    assert first["service_date"] == "2026-11-22"


def test_import_csv_errors_name_line_and_column(client, make):
    """A CSV failure names the line and column of each bad cell; nothing is stored."""
    body = CSV_HEADER + (
        "CSV0001,delivery,Ann,13900000001,1 Main St,95,121.4,2026-11-22T09:00:00+08:00,"
        "2026-11-22T11:00:00+08:00,abc,,P1,box,2\n"
        "CSV0002,pickup,Bob,13900000002,2 Main St,,,2026-11-22T13:00:00+08:00,"
        "2026-11-22T15:00:00+08:00,,rush:100,P3,,0\n")
    response = client.post("/api/v1/dispatch/tasks/import",
                           data={"file": (io.BytesIO(body.encode()), "tasks.csv")},
                           content_type="multipart/form-data", headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert set(response.json["fields"]) == {"rows.2.lat", "rows.2.cod_amount", "rows.3.parcel_count"}
    assert _count_tasks() == 0


def test_import_csv_with_wrong_header(client, make):
    """Missing columns are named."""
    response = client.post("/api/v1/dispatch/tasks/import", data="waybill_no,kind\nX1234,delivery\n",
                           content_type="text/csv", headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert "recipient_name" in response.json["fields"]["header"][0]


def test_list_filters_and_cursor_pagination(client, make):
    """Filters combine; pages chain through next_cursor without repeats or gaps."""
    courier = make.courier()
    mine = [make.task(courier=courier)["id"] for _ in range(3)]
    others = [make.task()["id"] for _ in range(2)]
    headers = make.headers("dispatcher")
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/dispatch/tasks", query_string={"limit": 2, **(
            {"cursor": cursor} if cursor else {})}, headers=headers).json
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(mine + others)
    by_courier = client.get("/api/v1/dispatch/tasks", query_string={"courier_id": courier["id"]},
                            headers=headers).json["items"]
    assert sorted(t["id"] for t in by_courier) == sorted(mine)
    unassigned = client.get("/api/v1/dispatch/tasks", query_string={"status": "unassigned"},
                            headers=headers).json["items"]
    assert sorted(t["id"] for t in unassigned) == sorted(others)
    task = client.get(f"/api/v1/dispatch/tasks/{mine[0]}", headers=headers).json
    by_waybill = client.get("/api/v1/dispatch/tasks", query_string={"waybill_no": task["waybill_no"]},
                            headers=headers).json["items"]
    assert [t["id"] for t in by_waybill] == [mine[0]]
    by_date = client.get("/api/v1/dispatch/tasks", query_string={"date": "2001-01-01"},
                         headers=headers).json["items"]
    assert by_date == []
    bad = client.get("/api/v1/dispatch/tasks", query_string={"cursor": "%%%"}, headers=headers)
    assert bad.status_code == 422 and "cursor" in bad.json["fields"]
    bad = client.get("/api/v1/dispatch/tasks", query_string={"status": "lost"}, headers=headers)
    assert bad.status_code == 422 and "status" in bad.json["fields"]


def test_assign_cancel_and_history_with_audit(client, make):
    """Assign, reassign and cancel bump the version, keep history and write the audit log."""
    alice, bob = make.courier(), make.courier()
    task = make.task(courier=alice)
    assert task["status"] == "assigned" and task["version"] == 2 and task["courier_id"] == alice["id"]
    task = make.assign(task["id"], bob["id"])
    assert task["courier_id"] == bob["id"] and task["version"] == 3
    headers = make.headers("dispatcher")
    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "customer moved"},
                           headers=headers)
    assert response.status_code == 200
    assert response.json["status"] == "cancelled" and response.json["version"] == 4
    again = client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "x"}, headers=headers)
    assert again.status_code == 422 and again.json["code"] == "task_finished"
    reassign = client.post(f"/api/v1/dispatch/tasks/{task['id']}/assign", json={"courier_id": alice["id"]},
                           headers=headers)
    assert reassign.status_code == 422 and reassign.json["code"] == "task_finished"
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=headers).json
    assert [e["kind"] for e in detail["history"]] == ["created", "assigned", "assigned", "cancelled"]
    assert detail["history"][2]["data"] == {"courier_id": bob["id"], "previous": alice["id"]}
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == task["id"])
                                 .order_by(AuditEntry.id)).all()
    assert actions == ["task.create", "task.assign", "task.assign", "task.cancel"]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "task.cancel")).one()
    assert entry.before["status"] == "assigned" and entry.after["status"] == "cancelled"
    assert entry.staff_id is not None


def test_assign_to_missing_or_inactive_courier(client, make):
    """Unknown courier 404; inactive courier 422."""
    task = make.task()
    headers = make.headers("dispatcher")
    missing = client.post(f"/api/v1/dispatch/tasks/{task['id']}/assign", json={"courier_id": "c-x"},
                          headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "courier_not_found"
    courier = make.courier()
    client.post(f"/api/v1/dispatch/couriers/{courier['id']}/deactivate", headers=headers)
    inactive = client.post(f"/api/v1/dispatch/tasks/{task['id']}/assign",
                           json={"courier_id": courier["id"]}, headers=headers)
    assert inactive.status_code == 422 and inactive.json["code"] == "courier_inactive"


def test_courier_sees_phone_until_task_is_finished(client, make, app):
    """Open tasks show the phone; finished ones mask it."""
    courier = make.courier()
    token = make.device(courier)["token"]
    task = make.task(courier=courier)
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/me/tasks", headers=headers).json["items"]
    assert listed[0]["recipient"]["phone"] == task["recipient"]["phone"]
    from server.clock import utcnow
    row = db.session.get(Task, task["id"])
    row.status, row.finished_at = "delivered", utcnow()
    db.session.commit()
    shown = client.get(f"/api/v1/me/tasks/{task['id']}", headers=headers).json
    assert shown["recipient"]["phone"] != task["recipient"]["phone"]
    assert shown["recipient"]["phone"].startswith("139") and "*" in shown["recipient"]["phone"]
    assert shown["recipient"]["phone"][-4:] == task["recipient"]["phone"][-4:]


def test_notes_online_share_the_rule_with_dispatch(client, make):
    """Courier and dispatch notes land in the same history; photos must be uploaded first."""
    courier = make.courier()
    token = make.device(courier)["token"]
    task = make.task(courier=courier)
    response = client.post(f"/api/v1/me/tasks/{task['id']}/notes", json={"text": "gate code 1234"},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201 and response.json["notes"][0]["text"] == "gate code 1234"
    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes",
                           json={"text": "call first", "photos": ["a" * 64]},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422 and response.json["code"] == "attachment_missing"
    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "call first"},
                           headers=make.headers("dispatcher"))
    assert [e["kind"] for e in response.json["history"]][-1] == "note"
    assert response.json["version"] == task["version"] + 2


def test_arrival_online_moves_status_and_measures_distance(client, make):
    """Arriving sets arrived_at and the status; the distance to the address is kept."""
    courier = make.courier()
    token = make.device(courier)["token"]
    task = make.task(courier=courier)
    response = client.post(f"/api/v1/me/tasks/{task['id']}/arrive", json={"lat": 31.2301, "lon": 121.47},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["status"] == "arrived" and response.json["arrived_at"]
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert 5 < detail["history"][-1]["data"]["distance_m"] < 20
    bad = client.post(f"/api/v1/me/tasks/{task['id']}/arrive", json={"lat": 100, "lon": 0},
                      headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 422 and "lat" in bad.json["fields"]


def test_handheld_gets_the_twenty_newest_notes_dispatch_gets_all(client, make):
    """A long-running task's notes stay bounded on the handheld; the full history stays with dispatch."""
    courier = make.courier()
    token = make.device(courier)["token"]
    task = make.task(courier=courier)
    for i in range(25):
        client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": f"n{i}"},
                    headers=make.headers("dispatcher"))
    shown = client.get(f"/api/v1/me/tasks/{task['id']}", headers={"Authorization": f"Bearer {token}"}).json
    assert [n["text"] for n in shown["notes"]] == [f"n{i}" for i in range(24, 4, -1)]
    history = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json["history"]
    assert sum(1 for e in history if e["kind"] == "note") == 25
