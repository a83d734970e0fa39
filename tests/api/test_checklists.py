"""Checklist templates and the maintenance queue over HTTP: versions, bad input naming fields, refusals."""
from flask_migrate import downgrade, upgrade

from server.database import MIGRATIONS_DIR
from server.extensions import db
from server.models import ChecklistTemplate

ITEM = {"code": "lights", "label_zh": "灯光正常", "label_en": "Lights work", "type": "pass_fail",
        "severity": "major", "photo_required_on_failure": True}
URL = "/api/v1/dispatch/checklist-templates"


def test_create_publish_and_retire(make):
    """Version 1 at once; a new version supersedes it and leaves it as published; retire once."""
    quality = make.headers("quality")
    created = make.client.post(URL, json={"kind": "vehicle.pre_trip", "name": "Lights", "items": [ITEM]},
                               headers=quality)
    assert created.status_code == 201 and created.json["current"] == 1
    assert created.json["items"][0]["required"] is True and created.json["items"][0]["min"] is None
    template_id = created.json["id"]
    number = dict(ITEM, code="tyre_mm", type="number", min=1.6, unit="mm", label_en="Tyre tread")
    published = make.client.post(f"{URL}/{template_id}/versions", json={"items": [ITEM, number]}, headers=quality)
    assert published.status_code == 201 and published.json["current"] == 2
    versions = published.json["versions"]
    assert [v["number"] for v in versions] == [1, 2] and versions[0]["superseded_at"] is not None
    assert versions[0]["items"] == created.json["items"] and len(published.json["items"]) == 2
    read = make.client.get(f"{URL}/{template_id}", headers=make.headers("maintenance"))
    assert read.status_code == 200 and read.json["version"] == 2
    assert make.client.post(f"{URL}/{template_id}/retire", headers=quality).json["status"] == "retired"
    again = make.client.post(f"{URL}/{template_id}/retire", headers=quality)
    assert again.status_code == 409 and again.json["code"] == "template_retired"
    late = make.client.post(f"{URL}/{template_id}/versions", json={"items": [ITEM]}, headers=quality)
    assert late.status_code == 409 and late.json["code"] == "template_retired"
    listed = make.client.get(f"{URL}?status=retired", headers=quality).json["items"]
    assert [t["id"] for t in listed] == [template_id]
    assert make.client.get(f"{URL}/k-none", headers=quality).status_code == 404


def test_bad_templates_name_the_fields(make):
    """Every malformed item is a 422 naming its path; nothing is stored."""
    quality = make.headers("quality")
    cases = [
        ({"kind": "vehicle.lunch", "name": "x", "items": [ITEM]}, "kind"),
        ({"kind": "conduct.stop", "name": "x", "items": []}, "items"),
        ({"kind": "conduct.stop", "name": "x", "items": [ITEM, ITEM]}, "items"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, code="Bad Code")]}, "items.0.code"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, type="essay")]}, "items.0.type"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, type="choice")]}, "items.0.choices"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, type="choice", choices=["a", "b"],
                                                              failing_choices=["c"])]}, "items.0.failing_choices"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, min=3)]}, "items.0.min"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, type="number", min=3, max=1)]}, "items.0.max"),
        ({"kind": "conduct.stop", "name": "x", "items": [dict(ITEM, severity="fatal")]}, "items.0.severity"),
        ({"kind": "conduct.stop", "name": " ", "items": [ITEM]}, "name"),
        ({"kind": "conduct.stop", "name": "\u200b", "items": [dict(ITEM, label_en="\u2060")]}, "items.0.label_en"),
    ]
    for body, field in cases:
        response = make.client.post(URL, json=body, headers=quality)
        assert response.status_code == 422 and field in response.json["fields"], (body, response.json)
    assert db.session.query(ChecklistTemplate).count() == 0


def test_defect_queue_and_repair_refusals(make):
    """The queue validates its filters; a repair names an existing defect of that van, and uploaded photos."""
    mechanic = make.headers("maintenance")
    bad = make.client.get("/api/v1/dispatch/defects?severity=fatal&status=lost", headers=mechanic)
    assert bad.status_code == 422 and {"severity", "status"} <= set(bad.json["fields"])
    assert make.client.get("/api/v1/dispatch/defects", headers=mechanic).json == {"items": [], "next_cursor": None}
    van = make.vehicle()
    missing = make.client.post(f"/api/v1/dispatch/vehicles/{van['id']}/defects/1/repair", json={"note": "done"},
                               headers=mechanic)
    assert missing.status_code == 404 and missing.json["code"] == "defect_not_found"
    huge = make.client.post(f"/api/v1/dispatch/vehicles/{van['id']}/defects/{2**70}/repair", json={"note": "x"},
                            headers=mechanic)
    assert huge.status_code == 404
    blank = make.client.post(f"/api/v1/dispatch/vehicles/{van['id']}/defects/1/repair",
                             json={"note": "", "photos": ["nothex"]}, headers=mechanic)
    assert blank.status_code == 422 and {"note", "photos.0"} <= set(blank.json["fields"])


def test_a_fresh_database_has_the_default_templates(app):
    """Migration 0011 seeds the defaults (vehicle pre/post trip, conduct pre-shift and per stop), 0032 the inspection."""
    downgrade(directory=MIGRATIONS_DIR, revision="0007_customer_links")
    upgrade(directory=MIGRATIONS_DIR)
    db.session.expire_all()
    kinds = sorted(t.kind for t in db.session.query(ChecklistTemplate))
    assert kinds == ["conduct.pre_shift", "conduct.stop", "inspection", "vehicle.post_trip", "vehicle.pre_trip"]
    safety = next(i for t in db.session.query(ChecklistTemplate) if t.kind == "vehicle.pre_trip"
                  for i in t.versions[0].items if i["code"] == "safety_equipment")
    assert safety["severity"] == "critical"
