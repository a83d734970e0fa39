"""Appeals of violations (issue 23): the courier's violation.appeal op, offline and late, on wrong clocks; quality's
decision (upheld, voided) and its grade; voiding without an appeal; the suspect-clock review list; a missed window's
violation voided when dispatch's review finds it kept.

Violations are made through the real paths: a pre-shift conduct check pushed with failed items (uniform: minor,
3 points; id_badge: major, 8 points, server/config.py's defaults), an upheld complaint, the sweep.
"""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, GradeChange, ViolationAppeal
from server.services import appointments
from tests.sync.conftest import SHANGHAI, Device
from tests.sync.test_appointment_attempts import Clock, _op, _push, _window
from tests.sync.test_checklists import conduct_answers, submit
from tests.sync.test_events import emitted

QUALITY = "/api/v1/quality/violations"


@pytest.fixture
def clock(monkeypatch, midday) -> Clock:
    """A timeline starting ten hours ago (tests/sync/test_appointment_attempts.py's)."""
    timeline = Clock(monkeypatch)
    timeline.set(datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=10))
    return timeline


def _failed_check(device: Device, templates: dict, *failed: str, wrong_clock: str | None = None) -> list[dict]:
    """Push a pre-shift conduct check with the items failed (on the clock given, device_now alike); the courier's
    violations it made, as their own route shows them, newest first."""
    op = submit(device, templates["conduct.pre_shift"], conduct_answers(**{code: {"value": False} for code in failed}))
    body = {"device_id": device.id, "ops": [op]}
    if wrong_clock:
        op["device_time"] = body["device_now"] = wrong_clock
    response = device.client.post("/api/v1/sync/push", json=body, headers=device.headers)
    assert response.json["results"][0]["status"] == "applied", response.json
    return _mine(device)


def _mine(device: Device) -> list[dict]:
    """GET /me/violations as the device's courier."""
    response = device.client.get("/api/v1/me/violations", headers=device.headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def _appeal(device: Device, violation_id, *, appeal_id: str | None = None, reason="I wore it, see the photo",
            **more) -> dict:
    """A violation.appeal op (a create op: the appeal's id is a fresh UUID)."""
    payload = {"violation_id": violation_id, "reason": reason, **more}
    return device.op("violation.appeal", appeal_id or str(uuid.uuid4()), payload, base_version=0)


def _results(device: Device, ops: list[dict], **body) -> list[tuple]:
    """(status, code) of each op's result."""
    response = device.client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": ops, **body},
                                  headers=device.headers)
    assert response.status_code == 200, response.json
    return [(r["status"], r.get("code")) for r in response.json["results"]]


def _decide(client, make, violation_id: int, role: str = "quality", **body):
    """POST the appeal decision."""
    return client.post(f"{QUALITY}/{violation_id}/appeal/decide", json=body, headers=make.headers(role))


def _grade(client, make, courier: dict) -> dict:
    """The courier's grade as dispatch reads it."""
    return client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade", headers=make.headers("quality")).json


def _history(client, make, courier: dict) -> list[dict]:
    """The courier's grade history, newest first."""
    return client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade/history",
                      headers=make.headers("dispatcher")).json["items"]


def test_an_appeal_is_a_create_op_its_replay_a_duplicate_and_the_courier_sees_its_state(client, make, courier,
                                                                                        device, templates):
    """The appeal is made on the handheld with its own id; the result shows it; the courier's record (pull) and own
    route show the violation appealed; the same op again changes nothing; the event says so."""
    [violation] = _failed_check(device, templates, "uniform")
    assert (violation["status"], violation["appeal"]) == ("open", None)
    op = _appeal(device, violation["id"])
    [result] = device.push([op])["results"]
    assert result["status"] == "applied" and result["entity"]["entity"] == "violation_appeal", result
    assert result["entity"]["id"] == op["entity_id"]
    assert (result["entity"]["data"]["status"], result["entity"]["data"]["violation_id"]) == ("open", violation["id"])
    again = device.push([op])["results"][0]
    assert again["duplicate"] is True and again["entity"] == result["entity"]
    assert db.session.query(ViolationAppeal).count() == 1
    [mine] = _mine(device)
    assert (mine["status"], mine["appeal"]["id"], mine["appeal"]["status"]) == ("appealed", op["entity_id"], "open")
    store, _, _ = device.pull_all()
    [held] = store[("courier", courier["id"])]["data"]["violations"]
    assert (held["status"], held["appeal"]["status"]) == ("appealed", "open")
    assert not any(key[0] == "violation_appeal" for key in store)  # the record shows it; no device keeps appeals
    [event] = emitted("violation.appealed")
    assert (event.data["violation_id"], event.data["appeal_id"]) == (violation["id"], op["entity_id"])


def test_another_couriers_violation_or_none_is_not_assigned(client, make, courier, device, templates):
    """Courier B cannot appeal A's violation (as if there were none), nor an id no violation has."""
    [violation] = _failed_check(device, templates, "uniform")
    other = Device(client, make.device(make.courier()))
    assert _results(other, [_appeal(other, violation["id"]), _appeal(other, 2**31 - 1)]) == [
        ("rejected", "not_assigned"), ("rejected", "not_assigned")]
    assert _mine(other) == [] and db.session.query(ViolationAppeal).count() == 0
    assert _mine(device)[0]["status"] == "open"


def test_a_violation_takes_one_appeal(client, make, courier, device, templates):
    """A second appeal of the same violation is a conflict: in the same batch, later, or after the decision."""
    [violation] = _failed_check(device, templates, "uniform")
    assert _results(device, [_appeal(device, violation["id"]), _appeal(device, violation["id"])]) == [
        ("applied", None), ("rejected", "appeal_exists")]
    assert _results(device, [_appeal(device, violation["id"])]) == [("rejected", "appeal_exists")]
    assert _decide(client, make, violation["id"], outcome="upheld", reason="the photo shows no badge").status_code == 200
    assert _results(device, [_appeal(device, violation["id"])]) == [("rejected", "appeal_exists")]


def test_a_voided_violation_is_not_appealed(client, make, courier, device, templates):
    """Quality voided it first (no appeal needed): the courier's appeal is refused by the rule."""
    [violation] = _failed_check(device, templates, "uniform")
    voided = client.post(f"{QUALITY}/{violation['id']}/void", json={"reason": "wrong courier"},
                         headers=make.headers("quality"))
    assert voided.status_code == 200 and voided.json["status"] == "voided", voided.json
    assert _results(device, [_appeal(device, violation["id"])]) == [("rejected", "violation_voided")]


def test_bad_input_names_the_field(client, make, courier, device, templates):
    """No reason, a blank one, a violation id that is not a number, a photo that is not a SHA-256: invalid_payload
    naming payload.<field>."""
    [violation] = _failed_check(device, templates, "uniform")
    ops = [device.op("violation.appeal", str(uuid.uuid4()), {"violation_id": violation["id"]}, base_version=0),
           _appeal(device, violation["id"], reason="   "),
           _appeal(device, "seven"),
           _appeal(device, violation["id"], photos=["not-a-sha"])]
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": ops}, headers=device.headers)
    results = response.json["results"]
    assert [r["code"] for r in results] == ["invalid_payload"] * 4, results
    assert [sorted(r["fields"]) for r in results] == [
        ["payload.reason"], ["payload.reason"], ["payload.violation_id"], ["payload.photos.0"]], results


def test_an_appeal_hours_late_is_taken_with_its_device_time(client, make, courier, device, templates, clock):
    """The check (and its violation) at 02:00 on the timeline, the appeal made offline an hour later, pushed six
    hours after that: applied, dated when it was made, no clock flag."""
    check = submit(device, templates["conduct.pre_shift"], conduct_answers(uniform={"value": False}))
    check["device_time"] = clock.now().astimezone(SHANGHAI).isoformat()
    assert _results(device, [check]) == [("applied", None)]
    [violation] = _mine(device)
    made = clock.advance(hours=1)
    op = dict(_appeal(device, violation["id"]), device_time=made.astimezone(SHANGHAI).isoformat())
    clock.advance(hours=6)
    assert _results(device, [op], device_now=clock.now().astimezone(SHANGHAI).isoformat()) == [("applied", None)]
    appeal = db.session.get(ViolationAppeal, op["entity_id"])
    assert abs((appeal.device_time - made).total_seconds()) < 1 and appeal.clock_suspect is False
    assert appeal.received_at - appeal.device_time >= timedelta(hours=6)
    assert _mine(device)[0]["appeal"]["device_time"] == appeal.device_time.isoformat()


@pytest.mark.parametrize("wrong", ["2099-12-31T23:00:00+08:00", "2000-01-02T09:00:00+08:00"])
def test_an_appeal_on_a_wrong_clock_is_kept_and_flagged(client, make, courier, device, templates, wrong):
    """A clock decades off: the appeal is applied, dated by the measured skew (about now), and flagged."""
    [violation] = _failed_check(device, templates, "uniform")
    op = dict(_appeal(device, violation["id"]), device_time=wrong)
    assert _results(device, [op], device_now=wrong) == [("applied", None)]
    appeal = db.session.get(ViolationAppeal, op["entity_id"])
    assert appeal.clock_suspect is True
    assert abs((appeal.device_time - datetime.now(timezone.utc)).total_seconds()) < 60
    listed = client.get(QUALITY, query_string={"status": "appealed"}, headers=make.headers("quality")).json
    assert [(v["id"], v["appeal"]["clock_suspect"]) for v in listed["items"]] == [(violation["id"], True)]


def test_quality_voids_on_appeal_and_the_grade_is_kept_again_at_once(client, make, courier, device, templates):
    """uniform (minor, 3) + id_badge (major, 8): 100 - 11 = 89, B on record. The badge's appeal voided: 97, A at once,
    the history saying which violation, which appeal and why. The uniform's appeal upheld: it stands, no new grade.
    A dispatcher cannot decide (403); a decided appeal is not decided again; every decision is audited."""
    violations = _failed_check(device, templates, "uniform", "id_badge")
    badge = next(v for v in violations if v["severity"] == "major")
    uniform = next(v for v in violations if v["severity"] == "minor")
    recorded = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/grade/recompute",
                           headers=make.headers("quality")).json
    assert (recorded["grade"], recorded["score"], recorded["recorded_grade"]) == ("B", 89, "B")
    badge_appeal, uniform_appeal = _appeal(device, badge["id"]), _appeal(device, uniform["id"])
    assert _results(device, [badge_appeal, uniform_appeal]) == [("applied", None), ("applied", None)]
    refused = _decide(client, make, badge["id"], role="dispatcher", outcome="voided", reason="badge was on")
    assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    bad = _decide(client, make, badge["id"], outcome="dismissed", reason="")
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"outcome", "reason"}, bad.json
    decided = _decide(client, make, badge["id"], outcome="voided", reason="the photo shows the badge")
    assert decided.status_code == 200, decided.json
    assert (decided.json["status"], decided.json["appeal"]["status"]) == ("voided", "voided")
    assert decided.json["decision_reason"] == "the photo shows the badge"
    grade = _grade(client, make, courier)
    assert (grade["grade"], grade["score"], grade["recorded_grade"]) == ("A", 97, "A")
    newest = _history(client, make, courier)[0]
    assert (newest["from_grade"], newest["to_grade"], newest["score"]) == ("B", "A", 97)
    cause = newest["reasons"][0]
    assert (cause["code"], cause["violation_id"], cause["appeal_id"], cause["reason"]) == (
        "violation_voided", badge["id"], badge_appeal["entity_id"], "the photo shows the badge")
    assert f"violation {badge['id']} (conduct_item_failed) voided" in newest["why"]
    assert f"appeal {badge_appeal['entity_id']}" in newest["why"]
    upheld = _decide(client, make, uniform["id"], outcome="upheld", reason="no uniform on the photo")
    assert (upheld.json["status"], upheld.json["appeal"]["status"]) == ("upheld", "upheld")
    assert len(_history(client, make, courier)) == 2  # A->B, B->A: upholding changes no grade
    again = _decide(client, make, uniform["id"], outcome="voided", reason="changed my mind")
    assert again.status_code == 409 and again.json["code"] == "appeal_decided"
    assert {(e.type, e.data["outcome"]) for e in emitted("violation.appeal_decided")} == {
        ("violation.appeal_decided", "voided"), ("violation.appeal_decided", "upheld")}
    assert [e.data["violation_id"] for e in emitted("violation.voided")] == [badge["id"]]
    actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("violation%"))))
    assert sorted(actions) == ["violation.appeal_decided", "violation.appeal_decided", "violation_appeal.decide",
                               "violation_appeal.decide"]
    [mine_badge] = [v for v in _mine(device) if v["id"] == badge["id"]]
    assert (mine_badge["status"], mine_badge["appeal"]["decision_reason"]) == ("voided", "the photo shows the badge")


def test_voiding_without_an_appeal_and_who_may(client, make, courier, device, templates):
    """Quality voids with a reason (the grade follows); a dispatcher and a courier may not (403); voiding twice is a
    conflict; deciding an appeal never made is 404; an unknown violation is 404."""
    [violation] = _failed_check(device, templates, "id_badge")
    for role in ("dispatcher", "maintenance"):
        refused = client.post(f"{QUALITY}/{violation['id']}/void", json={"reason": "x"}, headers=make.headers(role))
        assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    assert client.post(f"{QUALITY}/{violation['id']}/void", json={"reason": "x"},
                       headers=device.headers).status_code == 403
    missing = _decide(client, make, violation["id"], outcome="voided", reason="no appeal")
    assert missing.status_code == 404 and missing.json["code"] == "appeal_not_found"
    voided = client.post(f"{QUALITY}/{violation['id']}/void", json={"reason": "inspector mixed up couriers"},
                         headers=make.headers("admin"))
    assert voided.status_code == 200 and voided.json["status"] == "voided"
    twice = client.post(f"{QUALITY}/{violation['id']}/void", json={"reason": "again"}, headers=make.headers("quality"))
    assert twice.status_code == 409 and twice.json["code"] == "violation_voided"
    assert client.post(f"{QUALITY}/999999/void", json={"reason": "x"},
                       headers=make.headers("quality")).json["code"] == "violation_not_found"
    assert _grade(client, make, courier)["score"] == 100
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "violation.void"))


def test_the_courier_sees_only_their_own_violations(client, make, courier, device, templates):
    """Courier B's own route lists none of A's; dispatch's per-courier list is for the office."""
    _failed_check(device, templates, "uniform")
    other = Device(client, make.device(make.courier()))
    assert len(_mine(device)) == 1 and _mine(other) == []
    assert client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations",
                      headers=other.headers).status_code == 403


def test_suspect_clock_violations_are_listed_for_review_and_confirmed_or_voided(client, make, courier, device,
                                                                               templates):
    """A check pushed on a clock in 2099 records its violations clock_suspect: quality's list filters them; one is
    confirmed (upheld), one voided; status and courier filters narrow the list; bad filters name the field."""
    suspect = _failed_check(device, templates, "uniform", "id_badge", wrong_clock="2099-12-31T23:00:00+08:00")
    honest = _failed_check(device, templates, "tidy")[0]
    quality = make.headers("quality")
    listed = client.get(QUALITY, query_string={"clock_suspect": "true"}, headers=quality).json["items"]
    assert sorted(v["id"] for v in listed) == sorted(v["id"] for v in suspect) and all(v["clock_suspect"] for v in listed)
    straight = client.get(QUALITY, query_string={"clock_suspect": "false", "courier_id": courier["id"]},
                          headers=quality).json["items"]
    assert [v["id"] for v in straight] == [honest["id"]]
    first, second = sorted(v["id"] for v in suspect)
    confirmed = client.post(f"{QUALITY}/{first}/confirm", json={"reason": "CCTV shows it"}, headers=quality)
    assert confirmed.status_code == 200 and confirmed.json["status"] == "upheld", confirmed.json
    assert client.post(f"{QUALITY}/{first}/confirm", json={"reason": "again"},
                       headers=quality).json["code"] == "violation_decided"
    assert client.post(f"{QUALITY}/{second}/void", json={"reason": "clock was wrong, day unknown"},
                       headers=quality).status_code == 200
    by_status = {status: [v["id"] for v in client.get(QUALITY, query_string={"status": status, "clock_suspect": "true"},
                                                      headers=quality).json["items"]]
                 for status in ("open", "upheld", "voided")}
    assert by_status == {"open": [], "upheld": [first], "voided": [second]}
    assert client.get(QUALITY, query_string={"courier_id": "k-nobody"}, headers=quality).json["items"] == []
    bad = client.get(QUALITY, query_string={"status": "gone", "clock_suspect": "perhaps"}, headers=quality)
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"status", "clock_suspect"}, bad.json
    assert client.get(QUALITY, headers=make.headers("dispatcher")).status_code == 200
    assert client.get(QUALITY, headers=device.headers).status_code == 403


def test_a_missed_windows_violation_is_voided_when_dispatchs_review_finds_it_kept(client, make, courier, device,
                                                                                  clock):
    """The sweep decided the window missed (late_without_notice); the offline queue then brought an arrival inside
    the window (review, late_sync); dispatch decides kept: the sweep's violation is voided, naming the review, and
    the grade is kept again (97 -> 100, no grade change: the history stays as it was)."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    end = start + timedelta(hours=2)
    queued = _op(device, clock, "stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47},
                 at=end - timedelta(minutes=30))
    clock.set(end + timedelta(minutes=5))
    assert appointments.sweep_missed()["violations"] == 1
    [missed] = [v for v in _mine(device) if v["code"] == "late_without_notice"]
    assert missed["status"] == "open"
    clock.set(end + timedelta(hours=3))
    assert _push(device, queued)[0]["status"] == "applied"
    decided = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/review",
                          json={"outcome": "kept", "note": "GPS shows him at the door at 11:30"},
                          headers=make.headers("dispatcher"))
    assert decided.status_code == 200, decided.json
    [voided] = [v for v in _mine(device) if v["id"] == missed["id"]]
    assert voided["status"] == "voided"
    assert "review of window" in voided["decision_reason"] and "GPS shows him" in voided["decision_reason"]
    row = client.get(f"{QUALITY}/{missed['id']}", headers=make.headers("quality")).json
    assert row["decided_by"] is None and row["status"] == "voided"
    [event] = emitted("violation.voided")
    assert event.data["violation_id"] == missed["id"] and event.data["by"] is None
    grade = _grade(client, make, courier)
    assert not any(r["code"] == "violations" and r["violation_code"] == "late_without_notice"
                   for r in grade["reasons"])
    assert db.session.query(GradeChange).count() == 0  # minor: 97 was still A, so no grade changed either way
