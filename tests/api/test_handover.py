"""Dispatch's handover routes: the PIN (once, hashed, on the customer page), the timeline, the exceptions list."""
from datetime import date

import pytest
from sqlalchemy import select

from server.clock import local_date, utcnow
from server.extensions import db
from server.models import AuditEntry, Handover
from server.services import handover as handover_service
from tests.api.test_customer_page import issue, path_of
from tests.sync.conftest import Device, start_shift
from tests.sync.test_handover import AT_DOOR, due, inspect_ok, one, sign, upload, verify


@pytest.fixture
def device(client, make, courier):
    """An enrolled handheld of the courier."""
    return Device(client, make.device(courier))


@pytest.fixture
def courier(make):
    """A courier."""
    return make.courier()


def _pin(client, make, task_id: str, role: str = "dispatcher"):
    """POST the PIN route."""
    return client.post(f"/api/v1/dispatch/tasks/{task_id}/handover-pin", headers=make.headers(role))


def test_pin_is_shown_once_and_stored_hashed(client, make, lines):
    """201 with the PIN; stored as salt + PBKDF2 hash; audited without it; never logged; a new one replaces it."""
    task = make.task()
    first = _pin(client, make, task["id"])
    assert first.status_code == 201 and len(first.json["pin"]) == 6 and first.json["pin"].isdigit()
    row = db.session.scalars(select(Handover)).one()
    assert row.pin_hash and len(row.pin_salt) == 32 and row.pin_iterations == 10_000
    assert first.json["pin"] not in row.pin_hash
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "task.handover_pin")).one()
    assert first.json["pin"] not in str(audit.before) + str(audit.after)
    second = _pin(client, make, task["id"])
    db.session.expire_all()
    assert handover_service.pin_for_customer(db.session.get(Handover, row.id).task) == second.json["pin"]
    assert second.json["pin"] not in db.session.get(Handover, row.id).pin_sealed
    assert not any(first.json["pin"] in line or second.json["pin"] in line for line in lines)
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert detail["pin_required"] is True and second.json["pin"] not in str(detail)


def test_pin_roles_and_missing_task(client, make):
    """Only dispatchers and admins require PINs; an unknown task is 404; a finished task cannot get one."""
    task = make.task()
    assert _pin(client, make, task["id"], "quality").status_code == 403
    assert _pin(client, make, "t_nope").status_code == 404
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "x"}, headers=make.headers("dispatcher"))
    answer = _pin(client, make, task["id"])
    assert answer.status_code == 422 and answer.json["code"] == "task_finished"


def test_customer_page_shows_the_pin(client, make):
    """The customer sees the PIN on their page (and not before one is required)."""
    task = make.task()
    link = issue(client, make, task["id"])
    assert 'id="pin"' not in client.get(path_of(link)).text
    pin = _pin(client, make, task["id"]).json["pin"]
    assert f'<strong id="pin">{pin}</strong>' in client.get(path_of(link)).text


def test_timeline_for_staff(client, make, courier, device):
    """The whole handover: state, steps (refused ones too), signature and photo links; staff only, 404 for unknown."""
    task = make.task(courier=courier)
    signature = upload(device)
    one(device, "pod.sign", task["id"], sign(signature))
    device.push([device.op("pod.verify_recipient", task["id"], verify()),
                 device.op("pod.inspect", task["id"], inspect_ok(task)),
                 device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                 device.op("pod.sign", task["id"], sign(signature))])
    answer = client.get(f"/api/v1/dispatch/tasks/{task['id']}/handover", headers=make.headers("quality"))
    assert answer.status_code == 200
    body = answer.json
    assert [(s["kind"], s["outcome"], s["code"]) for s in body["steps"]] == [
        ("sign", "rejected", "inspection_required"), ("verify_recipient", "accepted", None),
        ("inspect", "accepted", None), ("collect_payment", "accepted", None), ("sign", "accepted", None)]
    assert body["state"]["outcome"] == "delivered" and body["signature_sha256"] == signature
    assert "pin" not in body["state"]
    assert body["attachments"] == [{"sha256": signature, "role": "signature",
                                    "url": f"/api/v1/dispatch/attachments/{signature}"}]
    assert client.get(body["attachments"][0]["url"], headers=make.headers("quality")).status_code == 200
    assert all(s["device_time"] and s["received_at"] for s in body["steps"])
    assert body["steps"][-1]["lat"] == AT_DOOR["lat"]
    assert client.get(f"/api/v1/dispatch/tasks/{task['id']}/handover",
                      headers=device.headers).status_code in (401, 403)
    assert client.get("/api/v1/dispatch/tasks/t_nope/handover", headers=make.headers("quality")).status_code == 404


def test_exceptions_list_filters_and_pages(client, make, courier, device):
    """Exceptions of a day, by kind, a page at a time."""
    start_shift(make, courier, device)
    for _ in range(3):
        task = make.task(courier=courier)
        device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                     device.op("pod.collect_payment", task["id"], {"amount": due(task) + 1, "method": "cash"})])
    task = make.task(courier=courier)
    device.push([device.op("pod.inspect", task["id"], inspect_ok(task, customer_accepted=False)),
                 device.op("pod.refuse", task["id"], {"reason": "quality"})])
    today = local_date(utcnow()).isoformat()
    headers = make.headers("dispatcher")
    url = "/api/v1/dispatch/exceptions"
    everything = client.get(url, query_string={"date": today}, headers=headers).json
    assert sorted(i["kind"] for i in everything["items"]) == ["amount_mismatch"] * 3 + ["refusal"]
    first = client.get(url, query_string={"date": today, "kind": "amount_mismatch", "limit": 2}, headers=headers).json
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(url, query_string={"date": today, "kind": "amount_mismatch", "cursor": first["next_cursor"]},
                      headers=headers).json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert client.get(url, query_string={"date": date(2020, 1, 1).isoformat()}, headers=headers).json["items"] == []


@pytest.mark.parametrize("query, field", [({"date": "tomorrow"}, "date"), ({"status": "closed"}, "status"),
                                          ({"date": "2026-01-01", "kind": "theft"}, "kind"),
                                          ({"date": "2026-01-01", "limit": 0}, "limit")])
def test_exceptions_bad_input_names_the_field(client, make, query, field):
    """422 naming the field."""
    answer = client.get("/api/v1/dispatch/exceptions", query_string=query, headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and field in answer.json["fields"], answer.json


def test_exceptions_need_staff(client, make, courier, device):
    """A handheld's token does not read the exceptions."""
    assert client.get("/api/v1/dispatch/exceptions", query_string={"date": "2026-01-01"},
                      headers=device.headers).status_code in (401, 403)
    assert client.get("/api/v1/dispatch/exceptions", query_string={"date": "2026-01-01"}).status_code == 401


def test_gift_description_on_the_task(client, make, courier, device):
    """Dispatch sets a gift at creation; the handheld sees it."""
    task = make.task(courier=courier, gift_description="a calendar")
    assert task["gift_description"] == "a calendar"
    store, _, _ = device.pull_all()
    assert store[("task", task["id"])]["data"]["gift_description"] == "a calendar"
    bad = client.post("/api/v1/dispatch/tasks", json=make.task_spec(gift_description="x" * 201),
                      headers=make.headers("dispatcher"))
    assert bad.status_code == 422 and "gift_description" in bad.json["fields"]
