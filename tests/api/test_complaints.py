"""Complaints: recording, the first response and its target, contacts, resolution by role, reopening, the upheld
violation, satisfaction."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import Violation

URL = "/api/v1/dispatch/complaints"


def _complaint(client, make, role: str = "dispatcher", **body) -> dict:
    """POST a complaint; returns the response."""
    body = {"channel": "phone", "category": "impolite", "text": "The courier shouted at me.", **body}
    return client.post(URL, json=body, headers=make.headers(role))


def _created(client, make, **body) -> dict:
    """A complaint that must be created."""
    response = _complaint(client, make, **body)
    assert response.status_code == 201, response.json
    return response.json


def _act(client, make, complaint: dict, action: str, body: dict, role: str = "quality"):
    """POST one of the complaint's actions."""
    return client.post(f"{URL}/{complaint['id']}/{action}", json=body, headers=make.headers(role))


def _violations() -> list[Violation]:
    """Every violation, fresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(Violation).order_by(Violation.id)))


def test_a_complaint_about_a_task_names_its_courier_and_falls_due_in_24_hours(client, make):
    """Without courier_id the task's courier; the first response is due 24 h after receipt; nothing overdue yet."""
    courier = make.courier()
    task = make.task(courier=courier)
    complaint = _created(client, make, task_id=task["id"])
    assert (complaint["courier_id"], complaint["task_id"], complaint["status"]) == (courier["id"], task["id"], "open")
    received = datetime.fromisoformat(complaint["received_at"])
    assert datetime.fromisoformat(complaint["response_due_at"]) - received == timedelta(hours=24)
    assert complaint["overdue"] is False and complaint["responded_in_time"] is None
    assert complaint["created_by"] is not None and complaint["violation_id"] is None
    read = client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality"))
    assert read.status_code == 200 and read.json == complaint


def test_a_complaint_names_a_courier_alone(client, make):
    """A complaint need not name a task."""
    courier = make.courier()
    complaint = _created(client, make, courier_id=courier["id"], channel="regulator", category="surcharge")
    assert (complaint["courier_id"], complaint["task_id"], complaint["channel"]) == (courier["id"], None, "regulator")


def test_bad_complaints_are_refused_naming_the_field(client, make):
    """Nobody named, bad vocabulary, blank text, a future receipt, an unassigned task: 422 naming the field."""
    courier = make.courier()
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    for body, field in [({}, "courier_id"),
                        ({"courier_id": courier["id"], "category": "rude"}, "category"),
                        ({"courier_id": courier["id"], "channel": "pigeon"}, "channel"),
                        ({"courier_id": courier["id"], "text": "   "}, "text"),
                        ({"courier_id": courier["id"], "text": "\u200b\u2060\u00ad \ufeff"}, "text"),
                        ({"courier_id": courier["id"], "received_at": future}, "received_at"),
                        ({"courier_id": courier["id"], "received_at": "yesterday"}, "received_at"),
                        ({"task_id": make.task()["id"]}, "courier_id")]:
        response = _complaint(client, make, **body)
        assert response.status_code == 422, (body, response.json)
        assert field in response.json["fields"], (body, response.json)
    assert client.get(URL, headers=make.headers("quality")).json["items"] == []


def test_unknown_task_or_courier_is_404_and_a_courier_who_never_held_the_task_is_refused(client, make):
    """The ids named must exist; a courier named beside a task must have held it (now or before)."""
    alice, bob = make.courier(), make.courier()
    task = make.task(courier=alice)
    assert _complaint(client, make, task_id="t-none").json["code"] == "task_not_found"
    assert _complaint(client, make, courier_id="c-none").status_code == 404
    refused = _complaint(client, make, task_id=task["id"], courier_id=bob["id"])
    assert refused.status_code == 422 and refused.json["code"] == "courier_not_on_task"
    make.assign(task["id"], bob["id"])
    # Alice held it before the reassignment: the complaint may be about her.
    assert _created(client, make, task_id=task["id"], courier_id=alice["id"])["courier_id"] == alice["id"]
    assert _created(client, make, task_id=task["id"])["courier_id"] == bob["id"]


def test_lifecycle_respond_resolve_rate(client, make):
    """open -> responded -> resolved (withdrawn, at first contact) -> rated; each step once, in order."""
    complaint = _created(client, make, courier_id=make.courier()["id"])
    early = _act(client, make, complaint, "resolve", {"outcome": "withdrawn", "note": "n",
                                                      "resolved_at_first_contact": True}, role="dispatcher")
    assert early.status_code == 422 and early.json["code"] == "response_required"
    not_yet = _act(client, make, complaint, "satisfaction", {"satisfaction": "satisfied"})
    assert not_yet.status_code == 422 and not_yet.json["code"] == "not_resolved"
    responded = _act(client, make, complaint, "respond", {"text": "We called the customer back."}, role="dispatcher")
    assert responded.status_code == 200, responded.json
    assert responded.json["status"] == "responded" and responded.json["responded_in_time"] is True
    assert responded.json["first_response_text"] == "We called the customer back."
    again = _act(client, make, complaint, "respond", {"text": "again"})
    assert again.status_code == 409 and again.json["code"] == "already_responded"
    resolved = _act(client, make, complaint, "resolve", {"outcome": "withdrawn", "note": "customer withdrew",
                                                         "resolved_at_first_contact": True}, role="dispatcher")
    assert resolved.status_code == 200, resolved.json
    body = resolved.json
    assert (body["status"], body["outcome"], body["resolved_at_first_contact"]) == ("resolved", "withdrawn", True)
    assert body["resolved_at"] >= body["first_response_at"] and body["violation_id"] is None
    twice = _act(client, make, complaint, "resolve", {"outcome": "upheld", "note": "n",
                                                      "resolved_at_first_contact": False})
    assert twice.status_code == 409 and twice.json["code"] == "complaint_resolved"
    rated = _act(client, make, complaint, "satisfaction", {"satisfaction": "neutral"}, role="dispatcher")
    assert rated.status_code == 200 and rated.json["satisfaction"] == "neutral" and rated.json["satisfaction_at"]
    rerated = _act(client, make, complaint, "satisfaction", {"satisfaction": "satisfied"})
    assert rerated.status_code == 409 and rerated.json["code"] == "satisfaction_recorded"
    assert _violations() == []


def test_bad_action_bodies_are_422(client, make):
    """Outcome, satisfaction, a contact's channel and note, a reopening's reason come from their vocabularies and
    are required; the deprecated first-contact box may be left out, but not be other than a boolean."""
    complaint = _created(client, make, courier_id=make.courier()["id"])
    _act(client, make, complaint, "respond", {"text": "called back"})
    for action, body, field in [("respond", {"text": ""}, "text"),
                                ("resolve", {"outcome": "dismissed", "note": "n", "resolved_at_first_contact": True},
                                 "outcome"),
                                ("resolve", {"outcome": "upheld", "note": "n", "resolved_at_first_contact": "perhaps"},
                                 "resolved_at_first_contact"),
                                ("satisfaction", {"satisfaction": 5}, "satisfaction"),
                                ("contacts", {"channel": "pigeon", "note": "n"}, "channel"),
                                ("contacts", {"note": "called"}, "channel"),
                                ("contacts", {"channel": "phone", "note": "  "}, "note"),
                                ("contacts", {"channel": "phone"}, "note"),
                                ("contacts", {"channel": "phone", "note": "x" * 2001}, "note"),
                                ("contacts", {"channel": "phone", "note": "n", "at": "2026-01-01T00:00:00Z"}, "at"),
                                ("reopen", {}, "reason"),
                                ("reopen", {"reason": ""}, "reason")]:
        response = _act(client, make, complaint, action, body)
        assert response.status_code == 422 and field in response.json["fields"], (action, response.json)


def test_only_quality_and_admin_uphold_or_reject(client, make):
    """A dispatcher may withdraw but not decide (403 decision_not_allowed); quality and admin decide."""
    courier = make.courier()
    for outcome, role, status in [("upheld", "dispatcher", 403), ("rejected", "dispatcher", 403),
                                  ("rejected", "quality", 200), ("upheld", "admin", 200)]:
        complaint = _created(client, make, courier_id=courier["id"])
        _act(client, make, complaint, "respond", {"text": "called back"}, role="dispatcher")
        response = _act(client, make, complaint, "resolve", {"outcome": outcome, "note": "checked the call log",
                                                             "resolved_at_first_contact": False}, role=role)
        assert response.status_code == status, (outcome, role, response.json)
        if status == 403:
            assert response.json["code"] == "decision_not_allowed"
    assert [v.code for v in _violations()] == ["complaint_upheld"]


def test_an_upheld_complaint_is_one_violation_with_the_complaint_as_evidence(client, make):
    """Upheld: complaint_upheld, source complaint, dated when the complaint came in, linked both ways; once."""
    courier = make.courier()
    task = make.task(courier=courier)
    received = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(microsecond=0)
    complaint = _created(client, make, task_id=task["id"], category="surcharge", text="Asked me for 20 yuan.",
                         received_at=received.isoformat())
    _act(client, make, complaint, "respond", {"text": "We are looking into it."})
    upheld = _act(client, make, complaint, "resolve", {"outcome": "upheld", "note": "the courier admitted it",
                                                       "resolved_at_first_contact": False}).json
    [violation] = _violations()
    assert upheld["violation_id"] == violation.id
    assert (violation.code, violation.source, violation.courier_id, violation.task_id) == (
        "complaint_upheld", "complaint", courier["id"], task["id"])
    assert violation.occurred_at == received and violation.dedupe_key == f"complaint_upheld:complaint:{complaint['id']}"
    assert violation.evidence["complaint_id"] == complaint["id"]
    assert violation.evidence["text"] == "Asked me for 20 yuan." and violation.evidence["category"] == "surcharge"
    assert violation.evidence["resolution_note"] == "the courier admitted it"
    # Recording it again (a retried resolution from another host) inserts nothing.
    from server.services import complaints
    from server.models import Complaint
    stored = db.session.get(Complaint, complaint["id"])
    assert complaints._record_violation(stored, complaints.Actor(kind="staff", id=None)) == violation.id
    db.session.commit()
    assert len(_violations()) == 1
    listed = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations", headers=make.headers("quality"))
    assert [v["source"] for v in listed.json["items"]] == ["complaint"]


def test_overdue_complaints_are_listed(client, make, app):
    """No first response past the target: overdue, listed by overdue=true; a late response is not in time."""
    courier = make.courier()
    old = (datetime.now(timezone.utc) - timedelta(hours=25)).isoformat()
    overdue = _created(client, make, courier_id=courier["id"], received_at=old)
    fresh = _created(client, make, courier_id=courier["id"])
    assert overdue["overdue"] is True and fresh["overdue"] is False
    quality = make.headers("quality")
    listed = client.get(URL, query_string={"overdue": "true"}, headers=quality).json["items"]
    assert [c["id"] for c in listed] == [overdue["id"]]
    assert [c["id"] for c in client.get(URL, query_string={"overdue": "false"}, headers=quality).json["items"]] == [
        fresh["id"]]
    answered = _act(client, make, overdue, "respond", {"text": "sorry for the wait"}).json
    assert answered["overdue"] is False and answered["responded_in_time"] is False
    assert client.get(URL, query_string={"overdue": "true"}, headers=quality).json["items"] == []
    # The target is configuration; it is fixed on each complaint when it is received.
    app.config["COMPLAINT_RESPONSE_HOURS"] = 1
    two_hours = _created(client, make, courier_id=courier["id"],
                         received_at=(datetime.now(timezone.utc) - timedelta(hours=2)).isoformat())
    assert two_hours["overdue"] is True
    assert [c["id"] for c in client.get(URL, query_string={"overdue": "true"}, headers=quality).json["items"]] == [
        two_hours["id"]]


def test_list_filters_and_pages_newest_first(client, make):
    """status, courier_id and category filter; pages newest first by cursor; a bad filter is 422."""
    alice, bob = make.courier(), make.courier()
    a1 = _created(client, make, courier_id=alice["id"], category="late")
    a2 = _created(client, make, courier_id=alice["id"])
    b1 = _created(client, make, courier_id=bob["id"])
    _act(client, make, a2, "respond", {"text": "called back"})
    quality = make.headers("quality")

    def ids(**query):
        return [c["id"] for c in client.get(URL, query_string=query, headers=quality).json["items"]]

    assert ids() == [b1["id"], a2["id"], a1["id"]]
    assert ids(courier_id=alice["id"]) == [a2["id"], a1["id"]]
    assert ids(status="responded") == [a2["id"]] and ids(status="open") == [b1["id"], a1["id"]]
    assert ids(category="late") == [a1["id"]]
    first = client.get(URL, query_string={"limit": 2}, headers=quality).json
    assert [c["id"] for c in first["items"]] == [b1["id"], a2["id"]] and first["next_cursor"]
    rest = client.get(URL, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=quality).json
    assert [c["id"] for c in rest["items"]] == [a1["id"]] and rest["next_cursor"] is None
    for query in ({"status": "closed"}, {"overdue": "maybe"}, {"cursor": "x"}):
        assert client.get(URL, query_string=query, headers=quality).status_code == 422


@pytest.mark.parametrize("action,body", [("", None), ("/respond", {"text": "hi"}),
                                         ("/resolve", {"outcome": "withdrawn", "note": "n",
                                                       "resolved_at_first_contact": True}),
                                         ("/satisfaction", {"satisfaction": "satisfied"}),
                                         ("/contacts", {"channel": "phone", "note": "called"}),
                                         ("/reopen", {"reason": "still broken"})])
def test_unknown_complaint_is_404(client, make, action, body):
    """Every complaint route answers 404 complaint_not_found for an id that does not exist."""
    method = "GET" if body is None else "POST"
    for complaint_id in (12345, 2**40):
        response = client.open(f"{URL}/{complaint_id}{action}", method=method, json=body,
                               headers=make.headers("admin"))
        assert response.status_code == 404
    assert response.json["code"] in ("complaint_not_found", "not_found")


def test_couriers_and_maintenance_cannot_touch_complaints(client, make):
    """Complaints are the office's: a courier's device and maintenance staff are refused."""
    courier = make.courier()
    device = make.device(courier)
    for headers in ({"Authorization": f"Bearer {device['token']}"}, make.headers("maintenance")):
        assert client.get(URL, headers=headers).status_code == 403
        assert client.post(URL, json={"courier_id": courier["id"], "channel": "phone", "category": "late",
                                      "text": "x"}, headers=headers).status_code == 403
    complaint = _created(client, make, courier_id=courier["id"])
    for headers in ({"Authorization": f"Bearer {device['token']}"}, make.headers("maintenance")):
        for action, body in (("contacts", {"channel": "phone", "note": "called"}), ("reopen", {"reason": "r"})):
            answer = client.post(f"{URL}/{complaint['id']}/{action}", json=body, headers=headers)
            assert answer.status_code == 403 and answer.json["code"] == "forbidden", (action, answer.json)
    assert client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json["contacts"] == []
    assert db.session.scalar(select(func.count()).select_from(Violation)) == 0


def test_contacts_are_kept_and_the_first_is_the_first_response(client, make):
    """A contact on an unanswered complaint is its first response (and on time); /respond is then 409; later
    contacts are added in order, each with its channel, note, time and author; the first response by /respond is a
    contact too."""
    courier = make.courier()
    complaint = _created(client, make, courier_id=courier["id"])
    first = _act(client, make, complaint, "contacts", {"channel": "phone", "note": "Called, apologised."},
                 role="dispatcher")
    assert first.status_code == 201, first.json
    assert (first.json["kind"], first.json["channel"], first.json["note"], first.json["complaint_id"]) == (
        "first_response", "phone", "Called, apologised.", complaint["id"])
    read = client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json
    assert (read["status"], read["first_response_text"], read["responded_in_time"]) == (
        "responded", "Called, apologised.", True)
    assert read["first_response_at"] == first.json["contacted_at"] and read["first_response_by"] is not None
    late = _act(client, make, complaint, "respond", {"text": "again"})
    assert late.status_code == 409 and late.json["code"] == "already_responded"
    second = _act(client, make, complaint, "contacts", {"channel": "sms", "note": "Sent the refund details."})
    assert second.status_code == 201 and second.json["kind"] == "contact" and second.json["id"] > first.json["id"]
    read = client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json
    assert [(c["kind"], c["channel"]) for c in read["contacts"]] == [("first_response", "phone"), ("contact", "sms")]
    assert read["contacts"][0]["recorded_by"] != read["contacts"][1]["recorded_by"]  # a dispatcher, then quality
    other = _created(client, make, courier_id=courier["id"])
    responded = _act(client, make, other, "respond", {"text": "We are on it."}).json
    assert [(c["kind"], c["channel"], c["note"]) for c in responded["contacts"]] == [
        ("first_response", None, "We are on it.")]


def test_a_contact_posted_twice_is_one_contact(client, make, app):
    """A double submission (the same staff member, channel and note within the repeat window) answers the first
    contact and records nothing; another note, channel or staff member is another contact; past the window the
    same words are a new contact."""
    complaint = _created(client, make, courier_id=make.courier()["id"])
    body = {"channel": "phone", "note": "Called back."}
    first = _act(client, make, complaint, "contacts", body)
    again = _act(client, make, complaint, "contacts", body)
    assert again.status_code == 201 and again.json == first.json
    read = client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json
    assert len(read["contacts"]) == 1
    assert _act(client, make, complaint, "contacts", {**body, "channel": "sms"}).json["id"] != first.json["id"]
    assert _act(client, make, complaint, "contacts", {**body, "note": "Called back again."}).json["id"] != first.json[
        "id"]
    assert _act(client, make, complaint, "contacts", body, role="dispatcher").json["id"] != first.json["id"]
    app.config["COMPLAINT_CONTACT_REPEAT_SECONDS"] = 0
    assert _act(client, make, complaint, "contacts", body).json["id"] != first.json["id"]
    read = client.get(f"{URL}/{complaint['id']}", headers=make.headers("quality")).json
    assert [c["kind"] for c in read["contacts"]] == ["first_response"] + ["contact"] * 4


def test_reopening_keeps_the_resolution_and_opens_the_complaint_again(client, make):
    """Only a resolved complaint is reopened (409 otherwise, so a double submission reopens once); the resolution
    and the customer's satisfaction move onto the reopening; the complaint is resolved and rated again; the upheld
    violation stays one."""
    complaint = _created(client, make, courier_id=make.courier()["id"])
    early = _act(client, make, complaint, "reopen", {"reason": "not yet"})
    assert early.status_code == 409 and early.json["code"] == "complaint_not_resolved"
    _act(client, make, complaint, "respond", {"text": "called back"})
    resolved = _act(client, make, complaint, "resolve", {"outcome": "upheld", "note": "admitted",
                                                         "resolved_at_first_contact": True}).json
    _act(client, make, complaint, "satisfaction", {"satisfaction": "dissatisfied"})
    reopened = _act(client, make, complaint, "reopen", {"reason": "The refund never came."}, role="dispatcher")
    assert reopened.status_code == 200, reopened.json
    body = reopened.json
    assert body["status"] == "reopened" and body["resolved_at"] is None and body["outcome"] is None
    assert body["satisfaction"] is None and body["resolved_at_first_contact"] is None
    assert body["violation_id"] == resolved["violation_id"] is not None
    [reopening] = body["reopenings"]
    assert (reopening["reason"], reopening["outcome"], reopening["resolution_note"], reopening["satisfaction"],
            reopening["resolved_at_first_contact"], reopening["resolved_at"]) == (
        "The refund never came.", "upheld", "admitted", "dissatisfied", True, resolved["resolved_at"])
    twice = _act(client, make, complaint, "reopen", {"reason": "The refund never came."}, role="dispatcher")
    assert twice.status_code == 409 and twice.json["code"] == "complaint_not_resolved"
    not_rated = _act(client, make, complaint, "satisfaction", {"satisfaction": "satisfied"})
    assert not_rated.status_code == 422 and not_rated.json["code"] == "not_resolved"
    again = _act(client, make, complaint, "resolve", {"outcome": "upheld", "note": "refunded"}).json
    assert again["status"] == "resolved" and again["violation_id"] == resolved["violation_id"]
    assert again["resolved_at_first_contact"] is None  # the box left out is kept as nothing
    assert _act(client, make, complaint, "satisfaction", {"satisfaction": "satisfied"}).status_code == 200
    assert [v.code for v in _violations()] == ["complaint_upheld"]


def test_a_contact_posted_twice_at_once_is_one_contact(client, make):
    """Four identical posts at the same moment (a double click, a retry racing the first): one contact, and every
    answer is that contact (the complaint's row lock on PostgreSQL, the single writer on SQLite)."""
    from tests.sync.conftest import at_once

    complaint = _created(client, make, courier_id=make.courier()["id"])
    headers = make.headers("quality")

    def post():
        answer = client.application.test_client().post(f"{URL}/{complaint['id']}/contacts", headers=headers,
                                                       json={"channel": "phone", "note": "Called back."})
        return answer.status_code, answer.json["id"]

    answers = at_once(post, 4)
    assert {status for status, _ in answers} == {201} and len({contact for _, contact in answers}) == 1
    read = client.get(f"{URL}/{complaint['id']}", headers=headers).json
    assert [c["kind"] for c in read["contacts"]] == ["first_response"]


def test_a_progress_update_is_a_contact_so_the_complaint_was_not_solved_in_one_go(client, make, midday):
    """Issue 23: each update to the customer is a contact and sets the next update's due time; resolved after an
    update, a complaint is not a first-contact resolution; resolved at its first response, it is (1 of 2)."""
    courier = make.courier()
    one_go, updated = (_created(client, make, courier_id=courier["id"]) for _ in range(2))
    _act(client, make, one_go, "respond", {"text": "Refunded the surcharge."})
    first = _act(client, make, updated, "respond", {"text": "We are checking."}).json
    progress = _act(client, make, updated, "contacts", {"channel": "sms", "note": "Still with the depot."})
    assert progress.status_code == 201 and progress.json["kind"] == "contact"
    later = client.get(f"{URL}/{updated['id']}", headers=make.headers("quality")).json
    assert later["update_due_at"] > first["update_due_at"]
    for complaint in (one_go, updated):
        assert _act(client, make, complaint, "resolve", {"outcome": "rejected", "note": "n"}).status_code == 200
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(midday)).date().isoformat()
    total = client.get("/api/v1/reports/kpis", query_string={"from": day, "to": day},
                       headers=make.headers("quality")).json["total"]["figures"]["first_contact_resolution"]
    assert (total["numerator"], total["denominator"]) == (1, 2)
