"""A KPI day built only through the handhelds' push path and the office's HTTP API, every figure hand-computed.

Nothing here writes a row: dispatch creates and assigns tasks and works complaints
over HTTP; each courier's handheld (the raw protocol speaker of tests/sync) pushes
what happened at the door. The report is then read over HTTP and each figure
checked against the arithmetic written beside it. The later tests replay, one by
one, what the old definitions counted wrongly (docs/kpis.md, docs/decisions.md
"Issue 21: figures as the standard defines them").

EXPECTED lists the figures this day is built to check. The appointment figures
(on_time_delivery, on_time_pickup, exception_notification) are to be redefined
on per-window outcomes: they are added to EXPECTED, with the day's windows, once
they are.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.sync.conftest import Device
from tests.sync.test_appointment_attempts import clock  # noqa: F401 - the timeline fixture
from tests.sync.test_handover import AT_DOOR, codes, due, inspect_ok, sign, upload, verify, violations

COMPLAINTS = "/api/v1/dispatch/complaints"
FAR = {"lat": AT_DOOR["lat"] + 0.018, "lon": AT_DOOR["lon"]}  # about 2 km north of the stop
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64
APPLIED, OK = ("applied", None), [("applied", None)]


@pytest.fixture
def day(app, midday):
    """The depot-local day the tasks made now fall on (their windows start an hour from now, about 13:00 there)."""
    return datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()


def _report(client, make, day, **query) -> dict:
    """The report for the day over HTTP: {figure: (numerator, denominator, unknown)} of the total, or of groups."""
    answer = client.get("/api/v1/reports/kpis", query_string={"from": day.isoformat(), "to": day.isoformat(),
                                                                **query}, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return answer.json


def _counts(group: dict) -> dict:
    """{figure: (numerator, denominator, unknown)} of a report group."""
    return {name: (f["numerator"], f["denominator"], f["unknown"]) for name, f in group["figures"].items()}


def _behind(client, make, day, figure: str) -> dict:
    """{id: (counted, unknown)} of the tasks (or complaints) behind a figure on the day."""
    answer = client.get(f"/api/v1/reports/kpis/{figure}/tasks", query_string={
        "from": day.isoformat(), "to": day.isoformat()}, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return {item["id"]: (item["counted"], item["unknown"]) for item in answer.json["items"]}


def _push(device: Device, task: dict, *ops: tuple) -> list:
    """Push the (type, payload) ops on the task in one batch; their (status, code)."""
    return codes(device.push([device.op(kind, task["id"], payload) for kind, payload in ops])["results"])


def _complaint(client, make, courier: dict) -> dict:
    """A complaint about the courier, recorded by the office."""
    answer = client.post(COMPLAINTS, json={"courier_id": courier["id"], "channel": "phone", "category": "late",
                                           "text": "The parcel came late."}, headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    return answer.json


def _act(client, make, complaint: dict, action: str, body: dict, expect: int = 200) -> dict:
    """POST one of the complaint's actions as quality staff; its body."""
    answer = client.post(f"{COMPLAINTS}/{complaint['id']}/{action}", json=body, headers=make.headers("quality"))
    assert answer.status_code == expect, (action, answer.json)
    return answer.json


def _resolve(client, make, complaint: dict, **box) -> dict:
    """Resolve the complaint as upheld (the deprecated box only when given)."""
    return _act(client, make, complaint, "resolve", {"outcome": "upheld", "note": "checked", **box})


def _deliver(device: Device, task: dict, signature: str, *, at: dict = AT_DOOR, name: str = "Recipient",
             cod: bool = False) -> None:
    """The whole procedure at the door, in order: check, inspect, pay (COD), sign; delivered."""
    ops = [("pod.verify_recipient", verify(name)), ("pod.inspect", inspect_ok(task))]
    if cod:
        ops.append(("pod.collect_payment", {"amount": due(task), "method": "cash"}))
    ops.append(("pod.sign", sign(signature, signer_name=name, **at)))
    assert _push(device, task, *ops) == OK * len(ops)


# The day's figures, worked out by hand in test_the_day_hand_computed (numerator, denominator, unknown).
EXPECTED = {
    "signoff_compliance": (4, 8, None),
    "delivered_to_address": (5, 8, 1),
    "first_contact_resolution": (3, 5, None),
}


def test_the_day_hand_computed(client, make, day):
    """Two couriers' day at the door and the office's complaints, every figure of EXPECTED computed by hand.

    Courier A (device a):
      t1  COD delivery by the book: check, inspect, pay, sign at the door
      t2  sign before the inspection (refused inspection_required, a left_before_inspection violation), then
          inspected and signed at the door
      t3  a gift: signed without telling it (refused gift_not_disclosed), then told and signed at the door
      t8  by the book, but signed about 2 km from the stop (not_at_address)
      t9  by the book, at a stop dispatch gave no coordinates
      t11 a pickup, collected (neither figure is about pickups)
    Courier B (device b):
      t4  inspected and signed without the recipient check (refused recipient_unverified), then checked and signed
      t5  checked, inspected damaged, refused by the customer: no payment, no signature
      t6  the customer reached by phone agreed to a locker: left there with that consent
      t7  left at a locker with no consent (refused authorization_required); the task stays open
      t10 checked and inspected, the courier signed with his own name (refused courier_cannot_sign), then left

    signoff_compliance, handovers attempted at the door (t6 left with consent is no sign-off, t7 never began one):
      t1 t2 t3 t4 t5 t8 t9 t10 = 8; procedure followed: t1, t5 (refused after inspection), t8, t9 = 4 -> 4/8
      (t2, t3, t4, t10 each have a step refused for order; where it was signed, and whether the stop has
      coordinates, is the other figure's business).
    delivered_to_address, deliveries and drops: t1 t2 t3 t4 t6 t7 t8 t9 = 8; at the address or with consent:
      t1 t2 t3 t4 (at the door) + t6 (consent) = 5 -> 5/8; t7 dropped without leave and t8 too far fail;
      t9 has no coordinates: unknown 1, not a pass.
    first_contact_resolution, resolved complaints k1 k2 k3 k4 k6 = 5; never reopened with one contact by
      resolution: k1, k4, k6 = 3 -> 3/5.
      k1 responded, resolved (its box says "first contact")
      k2 responded, contacted again, resolved (its box says "first contact": not read)
      k3 first contact by /contacts, resolved, reopened, resolved again
      k4 one contact posted twice (a double submission), resolved
      k5 responded, not resolved (in no denominator)
      k6 responded, resolved (its box says "not at first contact": not read)
    """
    a, b = make.courier(), make.courier()
    device_a, device_b = Device(client, make.device(a)), Device(client, make.device(b))
    signature_a, signature_b, photo = upload(device_a), upload(device_b), upload(device_b, PHOTO)
    plain = {"cod_amount": 0, "fees": []}
    t1 = make.task(courier=a)
    t2, t3, t8 = (make.task(courier=a, **plain) for _ in range(3))
    t9 = make.task(courier=a, recipient={"name": "Recipient 9", "phone": "13912345999", "address": "9 Nowhere Ln"},
                   **plain)
    t11 = make.task(courier=a, kind="pickup", **plain)
    t4, t5, t6, t7, t10 = (make.task(courier=b, **plain) for _ in range(5))
    gift = client.put(f"/api/v1/dispatch/tasks/{t3['id']}/gift", json={"gift_description": "a tea cup"},
                      headers=make.headers("dispatcher"))
    assert gift.status_code == 200, gift.json

    _deliver(device_a, t1, signature_a, cod=True)
    assert _push(device_a, t2, ("pod.verify_recipient", verify()), ("pod.sign", sign(signature_a)),
                 ("pod.inspect", inspect_ok(t2)), ("pod.sign", sign(signature_a))) == [
        APPLIED, ("rejected", "inspection_required"), APPLIED, APPLIED]
    assert violations(t2["id"]) == ["left_before_inspection"]
    assert _push(device_a, t3, ("pod.verify_recipient", verify()), ("pod.inspect", inspect_ok(t3)),
                 ("pod.sign", sign(signature_a)), ("pod.sign", sign(signature_a, gift_disclosed=True))) == [
        APPLIED, APPLIED, ("rejected", "gift_not_disclosed"), APPLIED]
    _deliver(device_a, t8, signature_a, at=FAR)
    _deliver(device_a, t9, signature_a)
    assert _push(device_a, t11, ("pickup.collect", {
        "parcels": [{"parcel_no": "PK1", "description": "box", "count": 1}],
        "fees": [{"code": "delivery", "amount": 800}], "payment": {"amount": 800, "method": "cash"},
        "signature": signature_a, "signer_name": "Sender", **AT_DOOR})) == OK

    assert _push(device_b, t4, ("pod.inspect", inspect_ok(t4)), ("pod.sign", sign(signature_b)),
                 ("pod.verify_recipient", verify()), ("pod.sign", sign(signature_b))) == [
        APPLIED, ("rejected", "recipient_unverified"), APPLIED, APPLIED]
    damaged = {"items": [{**item, "condition": "damaged"} for item in inspect_ok(t5)["items"]],
               "customer_accepted": False, "photos": [photo]}
    assert _push(device_b, t5, ("pod.verify_recipient", verify()), ("pod.inspect", damaged),
                 ("pod.refuse", {"reason": "damaged", "note": "crushed", "photos": [photo]})) == OK * 3
    assert _push(device_b, t6, ("appointment.contact", {"outcome": "reached"}),
                 ("pod.deliver_alternate", {"place": "locker", "authorization": {"via": "contact",
                                                                                 "reference": "call 10:05"}})) == OK * 2
    assert _push(device_b, t7, ("pod.deliver_alternate", {
        "place": "locker", "authorization": {"via": "customer_link", "reference": ""}})) == [
        ("rejected", "authorization_required")]
    assert _push(device_b, t10, ("pod.verify_recipient", verify()), ("pod.inspect", inspect_ok(t10)),
                 ("pod.sign", sign(signature_b, signer_name=b["name"]))) == [
        APPLIED, APPLIED, ("rejected", "courier_cannot_sign")]

    k1, k2, k3, k4, k5, k6 = (_complaint(client, make, courier) for courier in (a, a, b, b, a, b))
    for complaint in (k1, k2, k5, k6):
        _act(client, make, complaint, "respond", {"text": "We are looking into it."})
    _resolve(client, make, k1, resolved_at_first_contact=True)
    _act(client, make, k2, "contacts", {"channel": "phone", "note": "Called with the courier's account."}, 201)
    _resolve(client, make, k2, resolved_at_first_contact=True)
    _act(client, make, k3, "contacts", {"channel": "phone", "note": "Called, apologised."}, 201)
    _resolve(client, make, k3)
    _act(client, make, k3, "reopen", {"reason": "The customer called back: still late."})
    _resolve(client, make, k3)
    first = _act(client, make, k4, "contacts", {"channel": "sms", "note": "Refund sent."}, 201)
    assert _act(client, make, k4, "contacts", {"channel": "sms", "note": "Refund sent."}, 201) == first
    _resolve(client, make, k4)
    _resolve(client, make, k6, resolved_at_first_contact=False)

    total = _counts(_report(client, make, day)["total"])
    assert {name: total[name] for name in EXPECTED} == EXPECTED
    assert total["signoff_compliance"][:2] == (4, 8)  # 4/8: t1, t5, t8, t9 of t1 t2 t3 t4 t5 t8 t9 t10
    assert total["delivered_to_address"] == (5, 8, 1)  # 5/8: t1 t2 t3 t4 t6 of t1 t2 t3 t4 t6 t7 t8 t9; t9 unknown
    assert total["first_contact_resolution"][:2] == (3, 5)  # 3/5: k1 k4 k6 of k1 k2 k3 k4 k6
    signoff = _behind(client, make, day, "signoff_compliance")
    assert {task: counted for task, (counted, _) in signoff.items()} == {
        t1["id"]: True, t2["id"]: False, t3["id"]: False, t4["id"]: False, t5["id"]: True, t8["id"]: True,
        t9["id"]: True, t10["id"]: False}
    assert _behind(client, make, day, "delivered_to_address") == {
        t1["id"]: (True, False), t2["id"]: (True, False), t3["id"]: (True, False), t4["id"]: (True, False),
        t6["id"]: (True, False), t7["id"]: (False, False), t8["id"]: (False, False), t9["id"]: (False, True)}
    assert _behind(client, make, day, "first_contact_resolution") == {
        str(k["id"]): (k in (k1, k4, k6), False) for k in (k1, k2, k3, k4, k6)}
    by_courier = {g["group"]: _counts(g) for g in _report(client, make, day, group_by="courier")["groups"]}
    # A: t1 t8 t9 of t1 t2 t3 t8 t9; B: t5 of t4 t5 t10.
    assert by_courier[a["id"]]["signoff_compliance"][:2] == (3, 5)
    assert by_courier[b["id"]]["signoff_compliance"][:2] == (1, 3)
    # A: t1 t2 t3 of t1 t2 t3 t8 t9 (t9 unknown); B: t4 t6 of t4 t6 t7.
    assert by_courier[a["id"]]["delivered_to_address"] == (3, 5, 1)
    assert by_courier[b["id"]]["delivered_to_address"] == (2, 3, 0)
    # A: k1 of k1 k2; B: k4 k6 of k3 k4 k6.
    assert by_courier[a["id"]]["first_contact_resolution"][:2] == (1, 2)
    assert by_courier[b["id"]]["first_contact_resolution"][:2] == (2, 3)


def _one_task(client, make, **spec) -> tuple[dict, dict, Device, str]:
    """A courier, their handheld, an uploaded signature and one task of theirs without COD."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    return courier, make.task(courier=courier, cod_amount=0, fees=[], **spec), device, upload(device)


def test_a_step_refused_for_order_makes_a_handover_non_compliant(client, make, day):
    """Signed before the inspection (refused), then done right: the delivery stands, but the procedure was broken
    (0/1). The old figure counted the finished state only (recipient checked, inspected, signed: 1/1)."""
    _, task, device, signature = _one_task(client, make)
    assert _push(device, task, ("pod.verify_recipient", verify()), ("pod.sign", sign(signature)),
                 ("pod.inspect", inspect_ok(task)), ("pod.sign", sign(signature))) == [
        APPLIED, ("rejected", "inspection_required"), APPLIED, APPLIED]
    assert _counts(_report(client, make, day)["total"])["signoff_compliance"] == (0, 1, None)
    assert _behind(client, make, day, "signoff_compliance") == {task["id"]: (False, False)}


def test_a_courier_who_left_before_the_inspection_is_in_the_denominator(client, make, day):
    """A sign refused before any inspection (left_before_inspection) and nothing after: an attempted handover
    that failed (0/1). The old figure saw only delivered tasks (0/0: the figure said nothing)."""
    _, task, device, signature = _one_task(client, make)
    assert _push(device, task, ("pod.sign", sign(signature))) == [("rejected", "inspection_required")]
    assert violations(task["id"]) == ["left_before_inspection"]
    assert _counts(_report(client, make, day)["total"])["signoff_compliance"] == (0, 1, None)


def test_a_wrong_pin_alone_is_no_attempted_sign_off(client, make, day):
    """A wrong PIN refused at the door, and the parcel kept: the recipient check did its work, no step was taken
    out of order and nothing was handed over, so no handover counts either way (0/0)."""
    _, task, device, _ = _one_task(client, make)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin", headers=make.headers("dispatcher"))
    wrong = f"{(int(pin.json['pin']) + 1) % 10 ** 6:06d}"
    assert _push(device, task, ("pod.verify_recipient", verify(method="pin", pin=wrong))) == [
        ("rejected", "pin_mismatch")]
    assert _counts(_report(client, make, day)["total"])["signoff_compliance"] == (0, 0, None)


def test_an_alternate_place_without_consent_fails_and_with_consent_passes(client, make, day):
    """A locker drop refused for want of consent is a delivery that failed, even when the courier then got the
    customer on the phone and dropped it again (the drop came before the consent); a locker with consent given
    first passes. The old figure counted delivered tasks only: the refused drop was in no denominator (1/1)."""
    courier, without, device, _ = _one_task(client, make)
    consented = make.task(courier=courier, cod_amount=0, fees=[])
    refused_first = make.task(courier=courier, cod_amount=0, fees=[])
    no_consent = {"place": "locker", "authorization": {"via": "customer_link", "reference": ""}}
    by_phone = {"place": "locker", "authorization": {"via": "contact", "reference": "call 10:05"}}
    assert _push(device, without, ("pod.deliver_alternate", no_consent)) == [("rejected", "authorization_required")]
    assert _push(device, consented, ("appointment.contact", {"outcome": "reached"}),
                 ("pod.deliver_alternate", by_phone)) == OK * 2
    assert _push(device, refused_first, ("pod.deliver_alternate", by_phone),
                 ("appointment.contact", {"outcome": "reached"}), ("pod.deliver_alternate", by_phone)) == [
        ("rejected", "authorization_required"), APPLIED, APPLIED]
    assert _counts(_report(client, make, day)["total"])["delivered_to_address"] == (1, 3, 0)
    assert _behind(client, make, day, "delivered_to_address") == {
        without["id"]: (False, False), consented["id"]: (True, False), refused_first["id"]: (False, False)}


def test_a_stop_without_coordinates_is_unknown_not_a_pass(client, make, day):
    """Signed for at a stop dispatch gave no coordinates: the distance cannot be measured, so it is counted in
    the denominator, not in the numerator, and reported as unknown (0/1, 1 unknown). The old figure passed it."""
    _, task, device, signature = _one_task(client, make, recipient={
        "name": "Recipient", "phone": "13912345000", "address": "1 Unmapped Ln"})
    _deliver(device, task, signature, at=FAR)
    assert _counts(_report(client, make, day)["total"])["delivered_to_address"] == (0, 1, 1)
    assert _behind(client, make, day, "delivered_to_address") == {task["id"]: (False, True)}
    csv_total = [line for line in _csv(client, make, day) if line.startswith("total,total,delivered_to_address,")]
    assert csv_total == ["total,total,delivered_to_address,0,1,0.0,ratio,1"]


def _csv(client, make, day) -> list[str]:
    """The report's CSV lines for the day."""
    answer = client.get("/api/v1/reports/kpis", query_string={"from": day.isoformat(), "to": day.isoformat(),
                                                                "format": "csv"}, headers=make.headers("admin"))
    assert answer.status_code == 200
    return answer.text.splitlines()


def test_a_reopened_complaint_is_not_resolved_at_first_contact(client, make, day):
    """One contact, resolved, then reopened and resolved again: not first-contact resolved (0/1), whatever the
    office ticks. The old figure read the box (1/1)."""
    complaint = _complaint(client, make, make.courier())
    _act(client, make, complaint, "respond", {"text": "Sorry, we will check."})
    _resolve(client, make, complaint, resolved_at_first_contact=True)
    assert _counts(_report(client, make, day)["total"])["first_contact_resolution"] == (1, 1, None)
    _act(client, make, complaint, "reopen", {"reason": "Not solved."})
    assert _counts(_report(client, make, day)["total"])["first_contact_resolution"] == (0, 0, None)  # open again
    _resolve(client, make, complaint, resolved_at_first_contact=True)
    assert _counts(_report(client, make, day)["total"])["first_contact_resolution"] == (0, 1, None)


def test_a_complaint_with_two_contacts_is_not_resolved_at_first_contact(client, make, day):
    """The first response and a second call before the resolution: two contacts (0/1), though the box says
    "first contact". A contact after the resolution (a follow-up call) does not undo a first-contact one (1/2)."""
    courier = make.courier()
    twice, once = _complaint(client, make, courier), _complaint(client, make, courier)
    _act(client, make, twice, "respond", {"text": "Sorry, we will check."})
    _act(client, make, twice, "contacts", {"channel": "phone", "note": "Called again with the courier's account."},
         201)
    _resolve(client, make, twice, resolved_at_first_contact=True)
    _act(client, make, once, "contacts", {"channel": "phone", "note": "Called, refunded."}, 201)
    _resolve(client, make, once)
    _act(client, make, once, "contacts", {"channel": "phone", "note": "Asked how satisfied they were."}, 201)
    assert _counts(_report(client, make, day)["total"])["first_contact_resolution"] == (1, 2, None)
    assert _behind(client, make, day, "first_contact_resolution") == {
        str(twice["id"]): (False, False), str(once["id"]): (True, False)}


def test_the_windows_of_a_day_hand_computed(client, make, clock):  # noqa: F811 - the fixture
    """Each agreed or promised window decided, through the push path, the sweep as the scheduler runs it, the API.

    One courier, six deliveries, every window 2 h from T0 + 1 h (T0: the timeline's start):
      w1 agreed, arrived 20 min in: kept
      w2 agreed, a late notice at T0 (an hour before the start: in time), arrived 30 min after the end: late
      w3 agreed, nobody came; the sweep: missed
      w4 agreed, nobody came; after the end the courier agrees by phone a window containing now and arrives (the
         first evasion): the first window missed (attempt 1), the new one kept (attempt 2)
      w5 agreed, arrived 20 min in, phoned (no answer), customer_absent 10 min later (the second evasion): the
         window kept, the attempt failed customer_absent
      w6 promised, never agreed, never visited; the sweep: not_attempted
    on_time_delivery: windows kept, late, missed or not attempted: w1 w2 w3 w4a w4b w5 w6 = 7; kept: w1 w4b w5 = 3
      -> 3/7 (the old figure read one status per task: w1 w4 w5 kept of 6, and w6 counted nowhere).
    exception_notification: exceptions w2 late, w3 missed, w4a missed, w5 absent, w6 not attempted = 5; told before
      them: w2 (notice in time) = 1 -> 1/5.
    """
    from tests.sync.test_appointment_attempts import HERE, _op, _push, _window
    from server.services import appointments

    courier = make.courier()
    device = Device(client, make.device(courier))
    start = clock.now() + timedelta(hours=1)
    window = _window(start)
    w1, w2, w3, w4, w5, w6 = (make.task(courier=courier, window=window, cod_amount=0, fees=[]) for _ in range(6))
    day = datetime.fromisoformat(w1["service_date"]).date() if "service_date" in w1 else start.astimezone(
        ZoneInfo("Asia/Shanghai")).date()
    for task in (w1, w2, w3, w4, w5):
        assert _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": window, "via": "phone"})
                     )[0]["status"] == "applied"
    assert _push(device, _op(device, clock, "appointment.late_notice", w2["id"], {
        "eta": (start + timedelta(hours=2, minutes=30)).isoformat(), "reason": "traffic"}))[0]["status"] == "applied"
    clock.set(start + timedelta(minutes=20))
    for task in (w1, w5):
        assert _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))[0]["status"] == "applied"
    clock.advance(minutes=2)
    assert _push(device, _op(device, clock, "appointment.contact", w5["id"], {"outcome": "no_answer"}))[0][
        "status"] == "applied"
    clock.advance(minutes=10)
    assert _push(device, _op(device, clock, "stop.customer_absent", w5["id"], {"waited_minutes": 12}))[0][
        "status"] == "applied"
    clock.set(start + timedelta(hours=2, minutes=30))
    assert _push(device, _op(device, clock, "stop.arrive", w2["id"], HERE))[0]["status"] == "applied"
    assert _push(device, _op(device, clock, "appointment.confirm", w4["id"], {
        "window": _window(clock.now() - timedelta(minutes=30)), "via": "phone"}))[0]["status"] == "applied"
    clock.advance(minutes=5)
    assert _push(device, _op(device, clock, "stop.arrive", w4["id"], HERE))[0]["status"] == "applied"
    clock.set(start + timedelta(hours=3))
    swept = appointments.sweep_missed()
    assert (swept["missed"], swept["not_attempted"]) == (1, 1)  # w3, w6

    total = _counts(_report(client, make, day)["total"])
    assert total["on_time_delivery"] == (3, 7, None)  # w1 w4b w5 of w1 w2 w3 w4a w4b w5 w6
    assert total["exception_notification"] == (1, 5, None)  # w2 of w2 w3 w4a w5(absent) w6
    assert _behind(client, make, day, "on_time_delivery") == {
        w1["id"]: (True, False), w2["id"]: (False, False), w3["id"]: (False, False), w4["id"]: (False, False),
        w5["id"]: (True, False), w6["id"]: (False, False)}
    assert _behind(client, make, day, "exception_notification") == {
        w2["id"]: (True, False), w3["id"]: (False, False), w4["id"]: (False, False), w5["id"]: (False, False),
        w6["id"]: (False, False)}
