"""The register of information-leak incidents (信息泄露事件): reporting, correcting, telling, deciding; roles and bad
input. What the service opens on its own: tests/api/test_leak_detection.py; the figure: tests/api/test_leak_kpi.py."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, Event

BASE = "/api/v1/quality/leak-incidents"


def _iso(at: datetime) -> str:
    """A time as the API takes it."""
    return at.isoformat()


def _now() -> datetime:
    """Now, in UTC (the server's clock in these tests)."""
    return datetime.now(timezone.utc)


def report(client, make, role="dispatcher", **body):
    """Report an incident through the API (a lost delivery list by default); the answer."""
    payload = {"source": "staff", "discovered_at": _iso(_now() - timedelta(hours=2)),
               "occurred_at": _iso(_now() - timedelta(days=1)), "occurred_approximate": True,
               "data_kinds": ["name", "phone", "address"], "people_affected": 40,
               "description": "A printed delivery list was left on a bus.", **body}
    return client.post(BASE, json=payload, headers=make.headers(role))


def _event_types(subject: str) -> list[str]:
    """The leak events of an incident, in feed order."""
    return list(db.session.scalars(select(Event.type).where(Event.subject_id == subject).order_by(Event.position)))


def test_the_office_reports_quality_decides_tells_and_resolves(client, make):
    """Dispatch reports (open); quality confirms, records whom it told (each kept), resolves; all audited, evented."""
    courier = make.courier()
    opened = report(client, make, responsible_courier_id=courier["id"])
    assert opened.status_code == 201, opened.json
    incident = opened.json
    assert incident["status"] == "open" and incident["source"] == "staff" and incident["opened_by"]
    assert incident["data_kinds"] == ["address", "name", "phone"] and incident["people_affected"] == 40
    assert incident["occurred_approximate"] is True and incident["notifications"] == []
    path = f"{BASE}/{incident['id']}"
    quality = make.headers("quality")

    # A dispatcher reports but does not decide, tell, correct, or read the register.
    for method, url, body in (("post", f"{path}/confirm", {}), ("post", f"{path}/dismiss", {"note": "x"}),
                              ("post", f"{path}/resolve", {"resolution": "x"}),
                              ("post", f"{path}/notifications", {"audience": "management", "channel": "email",
                                                                 "notified_at": _iso(_now())}),
                              ("patch", path, {"people_affected": 3}), ("get", path, None), ("get", BASE, None)):
        refused = getattr(client, method)(url, json=body, headers=make.headers("dispatcher"))
        assert refused.status_code == 403 and refused.json["code"] == "forbidden", (method, url)

    # Resolving before confirming is the wrong step.
    early = client.post(f"{path}/resolve", json={"resolution": "Lists shredded."}, headers=quality)
    assert early.status_code == 409 and early.json["code"] == "leak_wrong_status" and early.json["incident_status"] == "open"
    assert early.json["detail"] == "An open incident cannot be resolved: confirm it first."

    confirmed = client.post(f"{path}/confirm", json={"note": "The list was found by a passenger."}, headers=quality)
    assert confirmed.status_code == 200 and confirmed.json["status"] == "confirmed"
    assert confirmed.json["decided_by"] and confirmed.json["decision_note"] == "The list was found by a passenger."
    again = client.post(f"{path}/confirm", json={}, headers=quality)
    assert again.status_code == 409 and again.json["incident_status"] == "confirmed"

    told = [("management", _now() - timedelta(hours=1), "email"), ("customers", _now() - timedelta(minutes=30), "sms"),
            ("regulator", _now() - timedelta(minutes=10), "portal")]
    for audience, at, channel in told:
        answer = client.post(f"{path}/notifications", json={"audience": audience, "notified_at": _iso(at),
                                                           "channel": channel, "note": f"told {audience}"},
                             headers=quality)
        assert answer.status_code == 201, answer.json
    assert [(n["audience"], n["channel"]) for n in answer.json["notifications"]] == [
        ("management", "email"), ("customers", "sms"), ("regulator", "portal")]

    resolved_at = _now() - timedelta(minutes=5)
    resolved = client.post(f"{path}/resolve", json={"resolution": "Lists are no longer printed.",
                                                    "resolved_at": _iso(resolved_at)}, headers=make.headers("admin"))
    assert resolved.status_code == 200 and resolved.json["status"] == "resolved"
    assert datetime.fromisoformat(resolved.json["resolved_at"]) == resolved_at
    assert resolved.json["responsible_courier_id"] == courier["id"]

    actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("leak.%"))
                                      .order_by(AuditEntry.id)))
    assert actions == ["leak.open", "leak.confirm", "leak.notify", "leak.notify", "leak.notify", "leak.resolve"]
    assert _event_types(str(incident["id"])) == ["leak.opened", "leak.confirmed", "leak.resolved"]
    data = db.session.scalars(select(Event.data).where(Event.type == "leak.opened")).one()
    assert "description" not in data and data["data_kinds"] == ["address", "name", "phone"]
    assert "bus" not in str(data)  # words stay out of events


def test_a_dismissed_report_is_final_and_nobody_is_told(client, make):
    """Quality dismisses with a reason; it cannot then be confirmed, resolved, corrected or told of."""
    incident = report(client, make, role="quality").json
    path, quality = f"{BASE}/{incident['id']}", make.headers("quality")
    assert client.post(f"{path}/dismiss", json={}, headers=quality).json["fields"] == {
        "note": ["Missing data for required field."]}
    dismissed = client.post(f"{path}/dismiss", json={"note": "The list held no customer data."}, headers=quality)
    assert dismissed.status_code == 200 and dismissed.json["status"] == "dismissed"
    for url, body in ((f"{path}/confirm", {}), (f"{path}/resolve", {"resolution": "x"}),
                      (f"{path}/notifications", {"audience": "police", "channel": "in_person",
                                                 "notified_at": _iso(_now())})):
        answer = client.post(url, json=body, headers=quality)
        assert answer.status_code == 409 and answer.json["code"] == "leak_wrong_status", url
        assert answer.json["detail"].startswith("A dismissed incident "), answer.json["detail"]
    assert client.patch(path, json={"people_affected": 1}, headers=quality).status_code == 409
    assert _event_types(str(incident["id"])) == ["leak.opened", "leak.dismissed"]


@pytest.mark.parametrize(("body", "field"), [
    ({"people_affected": -1}, "people_affected"),
    ({"people_affected": 1.5}, "people_affected"),
    ({"data_kinds": ["name", "bank_pin"]}, "data_kinds.1"),  # the unknown kind, by its place
    ({"data_kinds": []}, "data_kinds"),
    ({"source": "auto"}, "source"),
    ({"source": "rumour"}, "source"),
    ({"discovered_at": "2026-12-01T10:00:00"}, "discovered_at"),  # no zone
    ({"description": "   "}, "description"),
    ({"colour": "red"}, "colour"),
])
def test_bad_reports_are_refused_naming_the_field(client, make, body, field):
    """Schema errors: 422 naming the field; nothing recorded."""
    answer = report(client, make, **body)
    assert answer.status_code == 422 and field in answer.json["fields"], answer.json
    assert client.get(BASE, headers=make.headers("quality")).json["items"] == []


def test_times_that_cannot_be_are_refused_naming_the_field(client, make):
    """Found before it happened, either in the future, told or resolved in the future or before the discovery."""
    now = _now()
    cases = [({"occurred_at": _iso(now - timedelta(hours=1)), "discovered_at": _iso(now - timedelta(hours=2))},
              "discovered_at"),
             ({"discovered_at": _iso(now + timedelta(hours=1))}, "discovered_at"),
             ({"occurred_at": _iso(now + timedelta(hours=1)), "discovered_at": _iso(now)}, "occurred_at"),
             ({"responsible_staff_id": "s-nobody"}, "responsible_staff_id"),
             ({"responsible_courier_id": "c-nobody"}, "responsible_courier_id")]
    for body, field in cases:
        answer = report(client, make, **body)
        assert answer.status_code == 422 and list(answer.json["fields"]) == [field], (body, answer.json)
    # An unknown time of occurrence is allowed (and then it is not "approximate").
    unknown = report(client, make, occurred_at=None, occurred_approximate=True)
    assert unknown.status_code == 201 and unknown.json["occurred_at"] is None
    assert unknown.json["occurred_approximate"] is False

    path, quality = f"{BASE}/{unknown.json['id']}", make.headers("quality")
    discovered = datetime.fromisoformat(unknown.json["discovered_at"])
    notify = lambda at: client.post(f"{path}/notifications", json={  # noqa: E731 - one call, varied time
        "audience": "customers", "notified_at": _iso(at), "channel": "phone"}, headers=quality)
    assert notify(now + timedelta(hours=1)).json["fields"] == {"notified_at": ["Must not be in the future."]}
    assert notify(discovered - timedelta(minutes=1)).json["fields"] == {
        "notified_at": ["Must not be before discovered_at."]}
    assert client.post(f"{path}/notifications", json={"audience": "press", "notified_at": _iso(now),
                                                      "channel": "phone"}, headers=quality).json["fields"] == {
        "audience": ["Must be one of: customers, management, regulator, police."]}
    assert client.post(f"{path}/confirm", json={}, headers=quality).status_code == 200
    resolve = lambda at: client.post(f"{path}/resolve", json={  # noqa: E731 - one call, varied time
        "resolution": "Done.", "resolved_at": _iso(at)}, headers=quality)
    assert resolve(now + timedelta(hours=1)).json["fields"] == {"resolved_at": ["Must not be in the future."]}
    assert resolve(discovered - timedelta(minutes=1)).json["fields"] == {
        "resolved_at": ["Must not be before discovered_at."]}
    assert client.get(path, headers=quality).json["status"] == "confirmed"

    # A correction is checked against what is kept: discovered before the occurrence it now names.
    moved = client.patch(path, json={"occurred_at": _iso(discovered + timedelta(seconds=1))}, headers=quality)
    assert moved.status_code == 422 and list(moved.json["fields"]) == ["discovered_at"]
    assert client.patch(path, json={}, headers=quality).status_code == 422
    corrected = client.patch(path, json={"people_affected": 7, "data_kinds": ["photo", "signature", "photo"],
                                         "occurred_at": _iso(discovered - timedelta(days=2))}, headers=quality)
    assert corrected.status_code == 200, corrected.json
    assert corrected.json["people_affected"] == 7 and corrected.json["data_kinds"] == ["photo", "signature"]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "leak.update")).one()
    assert entry.before["people_affected"] == 40 and entry.after["people_affected"] == 7


def test_the_register_lists_by_status_source_and_period(client, make):
    """Filters: status, source, the depot-local dates of discovery; newest first, paged; 404 for an unknown id."""
    quality = make.headers("quality")
    old = report(client, make, discovered_at="2026-10-05T10:00:00+08:00", occurred_at=None,
                 source="customer_report").json
    audit_found = report(client, make, discovered_at="2026-10-06T23:30:00+08:00", occurred_at=None,
                         source="audit").json
    recent = report(client, make).json
    client.post(f"{BASE}/{audit_found['id']}/confirm", json={}, headers=quality)

    def ids(**query):
        answer = client.get(BASE, query_string=query, headers=quality)
        assert answer.status_code == 200, answer.json
        return [item["id"] for item in answer.json["items"]]

    assert ids() == [recent["id"], audit_found["id"], old["id"]]
    assert ids(status="confirmed") == [audit_found["id"]]
    assert ids(source="customer_report") == [old["id"]]
    assert ids(**{"from": "2026-10-06", "to": "2026-10-06"}) == [audit_found["id"]]
    assert ids(**{"from": "2026-10-01", "to": "2026-10-31"}) == [audit_found["id"], old["id"]]
    page = client.get(BASE, query_string={"limit": 2}, headers=quality).json
    assert page["next_cursor"] and ids(limit=2, cursor=page["next_cursor"]) == [old["id"]]
    assert client.get(BASE, query_string={"from": "2026-10-07", "to": "2026-10-06"},
                      headers=quality).json["fields"] == {"from": ["Must not be after to."]}
    assert client.get(BASE, query_string={"status": "lost"}, headers=quality).status_code == 422
    missing = client.get(f"{BASE}/999999", headers=quality)
    assert missing.status_code == 404 and missing.json["code"] == "leak_incident_not_found"


def test_couriers_and_other_roles_are_kept_out(client, make):
    """No token: 401; a courier's handheld, maintenance and integration: 403, even to report one."""
    assert client.get(BASE).status_code == 401
    assert report(client, make, role="maintenance").status_code == 403
    device = make.device(make.courier())
    courier = {"Authorization": f"Bearer {device['token']}"}
    for answer in (client.get(BASE, headers=courier),
                   client.post(BASE, json={"source": "staff"}, headers=courier)):
        assert answer.status_code == 403 and answer.json["code"] == "forbidden"
    assert client.get(BASE, headers=make.headers("integration")).status_code == 403
