"""The reference client's handover: the ops it queues, and the PIN checked offline, then again by the server."""
import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import HandoverException
from sync.client import Handheld, PinRefused, pin_matches
from tests.sync.conftest import begin_day
from tests.sync.test_client import PNG, _enroll
from tests.sync.transport import FlaskTransport

DOOR = {"lat": 31.23, "lon": 121.47}


def test_cod_delivery_from_the_handheld(app, client, make, courier, templates, tmp_path):
    """Verify with the PIN (checked offline first), inspect, pay, sign: delivered; the state survives a restart."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    path = tmp_path / "hh.sqlite3"
    handheld = _enroll(client, make, courier, path, FlaskTransport(app))
    handheld.sync()
    begin_day(handheld)
    handheld.sync()
    pin_state = handheld.task(task["id"])["handover"]["pin"]
    assert pin_matches(pin, pin_state) and not pin_matches("000000" if pin != "000000" else "111111", pin_state)
    wrong = f"{(int(pin) + 1) % 10 ** 6:06d}"
    with pytest.raises(PinRefused):
        handheld.verify_recipient(task["id"], method="pin", name="Recipient", pin=wrong)
    assert handheld.pending() == 0  # refused locally: nothing queued
    handheld.verify_recipient(task["id"], method="pin", name="Recipient", pin=pin)
    handheld.inspect(task["id"], items=[{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "ok"}
                                        for p in task["parcels"]], customer_accepted=True)
    handheld.sync()
    handheld.close()
    # After a restart the handheld knows where the handover stands.
    handheld = Handheld(str(path), FlaskTransport(app), sleep=lambda s: None)
    state = handheld.task(task["id"])["handover"]
    assert state["recipient_verified"] and state["inspection"] == "accepted" and not state["paid"]
    due = handheld.task(task["id"])["amount_due"]
    handheld.collect_payment(task["id"], amount=due, method="cash")
    handheld.sign(task["id"], signature=PNG, signer_name="Recipient", **DOOR)
    summary = handheld.sync()
    assert summary["pending"] == 0
    assert [r["status"] for r in handheld.results().values()] == ["applied"] * 7  # the day's start, 4 steps
    assert handheld.task(task["id"])["status"] == "delivered"
    assert handheld.task(task["id"])["handover"]["outcome"] == "delivered"


def test_server_rechecks_a_pin_the_device_did_not(app, client, make, courier, templates, tmp_path):
    """A handheld that pulled before the PIN was required queues the op unchecked; the server refuses and flags it."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.sync()
    begin_day(handheld)
    handheld.sync()
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    handheld.verify_recipient(task["id"], method="pin", name="Recipient", pin=f"{(int(pin) + 1) % 10 ** 6:06d}")
    handheld.sync()
    *_, result = handheld.results().values()
    assert (result["status"], result["code"]) == ("rejected", "pin_mismatch")
    db.session.expire_all()
    assert db.session.scalars(select(HandoverException.kind)).all() == ["pin_mismatch"]


def test_refusal_alternate_and_pickup_from_the_handheld(app, client, make, courier, templates, tmp_path):
    """The other handover ops queue what the server expects."""
    refused = make.task(courier=courier)
    locker = make.task(courier=courier, cod_amount=0, fees=[])
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.sync()
    begin_day(handheld)
    handheld.inspect(refused["id"], items=[{"parcel_no": refused["parcels"][0]["parcel_no"], "counted": 2,
                                            "condition": "damaged"}], customer_accepted=False, photos=[PNG])
    handheld.refuse(refused["id"], reason="damaged", photos=[PNG])
    handheld.queue("appointment.contact", locker["id"], {"outcome": "reached"})
    handheld.deliver_alternate(locker["id"], place="locker", via="contact", reference="phone 10:05")
    handheld.collect_pickup(pickup["id"], parcels=[{"parcel_no": "PK1", "description": "", "count": 1}],
                            fees=[{"code": "delivery", "amount": 800}], payment={"amount": 800, "method": "qr"},
                            signature=PNG, signer_name="Sender")
    handheld.sync()
    assert [r["status"] for r in handheld.results().values()] == ["applied"] * 8  # the day's start, 5 ops
