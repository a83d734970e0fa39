"""Domain events: each type emitted once by the real service paths (HTTP and sync ops), in the change's transaction."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from schemas.vocab import EVENT_TYPES
from server.auth import SYSTEM
from server.clock import utcnow
from server.extensions import db
from server.models import Event, Receipt
from server.services import appointments, events, grades, violations
from tests.sync.test_handover import door_ops, due, inspect_ok, one, sign, upload, verify


def emitted(type_: str | None = None) -> list[Event]:
    """The committed events (of a type), in position order."""
    db.session.expire_all()
    query = select(Event).order_by(Event.position)
    if type_:
        query = query.where(Event.type == type_)
    return list(db.session.scalars(query))


def _window(start: datetime, hours: float = 2) -> dict:
    """A window payload."""
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def test_assignment_emits_task_assigned_once(client, make, courier):
    """Assigning emits task.assigned; the same courier again emits nothing; a reassignment names the previous one."""
    other = make.courier()
    task = make.task(courier=courier)
    [event] = emitted("task.assigned")
    assert event.subject_id == task["id"] and event.id.startswith("e-")
    assert event.data == {"task_id": task["id"], "waybill_no": task["waybill_no"], "kind": "delivery",
                          "courier_id": courier["id"], "previous_courier_id": None,
                          "assigned_at": event.data["assigned_at"]}
    make.assign(task["id"], courier["id"])
    assert len(emitted("task.assigned")) == 1
    make.assign(task["id"], other["id"])
    assert [(e.data["courier_id"], e.data["previous_courier_id"]) for e in emitted("task.assigned")] == [
        (courier["id"], None), (other["id"], courier["id"])]


def test_a_pushed_delivery_emits_task_delivered_once_and_a_replayed_push_nothing(device, make, courier):
    """pod.sign through sync: one task.delivered with the receipt number; the resent batch adds no event."""
    task = make.task(courier=courier)
    signature = upload(device)
    ops = door_ops(device, task, signature)
    device.push(ops)
    before = emitted()
    before_ids = [e.id for e in before]  # the push below reads afresh what this session held
    [delivered] = [e for e in before if e.type == "task.delivered"]
    receipt = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).one()
    assert delivered.data["receipt_number"] == receipt.number
    assert delivered.data["op_id"] == ops[-1]["op_id"] and delivered.data["alternate_place"] is None
    again = device.push(ops)["results"]
    assert all(r["duplicate"] for r in again)
    assert [e.id for e in emitted()] == before_ids


def test_a_refusal_emits_task_refused_and_its_exception(device, make, courier, on_shift):
    """pod.refuse: task.refused with the refusal receipt and reason, and task.exception_raised (refusal)."""
    task = make.task(courier=courier)
    device.push([device.op("pod.inspect", task["id"], inspect_ok(task, customer_accepted=False)),
                 device.op("pod.refuse", task["id"], {"reason": "quality", "note": "scratched"})])
    [refused] = emitted("task.refused")
    receipt = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).one()
    assert (refused.data["receipt_number"], refused.data["refusal_reason"]) == (receipt.number, "quality")
    assert [e.data["exception"] for e in emitted("task.exception_raised")] == ["refusal"]


def test_exceptions_are_emitted_from_accepted_and_refused_steps(device, make, courier, on_shift):
    """Damage at inspection, an overcharge refused (its exception survives the rollback), a wrong number."""
    task = make.task(courier=courier)
    photo = upload(device)
    items = [{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "damaged"} for p in task["parcels"]]
    device.push([device.op("pod.inspect", task["id"], {"items": items, "customer_accepted": True, "photos": [photo]})])
    result = one(device, "pod.collect_payment", task["id"], {"amount": due(task) + 500, "method": "cash"})
    assert result["code"] == "amount_mismatch"
    one(device, "appointment.contact", task["id"], {"outcome": "wrong_number", "note": "a bakery"})
    raised = emitted("task.exception_raised")
    assert [e.data["exception"] for e in raised] == ["damage", "amount_mismatch", "wrong_number"]
    assert {e.subject_id for e in raised} == {task["id"]}
    assert all(e.data["op_id"] for e in raised)


def test_appointment_events(client, make, courier):
    """Dispatch confirms (once per window), reschedules (agreed only), and the sweep marks it missed."""
    task = make.task(courier=courier)
    url = f"/api/v1/dispatch/tasks/{task['id']}/appointment"
    headers = make.headers("dispatcher")
    assert client.post(f"{url}/confirm", json={"window": task["window"]}, headers=headers).status_code == 200
    assert client.post(f"{url}/confirm", json={"window": task["window"]}, headers=headers).status_code == 200
    [confirmed] = emitted("appointment.confirmed")
    assert (confirmed.data["window_start"], confirmed.data["via"]) == (
        datetime.fromisoformat(task["window"]["start"]).isoformat(), "dispatch")
    later = _window(datetime.fromisoformat(task["window"]["start"]) + timedelta(hours=3))
    assert client.post(f"{url}/reschedule", json={"window": later, "reason": "closed", "customer_agreed": False},
                       headers=headers).status_code == 200
    assert emitted("appointment.rescheduled") == []
    assert client.post(f"{url}/reschedule", json={"window": later, "reason": "closed", "customer_agreed": True},
                       headers=headers).status_code == 200
    [rescheduled] = emitted("appointment.rescheduled")
    assert rescheduled.data["previous_window_start"] == confirmed.data["window_start"]
    end = datetime.fromisoformat(later["end"])
    assert appointments.sweep_missed(now=end + timedelta(minutes=1))["missed"] == 1
    assert appointments.sweep_missed(now=end + timedelta(minutes=2))["missed"] == 0
    [missed] = emitted("appointment.missed")
    assert missed.subject_id == task["id"] and missed.data["window_end"] == end.isoformat()


def test_vehicle_complaint_and_grade_events(client, make, courier):
    """Dispatch grounds a van (once); a complaint is opened; a critical violation changes the grade."""
    van = make.vehicle()
    headers = make.headers("dispatcher")
    for _ in range(2):
        assert client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"status": "out_of_service"},
                            headers=headers).status_code == 200
    [grounded] = emitted("vehicle.out_of_service")
    assert grounded.data == {"vehicle_id": van["id"], "plate": van["plate"], "courier_id": None, "reason": "dispatch"}
    task = make.task(courier=courier)
    response = client.post("/api/v1/dispatch/complaints", json={
        "task_id": task["id"], "channel": "phone", "category": "impolite", "text": "rude, call me on 13900000000"},
        headers=make.headers("quality"))
    assert response.status_code == 201
    [opened] = emitted("complaint.opened")
    assert opened.subject_id == str(response.json["id"]) and opened.data["courier_id"] == courier["id"]
    assert "13900000000" not in json.dumps(opened.data)  # the customer's words stay out of events
    violations.record_auto(courier_id=courier["id"], code="private_surcharge", task_id=task["id"],
                           occurred_at=utcnow() - timedelta(hours=1), evidence={})
    db.session.commit()
    grades.recompute(actor=SYSTEM, courier_id=courier["id"])
    grades.recompute(actor=SYSTEM, courier_id=courier["id"])
    [changed] = emitted("grade.changed")
    assert (changed.subject_id, changed.data["from_grade"], changed.data["to_grade"]) == (courier["id"], "A", "B")


def test_events_carry_no_recipient_phone_or_address(device, make, courier):
    """Personal data stays out: a whole delivery's events never mention the recipient's phone or address."""
    task = make.task(courier=courier)
    signature = upload(device)
    device.push([device.op("pod.verify_recipient", task["id"], verify()),
                 device.op("pod.inspect", task["id"], inspect_ok(task)),
                 device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                 device.op("pod.sign", task["id"], sign(signature, lat=31.24))])  # far: not_at_address too
    stored = emitted()
    assert {e.type for e in stored} >= {"task.assigned", "task.delivered", "task.exception_raised"}
    text = json.dumps([e.data for e in stored])
    assert task["recipient"]["phone"] not in text and task["recipient"]["address"] not in text
    assert task["recipient"]["name"] not in text
    assert {e.type for e in stored} <= set(EVENT_TYPES)


def test_a_rollback_drops_its_events_and_a_savepoint_only_its_own(app, make, courier):
    """Nothing emitted in a rolled-back transaction is written; a savepoint's rollback keeps what came before."""
    task = make.task(courier=courier)
    before = len(emitted())
    events.emit("task.exception_raised", task["id"], {"task_id": task["id"], "exception": "kept"})
    nested = db.session.begin_nested()
    events.emit("task.exception_raised", task["id"], {"task_id": task["id"], "exception": "undone"})
    nested.rollback()
    db.session.commit()
    assert [e.data["exception"] for e in emitted()[before:]] == ["kept"]
    events.emit("task.exception_raised", task["id"], {"task_id": task["id"], "exception": "gone"})
    db.session.rollback()
    db.session.commit()
    assert len(emitted()) == before + 1
    with pytest.raises(ValueError):
        events.emit("task.teleported", task["id"], {})
