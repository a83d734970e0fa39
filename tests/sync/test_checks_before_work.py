"""Checks before work (issue 21): handovers and arrivals outside an open shift, or on a van off the road, stand and are
flagged once; a failed safety item grounds the van; the reference client will not queue a handover without a shift."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.clock import local_date
from server.extensions import db
from server.models import Event, HandoverException, Task, Vehicle, VehicleDefect, Violation
from sync.client import ShiftRequired
from tests.sync.conftest import DEPOT, SHANGHAI, Device, day_start_ops, morning_task, passing_answers
from tests.sync.test_client import _enroll
from tests.sync.test_handover import PNG, codes, door_ops, inspect_ok, sign, upload, verify
from tests.sync.transport import FlaskTransport

WORK_CODES = ("work_without_shift_check", "grounded_vehicle_used")


def _at(op: dict, when: datetime) -> dict:
    """The op, made at `when` by the device's clock."""
    return dict(op, device_time=when.astimezone(SHANGHAI).isoformat())


def _violations(courier_id: str) -> list[Violation]:
    """The courier's violations of these rules, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(Violation).where(Violation.courier_id == courier_id,
                                                           Violation.code.in_(WORK_CODES)).order_by(Violation.id)))


def _exceptions(task_id: str) -> list[str]:
    """Kinds of the task's exceptions on dispatch's list."""
    return sorted(db.session.scalars(select(HandoverException.kind).where(HandoverException.task_id == task_id)))


def _failing_check(device: Device, template: dict, van: str, item: str, photo: str) -> dict:
    """A vehicle check of the template, every item passing but `item` (failed, with its photo)."""
    answers = [dict(a, value=False, photo=photo) if a["item"] == item else a for a in passing_answers(template)]
    return device.op("checklist.submit", str(uuid.uuid4()),
                     {"template_id": template["id"], "template_version": template["current"], "answers": answers,
                      "vehicle_id": van, **DEPOT}, base_version=0)


def test_a_handover_without_any_shift_stands_and_is_flagged_once(client, make, device, courier):
    """Arrive, verify, inspect, pay, sign with no shift: all applied, delivered; one work_without_shift_check (major)
    with its evidence, on dispatch's violations and exceptions lists and in the event feed; retries, a resent
    op and the task's later steps add nothing."""
    task = make.task(courier=courier)
    ops = door_ops(device, task, upload(device))
    results = device.push(ops)["results"]
    assert codes(results) == [("applied", None)] * 5
    assert results[-1]["entity"]["data"]["status"] == "delivered"
    [violation] = _violations(courier["id"])
    assert (violation.code, violation.severity, violation.task_id) == ("work_without_shift_check", "major", task["id"])
    evidence = violation.evidence
    assert (evidence["action"], evidence["op_id"], evidence["shift"], evidence["last_shift"]) == (
        "stop.arrive", ops[0]["op_id"], None, None)
    assert evidence["waybill_no"] == task["waybill_no"] and evidence["device_time"] == ops[0]["device_time"]
    # Dispatch sees it: the courier's violations, the day's exceptions, the task flagged, the event.
    listed = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations",
                        headers=make.headers("dispatcher")).json["items"]
    assert [(v["code"], v["severity"]) for v in listed] == [("work_without_shift_check", "major")]
    day = local_date(datetime.fromisoformat(ops[0]["device_time"])).isoformat()
    page = client.get("/api/v1/dispatch/exceptions", query_string={"date": day, "kind": "work_without_shift_check"},
                      headers=make.headers("dispatcher")).json["items"]
    assert [(e["task_id"], e["op_id"]) for e in page] == [(task["id"], ops[0]["op_id"])]
    db.session.expire_all()
    assert db.session.get(Task, task["id"]).needs_review
    raised = [e.data for e in db.session.scalars(select(Event).where(Event.type == "task.exception_raised"))]
    assert [(e["task_id"], e["exception"]) for e in raised] == [(task["id"], "work_without_shift_check")]
    # The same batch again (duplicates), a resent arrival under a new op id, another step: nothing more.
    assert all(r["duplicate"] for r in device.push(ops)["results"])
    assert codes(device.push([device.op("stop.arrive", task["id"], DEPOT),
                              device.op("task.note", task["id"], {"text": "left at the door", "photos": []})])
                 ["results"]) == [("applied", None)] * 2
    assert len(_violations(courier["id"])) == 1 and _exceptions(task["id"]) == ["work_without_shift_check"]
    # Another task of the day is its own case.
    other = make.task(courier=courier)
    assert codes(device.push([device.op("stop.arrive", other["id"], DEPOT)])["results"]) == [("applied", None)]
    assert [v.task_id for v in _violations(courier["id"])] == [task["id"], other["id"]]


def test_a_handover_in_a_proper_shift_flags_nothing(client, make, device, courier, on_shift):
    """Checks done, shift open, van in service: the day's handovers record no violation and no exception; a colleague
    without a shift, the same minutes, is flagged."""
    task = make.task(courier=courier)
    assert codes(device.push(door_ops(device, task, upload(device)))["results"]) == [("applied", None)] * 5
    colleague = make.courier()
    theirs = make.task(courier=colleague)
    other = Device(client, make.device(colleague))
    assert codes(other.push([other.op("stop.arrive", theirs["id"], DEPOT)])["results"]) == [("applied", None)]
    assert _violations(courier["id"]) == [] and _exceptions(task["id"]) == []
    assert [(v.code, v.task_id) for v in _violations(colleague["id"])] == [("work_without_shift_check", theirs["id"])]


def test_a_morning_pushed_as_one_batch_is_judged_op_by_op(make, device, courier, templates, van, server_clock):
    """An offline morning pushed as one batch: an arrival dated before the shift's start is flagged; the checks,
    shift.start and the handover after it, in the same batch, are covered."""
    early, task = morning_task(make, courier, server_clock), make.task(courier=courier)
    now = datetime.now(timezone.utc)
    ops = [_at(device.op("stop.arrive", early["id"], DEPOT), now - timedelta(minutes=45))]
    ops += day_start_ops(device, templates, van, at=now - timedelta(minutes=30))
    ops += door_ops(device, task, upload(device))
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 9
    assert [(v.code, v.task_id) for v in _violations(courier["id"])] == [("work_without_shift_check", early["id"])]


def test_a_van_grounded_by_a_failed_check_during_the_shift(client, make, device, courier, on_shift):
    """A check during the shift fails technical_condition: the van is off the road; the next handover stands and
    records grounded_vehicle_used (critical) naming the van and its open critical defect."""
    photo = upload(device, PNG + b"worn brakes")
    templates = {t["kind"]: t for t in client.get("/api/v1/dispatch/checklist-templates",
                                                  headers=make.headers("quality")).json["items"]}
    check = _failing_check(device, templates["vehicle.post_trip"], on_shift, "technical_condition", photo)
    assert codes(device.push([check])["results"]) == [("applied", None)]
    db.session.expire_all()
    assert db.session.get(Vehicle, on_shift).status == "out_of_service"
    task = make.task(courier=courier)
    ops = door_ops(device, task, upload(device))
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 5
    [violation] = _violations(courier["id"])
    assert (violation.code, violation.severity, violation.task_id) == ("grounded_vehicle_used", "critical", task["id"])
    evidence = violation.evidence
    assert evidence["shift"]["vehicle_id"] == on_shift and evidence["vehicle"]["status"] == "out_of_service"
    assert evidence["grounding"]["reason"] == "critical_defect"
    assert evidence["grounding"]["submission_id"] == check["entity_id"]
    assert [(d["item"], d["status"]) for d in evidence["critical_defects"]] == [("technical_condition", "open")]
    assert _exceptions(task["id"]) == ["grounded_vehicle_used"]


def test_a_van_dispatch_took_off_the_road_during_the_shift(client, make, device, courier, templates, van,
                                                          server_clock):
    """Dispatch takes the van out of service mid-shift: work after that is grounded_vehicle_used (reason dispatch);
    work an offline queue dated before it is not; back in service, work is clean again."""
    now = datetime.now(timezone.utc)
    assert codes(device.push(day_start_ops(device, templates, van, at=now - timedelta(hours=1)))["results"]) == [
        ("applied", None)] * 3
    earlier = morning_task(make, courier, server_clock)
    task, later = make.task(courier=courier), make.task(courier=courier)
    dispatcher = make.headers("dispatcher")
    assert client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"status": "out_of_service"},
                        headers=dispatcher).status_code == 200
    results = device.push([_at(device.op("stop.arrive", earlier["id"], DEPOT), now - timedelta(minutes=10)),
                           device.op("stop.arrive", task["id"], DEPOT)])["results"]
    assert codes(results) == [("applied", None)] * 2
    [violation] = _violations(courier["id"])
    assert (violation.code, violation.task_id) == ("grounded_vehicle_used", task["id"])
    assert violation.evidence["grounding"]["reason"] == "dispatch" and violation.evidence["critical_defects"] == []
    assert client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"status": "in_service"},
                        headers=dispatcher).status_code == 200
    assert codes(device.push([device.op("stop.arrive", later["id"], DEPOT)])["results"]) == [("applied", None)]
    assert len(_violations(courier["id"])) == 1


def test_the_online_arrival_is_judged_by_the_same_rule(client, make, courier):
    """POST /me/tasks/{id}/arrive without a shift: applied, and work_without_shift_check recorded once."""
    device = make.device(courier)
    task = make.task(courier=courier)
    headers = {"Authorization": f"Bearer {device['token']}"}
    for _ in range(2):
        response = client.post(f"/api/v1/me/tasks/{task['id']}/arrive", json=DEPOT, headers=headers)
        assert response.status_code == 200, response.json
    assert [(v.code, v.task_id) for v in _violations(courier["id"])] == [("work_without_shift_check", task["id"])]


def test_a_failed_technical_condition_grounds_the_van_and_refuses_the_shift(client, make, device, courier, templates,
                                                                             van):
    """The default pre-trip's technical_condition is critical: failed, it opens a critical defect, the van goes out
    of service and shift.start is refused; so it does on a version that says less (a safety item is critical)."""
    item = next(i for i in templates["vehicle.pre_trip"]["items"] if i["code"] == "technical_condition")
    assert item["severity"] == "critical"
    photo = upload(device, PNG + b"brakes")
    ops = day_start_ops(device, templates, van)
    ops[1] = dict(_failing_check(device, templates["vehicle.pre_trip"], van, "technical_condition", photo),
                  seq=ops[1]["seq"])
    assert codes(device.push(ops)["results"]) == [("applied", None), ("applied", None),
                                                  ("rejected", "vehicle_out_of_service")]
    db.session.expire_all()
    assert db.session.get(Vehicle, van).status == "out_of_service"
    [defect] = db.session.scalars(select(VehicleDefect).where(VehicleDefect.vehicle_id == van))
    assert (defect.item, defect.severity) == ("technical_condition", "critical")
    # A version where quality made it "major" does not make it drivable: safety items are critical.
    other = make.courier()
    other_van = make.vehicle()
    client.patch(f"/api/v1/dispatch/vehicles/{other_van['id']}", json={"courier_id": other["id"]},
                 headers=make.headers("dispatcher"))
    template = templates["vehicle.pre_trip"]
    items = [dict(i, severity="major") if i["code"] == "technical_condition" else i for i in template["items"]]
    published = client.post(f"/api/v1/dispatch/checklist-templates/{template['id']}/versions", json={"items": items},
                            headers=make.headers("quality"))
    assert published.status_code in (200, 201), published.json
    other_device = Device(client, make.device(other))
    check = _failing_check(other_device, published.json, other_van["id"], "technical_condition",
                           upload(other_device, PNG + b"steering"))
    assert codes(other_device.push([check])["results"]) == [("applied", None)]
    db.session.expire_all()
    assert db.session.get(Vehicle, other_van["id"]).status == "out_of_service"


def test_a_handover_pushed_hours_late_from_an_offline_queue(client, make, courier, templates, van, server_clock):
    """One handheld opened and ended the shift; the other, offline all day, pushes its handover hours later: dated
    inside the shift (ended since), it is covered; dated after the shift's end, it is flagged."""
    now = server_clock.now()
    with server_clock.at(now - timedelta(days=1)):  # both handhelds were enrolled before the day began
        online, offline = (Device(client, make.device(courier, name)) for name in ("online", "offline"))
    start = now - timedelta(hours=6)
    assert codes(online.push(day_start_ops(online, templates, van, at=start))["results"]) == [("applied", None)] * 3
    template = templates["vehicle.post_trip"]
    end_ops = [_at(online.op("checklist.submit", str(uuid.uuid4()),
                             {"template_id": template["id"], "template_version": template["current"],
                              "answers": passing_answers(template, 1100), "vehicle_id": van, **DEPOT},
                             base_version=0), start + timedelta(hours=4))]
    db.session.expire_all()
    end_ops.append(_at(online.op("shift.end", van, {"odometer": 1100},
                                 base_version=db.session.get(Vehicle, van).version), start + timedelta(hours=4)))
    assert codes(online.push(end_ops)["results"]) == [("applied", None)] * 2
    with server_clock.at(now - timedelta(hours=7)):  # dispatch assigned the day's tasks in the morning
        inside, after = make.task(courier=courier), make.task(courier=courier)
    signature = upload(offline)
    ops = [_at(op, start + timedelta(hours=2)) for op in door_ops(offline, inside, signature)]
    ops += [_at(offline.op("stop.arrive", after["id"], DEPOT), start + timedelta(hours=5))]
    assert codes(offline.push(ops)["results"]) == [("applied", None)] * 6
    assert [(v.code, v.task_id) for v in _violations(courier["id"])] == [("work_without_shift_check", after["id"])]
    assert _violations(courier["id"])[0].evidence["last_shift"]["status"] == "ended"


def test_a_shift_never_ended_does_not_cover_the_next_day(app, make, device, courier, templates, van):
    """A shift covers at most SHIFT_MAX_HOURS after its start: work 20 hours on, never ended, is flagged."""
    start = datetime.now(timezone.utc) - timedelta(hours=20)
    task = make.task(courier=courier)
    ops = day_start_ops(device, templates, van, at=start) + [device.op("stop.arrive", task["id"], DEPOT)]
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 4
    assert app.config["SHIFT_MAX_HOURS"] == 16
    assert [v.code for v in _violations(courier["id"])] == ["work_without_shift_check"]


def test_the_client_refuses_to_queue_a_handover_without_a_shift(app, make, courier, templates, van, tmp_path):
    """The reference handheld: a handover op without an open shift is ShiftRequired (naming the rule), nothing
    queued; after the checks and shift.start it queues; a shift.start the server refused opens nothing; after
    shift.end it refuses again."""
    handheld = _enroll(make.client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    task = make.task(courier=courier)
    handheld.sync()
    with pytest.raises(ShiftRequired, match="work_without_shift_check"):
        handheld.verify_recipient(task["id"], method="id_check", name="Recipient")
    assert handheld.pending() == 0
    # shift.start before the checks: the server refuses it, and the device knows no shift is open.
    handheld.shift("start", van, 1000)
    assert handheld.open_shift() is not None
    handheld.sync()
    assert handheld.open_shift() is None
    with pytest.raises(ShiftRequired):
        handheld.collect_pickup(task["id"], parcels=[], fees=[], signature=PNG, signer_name="Sender")
    for kind in ("conduct.pre_shift", "vehicle.pre_trip"):
        handheld.submit_checklist(templates[kind], passing_answers(templates[kind]), **DEPOT,
                                  vehicle_id=van if kind.startswith("vehicle.") else None)
    handheld.shift("start", van, 1000)
    handheld.verify_recipient(task["id"], method="id_check", name="Recipient")
    handheld.sync()
    assert [r["status"] for r in handheld.results().values()][-4:] == ["applied"] * 4
    assert _violations(courier["id"]) == []
    template = templates["vehicle.post_trip"]
    handheld.submit_checklist(template, passing_answers(template, 1200), **DEPOT, vehicle_id=van)
    handheld.shift("end", van, 1200)
    with pytest.raises(ShiftRequired):
        handheld.inspect(task["id"], items=[], customer_accepted=True)


@pytest.mark.parametrize("disguise, code", [
    ("Wаng Lei", "courier_cannot_sign"),  # Cyrillic а
    ("WANG LЕI", "courier_cannot_sign"),  # Cyrillic Е, in capitals
    ("Zhοu Wang Lei", "applied"),  # a different name, with a Greek omicron
    ("Wang Lеi\u3000", "courier_cannot_sign"),  # Cyrillic е, an ideographic space
    ("Ｗａｎｇ　Ｌｅｉ", "courier_cannot_sign"),  # full-width letters and space
    ("Wang\u00a0Lei", "courier_cannot_sign"),  # a no-break space
    ("WangLei", "courier_cannot_sign"),
    ("Wang Le\u0456", "courier_cannot_sign"),  # Cyrillic і (Ukrainian)
    ("Wang\u200bLei", "invalid_payload"),  # a zero-width space: no name at all
    ("Wang Li", "applied"),  # a real different name
    ("Wang Lei Jr", "applied"),
])
def test_the_courier_cannot_sign_under_a_look_alike_of_their_name(client, make, disguise, code):
    """Signer names are compared by their TR39 confusable skeleton: letters of other scripts that look the same,
    widths, spaces and case do not make the courier someone else; a different name still signs."""
    courier = make.courier(name="Wang Lei")
    device = Device(client, make.device(courier))
    task = make.task(courier=courier, cod_amount=0)
    signature = upload(device)
    ops = [device.op("pod.verify_recipient", task["id"], verify(disguise)),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.sign", task["id"], sign(signature, signer_name=disguise))]
    assert codes(device.push(ops)["results"])[-1] == (
        ("applied", None) if code == "applied" else ("rejected", code))


@pytest.mark.parametrize("disguise, code", [("Zhοu Bο", "courier_cannot_sign"), ("Zhou Bo", "courier_cannot_sign"),
                                            ("Zhou Bao", "applied")])
def test_a_pickup_signed_under_a_greek_omicron_is_the_courier(client, make, disguise, code):
    """pickup.collect compares the sender's name the same way: Greek omicrons in the courier's own name refused."""
    courier = make.courier(name="Zhou Bo")
    device = Device(client, make.device(courier))
    task = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    payload = {"parcels": [{"parcel_no": "PK-1", "description": "documents", "count": 1}], "fees": [],
               "payment": None, "signature": upload(device), "signer_name": disguise}
    result = device.push([device.op("pickup.collect", task["id"], payload)])["results"][0]
    assert (result["status"], result["code"]) == (("applied", None) if code == "applied" else ("rejected", code))


def test_skeleton_is_tr39s():
    """The skeleton of UTS #39: NFD, prototypes from confusables.txt, default-ignorables removed, NFD."""
    from server.confusables import skeleton

    assert skeleton("Wаng") == skeleton("Wang") == "Wang"
    assert skeleton("ΡΟ") == "PO" and skeleton("m") == "rn" and skeleton("I1l") == "lll"
    assert skeleton("e\u0301") == skeleton("\u00e9") == "e\u0301"
    assert skeleton("Wa\u00adng\ufe0f") == "Wang"
    assert skeleton("Wang Lei") == "Wang Lei"
