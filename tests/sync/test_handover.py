"""Handover ops through the sync engine: every rule and refusal code, the order of steps, what is kept."""
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from schemas.limits import MAX_MONEY
from schemas.vocab import WORK_CHECK_CODES
from server.extensions import db
from server.models import HandoverException, HandoverStep, LedgerEntry, OpLog, Task, Violation
from server.services import handover
from tests.sync.conftest import SHANGHAI, Device

AT_DOOR = {"lat": 31.23, "lon": 121.47}  # the factory's task address
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64


def upload(device: Device, data: bytes = PNG) -> str:
    """Upload a file from the handheld; its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    response = device.client.put(f"/api/v1/attachments/{sha}", data=data, headers=device.headers)
    assert response.status_code in (200, 201), response.json
    return sha


def one(device: Device, type_: str, task_id: str, payload: dict, **kw) -> dict:
    """Push one op; its result."""
    return device.push([device.op(type_, task_id, payload, **kw)])["results"][0]


def verify(name: str = "Recipient", **more) -> dict:
    """A pod.verify_recipient payload."""
    return {"method": "id_check", "name": name, **more}


def inspect_ok(task: dict, **more) -> dict:
    """A pod.inspect payload: every parcel counted as expected, in order, accepted."""
    return {"items": [{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "ok"} for p in task["parcels"]],
            "customer_accepted": True, **more}


def due(task: dict) -> int:
    """COD plus published fees."""
    return task["cod_amount"] + sum(f["amount"] for f in task["fees"])


def sign(signature: str, **more) -> dict:
    """A pod.sign payload at the door."""
    return {"signature": signature, "signer_name": "Recipient", "gift_disclosed": False, **AT_DOOR, **more}


def door_ops(device: Device, task: dict, signature: str, name: str = "Recipient") -> list[dict]:
    """A COD handover at the door, as one batch: arrive, verify, inspect, pay, sign."""
    return [device.op("stop.arrive", task["id"], AT_DOOR),
            device.op("pod.verify_recipient", task["id"], verify(name)),
            device.op("pod.inspect", task["id"], inspect_ok(task)),
            device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
            device.op("pod.sign", task["id"], sign(signature, signer_name=name))]


def codes(results: list[dict]) -> list:
    """(status, code) of each result."""
    return [(r["status"], r["code"]) for r in results]


def stored_task(task_id: str) -> Task:
    """The task as stored, fresh."""
    db.session.expire_all()
    return db.session.get(Task, task_id)


def violations(task_id: str) -> list[str]:
    """Codes of the violations the handover rules recorded for a task (these handovers are made without a shift:
    the checks before work are tests/sync/test_checks_before_work.py's)."""
    db.session.expire_all()
    return sorted(db.session.scalars(select(Violation.code).where(Violation.task_id == task_id,
                                                                  Violation.code.notin_(WORK_CHECK_CODES))))


def exceptions(task_id: str) -> list[str]:
    """Kinds of the exceptions the handover rules recorded for a task (as violations() above)."""
    db.session.expire_all()
    return sorted(db.session.scalars(select(HandoverException.kind).where(
        HandoverException.task_id == task_id, HandoverException.kind.notin_(WORK_CHECK_CODES))))


def steps(task_id: str) -> list[tuple]:
    """(kind, outcome, code) of a task's handover steps, in order."""
    db.session.expire_all()
    return [(s.kind, s.outcome, s.code) for s in db.session.scalars(
        select(HandoverStep).where(HandoverStep.task_id == task_id).order_by(HandoverStep.id))]


def test_cod_delivery_in_one_batch(device, make, courier):
    """Arrive, verify, inspect, pay, sign in one batch: delivered, paid, in the ledger, the state on the task."""
    task = make.task(courier=courier)
    signature = upload(device)
    ops = door_ops(device, task, signature)
    results = device.push(ops)["results"]
    assert codes(results) == [("applied", None)] * 5
    data = results[-1]["entity"]["data"]
    assert data["status"] == "delivered" and data["amount_due"] == due(task)
    state = data["handover"]
    assert state["recipient_verified"] and state["inspection"] == "accepted" and state["paid"] and state["signed"]
    assert state["paid_amount"] == due(task) and state["outcome"] == "delivered" and state["pin"] is None
    assert [s[0] for s in steps(task["id"])] == ["verify_recipient", "inspect", "collect_payment", "sign"]
    entry = db.session.scalars(select(LedgerEntry)).one()
    assert (entry.kind, entry.amount, entry.method, entry.task_id, entry.op_id) == (
        "payment", due(task), "cash", task["id"], ops[3]["op_id"])
    # The handheld pulls the state too (it continues from here after a restart).
    store, _, _ = device.pull_all()
    assert store[("task", task["id"])]["data"]["handover"]["outcome"] == "delivered"
    assert violations(task["id"]) == [] and exceptions(task["id"]) == []


def test_the_most_payable_task_is_paid_and_signed(device, make, courier):
    """COD plus fees exactly at the money bound: created by dispatch, paid in one payment and signed on push."""
    fees = [{"code": "delivery", "amount": 1200}, {"code": "cod_service", "amount": 200}]
    task = make.task(courier=courier, cod_amount=MAX_MONEY - 1400, fees=fees)
    assert due(task) == MAX_MONEY
    results = device.push(door_ops(device, task, upload(device)))["results"]
    assert codes(results) == [("applied", None)] * 5
    data = results[-1]["entity"]["data"]
    assert data["status"] == "delivered" and data["handover"]["paid_amount"] == data["amount_due"] == MAX_MONEY
    assert db.session.scalars(select(LedgerEntry.amount)).all() == [MAX_MONEY]


def test_sign_before_inspection_is_refused_and_a_violation(device, make, courier):
    """inspection_required; the attempt to leave before inspection is a violation that survives the rollback."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.sign", task["id"], sign(signature)),
                           device.op("task.note", task["id"], {"text": "still here"})])["results"]
    assert codes(results) == [("applied", None), ("rejected", "inspection_required"), ("applied", None)]
    assert violations(task["id"]) == ["left_before_inspection"]
    assert steps(task["id"]) == [("verify_recipient", "accepted", None), ("sign", "rejected", "inspection_required")]
    assert stored_task(task["id"]).status == "assigned"


def test_payment_rules(device, make, courier):
    """inspection_required before acceptance, amount_mismatch below, private_surcharge above, already_paid twice."""
    task = make.task(courier=courier)
    amount = due(task)
    results = device.push([
        device.op("pod.collect_payment", task["id"], {"amount": amount, "method": "cash"}),
        device.op("pod.inspect", task["id"], inspect_ok(task, customer_accepted=False)),
        device.op("pod.collect_payment", task["id"], {"amount": amount, "method": "cash"}),
        device.op("pod.inspect", task["id"], inspect_ok(task)),
        device.op("pod.collect_payment", task["id"], {"amount": amount - 1, "method": "qr"}),
        device.op("pod.collect_payment", task["id"], {"amount": amount + 500, "method": "cash"}),
        device.op("pod.collect_payment", task["id"], {"amount": amount, "method": "qr"}),
        device.op("pod.collect_payment", task["id"], {"amount": amount, "method": "cash"})])["results"]
    assert codes(results) == [("rejected", "inspection_required"), ("applied", None),
                              ("rejected", "inspection_required"), ("applied", None),
                              ("rejected", "amount_mismatch"), ("rejected", "amount_mismatch"),
                              ("applied", None), ("rejected", "already_paid")]
    assert violations(task["id"]) == ["private_surcharge"]
    assert exceptions(task["id"]) == ["amount_mismatch", "amount_mismatch"]
    [evidence] = db.session.scalars(select(Violation.evidence).where(Violation.code == "private_surcharge")).all()
    assert evidence["amount"] == amount + 500 and evidence["due"] == amount
    assert [e.amount for e in db.session.scalars(select(LedgerEntry))] == [amount]
    assert stored_task(task["id"]).needs_review is True


def test_sign_rules_in_order(device, make, courier):
    """payment_required, gift_not_disclosed (a violation), recipient_unverified, courier_cannot_sign, then delivered."""
    task = make.task(courier=courier, gift_description="a mug")
    signature = upload(device)
    courier_name = courier["name"]
    results = device.push([
        device.op("pod.inspect", task["id"], inspect_ok(task)),
        device.op("pod.sign", task["id"], sign(signature)),
        device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "qr"}),
        device.op("pod.sign", task["id"], sign(signature)),
        device.op("pod.sign", task["id"], sign(signature, gift_disclosed=True)),
        device.op("pod.verify_recipient", task["id"], verify()),
        device.op("pod.sign", task["id"], sign(signature, gift_disclosed=True, signer_name=f" {courier_name.upper()}")),
        device.op("pod.sign", task["id"], sign(signature, gift_disclosed=True)),
        device.op("pod.sign", task["id"], sign(signature, gift_disclosed=True)),
        device.op("pod.refuse", task["id"], {"reason": "quality"})])["results"]
    assert codes(results) == [("applied", None), ("rejected", "payment_required"), ("applied", None),
                              ("rejected", "gift_not_disclosed"), ("rejected", "recipient_unverified"),
                              ("applied", None), ("rejected", "courier_cannot_sign"), ("applied", None),
                              ("rejected", "handover_closed"), ("rejected", "handover_closed")]
    assert violations(task["id"]) == ["gift_not_disclosed"]
    assert stored_task(task["id"]).status == "delivered"


def test_inspection_photo_and_discrepancy(device, make, courier):
    """A damaged item needs a photo; damage and a count off are exceptions for dispatch."""
    task = make.task(courier=courier)
    parcel = task["parcels"][0]
    damaged = {"items": [{"parcel_no": parcel["parcel_no"], "counted": parcel["count"] - 1, "condition": "damaged"}],
               "customer_accepted": True}
    assert one(device, "pod.inspect", task["id"], damaged)["code"] == "photo_required"
    photo = upload(device)
    result = one(device, "pod.inspect", task["id"], dict(damaged, photos=[photo]))
    assert result["status"] == "applied"
    state = result["entity"]["data"]["handover"]
    assert state["discrepancy"] is True
    assert state["items"] == [{"parcel_no": parcel["parcel_no"], "expected": parcel["count"],
                               "counted": parcel["count"] - 1, "condition": "damaged"}]
    assert exceptions(task["id"]) == ["damage", "discrepancy"]


def test_refusal_makes_a_return_task(device, make, courier, client):
    """pod.refuse after inspection: refused, unpaid, a return task for the same parcels, unassigned."""
    task = make.task(courier=courier)
    assert one(device, "pod.refuse", task["id"], {"reason": "damaged"})["code"] == "inspection_required"
    results = device.push([device.op("pod.inspect", task["id"], inspect_ok(task, customer_accepted=False)),
                           device.op("pod.refuse", task["id"], {"reason": "quality", "note": "scratched"}),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.refuse", task["id"], {"reason": "quality"})])["results"]
    assert codes(results) == [("applied", None), ("applied", None), ("rejected", "handover_closed"),
                              ("rejected", "handover_closed")]
    assert stored_task(task["id"]).status == "refused"
    returned = db.session.scalars(select(Task).where(Task.return_of_id == task["id"])).one()
    assert (returned.kind, returned.status, returned.courier_id) == ("return", "unassigned", None)
    assert [(p.parcel_no, p.count) for p in returned.parcels] == [(p["parcel_no"], p["count"]) for p in task["parcels"]]
    assert exceptions(task["id"]) == ["refusal"]
    assert db.session.scalars(select(LedgerEntry)).all() == []


def test_refusal_after_payment_is_already_paid(device, make, courier):
    """The customer paid: a refusal is already_paid (dispatch settles a refund)."""
    task = make.task(courier=courier)
    results = device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.refuse", task["id"], {"reason": "quality"})])["results"]
    assert codes(results)[-1] == ("rejected", "already_paid")


def test_alternate_delivery_needs_consent(device, make, courier):
    """authorization_required without consent; a reached contact with a reference, or the customer page, is consent."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    locker = {"place": "locker", "authorization": {"via": "contact", "reference": "call 10:02"}}
    assert one(device, "pod.deliver_alternate", task["id"], locker)["code"] == "authorization_required"
    assert one(device, "pod.deliver_alternate", task["id"], dict(
        locker, authorization={"via": "customer_link", "reference": ""}))["code"] == "authorization_required"
    results = device.push([device.op("appointment.contact", task["id"], {"outcome": "reached"}),
                           device.op("pod.deliver_alternate", task["id"], dict(locker, lat=31.3, lon=121.5))])
    assert codes(results["results"]) == [("applied", None), ("applied", None)]
    state = results["results"][-1]["entity"]["data"]["handover"]
    assert state["alternate_place"] == "locker" and state["not_at_address"] is False
    assert stored_task(task["id"]).status == "delivered"
    assert violations(task["id"]) == []
    # On the customer page's consent, for another task.
    other = make.task(courier=courier, cod_amount=0, fees=[])
    from server.auth import customer
    handover.record_consent(actor=customer(None), task_id=other["id"], place="station")
    assert one(device, "pod.deliver_alternate", other["id"], {
        "place": "station", "authorization": {"via": "customer_link"}})["status"] == "applied"


def test_consent_by_phone_is_a_recent_call_before_the_drop(device, make, courier, server_clock):
    """A call that reached the customer 5 hours before, or only after the drop, is no consent; one an hour before is.

    What came first is the device's numbering: a drop numbered after a call but dated before it happened after it
    (held to the call's time, clock_suspect), so that call is its consent."""
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier, cod_amount=0, fees=[])
    base = datetime.now(SHANGHAI) - timedelta(hours=2)
    locker = {"place": "locker", "authorization": {"via": "contact", "reference": "call"}}

    def at(op: dict, hours: float) -> dict:
        """The op made `hours` after the base time by the device's clock."""
        op["device_time"] = (base + timedelta(hours=hours)).isoformat()
        return op

    results = device.push([at(device.op("appointment.contact", task["id"], {"outcome": "reached"}), -5),
                           at(device.op("pod.deliver_alternate", task["id"], locker), 0),
                           at(device.op("appointment.contact", task["id"], {"outcome": "reached"}), 0.5)])["results"]
    assert codes(results) == [("applied", None), ("rejected", "authorization_required"), ("applied", None)]
    misdated = device.push([at(device.op("pod.deliver_alternate", task["id"], locker), 0.2)])["results"]
    assert codes(misdated) == [("applied", None)] and misdated[0]["clock_suspect"] is True
    assert stored_task(task["id"]).status == "delivered"
    again = codes(device.push([at(device.op("pod.deliver_alternate", task["id"], locker), 1.4)])["results"])
    assert again == [("rejected", "handover_closed")]


def test_alternate_with_cod_unpaid_is_payment_required(device, make, courier):
    """An unpaid COD parcel is handed over in person."""
    task = make.task(courier=courier)
    results = device.push([device.op("appointment.contact", task["id"], {"outcome": "reached"}),
                           device.op("pod.deliver_alternate", task["id"], {
                               "place": "neighbour", "authorization": {"via": "contact", "reference": "ok"}})])
    assert codes(results["results"])[-1] == ("rejected", "payment_required")


def test_signature_far_from_the_address_is_flagged(app, device, make, courier):
    """More than HANDOVER_MAX_DISTANCE_M away: delivered, flagged not_at_address, an exception."""
    app.config["HANDOVER_MAX_DISTANCE_M"] = 100
    task = make.task(courier=courier, cod_amount=0, fees=[])
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.sign", task["id"], sign(signature, lat=31.232, lon=121.47))])["results"]
    state = results[-1]["entity"]["data"]["handover"]
    assert state["not_at_address"] is True and stored_task(task["id"]).status == "delivered"
    assert exceptions(task["id"]) == ["not_at_address"] and stored_task(task["id"]).needs_review


def test_pickup_collect(device, make, courier):
    """pickup.collect: published fees only, payment equal to them, the customer signs; collected, in the ledger."""
    task = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    signature = upload(device)
    body = {"parcels": [{"parcel_no": "PK1", "description": "books", "count": 2}],
            "fees": [{"code": "delivery", "amount": 1500}], "payment": {"amount": 1500, "method": "cash"},
            "signature": signature, "signer_name": "Sender", **AT_DOOR}
    assert one(device, "pod.inspect", task["id"], inspect_ok(task))["code"] == "wrong_task_kind"
    results = device.push([
        device.op("pickup.collect", task["id"], dict(body, fees=[{"code": "rush", "amount": 500}],
                                                     payment={"amount": 500, "method": "cash"})),
        device.op("pickup.collect", task["id"], dict(body, payment={"amount": 2000, "method": "cash"})),
        device.op("pickup.collect", task["id"], dict(body, signer_name=courier["name"])),
        device.op("pickup.collect", task["id"], body),
        device.op("pickup.collect", task["id"], body)])["results"]
    assert codes(results) == [("rejected", "fee_not_published"), ("rejected", "amount_mismatch"),
                              ("rejected", "courier_cannot_sign"), ("applied", None), ("rejected", "handover_closed")]
    assert stored_task(task["id"]).status == "collected"
    assert violations(task["id"]) == ["private_surcharge"]
    assert [(e.kind, e.amount) for e in db.session.scalars(select(LedgerEntry))] == [("payment", 1500)]
    evidence = handover.evidence_for(stored_task(task["id"]))
    assert evidence["outcome"] == "collected" and evidence["fees"] == [{"code": "delivery", "amount": 1500}]


def test_pickup_charges_exactly_the_quoted_fees(device, make, courier):
    """A pickup dispatch quoted: other amounts or codes are refused, more is a private surcharge; the quote is taken."""
    task = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[{"code": "delivery", "amount": 1500}])
    signature = upload(device)
    body = {"parcels": [{"parcel_no": "PK1", "description": "books", "count": 1}],
            "fees": [{"code": "delivery", "amount": 1500}], "payment": {"amount": 1500, "method": "qr"},
            "signature": signature, "signer_name": "Sender", **AT_DOOR}
    results = device.push([
        device.op("pickup.collect", task["id"], dict(body, fees=[{"code": "delivery", "amount": 900}],
                                                     payment={"amount": 900, "method": "qr"})),
        device.op("pickup.collect", task["id"], dict(body, fees=[{"code": "delivery", "amount": 2500}],
                                                     payment={"amount": 2500, "method": "qr"})),
        device.op("pickup.collect", task["id"], body)])["results"]
    assert codes(results) == [("rejected", "amount_mismatch"), ("rejected", "amount_mismatch"), ("applied", None)]
    assert violations(task["id"]) == ["private_surcharge"]  # the 2,500, not the 900
    assert [(e.kind, e.amount) for e in db.session.scalars(select(LedgerEntry))] == [("payment", 1500)]


def test_a_parcel_counted_twice_is_invalid(device, make, courier):
    """Two counts of one parcel_no would let the second hide the first's discrepancy: invalid_payload naming items."""
    task = make.task(courier=courier)
    parcel = task["parcels"][0]
    result = one(device, "pod.inspect", task["id"], {"customer_accepted": True, "items": [
        {"parcel_no": parcel["parcel_no"], "counted": parcel["count"] - 1 or 5, "condition": "ok"},
        {"parcel_no": parcel["parcel_no"], "counted": parcel["count"], "condition": "ok"}]})
    assert result["code"] == "invalid_payload" and "payload.items" in result["fields"]
    assert steps(task["id"]) == []


@pytest.mark.parametrize("disguise, code", [("\uff23ourier {n}", "courier_cannot_sign"),
                                            (" COURIER\u00a0{n} ", "courier_cannot_sign"),
                                            ("courier\u200b {n}", "invalid_payload"),
                                            ("Cour\u00adier {n}", "invalid_payload")])
def test_the_courier_cannot_sign_under_a_disguised_own_name(device, make, courier, disguise, code):
    """Full-width letters, odd spaces and case do not make the courier someone else; zero-width characters
    and soft hyphens are no name at all (schemas.common.Text refuses them)."""
    n = courier["name"].split()[-1]
    task = make.task(courier=courier)
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.sign", task["id"], sign(signature, signer_name=disguise.format(n=n)))])
    assert codes(results["results"])[-1] == ("rejected", code)


def test_pin_checked_on_push(device, make, courier, client):
    """A required PIN: pin_required without it, pin_mismatch (flagged, an exception) when wrong, verified when right."""
    task = make.task(courier=courier)
    issued = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin", headers=make.headers("dispatcher"))
    assert issued.status_code == 201
    pin = issued.json["pin"]
    wrong = f"{(int(pin) + 1) % 10 ** 6:06d}"
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=wrong)),
                           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin))])["results"]
    assert codes(results) == [("rejected", "pin_required"), ("rejected", "pin_mismatch"), ("applied", None)]
    assert exceptions(task["id"]) == ["pin_mismatch"] and stored_task(task["id"]).needs_review
    # The handheld holds the salt and hash, never the PIN; the op log never holds the PIN's hash either.
    data = results[-1]["entity"]["data"]
    assert data["pin_required"] is True and data["handover"]["pin"]["algorithm"] == "pbkdf2_sha256"
    salt, digest = data["handover"]["pin"]["salt"], data["handover"]["pin"]["hash"]
    assert handover.pin_digest(pin, salt, data["handover"]["pin"]["iterations"]) == digest
    assert pin not in str(data)
    steps_data = [s.data for s in db.session.scalars(select(HandoverStep))]
    assert all("pin" not in d for d in steps_data)


def test_pin_never_reaches_the_op_log(device, make, courier, client):
    """The op log (read by dispatch and quality) keeps "[redacted]" for a PIN, right or wrong; a replay still matches."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    wrong = f"{(int(pin) + 1) % 10 ** 6:06d}"
    ops = [device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=wrong)),
           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin))]
    assert codes(device.push(ops)["results"]) == [("rejected", "pin_mismatch"), ("applied", None)]
    assert all(r["duplicate"] for r in device.push(ops)["results"])
    db.session.expire_all()
    logged = [row.payload for row in db.session.scalars(select(OpLog).where(OpLog.entity_id == task["id"]))]
    assert [p["pin"] for p in logged] == ["[redacted]", "[redacted]"] and logged[0]["name"] == "Recipient"
    listed = client.get(f"/api/v1/dispatch/ops?entity_id={task['id']}", headers=make.headers("quality"))
    assert listed.status_code == 200 and len(listed.json["items"]) == 2
    assert pin not in listed.get_data(as_text=True)
    assert wrong not in listed.get_data(as_text=True)


def test_wrong_pins_lock_until_dispatch_issues_a_new_one(device, make, courier, client, app):
    """Guessing stops: after the limit no PIN is checked (pin_locked), dispatch is told once; a new PIN unlocks."""
    app.config["HANDOVER_PIN_MAX_FAILURES"] = 3
    task = make.task(courier=courier)
    pin_url = f"/api/v1/dispatch/tasks/{task['id']}/handover-pin"
    pin = client.post(pin_url, headers=make.headers("dispatcher")).json["pin"]
    guesses = [f"{(int(pin) + n) % 10 ** 6:06d}" for n in (1, 2, 3)]
    results = device.push([device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=g))
                           for g in guesses] + [device.op("pod.verify_recipient", task["id"],
                                                          verify(method="pin", pin=pin))])["results"]
    assert codes(results) == [("rejected", "pin_mismatch")] * 3 + [("rejected", "pin_locked")]
    assert exceptions(task["id"]) == ["pin_locked", "pin_mismatch", "pin_mismatch"]
    assert not stored_task(task["id"]).handover.recipient_verified
    new_pin = client.post(pin_url, headers=make.headers("dispatcher")).json["pin"]
    assert stored_task(task["id"]).handover.pin_failures == 0
    assert one(device, "pod.verify_recipient", task["id"], verify(method="pin", pin=new_pin))["status"] == "applied"


def test_duplicates_replay_and_do_not_double_pay(device, make, courier):
    """A resent batch replays its results: one payment in the ledger, one signature step."""
    task = make.task(courier=courier)
    signature = upload(device)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
           device.op("pod.sign", task["id"], sign(signature))]
    first = device.push(ops)["results"]
    again = device.push(ops)["results"]
    assert all(r["duplicate"] for r in again) and [r["status"] for r in again] == [r["status"] for r in first]
    assert len(db.session.scalars(select(LedgerEntry)).all()) == 1
    assert [s[0] for s in steps(task["id"])] == ["verify_recipient", "inspect", "collect_payment", "sign"]


def test_hours_late_queue_uses_device_time(device, make, courier, server_clock):
    """A queue replayed hours later: steps keep their device times; the payment falls on the day it was taken."""
    with server_clock.at(server_clock.now() - timedelta(hours=6)):
        task = make.task(courier=courier)
    signature = upload(device)
    then = datetime.now(timezone.utc) - timedelta(hours=5)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
           device.op("pod.sign", task["id"], sign(signature))]
    for i, op in enumerate(ops):
        op["device_time"] = (then + timedelta(minutes=i)).astimezone(SHANGHAI).isoformat()
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 4
    db.session.expire_all()
    rows = list(db.session.scalars(select(HandoverStep).order_by(HandoverStep.id)))
    assert all(abs((r.device_time - (then + timedelta(minutes=i))).total_seconds()) < 1 for i, r in enumerate(rows))
    assert all(r.received_at - r.device_time > timedelta(hours=4) for r in rows)
    from server.clock import local_date
    assert db.session.scalars(select(LedgerEntry.day)).one() == local_date(then)
    assert abs((stored_task(task["id"]).finished_at - (then + timedelta(minutes=3))).total_seconds()) < 1


def test_cancellation_between_inspection_and_signature(device, make, courier, client):
    """Dispatch cancels after the inspection; the signature (a field fact) is applied, flagged, the task stays cancelled."""
    task = make.task(courier=courier)
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.inspect", task["id"], inspect_ok(task))])["results"]
    held = results[-1]["entity"]["version"]
    cancel = client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "sender recalled"},
                         headers=make.headers("dispatcher"))
    assert cancel.status_code == 200
    results = device.push([
        device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}, base_version=held),
        device.op("pod.sign", task["id"], sign(signature), base_version=held)])["results"]
    assert [(r["status"], r["code"]) for r in results] == [("conflict", "cancelled_by_dispatch")] * 2
    stored = stored_task(task["id"])
    assert stored.status == "cancelled" and stored.needs_review and stored.handover.signed
    assert stored.handover.outcome == "delivered"
    # The cash was taken: the ledger counts it.
    assert db.session.scalars(select(LedgerEntry.amount)).all() == [due(task)]
    conflicts = client.get("/api/v1/dispatch/conflicts", headers=make.headers("dispatcher")).json["items"]
    assert len(conflicts) == 2 and all(c["applied"] for c in conflicts)


def test_wrong_courier_is_not_assigned(client, make, courier, device):
    """Another courier's task: not_assigned, nothing recorded."""
    other = make.courier()
    task = make.task(courier=other)
    result = one(device, "pod.inspect", task["id"], inspect_ok(task))
    assert (result["status"], result["code"]) == ("rejected", "not_assigned")
    assert steps(task["id"]) == []


@pytest.mark.parametrize("type_, payload, field", [
    ("pod.verify_recipient", {"method": "proxy", "name": "Li"}, "payload.relation"),
    ("pod.verify_recipient", {"method": "retina", "name": "Li"}, "payload.method"),
    ("pod.verify_recipient", {"method": "pin", "name": "Li", "pin": "12ab56"}, "payload.pin"),
    ("pod.inspect", {"items": [], "customer_accepted": True}, "payload.items"),
    ("pod.inspect", {"items": [{"parcel_no": "P", "counted": 1, "condition": "soggy"}], "customer_accepted": True},
     "payload.items.0.condition"),
    ("pod.collect_payment", {"amount": 12.5, "method": "cash"}, "payload.amount"),
    ("pod.collect_payment", {"amount": 100, "method": "iou"}, "payload.method"),
    ("pod.sign", {"signature": "x", "signer_name": "A", "lat": 1, "lon": 1}, "payload.signature"),
    ("pod.sign", {"signature": "a" * 64, "signer_name": "A"}, "payload.lat"),
    ("pod.refuse", {"reason": "bored"}, "payload.reason"),
    ("pod.deliver_alternate", {"place": "roof", "authorization": {"via": "contact"}}, "payload.place"),
    ("pod.deliver_alternate", {"place": "locker"}, "payload.authorization"),
    ("pickup.collect", {"parcels": [], "signature": "a" * 64, "signer_name": "A"}, "payload.parcels"),
    # One money bound (schemas.limits.MAX_MONEY) for every amount, and for what is paid at once.
    ("pod.collect_payment", {"amount": MAX_MONEY + 1, "method": "cash"}, "payload.amount"),
    ("pickup.collect", {"parcels": [{"parcel_no": "P1"}], "signature": "a" * 64, "signer_name": "A",
                        "fees": [{"code": "delivery", "amount": MAX_MONEY + 1}]}, "payload.fees.0.amount"),
    ("pickup.collect", {"parcels": [{"parcel_no": "P1"}], "signature": "a" * 64, "signer_name": "A",
                        "fees": [{"code": "delivery", "amount": MAX_MONEY}, {"code": "insurance", "amount": 1}],
                        "payment": {"amount": MAX_MONEY, "method": "cash"}}, "payload.fees"),
    ("pickup.collect", {"parcels": [{"parcel_no": "P1"}], "signature": "a" * 64, "signer_name": "A",
                        "payment": {"amount": MAX_MONEY + 1, "method": "cash"}}, "payload.payment.amount"),
])
def test_bad_payloads_name_the_field(device, make, courier, type_, payload, field):
    """invalid_payload, naming the field."""
    task = make.task(courier=courier)
    result = one(device, type_, task["id"], payload)
    assert result["code"] == "invalid_payload" and field in result["fields"], result


def test_rejections_are_in_the_op_log(device, make, courier):
    """A refused step is in the op log with its code, and in the handover timeline."""
    task = make.task(courier=courier)
    one(device, "pod.collect_payment", task["id"], {"amount": 1, "method": "cash"})
    db.session.expire_all()
    row = db.session.scalars(select(OpLog)).one()
    assert (row.status, row.code) == ("rejected", "inspection_required")
    assert steps(task["id"]) == [("collect_payment", "rejected", "inspection_required")]


def test_demo_day_has_every_handover(app):
    """`fieldops seed-demo`: a COD delivery in the ledger, a refusal and its return, damage, a locker, a pickup."""
    result = app.test_cli_runner().invoke(args=["seed-demo", "--day", "2026-11-22"])
    assert result.exit_code == 0, result.output
    assert "handovers of Li Na" in result.output
    db.session.expire_all()
    statuses = sorted(db.session.scalars(select(Task.status).where(Task.status.not_in(("assigned", "arrived",
                                                                                        "unassigned")))))
    assert statuses.count("delivered") == 3 and statuses.count("refused") == 1 and statuses.count("collected") == 1
    assert db.session.scalars(select(Task.kind).where(Task.return_of_id.is_not(None))).all() == ["return"]
    assert set(db.session.scalars(select(HandoverException.kind))) >= {"damage", "refusal"}
    assert {e.method for e in db.session.scalars(select(LedgerEntry))} == {"cash", "qr"}
    delivered = db.session.scalars(select(Task).where(Task.status == "delivered")).all()
    assert all(handover.evidence_for(t)["outcome"] == "delivered" for t in delivered)


def test_evidence_of_a_completed_delivery(device, make, courier):
    """evidence_for: canonical, JSON, deterministic, masked recipient, counts, money, hashes; none before completion."""
    import json

    from server.errors import NotFound
    task = make.task(courier=courier)
    signature, photo_b, photo_a = upload(device), upload(device, PNG + b"b"), upload(device, PNG + b"a")
    parcel = task["parcels"][0]
    device.push([device.op("pod.verify_recipient", task["id"], verify(name="Zhang San")),
                 device.op("pod.inspect", task["id"], {"items": [
                     {"parcel_no": parcel["parcel_no"], "counted": parcel["count"], "condition": "damaged"}],
                     "customer_accepted": True, "photos": [photo_b, photo_a]})])
    with pytest.raises(NotFound):
        handover.evidence_for(stored_task(task["id"]))
    ops = [device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "qr"}),
           device.op("pod.sign", task["id"], sign(signature, signer_name="Zhang San"))]
    device.push(ops)
    evidence = handover.evidence_for(stored_task(task["id"]))
    again = handover.evidence_for(stored_task(task["id"]))
    assert json.dumps(evidence, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert evidence["signer"] == "** San" and "Zhang" not in json.dumps(evidence)
    assert evidence["recipient"] == "** " + stored_task(task["id"]).recipient_name.split()[-1]
    assert evidence["recipient_check"] == {"method": "id_check", "proxy": False}
    assert evidence["inspection"]["items_counted"] == evidence["inspection"]["items_expected"] == parcel["count"]
    assert evidence["inspection"]["conditions"] == ["damaged"] and evidence["inspection"]["customer_accepted"] is True
    assert (evidence["amount"], evidence["method"], evidence["cod_amount"]) == (due(task), "qr", task["cod_amount"])
    assert evidence["fees"] == [{"code": "delivery", "amount": 1200}]
    assert evidence["signature"] == signature and evidence["photos"] == sorted([photo_a, photo_b])
    assert (evidence["outcome"], evidence["task_kind"], evidence["courier_id"]) == ("delivered", "delivery", courier["id"])
    assert evidence["waybill_no"] == task["waybill_no"] and evidence["alternate"] is None
    assert evidence["completed_at"] <= evidence["received_at"] and evidence["completed_at"].endswith("Z")


def test_every_completed_handover_gets_one_sealed_receipt_the_handheld_shows(device, make, courier, client):
    """Signing seals a receipt in the same push: the task carries its number and page; it verifies; a replay adds none."""
    from server.models import Receipt
    from server.services import receipts
    task = make.task(courier=courier)
    signature = upload(device)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
           device.op("pod.sign", task["id"], sign(signature))]
    result = device.push(ops)["results"][-1]
    shown = result["entity"]["data"]["handover"]["receipt"]
    [receipt] = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).all()
    assert shown["number"] == receipt.number and shown["url"].endswith(f"/r/{receipts.page_token(receipt)}")
    assert receipts.verifies(receipt) and receipt.kind == "delivery"
    page = client.get(f"/r/{receipts.page_token(receipt)}.json")
    assert page.status_code == 200 and page.json["receipt"]["evidence"]["amount"] == due(task)
    # The same ops again (an answer lost) are duplicates: still one receipt; a pull shows the same.
    assert all(r["duplicate"] for r in device.push(ops)["results"])
    assert db.session.query(Receipt).filter(Receipt.task_id == task["id"]).count() == 1
    store, _, _ = device.pull_all()
    assert store[("task", task["id"])]["data"]["handover"]["receipt"] == shown


def test_a_refusal_gets_a_refusal_receipt(device, make, courier):
    """pod.refuse completes the handover too: a receipt of kind refusal, no money on it."""
    from server.models import Receipt
    task = make.task(courier=courier)
    photo = upload(device)
    parcel = task["parcels"][0]
    device.push([device.op("pod.verify_recipient", task["id"], verify()),
                 device.op("pod.inspect", task["id"], {"items": [
                     {"parcel_no": parcel["parcel_no"], "counted": parcel["count"], "condition": "damaged"}],
                     "customer_accepted": False, "photos": [photo]}),
                 device.op("pod.refuse", task["id"], {"reason": "damaged", "note": "crushed", "photos": [photo]})])
    [receipt] = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).all()
    import json
    evidence = json.loads(receipt.payload)["evidence"]
    assert receipt.kind == "refusal" and evidence["amount"] == 0 and evidence["refusal_reason"] == "damaged"


def test_a_gift_added_after_the_handhelds_copy_is_not_the_couriers_fault(client, device, make, courier):
    """Signed on the copy before dispatch added the gift: the signature stands, dispatch is told, no violation."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    signature = upload(device)
    held = stored_task(task["id"]).version
    assert one(device, "pod.verify_recipient", task["id"], verify(), base_version=held)["status"] == "applied"
    assert one(device, "pod.inspect", task["id"], inspect_ok(task), base_version=held + 1)["status"] == "applied"
    client.put(f"/api/v1/dispatch/tasks/{task['id']}/gift", json={"gift_description": "a mug"},
               headers=make.headers("dispatcher"))
    result = one(device, "pod.sign", task["id"], sign(signature), base_version=held + 2)
    assert (result["status"], result["code"]) == ("conflict", "stale_version")
    assert stored_task(task["id"]).status == "delivered"
    assert violations(task["id"]) == [] and "gift_not_disclosed" in exceptions(task["id"])


def test_dispatch_sets_and_changes_the_gift(client, device, make, courier):
    """PUT .../gift sets, changes, clears; each change is a dispatch change: ops on the older version conflict."""
    task = make.task(courier=courier, cod_amount=0, fees=[])
    url, headers = f"/api/v1/dispatch/tasks/{task['id']}/gift", make.headers("dispatcher")
    old_version = stored_task(task["id"]).version
    answer = client.put(url, json={"gift_description": "  a mug  "}, headers=headers)
    assert answer.status_code == 200 and answer.json["gift_description"] == "a mug"
    version = stored_task(task["id"]).version
    assert version > old_version
    # The same gift again changes nothing.
    assert client.put(url, json={"gift_description": "a mug"}, headers=headers).status_code == 200
    assert stored_task(task["id"]).version == version
    store, _cursor, _page = device.pull_all()
    assert store[("task", task["id"])]["data"]["gift_description"] == "a mug"
    # An inspection made on the version before the gift: applied as a field fact, flagged for dispatch.
    result = one(device, "pod.inspect", task["id"], inspect_ok(task), base_version=old_version)
    assert (result["status"], result["code"]) == ("conflict", "stale_version")
    assert stored_task(task["id"]).needs_review
    # On the current version: the gift rule applies, and telling the customer satisfies it.
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                           device.op("pod.sign", task["id"], sign(signature)),
                           device.op("pod.sign", task["id"], sign(signature, gift_disclosed=True))])["results"]
    assert codes(results) == [("applied", None), ("rejected", "gift_not_disclosed"), ("applied", None)]
    history = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=headers).json["history"]
    gift = [e for e in history if e["kind"] == "gift_changed"]
    assert len(gift) == 1 and gift[0]["data"] == {"gift_description": "a mug", "previous": None}
    # Delivered: the gift can no longer change.
    answer = client.put(url, json={"gift_description": "a pen"}, headers=headers)
    assert answer.status_code == 422 and answer.json["code"] == "task_finished"


def test_clearing_the_gift_and_bad_gift_input(client, make, courier):
    """null clears the gift (the sign rule no longer asks); empty, missing, too long or unknown task are refused."""
    task = make.task(courier=courier, gift_description="a mug")
    url, headers = f"/api/v1/dispatch/tasks/{task['id']}/gift", make.headers("dispatcher")
    for body, field in (({"gift_description": "   "}, "gift_description"), ({}, "gift_description"),
                        ({"gift_description": "x" * 201}, "gift_description"), ({"gift_description": 5},
                                                                                 "gift_description")):
        answer = client.put(url, json=body, headers=headers)
        assert answer.status_code == 422 and field in answer.json["fields"], (body, answer.json)
    assert stored_task(task["id"]).gift_description == "a mug"
    assert client.put("/api/v1/dispatch/tasks/t-nope/gift", json={"gift_description": "x"},
                      headers=headers).status_code == 404
    answer = client.put(url, json={"gift_description": None}, headers=headers)
    assert answer.status_code == 200 and answer.json["gift_description"] is None
    assert stored_task(task["id"]).gift_description is None


def test_a_refusal_whose_return_waybill_looks_taken_still_applies(device, make, courier):
    """The return task's waybill comes from the refused task's id: a waybill like '<X>-RET' already there is no clash."""
    task = make.task(courier=courier, waybill_no="W" * 40)
    make.task(courier=courier, waybill_no="W" * 35 + "-RET")
    photo = upload(device)
    results = device.push([device.op("pod.inspect", task["id"], {"items": [
        {"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "damaged"} for p in task["parcels"]],
        "customer_accepted": False, "photos": [photo]}),
        device.op("pod.refuse", task["id"], {"reason": "damaged", "note": None, "photos": [photo]})])["results"]
    assert codes(results) == [("applied", None), ("applied", None)]
    returned = db.session.scalars(select(Task).where(Task.return_of_id == task["id"])).one()
    assert returned.waybill_no == handover.return_waybill(stored_task(task["id"]))


def test_a_former_courier_handover_is_kept_but_moves_nothing(client, device, make, courier):
    """Reassigned since: the signature is a flagged field fact; the task stays open with its new courier, no receipt."""
    from server.models import Receipt
    task = make.task(courier=courier)
    other = make.courier()
    assert client.post(f"/api/v1/dispatch/tasks/{task['id']}/assign", json={"courier_id": other["id"]},
                       headers=make.headers("dispatcher")).status_code == 200
    signature = upload(device)
    results = device.push([device.op("pod.verify_recipient", task["id"], verify(), base_version=task["version"]),
                           device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.sign", task["id"], sign(signature))])["results"]
    assert {r["status"] for r in results} == {"conflict"}
    stored = stored_task(task["id"])
    assert stored.status == "assigned" and stored.courier_id == other["id"] and stored.needs_review
    assert db.session.query(Receipt).filter(Receipt.task_id == task["id"]).count() == 0


def test_a_pin_task_is_never_left_at_an_alternate_place(client, device, make, courier):
    """A PIN-required task is handed over in person: deliver_alternate is pin_required even with consent."""
    task = make.task(courier=courier, cod_amount=0)
    assert client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                       headers=make.headers("dispatcher")).status_code == 201
    results = device.push([
        device.op("appointment.contact", task["id"], {"outcome": "reached"}),
        device.op("pod.deliver_alternate", task["id"], {"place": "neighbour", "photos": [],
                                                        "authorization": {"via": "contact", "reference": "call"}})])
    assert codes(results["results"]) == [("applied", None), ("rejected", "pin_required")]
    assert stored_task(task["id"]).status == "assigned"


def test_requiring_a_pin_after_a_recipient_check_asks_for_it(client, device, make, courier):
    """A check made before dispatch required a PIN no longer counts: signing needs the PIN check."""
    task = make.task(courier=courier)
    one(device, "pod.verify_recipient", task["id"], verify())
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin", headers=make.headers("dispatcher")).json["pin"]
    signature = upload(device)
    results = device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                           device.op("pod.sign", task["id"], sign(signature)),
                           device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=pin)),
                           device.op("pod.sign", task["id"], sign(signature))])["results"]
    assert [c for c in codes(results)][2:] == [("rejected", "recipient_unverified"), ("applied", None), ("applied", None)]


def test_free_text_never_enters_the_public_receipt(device, make, courier, client):
    """A proxy's relation typed with a phone number stays out of the sealed, public evidence."""
    from server.models import Receipt
    task = make.task(courier=courier)
    signature = upload(device)
    device.push([device.op("pod.verify_recipient", task["id"],
                           verify(method="proxy", relation="neighbour 13912345678")),
                 device.op("pod.inspect", task["id"], inspect_ok(task)),
                 device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                 device.op("pod.sign", task["id"], sign(signature))])
    receipt = db.session.scalars(select(Receipt).where(Receipt.task_id == task["id"])).one()
    assert "13912345678" not in receipt.payload and '"proxy":true' in receipt.payload


def test_devices_racing_wrong_pins_get_no_more_guesses_than_the_limit(app, make, courier, client):
    """Two handhelds of one courier push wrong PINs at once: no more than the limit (5) are ever checked and
    counted, every guess after that is pin_locked, and dispatch is told once; on both engines.

    Each racing thread pauses after every rollback of its session: a refusal decided in one transaction and
    counted in another would let the other handheld's guess be checked at the same count meanwhile."""
    import threading
    import time

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from tests.sync.conftest import Device, at_once
    from tests.sync.test_read_then_write_races import _push_until_taken

    limit = app.config["HANDOVER_PIN_MAX_FAILURES"]
    assert limit == 5
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin", headers=make.headers("dispatcher")).json["pin"]
    handhelds = [make.device(courier, name=f"h{n}") for n in range(2)]
    guesses = iter(f"{(int(pin) + n) % 10 ** 6:06d}" for n in range(1, 2 * limit + 1))
    batches = {h["device_id"]: [] for h in handhelds}
    for enrolled in handhelds:
        speaker = Device(client, enrolled)
        for _ in range(limit):
            batches[enrolled["device_id"]].append(
                [speaker.op("pod.verify_recipient", task["id"], verify(method="pin", pin=next(guesses)))])
    start, answers, lock = threading.Barrier(len(handhelds)), [], threading.Lock()
    order = iter(handhelds)

    def pause(_session, _transaction):
        if threading.current_thread().name.startswith("racer"):
            time.sleep(0.05)

    def racer():
        with lock:
            enrolled = next(order)
        threading.current_thread().name = f"racer-{enrolled['device_id']}"
        start.wait(30)
        for batch in batches[enrolled["device_id"]]:
            for body in _push_until_taken(app, enrolled, batch):
                answers.extend(r for r in body["results"] if not r.get("duplicate"))

    event.listen(Session, "after_soft_rollback", pause)
    try:
        at_once(racer, len(handhelds))
    finally:
        event.remove(Session, "after_soft_rollback", pause)
    assert len(answers) == 2 * limit
    outcomes = [(r["status"], r["code"]) for r in answers]
    assert outcomes.count(("rejected", "pin_mismatch")) == limit, outcomes
    assert outcomes.count(("rejected", "pin_locked")) == limit, outcomes
    assert stored_task(task["id"]).handover.pin_failures == limit
    assert exceptions(task["id"]) == ["pin_locked"] + ["pin_mismatch"] * (limit - 1)
    assert sorted(s[2] for s in steps(task["id"])) == ["pin_locked"] * limit + ["pin_mismatch"] * limit
    # Locked: the right PIN is not checked either, from either handheld.
    right = Device(client, handhelds[0])
    right._seq = iter(range(limit + 1, 100))
    assert one(right, "pod.verify_recipient", task["id"], verify(method="pin", pin=pin))["code"] == "pin_locked"


def test_a_manifest_does_not_change_a_task_whose_handover_has_begun(client, device, make, courier):
    """The steps need not wait for stop.arrive, so the task was still `assigned` after the COD was paid: a manifest
    row raised its COD by 100 yuan, the sign was applied, and the task was delivered with 61.90 paid of 161.90 due
    (the receipt drew 12.00 + 149.90 = 61.90). Now the row is quarantined task_in_progress, the task keeps what
    was paid for."""
    from tests.api.test_manifests import UPLOAD, reasons
    spec = make.task_spec()
    created = client.post(UPLOAD, json=[spec], headers=make.headers("dispatcher")).json
    task = make.assign(created["rows"][0]["task_id"], courier["id"])
    paid = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                        device.op("pod.inspect", task["id"], inspect_ok(task)),
                        device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"})])
    assert codes(paid["results"]) == [("applied", None)] * 3
    assert paid["results"][-1]["entity"]["data"]["status"] == "assigned"
    raised = client.post(UPLOAD, json=[dict(spec, cod_amount=spec["cod_amount"] + 10000)],
                         headers=make.headers("dispatcher")).json
    assert raised["rows"][0]["outcome"] == "quarantined", raised
    assert reasons(raised)[1] == {("waybill_no", "task_in_progress")}
    data = device.push([device.op("pod.sign", task["id"], sign(upload(device)))])["results"][0]["entity"]["data"]
    assert data["status"] == "delivered" and data["amount_due"] == data["handover"]["paid_amount"] == due(task)
