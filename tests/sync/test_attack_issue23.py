"""Attacks on issue 23 from the handheld: an appeal dated before the courier could have seen its violation; a C
courier's grade override that ran out while the grade on record still says otherwise."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from server import jobs
from server.extensions import db
from server.models import GradeChange, ViolationAppeal
from tests.sync.conftest import SHANGHAI
from tests.api.test_training import attend, passed, session, train
from tests.sync.test_training_gate import _make_c, _shift_only, _start
from tests.sync.test_checklists import conduct_answers, submit
from tests.sync.test_appeals import QUALITY, _appeal, _failed_check, _mine, _results


def test_an_appeal_dated_before_its_violation_was_recorded_is_kept_and_flagged(client, make, courier, device,
                                                                               templates):
    """A pre-shift check made offline five hours ago is pushed now: its violation is recorded now. An appeal whose device time is three hours earlier (a clock the batch cannot
    catch: device_now agrees with it) could not have been made then, since the handheld learns of a violation only
    once the server has recorded it. It is applied (what happened in the field is kept) and flagged for review,
    so quality's suspect list shows it; an appeal dated after the violation stays unflagged."""
    now = datetime.now(timezone.utc)
    check = submit(device, templates["conduct.pre_shift"], conduct_answers(uniform={"value": False}))
    check["device_time"] = (now - timedelta(hours=5)).astimezone(SHANGHAI).isoformat()  # made offline at 5 h ago
    assert _results(device, [check], device_now=now.astimezone(SHANGHAI).isoformat()) == [("applied", None)]
    [violation] = _mine(device)  # recorded now, occurred five hours ago
    early = (now - timedelta(hours=3)).astimezone(SHANGHAI).isoformat()
    op = dict(_appeal(device, violation["id"]), device_time=early)
    assert _results(device, [op], device_now=now.astimezone(SHANGHAI).isoformat()) == [("applied", None)]
    appeal = db.session.get(ViolationAppeal, op["entity_id"])
    assert appeal.device_time < now - timedelta(hours=2)  # dated as the handheld said
    assert appeal.clock_suspect is True
    listed = client.get(QUALITY, query_string={"status": "appealed"}, headers=make.headers("quality")).json
    assert [(v["id"], v["appeal"]["clock_suspect"]) for v in listed["items"]] == [(violation["id"], True)]


def test_an_appeal_dated_after_its_violation_is_not_flagged(client, make, courier, device, templates):
    """The control: made a minute after the violation was recorded, pushed now, no flag."""
    [violation] = _failed_check(device, templates, "uniform")
    op = _appeal(device, violation["id"])
    assert _results(device, [op]) == [("applied", None)]
    assert db.session.get(ViolationAppeal, op["entity_id"]).clock_suspect is False


def _history_codes(client, make, courier) -> list[tuple]:
    """(from, to, first reason's code) of the courier's grade history, newest first."""
    rows = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade/history", headers=make.headers("quality"))
    return [(r["from_grade"], r["to_grade"], r["reasons"][0]["code"]) for r in rows.json["items"]]


def test_an_override_that_ran_out_does_not_keep_a_c_courier_off_the_retraining(app, make, client, courier, device,
                                                                              server_clock):
    """C by the rules (a major violation two hours ago); quality overrides to B for half an hour, 90 to 60 minutes
    ago, and nobody lifts it: it ran out an hour ago. The grades job has not run since (it runs at night), so the
    grade on record still says B; the shift gate must not: from the override's end the courier is C by the rules
    again, and a shift.start now is refused training_required (a short override must not dodge the retraining).
    Once a retraining session held since the override ended is passed, the shift starts."""
    app.config["GRADE_A_MIN"], app.config["GRADE_B_MIN"] = 99, 95
    now = datetime.now(timezone.utc)
    train(make, courier, "PR-1", kind="periodic", validity=12, held_at=now - timedelta(days=30))
    with server_clock.at(now - timedelta(hours=2)):
        _make_c(make, client, courier)
    with server_clock.at(now - timedelta(minutes=90)):
        body = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/grade/override",
                           json={"grade": "B", "reason": "a trial half hour",
                                 "until": (now - timedelta(minutes=60)).isoformat()}, headers=make.headers("quality"))
        assert body.status_code == 200 and body.json["recorded_grade"] == "B", body.json
    refused = _start(make, device, courier)
    assert [r["status"] for r in refused] == ["applied", "applied", "rejected"], refused
    assert refused[2]["code"] == "training_required" and "grade C requires retraining" in refused[2]["detail"]
    record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=make.headers("dispatcher")).json
    assert record["may_start_shift"] is False and record["grade"] == "C"
    refresher = client.get("/api/v1/quality/training/courses", headers=make.headers("quality")).json["items"][0]
    held = session(make, refresher["id"], now - timedelta(minutes=30))
    attend(make, held["id"], passed(courier))
    # The nightly job then keeps the rules' C (override_ended): the retraining done since the override ran out
    # still counts (the C it interrupted is the grade the retraining was for).
    assert jobs.run("grades") == {"couriers": 1, "changed": 1}
    assert _history_codes(client, make, courier)[:2] == [("B", "C", "override_ended"), ("C", "B", "override")]
    after_job = datetime.now(timezone.utc)
    assert db.session.scalar(select(func.max(GradeChange.computed_at))) <= after_job
    assert _shift_only(device, courier, after_job)["status"] == "applied"
