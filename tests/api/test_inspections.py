"""Spot checks and mystery-shopper visits (联合稽查, issue 23): recorded by quality staff with an inspection template,
checked by the checklist engine; each failed item a violation of the courier; never on a handheld."""
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.checklist_defaults import INSPECTION_TEMPLATE_0032
from server.extensions import db
from server.models import AuditEntry, Vehicle, Violation
from server.services import checklists, violations
from tests.sync.conftest import Device, start_shift

URL = "/api/v1/quality/inspections"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64


@pytest.fixture
def template(app, make) -> dict:
    """The default inspection template, as the office reads it."""
    checklists.seed_defaults()
    page = make.client.get("/api/v1/dispatch/checklist-templates", query_string={"kind": "inspection"},
                           headers=make.headers("quality")).json
    [found] = page["items"]
    return found


def _answers(**failed) -> list[dict]:
    """Every required item passing, the ones named failing ({code: value})."""
    answers = [{"item": item["code"], "value": True} for item in INSPECTION_TEMPLATE_0032["items"]
               if item["type"] == "pass_fail"]
    return [dict(a, value=failed.get(a["item"], True)) for a in answers]


def _ago(**delta) -> str:
    """A time in the past, ISO with its zone."""
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


def _record(client, make, template: dict, role: str = "quality", **body):
    """POST an inspection."""
    payload = {"kind": "spot_check", "template_id": template["id"], "inspected_at": _ago(hours=1),
               "answers": _answers(), **body}
    return client.post(URL, json=payload, headers=make.headers(role))


def test_a_failed_item_is_a_violation_of_the_courier_with_the_items_severity(client, make, template):
    """A mystery shopper was charged an unpublished fee (critical) and the parcel was thrown (major): two
    violations, source inspection, each weighing its item's severity, dated when the visit happened; audited."""
    courier = make.courier()
    at = _ago(hours=2)
    response = _record(client, make, template, kind="mystery_shopper", courier_id=courier["id"], inspected_at=at,
                       inspector="Shopper 17", notes="asked 10 yuan for the stairs",
                       answers=_answers(published_fees_only=False, parcel_handling=False))
    assert response.status_code == 201, response.json
    inspection = response.json
    assert (inspection["kind"], inspection["courier_id"], inspection["inspector"]) == (
        "mystery_shopper", courier["id"], "Shopper 17")
    assert inspection["template_version"] == template["current"]
    assert sorted(inspection["failed"]) == ["parcel_handling", "published_fees_only"]
    assert len(inspection["violation_ids"]) == 2
    rows = list(db.session.scalars(select(Violation).where(Violation.id.in_(inspection["violation_ids"]))))
    assert {(v.code, v.source, v.severity, v.evidence["item"], v.status, v.clock_suspect) for v in rows} == {
        ("inspection_item_failed", "inspection", "critical", "published_fees_only", "open", False),
        ("inspection_item_failed", "inspection", "major", "parcel_handling", "open", False)}
    assert all(v.occurred_at == datetime.fromisoformat(at).replace(microsecond=v.occurred_at.microsecond)
               for v in rows)
    assert client.get(f"{URL}/{inspection['id']}", headers=make.headers("dispatcher")).json == inspection
    # 100 - 20 (critical) - 8 (major) = 72: C.
    grade = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade", headers=make.headers("quality")).json
    assert (grade["score"], grade["grade"]) == (72, "C")
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "inspection.record"))


def test_each_failed_item_is_recorded_once(client, make, template):
    """The violation's key is the inspection and its item: recording it again inserts nothing."""
    courier = make.courier()
    inspection = _record(client, make, template, courier_id=courier["id"],
                         answers=_answers(uniform_badge=False)).json
    [violation_id] = inspection["violation_ids"]
    again = violations.record_auto(courier_id=courier["id"], code="inspection_item_failed", source="inspection",
                                   key=f"inspection:{inspection['id']}:uniform_badge", evidence={},
                                   occurred_at=datetime.now(timezone.utc), severity="minor")
    db.session.commit()
    assert again is False
    assert db.session.query(Violation).count() == 1
    clean = _record(client, make, template, courier_id=courier["id"]).json
    assert (clean["failed"], clean["violation_ids"]) == ([], [])


def test_a_stop_or_a_van_names_its_courier(client, make, template):
    """A stop inspected is its courier's; a van with no shift then is its assigned courier's; a van on a shift at
    the time is its driver's (not whoever has it now)."""
    courier, other = make.courier(), make.courier()
    task = make.task(courier=courier)
    by_stop = _record(client, make, template, task_id=task["id"])
    assert (by_stop.status_code, by_stop.json["courier_id"], by_stop.json["task_id"]) == (201, courier["id"], task["id"])
    van = make.vehicle()
    client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": other["id"]},
                 headers=make.headers("dispatcher"))
    by_van = _record(client, make, template, vehicle_id=van["id"], answers=_answers(uniform_badge=False))
    assert by_van.json["courier_id"] == other["id"], by_van.json
    assert db.session.get(Violation, by_van.json["violation_ids"][0]).courier_id == other["id"]
    named = _record(client, make, template, vehicle_id=van["id"], courier_id=courier["id"])
    assert named.json["courier_id"] == courier["id"]  # the inspector saw who it was


def test_a_van_on_a_shift_then_is_its_drivers(client, make, template):
    """The courier started a shift on the van through the push path; dispatch gives the van to another
    afterwards: an inspection dated during the shift is the driver's."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    van = start_shift(make, courier, device)
    other = make.courier()
    client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"courier_id": other["id"]},
                 headers=make.headers("dispatcher"))
    assert db.session.get(Vehicle, van).courier_id == other["id"]
    response = _record(client, make, template, vehicle_id=van, inspected_at=datetime.now(timezone.utc).isoformat())
    assert response.status_code == 201, response.json
    assert response.json["courier_id"] == courier["id"]


def test_bad_input_names_the_field(client, make, template):
    """Future time, no answers, an unknown kind, a template of another kind, nobody to inspect, an answer of the wrong
    kind, a required item unanswered, a photo never uploaded: each a 4xx naming its field."""
    courier = make.courier()
    cases = [
        ({"inspected_at": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}, 422, {"inspected_at"}),
        ({"answers": None}, 422, {"answers"}),
        ({"kind": "audit"}, 422, {"kind"}),
        ({"courier_id": None}, 422, {"courier_id"}),
        ({"answers": [{"item": "uniform_badge", "value": "yes"}]}, 422, {"answers.0.value"}),
        ({"answers": _answers()[1:]}, 422, {"answers"}),
        ({"photos": ["0" * 64]}, 422, {"photos"}),
    ]
    for body, status, fields in cases:
        payload = {"courier_id": courier["id"], **body}
        response = _record(client, make, template, **payload)
        assert response.status_code == status and set(response.json["fields"]) == fields, (body, response.json)
    checklists.seed_defaults()
    conduct = client.get("/api/v1/dispatch/checklist-templates", query_string={"kind": "conduct.stop"},
                         headers=make.headers("quality")).json["items"][0]
    wrong = _record(client, make, conduct, courier_id=courier["id"])
    assert wrong.status_code == 422 and set(wrong.json["fields"]) == {"template_id"}
    assert _record(client, make, template, courier_id="c-nobody").json["code"] == "courier_not_found"
    assert _record(client, make, template, task_id="t-nobody").json["code"] == "task_not_found"
    assert db.session.query(Violation).count() == 0


def test_photos_uploaded_are_kept(client, make, template):
    """Photos named must be uploaded first (by any caller that may upload: a handheld here)."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.put(f"/api/v1/attachments/{sha}", data=PNG, headers=device.headers).status_code == 201
    response = _record(client, make, template, courier_id=courier["id"], photos=[sha])
    assert response.status_code == 201 and response.json["photos"] == [sha]


def test_who_may_record_and_read(client, make, template):
    """Quality and admins record; a dispatcher reads but may not record (403); a courier neither."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    assert _record(client, make, template, role="admin", courier_id=courier["id"]).status_code == 201
    refused = _record(client, make, template, role="dispatcher", courier_id=courier["id"])
    assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    assert client.get(URL, headers=make.headers("dispatcher")).status_code == 200
    assert client.get(URL, headers=device.headers).status_code == 403
    assert client.get(f"{URL}/999999", headers=make.headers("quality")).json["code"] == "inspection_not_found"


def test_listing_by_courier_and_kind(client, make, template):
    """Newest first; filters by courier and kind."""
    a, b = make.courier(), make.courier()
    first = _record(client, make, template, courier_id=a["id"]).json
    second = _record(client, make, template, courier_id=b["id"], kind="mystery_shopper").json
    third = _record(client, make, template, courier_id=a["id"], kind="mystery_shopper").json
    quality = make.headers("quality")
    assert [i["id"] for i in client.get(URL, headers=quality).json["items"]] == [third["id"], second["id"], first["id"]]
    assert [i["id"] for i in client.get(URL, query_string={"courier_id": a["id"]}, headers=quality).json["items"]] == [
        third["id"], first["id"]]
    assert [i["id"] for i in client.get(URL, query_string={"kind": "mystery_shopper", "courier_id": a["id"]},
                                        headers=quality).json["items"]] == [third["id"]]


def test_inspection_templates_never_reach_a_handheld(client, make, template):
    """Not in any courier's scope; a checklist.submit naming one is refused (staff_checklist)."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    store, _, _ = device.pull_all()
    held = {change["data"]["kind"] for key, change in store.items() if key[0] == "checklist_template"}
    assert "inspection" not in held and "conduct.pre_shift" in held
    op = device.op("checklist.submit", str(uuid.uuid4()), {
        "template_id": template["id"], "template_version": template["current"], "answers": _answers(),
        "lat": 31.23, "lon": 121.47}, base_version=0)
    [result] = device.push([op])["results"]
    assert (result["status"], result["code"]) == ("rejected", "staff_checklist"), result
    assert set(result["fields"]) == {"payload.template_id"}
