"""Checklists through the sync engine: create ops, every refusal, versions and grace, defects, shifts, late queues,
and what a hostile or careless handheld sends."""
import hashlib
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.extensions import db
import sync.push
from server.models import (ChecklistSubmission, CreatedEntity, Event, OpLog, Shift, Vehicle, VehicleDefect,
                           Violation)
from tests.sync.conftest import SHANGHAI, Device

HERE = {"lat": 31.2300, "lon": 121.4700}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
VEHICLE_ITEMS = ("body_clean", "lettering_intact", "hood_decal", "interior_clean", "technical_condition",
                 "safety_equipment")
CONDUCT_ITEMS = ("uniform", "tidy", "shoe_covers", "water_cup", "id_badge")


@pytest.fixture
def van(courier) -> str:
    """The courier's van id."""
    return db.session.scalar(select(Vehicle.id).where(Vehicle.courier_id == courier["id"]))


@pytest.fixture
def photo(client, device) -> str:
    """An uploaded photo's sha256."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.put(f"/api/v1/attachments/{sha}", data=PNG, headers=device.headers).status_code == 201
    return sha


def vehicle_answers(odometer: int = 1000, **overrides) -> list[dict]:
    """Every vehicle item passing (paint loss 0), with overrides {item: answer dict}."""
    answers = {code: {"item": code, "value": True} for code in VEHICLE_ITEMS}
    answers["paint_loss_cm2"] = {"item": "paint_loss_cm2", "value": 0}
    answers["odometer"] = {"item": "odometer", "value": odometer}
    for code, answer in overrides.items():
        answers[code] = {"item": code, **answer}
    return list(answers.values())


def conduct_answers(**overrides) -> list[dict]:
    """Every pre-shift item passing, with overrides."""
    answers = {code: {"item": code, "value": True} for code in CONDUCT_ITEMS}
    answers["hair"] = {"item": "hair", "value": "tied"}
    for code, answer in overrides.items():
        answers[code] = {"item": code, **answer}
    return list(answers.values())


def submit(device: Device, template: dict, answers: list[dict], *, entity_id: str | None = None,
           at: datetime | None = None, **payload) -> dict:
    """A checklist.submit op (a create op: a fresh UUID, base_version 0)."""
    op = device.op("checklist.submit", entity_id or str(uuid.uuid4()),
                   {"template_id": template["id"], "template_version": template["current"], "answers": answers,
                    **HERE, **payload}, base_version=0)
    return _at(op, at) if at else op


def shift(device: Device, kind: str, van: str, odometer: int, at: datetime | None = None) -> dict:
    """A shift.start or shift.end op on the van."""
    op = device.op(f"shift.{kind}", van, {"odometer": odometer}, base_version=_vehicle(van).version)
    return _at(op, at) if at else op


def _at(op: dict, when: datetime) -> dict:
    """The op, made at `when` by the device's clock."""
    return dict(op, device_time=when.astimezone(SHANGHAI).isoformat())


def _vehicle(van: str) -> Vehicle:
    """The stored van, fresh."""
    db.session.expire_all()
    return db.session.get(Vehicle, van)


def _results(device: Device, ops: list[dict]) -> list[tuple[str, str | None]]:
    """Push; (status, code) of each result."""
    return [(r["status"], r["code"]) for r in device.push(ops)["results"]]


def _ready(device: Device, templates: dict, van: str, at: datetime | None = None) -> list[dict]:
    """The day's pre-shift and pre-trip checks, passing."""
    return [submit(device, templates["conduct.pre_shift"], conduct_answers(), at=at),
            submit(device, templates["vehicle.pre_trip"], vehicle_answers(), vehicle_id=van, at=at)]


def test_templates_reach_every_device_and_leave_when_retired(device, make, templates):
    """Active templates are in every courier's scope; a retired one is tombstoned on the next pull."""
    store, cursor, last = device.pull_all()
    held = {key[1]: change["data"] for key, change in store.items() if key[0] == "checklist_template"}
    assert {t["kind"] for t in held.values()} == set(templates) - {"inspection"}  # staff fill that one in
    paint = next(i for i in held[templates["vehicle.pre_trip"]["id"]]["items"] if i["code"] == "paint_loss_cm2")
    assert (paint["type"], paint["max"], paint["unit"], paint["label_zh"]) == ("number", 1, "cm²", "单处掉漆面积")
    gone = templates["conduct.stop"]["id"]
    assert make.client.post(f"/api/v1/dispatch/checklist-templates/{gone}/retire",
                            headers=make.headers("quality")).status_code == 200
    page = device.pull(cursor)
    assert [(c["entity"], c["id"], c["deleted"]) for c in page["changes"]] == [("checklist_template", gone, True)]
    assert page["scope"]["count"] == last["scope"]["count"] - 1


def test_submit_is_a_create_op_and_its_replay_a_duplicate(device, templates):
    """The device names the submission; the result shows it; the same batch again changes nothing."""
    op = submit(device, templates["conduct.pre_shift"], conduct_answers())
    first = device.push([op])["results"][0]
    assert first["status"] == "applied" and first["entity"]["entity"] == "checklist_submission"
    assert first["entity"]["id"] == op["entity_id"] and first["entity"]["data"]["failed"] == []
    again = device.push([op])["results"][0]
    assert again["duplicate"] is True and again["entity"] == first["entity"]
    assert db.session.query(ChecklistSubmission).count() == 1


def test_an_entity_id_spent_is_entity_exists_from_any_device_or_kind(client, make, device, templates):
    """Another device, a later op of the same device, the same batch, or an id of another kind: entity_exists."""
    other = make.courier()
    other_device = Device(client, make.device(other))
    op = submit(device, templates["conduct.pre_shift"], conduct_answers())
    assert _results(device, [op]) == [("applied", None)]
    reuse = submit(other_device, templates["conduct.pre_shift"], conduct_answers(), entity_id=op["entity_id"])
    assert _results(other_device, [reuse]) == [("rejected", "entity_exists")]
    same = submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=op["entity_id"])
    twice = str(uuid.uuid4())
    batch = [same, submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=twice),
             submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=twice)]
    assert _results(device, batch) == [("rejected", "entity_exists"), ("applied", None),
                                       ("rejected", "entity_exists")]
    spent_elsewhere = str(uuid.uuid4())
    db.session.add(CreatedEntity(entity_id=spent_elsewhere, entity="another_kind", device_id=other_device.id, seq=1))
    db.session.commit()
    late = submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=spent_elsewhere)
    assert _results(device, [late]) == [("rejected", "entity_exists")]
    assert db.session.query(ChecklistSubmission).count() == 2


def test_an_id_spent_by_a_concurrent_push_is_entity_exists_not_a_500(monkeypatch, client, make, courier, device,
                                                                     templates):
    """Another handheld's push spends the id after this batch decided it and before it records its ids
    (PostgreSQL: two pushes run at once). Recording them must not flush the batch's new rows first (the
    clashing row would be a 500): the batch starts over with that op entity_exists, the rest applied, logged."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one push at a time; an id spent between its read and write phases is the "
                    "read phase's (test_read_then_write_races)")
    other = make.courier()
    other_device = Device(client, make.device(other))
    mine = submit(device, templates["conduct.pre_shift"], conduct_answers())
    theirs = submit(other_device, templates["conduct.pre_shift"], conduct_answers(), entity_id=mine["entity_id"])
    note = device.op("task.note", make.task(courier=courier)["id"], {"text": "gate 4"})
    original, raced = sync.push._spend_created, []

    def racing(*args):
        if not raced and threading.current_thread() is threading.main_thread():  # once; not in the racing push
            thread = threading.Thread(target=lambda: raced.append(_results(other_device, [theirs])))
            thread.start()  # another request: its own thread, app context, session and connection
            thread.join(30)
        return original(*args)
    monkeypatch.setattr(sync.push, "_spend_created", racing)
    results = device.push([mine, note])["results"]
    assert raced == [[("applied", None)]]
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "entity_exists"), ("applied", None)]
    db.session.expire_all()
    assert db.session.scalar(select(OpLog.code).where(OpLog.op_id == mine["op_id"])) == "entity_exists"
    assert db.session.scalar(select(ChecklistSubmission.courier_id).where(
        ChecklistSubmission.id == mine["entity_id"])) == other["id"]


def test_a_rejected_create_op_does_not_spend_its_id(device, templates):
    """Refused for a missing item, the same id may be sent again (as a new op) once the answers are complete."""
    entity_id = str(uuid.uuid4())
    short = conduct_answers()[1:]
    assert _results(device, [submit(device, templates["conduct.pre_shift"], short, entity_id=entity_id)]) == [
        ("rejected", "item_missing")]
    assert _results(device, [submit(device, templates["conduct.pre_shift"], conduct_answers(),
                                    entity_id=entity_id)]) == [("applied", None)]


def test_create_op_envelope(device, templates):
    """A create op names a UUID (lower-case, canonical) and base_version 0."""
    bad_id = submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id="not-a-uuid")
    upper = submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=str(uuid.uuid4()).upper())
    based = dict(submit(device, templates["conduct.pre_shift"], conduct_answers()), base_version=3)
    results = device.push([bad_id, upper, based])["results"]
    assert [(r["code"], list(r["fields"])) for r in results] == [
        ("invalid_op", ["entity_id"]), ("invalid_op", ["entity_id"]), ("invalid_base_version", ["base_version"])]


def test_answers_are_checked_against_the_version(device, templates, van, photo):
    """Every refusal names what is wrong: unknown item, wrong kind of value, missing item, missing photo."""
    pre_trip, conduct = templates["vehicle.pre_trip"], templates["conduct.pre_shift"]
    cases = [
        (submit(device, conduct, conduct_answers(bogus={"value": True})), "invalid_payload",
         "payload.answers.6.item"),
        (submit(device, conduct, conduct_answers(uniform={"value": "yes"})), "invalid_payload",
         "payload.answers.0.value"),
        (submit(device, conduct, conduct_answers(hair={"value": "shaved"})), "invalid_payload",
         "payload.answers.5.value"),
        (submit(device, conduct, conduct_answers()[:-1]), "item_missing", "payload.answers"),
        (submit(device, pre_trip, vehicle_answers(safety_equipment={"value": False}), vehicle_id=van),
         "photo_required", "payload.answers.5.photo"),
        (submit(device, pre_trip, vehicle_answers(paint_loss_cm2={"value": 1.5}), vehicle_id=van),
         "photo_required", "payload.answers.6.photo"),
        (submit(device, pre_trip, vehicle_answers()), "invalid_payload", "payload.vehicle_id"),
        (submit(device, conduct, conduct_answers(), vehicle_id=van), "invalid_payload", "payload.vehicle_id"),
        (submit(device, conduct, conduct_answers(), template_id="k-none"), "template_not_found", None),
        (submit(device, conduct, conduct_answers(), template_version=2), "template_not_found", None),
    ]
    results = device.push([op for op, _, _ in cases])["results"]
    for (_, code, field), result in zip(cases, results, strict=True):
        assert (result["status"], result["code"]) == ("rejected", code), result
        if field:
            assert field in result["fields"] or field in result["detail"], result
    missing = results[3]
    assert "hair" in missing["detail"]
    assert db.session.query(ChecklistSubmission).count() == 0 and _vehicle(van).open_defects == 0


def test_another_couriers_van_is_not_assigned(client, make, device, templates):
    """A check or a shift on someone else's van is refused as not_assigned."""
    other = make.courier()
    their_van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{their_van['id']}", json={"courier_id": other["id"]},
                      headers=make.headers("dispatcher"))
    check = submit(device, templates["vehicle.pre_trip"], vehicle_answers(), vehicle_id=their_van["id"])
    start = shift(device, "start", their_van["id"], 10)
    assert _results(device, [check, start]) == [("rejected", "not_assigned"), ("rejected", "not_assigned")]


def test_version_grace_and_an_offline_queue(app, make, device, templates):
    """An old version is taken within the grace period, and always for a check made before the new one."""
    conduct = templates["conduct.pre_shift"]
    made_before = datetime.now(timezone.utc) - timedelta(hours=30)
    queued = submit(device, conduct, conduct_answers(), at=made_before)
    items = make.client.get(f"/api/v1/dispatch/checklist-templates/{conduct['id']}",
                            headers=make.headers("quality")).json["items"]
    published = make.client.post(f"/api/v1/dispatch/checklist-templates/{conduct['id']}/versions",
                                 json={"items": items[:-1]}, headers=make.headers("quality"))
    assert published.status_code == 201 and published.json["current"] == 2
    within = submit(device, conduct, conduct_answers())
    assert _results(device, [queued, within]) == [("applied", None), ("applied", None)]
    app.config["CHECKLIST_GRACE"] = timedelta(0)
    late = submit(device, conduct, conduct_answers())
    assert _results(device, [late]) == [("rejected", "template_version_expired")]
    stored = db.session.scalars(select(ChecklistSubmission.template_version)).all()
    assert stored == [1, 1]


def test_retired_template_refuses_checks_made_after(make, device, templates):
    """A check made before the template was retired is still taken; one made after is template_retired."""
    conduct = templates["conduct.pre_shift"]
    before = submit(device, conduct, conduct_answers(), at=datetime.now(timezone.utc) - timedelta(hours=2))
    make.client.post(f"/api/v1/dispatch/checklist-templates/{conduct['id']}/retire", headers=make.headers("admin"))
    after = submit(device, conduct, conduct_answers())
    assert _results(device, [before, after]) == [("applied", None), ("rejected", "template_retired")]


def test_failed_conduct_items_are_violations(make, device, courier, templates):
    """Each failed conduct item is one conduct_item_failed violation from the checklist, with its evidence."""
    op = submit(device, templates["conduct.pre_shift"], conduct_answers(id_badge={"value": False},
                                                                        hair={"value": "not_tied"}))
    assert _results(device, [op]) == [("applied", None)]
    assert device.push([op])["results"][0]["duplicate"] is True
    page = make.client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations", headers=make.headers("quality"))
    found = sorted((v["code"], v["source"], v["evidence"]["item"], v["severity"]) for v in page.json["items"])
    assert found == [("conduct_item_failed", "checklist", "hair", "minor"),
                     ("conduct_item_failed", "checklist", "id_badge", "major")]
    assert all(v["evidence"]["submission_id"] == op["entity_id"] for v in page.json["items"])
    # Each weighs its item's severity in the grade: the badge as major, the hair as minor.
    grade = make.client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade", headers=make.headers("quality")).json
    weighed = sorted((r["severity"], r["count"], r["points"]) for r in grade["reasons"] if r["code"] == "violations")
    points = make.client.application.config["GRADE_POINTS"]
    assert weighed == [("major", 1, points["major"]), ("minor", 1, points["minor"])]
    assert grade["score"] == 100 - points["major"] - points["minor"]


def test_defect_out_of_service_repair_and_next_driver(make, device, courier, van, templates, photo):
    """Critical failure: out of service at once, shift refused; repaired: back in service; the next pre-trip
    acknowledges the report (driver, mechanic, next driver)."""
    pre_trip = templates["vehicle.pre_trip"]
    report = submit(device, pre_trip, vehicle_answers(safety_equipment={"value": False, "photo": photo},
                                                      body_clean={"value": False, "photo": photo}), vehicle_id=van)
    conduct = submit(device, templates["conduct.pre_shift"], conduct_answers())
    start = shift(device, "start", van, 1000)
    result = device.push([report, conduct, start])["results"]
    assert [(r["status"], r["code"]) for r in result] == [("applied", None), ("applied", None),
                                                           ("rejected", "vehicle_out_of_service")]
    assert sorted(result[0]["entity"]["data"]["failed"]) == ["body_clean", "safety_equipment"]
    store, _, _ = device.pull_all()
    held = store[("vehicle", van)]["data"]
    assert held["status"] == "out_of_service" and held["open_defects"] == 2
    [grounded] = db.session.scalars(select(Event).where(Event.type == "vehicle.out_of_service")).all()
    assert (grounded.subject_id, grounded.data["reason"], grounded.data["defect_item"]) == (
        van, "critical_defect", "safety_equipment")
    assert sorted((d["item"], d["severity"]) for d in held["defects"]) == [
        ("body_clean", "minor"), ("safety_equipment", "critical")]
    assert held["last_report"]["id"] == report["entity_id"]
    office = make.headers("dispatcher")
    refused = make.client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"status": "in_service"}, headers=office)
    assert refused.status_code == 422 and refused.json["code"] == "critical_defect_open"
    queue = make.client.get("/api/v1/dispatch/defects?severity=critical", headers=make.headers("maintenance")).json
    critical = queue["items"][0]
    minor = next(d for d in held["defects"] if d["severity"] == "minor")
    mechanic = make.headers("maintenance")
    url = f"/api/v1/dispatch/vehicles/{van}/defects"
    fixed = make.client.post(f"{url}/{critical['id']}/repair", json={"note": "New extinguisher", "photos": [photo]},
                             headers=mechanic)
    assert fixed.status_code == 200 and fixed.json["status"] == "repaired" and fixed.json["photos"] == [photo]
    assert _vehicle(van).status == "in_service" and _vehicle(van).open_defects == 1
    again = make.client.post(f"{url}/{critical['id']}/repair", json={"note": "x"}, headers=mechanic)
    assert again.status_code == 409 and again.json["code"] == "defect_closed"
    fine = make.client.post(f"{url}/{minor['id']}/no_repair_needed", json={"reason": "Old scratch, polished"},
                            headers=mechanic)
    assert fine.status_code == 200 and fine.json["status"] == "no_repair_needed"
    unacknowledged = submit(device, pre_trip, vehicle_answers(odometer=1010), vehicle_id=van)
    acknowledged = submit(device, pre_trip, vehicle_answers(odometer=1010), vehicle_id=van,
                          acknowledged_report_id=report["entity_id"])
    assert _results(device, [unacknowledged, acknowledged, shift(device, "start", van, 1010)]) == [
        ("rejected", "acknowledgement_required"), ("applied", None), ("applied", None)]
    detail = make.client.get(f"/api/v1/dispatch/vehicles/{van}", headers=mechanic).json
    assert detail["status"] == "in_service" and detail["defects"] == []
    first = next(r for r in detail["last_reports"] if r["id"] == report["entity_id"])
    assert first["acknowledged_by"] == acknowledged["entity_id"] and first["courier_id"] == courier["id"]
    assert {d["status"] for d in first["defects"]} == {"repaired", "no_repair_needed"}
    assert detail["last_report"]["id"] == acknowledged["entity_id"]
    assert detail["last_report"]["acknowledged_id"] == report["entity_id"]


def test_a_minor_defect_keeps_the_van_in_service_and_opens_once(device, van, templates, photo):
    """A non-critical failure opens a defect without grounding the van; the same failure again adds none."""
    pre_trip = templates["vehicle.pre_trip"]
    answers = vehicle_answers(paint_loss_cm2={"value": 2, "photo": photo})
    ops = [submit(device, pre_trip, answers, vehicle_id=van),
           submit(device, pre_trip, answers, vehicle_id=van, acknowledged_report_id=None)]
    ops[1]["payload"]["acknowledged_report_id"] = ops[0]["entity_id"]
    assert _results(device, ops) == [("applied", None), ("applied", None)]
    vehicle = _vehicle(van)
    assert vehicle.status == "in_service" and vehicle.open_defects == 1


def test_shift_rules(device, van, templates):
    """shift.start needs the day's checks; one shift at a time; shift.end needs the post-trip; odometer flagged."""
    assert _results(device, [shift(device, "start", van, 1000)]) == [("rejected", "checklist_required")]
    assert _results(device, [shift(device, "end", van, 1000)]) == [("rejected", "shift_not_started")]
    only_conduct = submit(device, templates["conduct.pre_shift"], conduct_answers())
    result = device.push([only_conduct, shift(device, "start", van, 1000)])["results"][1]
    assert result["code"] == "checklist_required" and "vehicle.pre_trip" in result["detail"]
    pre_trip = submit(device, templates["vehicle.pre_trip"], vehicle_answers(odometer=1000), vehicle_id=van)
    start = shift(device, "start", van, 990)
    assert _results(device, [pre_trip, start, shift(device, "start", van, 1000)]) == [
        ("applied", None), ("applied", None), ("rejected", "shift_already_started")]
    assert _results(device, [shift(device, "end", van, 1100)]) == [("rejected", "checklist_required")]
    post_trip = submit(device, templates["vehicle.post_trip"], vehicle_answers(odometer=1100), vehicle_id=van)
    end = shift(device, "end", van, 1100)
    assert _results(device, [post_trip, end]) == [("applied", None), ("applied", None)]
    db.session.expire_all()
    done = db.session.scalars(select(Shift)).one()
    assert (done.status, done.start_odometer, done.end_odometer, done.flags) == ("ended", 990, 1100, ["odometer_lower"])
    assert _vehicle(van).odometer == 1100


def test_a_check_far_from_the_van_is_flagged(device, van, templates):
    """Over VEHICLE_CHECK_RADIUS_M (500 m) from where the van was last checked: far_from_vehicle."""
    pre_trip = templates["vehicle.pre_trip"]
    here = submit(device, pre_trip, vehicle_answers(), vehicle_id=van)
    near = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, lat=HERE["lat"] + 0.003)  # ~330 m
    far = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, lat=HERE["lat"] + 0.02)  # ~2.2 km
    results = device.push([here, near, far])["results"]
    assert [r["entity"]["data"]["flags"] for r in results] == [[], [], ["far_from_vehicle"]]


def test_hours_late_from_an_offline_queue(device, van, templates):
    """Checks and the shift made this morning, pushed hours later in one batch: the device's times decide."""
    now = datetime.now(SHANGHAI)
    morning = max(now - timedelta(hours=5), now.replace(hour=0, minute=1, second=0, microsecond=0))
    ops = _ready(device, templates, van, at=morning) + [shift(device, "start", van, 1000,
                                                              at=morning + timedelta(minutes=5))]
    assert _results(device, ops) == [("applied", None)] * 3
    yesterday = morning - timedelta(days=1)
    db.session.expire_all()
    assert db.session.scalars(select(Shift.started_at)).one() == morning + timedelta(minutes=5)
    stale = _ready(device, templates, van, at=yesterday)
    assert _results(device, stale) == [("applied", None)] * 2
    assert db.session.query(Violation).count() == 0


def test_reference_client_submits_checks_and_runs_a_shift(app, client, make, courier, van, templates, tmp_path):
    """The reference handheld holds the templates and its van, submits by UUID, starts and ends the shift."""
    import random

    from sync.client import Handheld
    from tests.sync.transport import FlaskTransport
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    handheld = Handheld(str(tmp_path / "hh.sqlite3"), FlaskTransport(app), sleep=lambda s: None,
                        rng=random.Random(1))
    handheld.enroll(code, "PDA")
    handheld.sync()
    held = {i: d["data"] for (e, i), d in handheld.entities().items() if e == "checklist_template"}
    by_kind = {t["kind"]: t for t in held.values()}
    assert set(by_kind) == set(templates) - {"inspection"}
    _, conduct_id = handheld.submit_checklist(by_kind["conduct.pre_shift"], conduct_answers(), **HERE)
    handheld.submit_checklist(by_kind["vehicle.pre_trip"], vehicle_answers(), vehicle_id=van, **HERE)
    handheld.shift("start", van, 1000)
    handheld.submit_checklist(by_kind["vehicle.post_trip"], vehicle_answers(odometer=1080), vehicle_id=van, **HERE)
    handheld.shift("end", van, 1080)
    handheld.sync()
    assert [(r["status"], r["code"]) for r in handheld.results().values()] == [("applied", None)] * 5
    assert handheld.results()[1]["entity"]["id"] == conduct_id
    db.session.expire_all()
    assert db.session.scalars(select(Shift.status)).one() == "ended"
    assert handheld.entities()[("vehicle", van)]["data"]["odometer"] == 1080
    handheld.close()


# --- a hostile or careless handheld ---------------------------------------------------------------------

NOTE_TEMPLATE = {"kind": "conduct.stop", "name": "Stop with notes", "items": [
    {"code": "pic", "label_zh": "照片", "label_en": "Photo", "type": "photo"},
    {"code": "note", "label_zh": "备注", "label_en": "Note", "type": "text", "required": False},
    {"code": "count", "label_zh": "件数", "label_en": "Count", "type": "number", "required": False}]}


@pytest.mark.parametrize("reading", [1e300, -1e300, 1e18, 10_000_001])
def test_a_reading_beyond_any_van_is_invalid_not_a_crash(device, van, templates, reading):
    """An odometer the database cannot hold (or no van shows) is invalid_payload naming it; the batch goes on."""
    pre_trip = templates["vehicle.pre_trip"]
    wild = submit(device, pre_trip, vehicle_answers(odometer=reading), vehicle_id=van)
    fine = submit(device, pre_trip, vehicle_answers(odometer=1200), vehicle_id=van)
    results = device.push([wild, fine])["results"]
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "invalid_payload"), ("applied", None)]
    assert list(results[0]["fields"]) == ["payload.answers.7.value"]
    stored = _vehicle(van)
    assert (stored.odometer, stored.open_defects) == (1200, 0)
    assert db.session.query(ChecklistSubmission).count() == 1


def test_answers_that_say_nothing_are_invalid(client, make, device, photo):
    """Text of invisible characters only, or holding one (a text answer is human text, schemas.common.Text), and a
    value beside a photo item's photo, are invalid_payload."""
    created = client.post("/api/v1/dispatch/checklist-templates", json=NOTE_TEMPLATE, headers=make.headers("quality"))
    template = created.json
    pic = {"item": "pic", "photo": photo}
    cases = [
        (submit(device, template, [pic, {"item": "note", "value": "\u200b\u2060 \u00ad"}]), "payload.answers.1.value"),
        (submit(device, template, [pic, {"item": "note", "value": "Gate\u200bcode 1234"}]), "payload.answers.1.value"),
        (submit(device, template, [dict(pic, value={"junk": ["x" * 500]})]), "payload.answers.0.value"),
        (submit(device, template, [pic, {"item": "count", "value": 2e7}]), "payload.answers.1.value"),
    ]
    ok = submit(device, template, [pic, {"item": "note", "value": " Gate code 1234 ❤️ "}, {"item": "count",
                                                                                            "value": 3}])
    results = device.push([op for op, _ in cases] + [ok])["results"]
    for (_, field), result in zip(cases, results, strict=False):
        assert (result["status"], result["code"], list(result["fields"])) == ("rejected", "invalid_payload",
                                                                               [field]), result
    assert results[-1]["status"] == "applied"
    assert db.session.scalars(select(ChecklistSubmission.id)).all() == [ok["entity_id"]]


def test_an_acknowledgement_names_a_report_of_this_van(client, make, device, courier, van, templates, photo):
    """Another van's report, an unknown id, or an acknowledgement on a check that is not a pre-trip: refused;
    another van's chain never shows this courier's check as its next driver."""
    other = make.courier()
    their_van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{their_van['id']}", json={"courier_id": other["id"]},
                      headers=make.headers("dispatcher"))
    their_device = Device(client, make.device(other))
    pre_trip = templates["vehicle.pre_trip"]
    theirs = submit(their_device, pre_trip, vehicle_answers(body_clean={"value": False, "photo": photo}),
                    vehicle_id=their_van["id"])
    assert _results(their_device, [theirs]) == [("applied", None)]
    foreign = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, acknowledged_report_id=theirs["entity_id"])
    unknown = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, acknowledged_report_id="garbage")
    not_pre_trip = submit(device, templates["vehicle.post_trip"], vehicle_answers(), vehicle_id=van,
                          acknowledged_report_id=theirs["entity_id"])
    conduct = submit(device, templates["conduct.pre_shift"], conduct_answers(),
                     acknowledged_report_id=theirs["entity_id"])
    results = device.push([foreign, unknown, not_pre_trip, conduct])["results"]
    for result in results:
        assert (result["status"], result["code"], list(result["fields"])) == (
            "rejected", "invalid_payload", ["payload.acknowledged_report_id"]), result
    detail = make.client.get(f"/api/v1/dispatch/vehicles/{their_van['id']}", headers=make.headers("maintenance")).json
    assert detail["last_report"]["acknowledged_by"] is None
    # An older report of this very van (a device that had not pulled the newest) is still taken, flagged.
    mine = submit(device, pre_trip, vehicle_answers(body_clean={"value": False, "photo": photo}), vehicle_id=van)
    newer = submit(device, pre_trip, vehicle_answers(hood_decal={"value": False, "photo": photo}), vehicle_id=van,
                   acknowledged_report_id=mine["entity_id"])
    older = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, acknowledged_report_id=mine["entity_id"])
    results = device.push([mine, newer, older])["results"]
    assert [r["status"] for r in results] == ["applied"] * 3
    assert results[2]["entity"]["data"]["flags"] == ["stale_acknowledgement"]


def test_a_shift_needs_a_pre_trip_the_van_passed(make, device, van, templates, photo):
    """A pre-trip that grounded the van does not start a shift once the van is repaired: a new pre-trip does."""
    now = datetime.now(SHANGHAI)
    morning = max(now - timedelta(hours=2), now.replace(hour=0, minute=1, second=0, microsecond=0))
    pre_trip = templates["vehicle.pre_trip"]
    grounded = submit(device, pre_trip, vehicle_answers(safety_equipment={"value": False, "photo": photo}),
                      vehicle_id=van, at=morning)
    conduct = submit(device, templates["conduct.pre_shift"], conduct_answers(), at=morning)
    assert _results(device, [grounded, conduct]) == [("applied", None)] * 2
    defect = db.session.scalars(select(VehicleDefect.id)).one()
    repaired = make.client.post(f"/api/v1/dispatch/vehicles/{van}/defects/{defect}/repair",
                                json={"note": "New extinguisher"}, headers=make.headers("maintenance"))
    assert repaired.status_code == 200 and _vehicle(van).status == "in_service"
    refused = device.push([shift(device, "start", van, 1000, at=now)])["results"][0]
    assert (refused["status"], refused["code"]) == ("rejected", "checklist_required")
    assert "vehicle.pre_trip" in refused["detail"]
    fresh = submit(device, pre_trip, vehicle_answers(), vehicle_id=van, acknowledged_report_id=grounded["entity_id"],
                   at=now)
    assert _results(device, [fresh, shift(device, "start", van, 1000, at=now)]) == [("applied", None)] * 2


def test_a_pre_trip_with_a_minor_failure_still_starts_the_shift(device, van, templates, photo):
    """Only a critical failure grounds the van; a pre-trip with a minor defect is a pre-trip done."""
    minor = submit(device, templates["vehicle.pre_trip"],
                   vehicle_answers(body_clean={"value": False, "photo": photo}), vehicle_id=van)
    conduct = submit(device, templates["conduct.pre_shift"], conduct_answers())
    assert _results(device, [minor, conduct, shift(device, "start", van, 1000)]) == [("applied", None)] * 3
    assert db.session.get(Vehicle, van).status == "in_service"


def test_a_photo_never_uploaded_stops_then_is_rejected_naming_its_answer(app, device, van, templates, photo):
    """A lost photo stops the batch while it may still come; past ATTACHMENT_WAIT the check is rejected,
    naming the answer (or the signature) that holds it, and the queue moves on."""
    pre_trip, lost = templates["vehicle.pre_trip"], "cd" * 32
    answers = vehicle_answers(safety_equipment={"value": False, "photo": lost})
    recent = submit(device, pre_trip, answers, vehicle_id=van)
    body = device.push([recent])
    assert (body["stop_code"], body["stopped_at"], body["results"]) == ("attachment_missing", 1, [])
    old = datetime.now(timezone.utc) - app.config["ATTACHMENT_WAIT"] - timedelta(minutes=1)
    unsigned = submit(device, templates["conduct.pre_shift"], conduct_answers(), signature=lost, at=old)
    fine = submit(device, pre_trip, vehicle_answers(), vehicle_id=van)
    results = device.push([_at(recent, old), unsigned, fine])["results"]
    assert [(r["status"], r["code"]) for r in results] == [
        ("rejected", "attachment_never_uploaded"), ("rejected", "attachment_never_uploaded"), ("applied", None)]
    assert [list(r["fields"]) for r in results[:2]] == [["payload.answers.5.photo"], ["payload.signature"]]
    assert _vehicle(van).status == "in_service" and db.session.query(ChecklistSubmission).count() == 1


def test_a_check_dated_years_ahead_does_not_freeze_the_vans_chain(device, van, templates, photo):
    """A device clock years ahead cannot make its check the van's newest report for good: a check counts as
    made no later than it was received, so the next real report is the one the next pre-trip acknowledges."""
    pre_trip = templates["vehicle.pre_trip"]
    ahead = submit(device, pre_trip, vehicle_answers(body_clean={"value": False, "photo": photo}), vehicle_id=van,
                   at=datetime.now(timezone.utc) + timedelta(days=700))
    assert _results(device, [ahead]) == [("applied", None)]
    real = submit(device, pre_trip, vehicle_answers(hood_decal={"value": False, "photo": photo}), vehicle_id=van,
                  acknowledged_report_id=ahead["entity_id"])
    assert _results(device, [real]) == [("applied", None)]
    assert _vehicle(van).last_report_id == real["entity_id"]
    unacknowledged = submit(device, pre_trip, vehicle_answers(), vehicle_id=van)
    result = device.push([unacknowledged])["results"][0]
    assert (result["status"], result["code"]) == ("rejected", "acknowledgement_required")
    assert real["entity_id"] in result["detail"]
