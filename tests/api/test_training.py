"""Training courses, sessions and attendance through the API: roles, bad input named, duplicates, corrections
audited, the CSV import (all or nothing, rows and columns named), a courier's training record."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

BASE = "/api/v1/quality/training"


def _now() -> datetime:
    """Now, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def course(make, code="PJ-SAFETY", kind="pre_job", validity=None, **extra) -> dict:
    """A course created by quality."""
    response = make.client.post(f"{BASE}/courses", json={"code": code, "name": f"Course {code}", "kind": kind,
                                                         "validity_months": validity, **extra},
                                headers=make.headers("quality"))
    assert response.status_code == 201, response.json
    return response.json


def session(make, course_id: int, held_at: datetime) -> dict:
    """A session of the course, held (or planned) at held_at."""
    response = make.client.post(f"{BASE}/sessions", json={"course_id": course_id, "held_at": held_at.isoformat(),
                                                          "trainer": "Ms Zhou", "location": "Depot hall"},
                                headers=make.headers("quality"))
    assert response.status_code == 201, response.json
    return response.json


def attend(make, session_id: int, *rows: dict, role: str = "quality", expect: int = 200):
    """Post attendance rows ({courier_id, attended, passed, score?})."""
    response = make.client.post(f"{BASE}/sessions/{session_id}/attendance", json={"attendance": list(rows)},
                                headers=make.headers(role))
    assert response.status_code == expect, response.json
    return response.json


def passed(courier: dict, score: int | None = 90) -> dict:
    """An attendance row: attended and passed."""
    return {"courier_id": courier["id"], "attended": True, "passed": True, "score": score}


def train(make, courier: dict, code: str = "PJ-SAFETY", *, kind: str = "pre_job", validity=None,
          held_at: datetime | None = None) -> dict:
    """Give the courier a pass of the course (created if missing) at a session held at held_at (default a day ago)."""
    listed = make.client.get(f"{BASE}/courses", headers=make.headers("quality")).json["items"]
    found = next((c for c in listed if c["code"] == code), None) or course(make, code, kind, validity)
    held = session(make, found["id"], held_at or _now() - timedelta(days=1))
    return attend(make, held["id"], passed(courier))


def test_courses_are_quality_and_admin_work_and_dispatch_reads_them(make, client):
    """Quality and admins create courses; dispatchers and couriers may not (403 forbidden); dispatch reads them."""
    pj = course(make)
    assert (pj["code"], pj["kind"], pj["validity_months"], pj["active"]) == ("PJ-SAFETY", "pre_job", None, True)
    body = {"code": "PR-1", "name": "Refresher", "kind": "periodic", "validity_months": 12}
    courier = make.courier()
    device = make.device(courier)
    for headers in (make.headers("dispatcher"), make.headers("maintenance"),
                    {"Authorization": f"Bearer {device['token']}"}):
        refused = client.post(f"{BASE}/courses", json=body, headers=headers)
        assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    assert client.post(f"{BASE}/courses", json=body, headers=make.headers("admin")).status_code == 201
    listed = client.get(f"{BASE}/courses", headers=make.headers("dispatcher"))
    assert [c["code"] for c in listed.json["items"]] == ["PJ-SAFETY", "PR-1"]
    only = client.get(f"{BASE}/courses", query_string={"kind": "periodic"}, headers=make.headers("dispatcher"))
    assert [c["code"] for c in only.json["items"]] == ["PR-1"]
    refused = client.get(f"{BASE}/courses", headers={"Authorization": f"Bearer {device['token']}"})
    assert refused.status_code == 403


def test_bad_courses_are_refused_naming_the_field(make, client):
    """A periodic course needs a validity; a code is unique (as upper-cased); a kind is one of two."""
    headers = make.headers("quality")
    cases = [({"code": "PR-1", "name": "R", "kind": "periodic"}, 422, "validity_months"),
             ({"code": "PR-1", "name": "R", "kind": "weekly", "validity_months": 6}, 422, "kind"),
             ({"code": "PR 1", "name": "R", "kind": "periodic", "validity_months": 6}, 422, "code"),
             ({"code": "PR-1", "name": "R", "kind": "periodic", "validity_months": 0}, 422, "validity_months")]
    for body, status, field in cases:
        response = client.post(f"{BASE}/courses", json=body, headers=headers)
        assert response.status_code == status and field in response.json["fields"], (body, response.json)
    course(make, "pr-1", "periodic", 6)
    again = client.post(f"{BASE}/courses", json={"code": "PR-1", "name": "Again", "kind": "periodic",
                                                 "validity_months": 6}, headers=headers)
    assert again.status_code == 409 and again.json["code"] == "course_exists"


def test_a_course_is_retired_and_renamed_audited(make, client):
    """PATCH changes name, active or validity; the audit log keeps before and after."""
    pj = course(make)
    response = client.patch(f"{BASE}/courses/{pj['id']}", json={"active": False, "name": "Old safety"},
                            headers=make.headers("quality"))
    assert response.status_code == 200 and (response.json["active"], response.json["name"]) == (False, "Old safety")
    assert client.patch(f"{BASE}/courses/{pj['id']}", json={}, headers=make.headers("quality")).status_code == 422
    assert client.patch(f"{BASE}/courses/999999", json={"active": True},
                        headers=make.headers("quality")).json["code"] == "course_not_found"
    audit = client.get("/api/v1/admin/audit", query_string={"entity": "training_courses"},
                       headers=make.headers("admin")).json["items"]
    update = next(a for a in audit if a["action"] == "training_course.update")
    assert update["before"]["active"] is True and update["after"]["active"] is False


def test_sessions_are_held_in_the_past_or_planned_within_limits(app, make, client):
    """A session is at most FIELDOPS_TRAINING_AHEAD_DAYS ahead; a course is held once at a time; results wait for
    the session."""
    pj = course(make)
    headers = make.headers("quality")
    far = client.post(f"{BASE}/sessions", json={"course_id": pj["id"], "held_at": (_now() + timedelta(days=400))
                                                .isoformat(), "trainer": "T", "location": "L"}, headers=headers)
    assert far.status_code == 422 and "held_at" in far.json["fields"]
    ancient = client.post(f"{BASE}/sessions", json={"course_id": pj["id"], "held_at": "1999-12-31T09:00:00+08:00",
                                                    "trainer": "T", "location": "L"}, headers=headers)
    assert ancient.status_code == 422 and "held_at" in ancient.json["fields"]
    missing = client.post(f"{BASE}/sessions", json={"course_id": 999999, "held_at": _now().isoformat(),
                                                    "trainer": "T", "location": "L"}, headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "course_not_found"
    planned = session(make, pj["id"], _now() + timedelta(days=3))
    twice = client.post(f"{BASE}/sessions", json={"course_id": pj["id"], "held_at": planned["held_at"],
                                                  "trainer": "T", "location": "L"}, headers=headers)
    assert twice.status_code == 409 and twice.json["code"] == "session_exists"
    early = attend(make, planned["id"], passed(make.courier()), expect=422)
    assert early["code"] == "session_not_held"
    depot = datetime.fromisoformat(planned["held_at"]).astimezone(ZoneInfo(app.config["TIMEZONE"]))
    assert f"is at {depot:%Y-%m-%d %H:%M} (depot time)" in early["detail"], early["detail"]


def test_attendance_posted_twice_counts_once_and_a_correction_is_audited(make, client):
    """The same rows again: nothing changes. A new result: corrected, counted and audited with before and after."""
    pj = course(make)
    held = session(make, pj["id"], _now() - timedelta(hours=3))
    a, b = make.courier(), make.courier()
    rows = [passed(a, 88), {"courier_id": b["id"], "attended": True, "passed": False, "score": 40}]
    first = attend(make, held["id"], *rows)
    again = attend(make, held["id"], *rows)
    assert first["attendance"] == again["attendance"] and len(again["attendance"]) == 2
    assert [x["corrections"] for x in again["attendance"]] == [0, 0]
    fixed = attend(make, held["id"], {"courier_id": b["id"], "attended": True, "passed": True, "score": 75})
    by_courier = {x["courier_id"]: x for x in fixed["attendance"]}
    assert (by_courier[b["id"]]["passed"], by_courier[b["id"]]["score"], by_courier[b["id"]]["corrections"]) == \
        (True, 75, 1)
    assert by_courier[a["id"]] == {x["courier_id"]: x for x in first["attendance"]}[a["id"]]
    audit = client.get("/api/v1/admin/audit", query_string={"entity": "training_attendance"},
                       headers=make.headers("admin")).json["items"]
    assert sorted(x["action"] for x in audit) == ["training_attendance.correct", "training_attendance.record",
                                                   "training_attendance.record"]
    correction = next(x for x in audit if x["action"] == "training_attendance.correct")
    assert (correction["before"]["passed"], correction["after"]["passed"]) == (False, True)
    shown = client.get(f"{BASE}/sessions/{held['id']}", headers=make.headers("dispatcher")).json
    assert len(shown["attendance"]) == 2 and shown["course"]["code"] == "PJ-SAFETY"


def test_bad_attendance_is_refused_naming_the_row_and_field(make, client):
    """An absent courier cannot pass; an unknown courier, or one listed twice, is named; nothing is recorded."""
    held = session(make, course(make)["id"], _now() - timedelta(hours=1))
    a = make.courier()
    absent = attend(make, held["id"], passed(a), {"courier_id": make.courier()["id"], "attended": False,
                                                  "passed": True}, expect=422)
    assert "attendance.1.passed" in absent["fields"]
    unknown = attend(make, held["id"], passed(a), {"courier_id": "c-nobody", "attended": True, "passed": False},
                     expect=422)
    assert list(unknown["fields"]) == ["attendance.1.courier_id"]
    twice = attend(make, held["id"], passed(a), passed(a), expect=422)
    assert "attendance.1.courier_id" in twice["fields"]
    score = attend(make, held["id"], passed(a, 101), expect=422)
    assert "attendance.0.score" in score["fields"]
    assert client.get(f"{BASE}/sessions/{held['id']}", headers=make.headers("quality")).json["attendance"] == []
    assert attend(make, held["id"], passed(a), role="dispatcher", expect=403)["code"] == "forbidden"
    assert attend(make, 999999, passed(a), expect=404)["code"] == "session_not_found"


def _csv(*rows: str, header: str = "course_code,held_at,courier_id,attended,passed,score") -> bytes:
    """A CSV body."""
    return ("\n".join([header, *rows]) + "\n").encode()


def test_csv_import_creates_sessions_records_once_and_names_bad_rows(make, client):
    """Rows find or create their session; imported again they change nothing; a file with a bad row imports
    nothing and names each bad cell as rows.<line>.<column>."""
    course(make)
    course(make, "PR-1", "periodic", 12)
    a, b = make.courier(), make.courier()
    held = (_now() - timedelta(days=2)).isoformat()
    body = _csv(f"pj-safety,{held},{a['id']},yes,yes,91", f"PJ-SAFETY,{held},{b['id']},true,false,",
                f"PR-1,{held},{a['id']},1,1,80")
    headers = {**make.headers("quality"), "Content-Type": "text/csv"}
    first = client.post(f"{BASE}/sessions/import", data=body, headers=headers)
    assert first.status_code == 200, first.json
    assert (first.json["sessions_created"], first.json["recorded"], first.json["unchanged"]) == (2, 3, 0)
    assert [r["row"] for r in first.json["rows"]] == [2, 3, 4]
    again = client.post(f"{BASE}/sessions/import", data=body, headers=headers).json
    assert (again["sessions_created"], again["recorded"], again["unchanged"], again["corrected"]) == (0, 0, 3, 0)
    fixed = client.post(f"{BASE}/sessions/import", data=_csv(f"PJ-SAFETY,{held},{b['id']},true,true,70"),
                        headers=headers).json
    assert (fixed["corrected"], fixed["recorded"]) == (1, 0)
    sessions = client.get(f"{BASE}/sessions", headers=make.headers("quality")).json["items"]
    assert len(sessions) == 2 and sum(len(s["attendance"]) for s in sessions) == 3
    bad = _csv(f"PJ-SAFETY,{held},{a['id']},yes,yes,91", f"NOPE,{held},{a['id']},yes,yes,",
               f"PJ-SAFETY,yesterday,{a['id']},yes,yes,", f"PJ-SAFETY,{held},c-nobody,yes,maybe,",
               f"PJ-SAFETY,{held},{b['id']},no,yes,", f"PJ-SAFETY,{(_now() + timedelta(days=1)).isoformat()},"
               f"{a['id']},yes,yes,", f"PR-1,{held},{b['id']},yes,yes,200", f"PR-1,{held},{b['id']},yes,yes,20")
    refused = client.post(f"{BASE}/sessions/import", data=bad, headers=headers)
    assert refused.status_code == 422, refused.json
    assert set(refused.json["fields"]) == {"rows.3.course_code", "rows.4.held_at", "rows.5.courier_id",
                                           "rows.5.passed", "rows.6.passed", "rows.7.held_at", "rows.8.score",
                                           "rows.9.courier_id"}
    assert "row 8" in refused.json["fields"]["rows.9.courier_id"][0]
    assert len(client.get(f"{BASE}/sessions", headers=make.headers("quality")).json["items"]) == 2
    wrong = client.post(f"{BASE}/sessions/import", data=_csv("x", header="course,when"), headers=headers)
    assert wrong.status_code == 422 and "header" in wrong.json["fields"]
    json_body = client.post(f"{BASE}/sessions/import", json=[], headers=make.headers("quality"))
    assert json_body.status_code == 415
    empty = client.post(f"{BASE}/sessions/import", data=_csv(), headers=headers)
    assert empty.status_code == 422 and "rows" in empty.json["fields"]
    denied = client.post(f"{BASE}/sessions/import", data=body, headers={**make.headers("dispatcher"),
                                                                        "Content-Type": "text/csv"})
    assert denied.status_code == 403 and denied.json["code"] == "forbidden"


def test_a_couriers_training_record_says_what_is_passed_and_due(make, client):
    """Newest pass of each course with its expiry; due: pre-job never passed, a periodic pass expiring soon; whether a
    shift may start now."""
    a = make.courier()
    course(make)
    course(make, "PJ-ROAD", "pre_job", 24)
    record = client.get(f"/api/v1/dispatch/couriers/{a['id']}/training", headers=make.headers("dispatcher")).json
    assert record["may_start_shift"] is False and record["passes"] == []
    assert sorted((d["course_code"], d["reason"], d["blocks_shift"]) for d in record["due"]) == [
        ("PJ-ROAD", "never_passed", True), ("PJ-SAFETY", "never_passed", True)]
    train(make, a)
    train(make, a, "PJ-ROAD")
    # A periodic pass held 11 months and 20 days ago, valid 12 months: expires within the 30 days shown as due.
    train(make, a, "PR-1", kind="periodic", validity=12, held_at=_now() - timedelta(days=355))
    record = client.get(f"/api/v1/dispatch/couriers/{a['id']}/training", headers=make.headers("quality")).json
    assert record["may_start_shift"] is True and record["grade"] == "A"
    assert [(p["course_code"], p["valid"]) for p in record["passes"]] == [("PJ-ROAD", True), ("PJ-SAFETY", True),
                                                                          ("PR-1", True)]
    assert [p["valid_until"] for p in record["passes"]][1] is None
    assert [(d["course_code"], d["reason"], d["blocks_shift"]) for d in record["due"]] == [
        ("PR-1", "expires_soon", False)]
    assert len(record["attendance"]) == 3
    missing = client.get("/api/v1/dispatch/couriers/c-nobody/training", headers=make.headers("dispatcher"))
    assert missing.status_code == 404 and missing.json["code"] == "courier_not_found"
    device = make.device(a)
    mine = client.get(f"/api/v1/dispatch/couriers/{a['id']}/training",
                      headers={"Authorization": f"Bearer {device['token']}"})
    assert mine.status_code == 403


@pytest.mark.parametrize("held_day,months,until", [("2026-01-31T10:00:00+08:00", 1, "2026-02-28T10:00:00+08:00"),
                                                   ("2026-03-15T10:00:00+08:00", 12, "2027-03-15T10:00:00+08:00")])
def test_a_pass_is_valid_for_calendar_months_of_the_depot(make, client, held_day, months, until):
    """valid_until: the same local time months later (the 31st in a shorter month: its last day)."""
    pr = course(make, "PR-1", "periodic", months)
    held = session(make, pr["id"], datetime.fromisoformat(held_day))
    [row] = attend(make, held["id"], passed(make.courier()))["attendance"]
    assert datetime.fromisoformat(row["valid_until"]) == datetime.fromisoformat(until)


@pytest.mark.parametrize("value,error", [
    ('{"C": {"retraining_required": "yes"}}', "retraining_required must be true or false"),
    ('{"D": {}}', "must be a grade"), ("[1]", "must be a JSON object"), ("{not json", "must be a JSON object"),
    ('{"B": {"retraining_course": ""}}', "retraining_course must be a course code")])
def test_grade_consequences_are_checked_at_start_up(monkeypatch, value, error):
    """A malformed FIELDOPS_GRADE_CONSEQUENCES stops the start, naming what is wrong; a good one replaces the
    default grade by grade."""
    from server.config import Config
    monkeypatch.setenv("FIELDOPS_GRADE_CONSEQUENCES", value)
    with pytest.raises(RuntimeError, match=error):
        Config()
    monkeypatch.setenv("FIELDOPS_GRADE_CONSEQUENCES", '{"B": {"retraining_required": true, "bonus": "none"}}')
    assert Config().GRADE_CONSEQUENCES == {"A": {}, "B": {"retraining_required": True, "bonus": "none"}, "C": {}}
    monkeypatch.delenv("FIELDOPS_GRADE_CONSEQUENCES")
    assert Config().GRADE_CONSEQUENCES["C"] == {"retraining_required": True}


def test_a_course_s_answer_counts_the_couriers_it_keeps_from_a_shift(make, client):
    """couriers_blocked: active couriers without a valid pass of an active pre-job course, on creating and on
    activating it; the same couriers the training record says may not start a shift. A retired or periodic course
    blocks nobody; an off-the-road courier is not counted; a lapsed pass does not count."""
    headers = make.headers("quality")
    holder, failed, newcomer, lapsed, gone = (make.courier() for _ in range(5))
    assert client.post(f"/api/v1/dispatch/couriers/{gone['id']}/deactivate",
                       headers=make.headers("dispatcher")).status_code == 200
    road = course(make, "PJ-ROAD", validity=1, active=False)
    assert road["couriers_blocked"] == 0
    held = session(make, road["id"], _now() - timedelta(days=1))
    attend(make, held["id"], passed(holder), {"courier_id": failed["id"], "attended": True, "passed": False})
    attend(make, session(make, road["id"], _now() - timedelta(days=40))["id"], passed(lapsed))  # valid a month
    assert client.patch(f"{BASE}/courses/{road['id']}", json={"name": "Road safety"},
                        headers=headers).json["couriers_blocked"] == 0  # still retired
    activated = client.patch(f"{BASE}/courses/{road['id']}", json={"active": True}, headers=headers)
    assert activated.status_code == 200 and activated.json["couriers_blocked"] == 3
    blocked = {c["id"] for c in (holder, failed, newcomer, lapsed) if not client.get(
        f"/api/v1/dispatch/couriers/{c['id']}/training", headers=headers).json["may_start_shift"]}
    assert blocked == {failed["id"], newcomer["id"], lapsed["id"]}
    assert course(make, "PR-1", kind="periodic", validity=12)["couriers_blocked"] == 0
    # A second pre-job course, created active: every active courier lacks it.
    assert course(make, "PJ-FIRE")["couriers_blocked"] == 4
