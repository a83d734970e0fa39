"""The service grade: hand-computed fixtures for A, B and C, history, the job, and the courier's record on pull.

Default rules (server/config.py): 100 points, less 20 / 8 / 3 per critical /
major / minor violation in the 30-day window, less 1 per percentage point of
on-time rate below 95 once 10 appointments were decided; A >= 90, B >= 75,
else C; a critical violation keeps a courier out of A.
"""
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from server import jobs
from server.extensions import db
from server.models import Appointment, AppointmentWindow, Courier, GradeChange
from server.services import grades, violations
from tests.sync.conftest import SHANGHAI, Device, at_once, morning_task

HERE = {"lat": 31.23, "lon": 121.47}
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _violation(courier: dict, code: str, days_ago: float) -> None:
    """A violation of the courier that occurred days_ago, recorded through the service."""
    assert violations.record_auto(courier_id=courier["id"], code=code, task_id=None,
                                  occurred_at=NOW - timedelta(days=days_ago), evidence={},
                                  key=f"test:{uuid.uuid4().hex}")
    db.session.commit()


def _appointments(make, courier: dict, **outcomes: int) -> None:
    """Tasks of the courier whose appointments were decided (kept, late, missed) a day ago."""
    for status, count in outcomes.items():
        ids = [make.task(courier=courier)["id"] for _ in range(count)]
        db.session.execute(update(Appointment).where(Appointment.task_id.in_(ids))
                           .values(status=status, window_end=NOW - timedelta(days=1)))
        # The grade reads each window's own decision (issue 21): the tasks' windows decided as the status says.
        db.session.execute(update(AppointmentWindow).where(AppointmentWindow.appointment_id.in_(
            select(Appointment.id).where(Appointment.task_id.in_(ids)))).values(
            outcome=status, end=NOW - timedelta(days=1), start=NOW - timedelta(days=1, hours=2), attempt=1))
    db.session.commit()


def _upheld_complaint(client, make, courier: dict, category: str = "surcharge") -> dict:
    """A complaint about the courier, answered and upheld through the API."""
    complaint = client.post("/api/v1/dispatch/complaints", headers=make.headers("quality"), json={
        "courier_id": courier["id"], "channel": "phone", "category": category,
        "text": "He asked me for 20 yuan extra, my number is 13900000000."}).json
    client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/respond", json={"text": "we will check"},
                headers=make.headers("quality"))
    resolved = client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/resolve", headers=make.headers("quality"),
                           json={"outcome": "upheld", "note": "confirmed", "resolved_at_first_contact": False})
    assert resolved.status_code == 200, resolved.json
    return resolved.json


def _grade(client, make, courier: dict) -> dict:
    """GET the live grade."""
    response = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade", headers=make.headers("quality"))
    assert response.status_code == 200, response.json
    return response.json


def _history(client, make, courier: dict) -> list[dict]:
    """The grade changes, newest first."""
    response = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade/history", headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json["items"]


def _on_time(kept: int, late: int, missed: int, rate: int | None, points: int, counted: bool = True,
             not_attempted: int = 0, review: int = 0) -> dict:
    """The on_time_rate reason."""
    return {"code": "on_time_rate", "points": points, "kept": kept, "late": late, "missed": missed,
            "not_attempted": not_attempted, "review": review,
            "rate_percent": rate, "target_percent": 95, "counted": counted}


def _violations_reason(code: str, severity: str, count: int, points: int) -> dict:
    """A violations reason."""
    return {"code": "violations", "points": points, "violation_code": code, "severity": severity, "count": count}


def test_grade_a_by_hand(client, make):
    """12 kept (rate 100: 0 points), one late_without_notice (minor: 3), a surcharge 31 days ago (outside): 97, A."""
    courier = make.courier()
    _appointments(make, courier, kept=12)
    _violation(courier, "late_without_notice", days_ago=2)
    _violation(courier, "private_surcharge", days_ago=31)
    asked = datetime.now(timezone.utc).replace(microsecond=0)
    grade = _grade(client, make, courier)
    answered = datetime.now(timezone.utc)
    assert (grade["grade"], grade["score"], grade["recorded_grade"]) == ("A", 97, "A")
    assert grade["reasons"] == [_violations_reason("late_without_notice", "minor", 1, 3), _on_time(12, 0, 0, 100, 0)]
    window_from, window_to = (datetime.fromisoformat(grade["window"][k]) for k in ("from", "to"))
    # The window ends when the grade was asked for (not when this module was loaded: a slow run).
    assert window_to - window_from == timedelta(days=30) and asked <= window_to <= answered


def test_grade_b_by_hand(client, make):
    """8 kept, 1 late, 1 missed (rate 80: 15 points below 95), one late_without_notice (3): 82, B."""
    courier = make.courier()
    _appointments(make, courier, kept=8, late=1, missed=1)
    _violation(courier, "late_without_notice", days_ago=5)
    grade = _grade(client, make, courier)
    assert (grade["grade"], grade["score"]) == ("B", 82)
    assert grade["reasons"] == [_violations_reason("late_without_notice", "minor", 1, 3), _on_time(8, 1, 1, 80, 15)]


def test_grade_c_by_hand(client, make):
    """An upheld complaint (major: 8), a private surcharge (critical: 20), 3 appointments (too few to count): 72, C."""
    courier = make.courier()
    _appointments(make, courier, kept=2, late=1)
    _upheld_complaint(client, make, courier)
    _violation(courier, "private_surcharge", days_ago=10)
    grade = _grade(client, make, courier)
    assert (grade["grade"], grade["score"]) == ("C", 72)
    assert grade["reasons"] == [_violations_reason("complaint_upheld", "major", 1, 8),
                                _violations_reason("private_surcharge", "critical", 1, 20),
                                _on_time(2, 1, 0, 66, 0, counted=False),
                                {"code": "critical_violation", "points": 0, "count": 1}]


def test_a_critical_violation_keeps_a_courier_out_of_a(app, client, make):
    """The weights are configuration: a surcharge worth 5 leaves 95, but a critical violation caps the grade at B."""
    app.config["GRADE_POINTS"] = {"critical": 5, "major": 8, "minor": 3}
    courier = make.courier()
    _violation(courier, "private_surcharge", days_ago=1)
    grade = _grade(client, make, courier)
    assert (grade["grade"], grade["score"]) == ("B", 95)
    app.config.update(GRADE_A_MIN=99, GRADE_B_MIN=96)
    assert _grade(client, make, courier)["grade"] == "C"


def test_the_score_never_goes_below_zero():
    """Many violations: the score stops at 0 (a C)."""
    config = {"GRADE_POINTS": {"critical": 20, "major": 8, "minor": 3}, "GRADE_A_MIN": 90, "GRADE_B_MIN": 75,
              "GRADE_ON_TIME_TARGET_PERCENT": 95, "GRADE_ON_TIME_MIN_APPOINTMENTS": 10,
              "GRADE_ON_TIME_POINTS_PER_PERCENT": 1}
    grade, score, _ = grades.score(violations={("private_surcharge", "critical"): 6}, appointments={}, config=config)
    assert (grade, score) == ("C", 0)


def test_recompute_keeps_history_one_row_per_change(client, make):
    """A -> C on record with one history row; recomputing again adds none; the live GET stores nothing."""
    courier = make.courier()
    _upheld_complaint(client, make, courier)
    _violation(courier, "private_surcharge", days_ago=1)
    assert _grade(client, make, courier)["recorded_grade"] == "A" and _history(client, make, courier) == []
    url = f"/api/v1/dispatch/couriers/{courier['id']}/grade/recompute"
    first = client.post(url, headers=make.headers("quality"))
    assert first.status_code == 200 and (first.json["grade"], first.json["recorded_grade"]) == ("C", "C")
    assert client.post(url, headers=make.headers("admin")).json["recorded_grade"] == "C"
    [change] = _history(client, make, courier)
    assert (change["from_grade"], change["to_grade"], change["score"]) == ("A", "C", 72)
    assert change["reasons"] == first.json["reasons"] and change["computed_by"] is not None
    assert client.get(f"/api/v1/dispatch/couriers/{courier['id']}", headers=make.headers("quality")).json["grade"] == "C"
    assert client.post(url, headers=make.headers("dispatcher")).status_code == 403


def test_unknown_courier_is_404_on_every_grade_route(client, make):
    """GET grade, recompute and history answer courier_not_found."""
    for method, suffix in (("GET", "grade"), ("POST", "grade/recompute"), ("GET", "grade/history")):
        response = client.open(f"/api/v1/dispatch/couriers/c-none/{suffix}", method=method, headers=make.headers("admin"))
        assert response.status_code == 404 and response.json["code"] == "courier_not_found"


def test_the_job_is_idempotent_and_follows_the_window(client, make):
    """Run twice: one change, the courier row untouched the second time; 40 days on, back to A (a second change)."""
    courier, steady = make.courier(), make.courier()
    _violation(courier, "private_surcharge", days_ago=1)
    _violation(courier, "gift_not_disclosed", days_ago=1)
    first = jobs.run("grades", now=NOW)
    assert first == {"couriers": 2, "changed": 1}
    version = db.session.get(Courier, courier["id"]).version
    assert jobs.run("grades", now=NOW) == {"couriers": 2, "changed": 0}
    assert jobs.run("grades", now=NOW + timedelta(hours=1)) == {"couriers": 2, "changed": 0}
    db.session.expire_all()
    assert db.session.get(Courier, courier["id"]).version == version
    assert db.session.scalar(select(func.count()).select_from(GradeChange)) == 1
    assert jobs.run("grades", now=NOW + timedelta(days=40))["changed"] == 1
    history = _history(client, make, courier)
    assert [(h["from_grade"], h["to_grade"]) for h in history] == [("C", "A"), ("A", "C")]
    assert history[0]["computed_by"] is None and history[0]["reasons"] == [_on_time(0, 0, 0, None, 0, counted=False)]
    assert _history(client, make, steady) == []
    assert "grades" in {job.name for job in jobs.JOBS}


def test_history_pages_newest_first(client, make):
    """Cursor pages over the changes; a bad cursor is 422."""
    courier = make.courier()
    _violation(courier, "private_surcharge", days_ago=1)
    _violation(courier, "gift_not_disclosed", days_ago=1)
    for days in (0, 40, 40.5):
        jobs.run("grades", now=NOW + timedelta(days=days))
        _violation(courier, "private_surcharge", days_ago=-days - 0.1)
        _violation(courier, "gift_not_disclosed", days_ago=-days - 0.1)
    url = f"/api/v1/dispatch/couriers/{courier['id']}/grade/history"
    first = client.get(url, query_string={"limit": 2}, headers=make.headers("quality")).json
    assert [(h["from_grade"], h["to_grade"]) for h in first["items"]] == [("A", "C"), ("C", "A")]
    rest = client.get(url, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=make.headers("quality"))
    assert [(h["from_grade"], h["to_grade"]) for h in rest.json["items"]] == [("A", "C")]
    assert client.get(url, query_string={"cursor": "zz"}, headers=make.headers("quality")).status_code == 422


def test_the_courier_pulls_their_grade_reasons_and_violations_never_the_complaint_text(client, make):
    """A violation or a new grade moves the courier's record, so the handheld pulls it; customers' words stay out."""
    courier = make.courier()
    device = Device(client, make.device(courier))
    store, cursor, _ = device.pull_all()
    record = store[("courier", courier["id"])]
    assert record["data"]["grade"] == "A" and record["data"]["violations"] == []
    assert record["data"]["grade_reasons"] == [] and record["data"]["grade_score"] is None
    complaint = _upheld_complaint(client, make, courier)
    store, cursor, _ = device.pull_all(cursor)
    moved = store[("courier", courier["id"])]
    assert moved["version"] == record["version"] + 1
    [violation] = moved["data"]["violations"]
    assert violation == {"id": complaint["violation_id"], "code": "complaint_upheld", "severity": "major",
                         "source": "complaint", "task_id": None, "occurred_at": complaint["received_at"],
                         "complaint_category": "surcharge", "status": "open", "decision_reason": None,
                         "appeal": None}
    assert "20 yuan" not in json.dumps(moved) and "13900000000" not in json.dumps(moved)
    _violation(courier, "private_surcharge", days_ago=1)
    jobs.run("grades")
    store, cursor, _ = device.pull_all(cursor)
    graded = store[("courier", courier["id"])]["data"]
    assert (graded["grade"], graded["grade_score"]) == ("C", 72)
    assert [r["code"] for r in graded["grade_reasons"]] == ["violations", "violations", "on_time_rate",
                                                              "critical_violation"]
    assert graded["grade_window"]["to"] == graded["grade_as_of"]
    assert [v["code"] for v in graded["violations"]] == ["private_surcharge", "complaint_upheld"]
    # A fresh device (a full pull) gets the same record.
    again, _, _ = Device(client, make.device(courier, name="spare")).pull_all()
    assert again[("courier", courier["id"])]["data"] == graded


def test_a_courier_never_pulls_another_couriers_record(client, make):
    """Bob's device holds Bob's record only: Alice's grade and violations never reach it."""
    alice, bob = make.courier(), make.courier()
    bobs = Device(client, make.device(bob))
    jobs.run("grades")  # Bob's first evaluation
    _, cursor, _ = bobs.pull_all()
    _upheld_complaint(client, make, alice)
    _violation(alice, "private_surcharge", days_ago=1)
    jobs.run("grades")
    store, _, _ = bobs.pull_all(cursor)
    assert store == {}
    full, _, _ = bobs.pull_all()
    assert [key for key in full if key[0] == "courier"] == [("courier", bob["id"])]
    assert full[("courier", bob["id"])]["data"]["violations"] == []


def test_a_violation_recorded_in_a_push_moves_the_courier_record(client, make, courier, device, server_clock):
    """A late arrival in a push records late_without_notice; the same pull brings the courier's record with it."""
    task = morning_task(make, courier, server_clock)
    _, cursor, _ = device.pull_all()
    before = db.session.get(Courier, courier["id"]).version
    start, end = (datetime.fromisoformat(task["window"][k]) for k in ("start", "end"))
    confirm = dict(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                   device_time=(start - timedelta(minutes=30)).astimezone(SHANGHAI).isoformat())
    arrive = dict(device.op("stop.arrive", task["id"], HERE),
                  device_time=(end + timedelta(minutes=40)).astimezone(SHANGHAI).isoformat())
    results = device.push([confirm, arrive])["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    store, _, _ = device.pull_all(cursor)
    record = store[("courier", courier["id"])]
    assert record["version"] == before + 1
    # No shift was open: the checks before work flag the arrival too, in the same record.
    assert sorted((v["code"], v["task_id"], v["severity"]) for v in record["data"]["violations"]) == [
        ("late_without_notice", task["id"], "minor"), ("work_without_shift_check", task["id"], "major")]


def test_two_grade_jobs_at_once_record_one_change(app, make, engine_name):
    """Two hosts running the job together: the couriers are locked, so the change is recorded once."""
    if engine_name != "postgresql":
        pytest.skip("SQLite serialises writers by itself; concurrency matters on PostgreSQL")
    couriers = [make.courier() for _ in range(3)]
    for courier in couriers:
        _violation(courier, "private_surcharge", days_ago=1)
    barrier = threading.Barrier(2)

    def run():
        with app.app_context():
            barrier.wait(10)
            return jobs.run("grades", now=NOW)

    answers = at_once(run, 2, timeout=60)
    assert sum(a["changed"] for a in answers) == 3
    assert db.session.scalar(select(func.count()).select_from(GradeChange)) == 3


def test_jobs_cli_runs_grades(app, make):
    """`fieldops jobs list` names the grades job; `jobs run grades` prints its counts."""
    courier = make.courier()
    _violation(courier, "private_surcharge", days_ago=1)
    runner = app.test_cli_runner()
    assert "grades\tdaily" in runner.invoke(args=["jobs", "list"]).output
    ran = runner.invoke(args=["jobs", "run", "grades"])
    assert ran.exit_code == 0 and ran.output.strip() == "grades: couriers 1, changed 1", ran.output
    db.session.expire_all()
    assert db.session.get(Courier, courier["id"]).grade == "B"
