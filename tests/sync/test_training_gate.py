"""The shift gate (training_required): checked before every other shift rule, judged at the op's effective time,
told to the handheld; a C grade blocks shifts until a retraining session is passed."""
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server.extensions import db
from server.models import Vehicle
from tests.api.test_training import attend, course, passed, session, train
from tests.sync.conftest import SHANGHAI, day_start_ops
from tests.test_cli_handheld import _cli, _code


def _templates(make) -> dict:
    """The checklist templates by kind (defaults seeded)."""
    from server.services import checklists
    checklists.seed_defaults()
    items = make.client.get("/api/v1/dispatch/checklist-templates", headers=make.headers("quality")).json["items"]
    return {t["kind"]: t for t in items}


def _van(courier) -> str:
    """The courier's van."""
    return db.session.scalar(select(Vehicle.id).where(Vehicle.courier_id == courier["id"]))


def _start(make, device, courier, at: datetime | None = None) -> list[dict]:
    """Push the day's start (checks and shift.start at `at`); the results."""
    return device.push(day_start_ops(device, _templates(make), _van(courier), at=at))["results"]


def _shift_only(device, courier, at: datetime) -> dict:
    """Push shift.start alone at device time `at`; its result."""
    db.session.expire_all()
    op = dict(device.op("shift.start", _van(courier), {"odometer": 1000},
                        base_version=db.session.get(Vehicle, _van(courier)).version),
              device_time=at.astimezone(SHANGHAI).isoformat())
    return device.push([op])["results"][0]


def test_without_any_pre_job_course_a_fresh_install_starts_shifts(make, courier, device):
    """No active pre-job course (a fresh install, or every one retired): nothing is required."""
    assert [r["status"] for r in _start(make, device, courier)] == ["applied"] * 3


def test_an_untrained_courier_is_told_exactly_what_is_missing_before_any_other_rule(make, client, courier, device):
    """Once a pre-job course exists: an untrained courier on an out-of-service van, without the day's checks, gets
    training_required naming every course missing; trained, the van's own rule speaks; a retired course stops
    counting."""
    course(make)
    road = course(make, "PJ-ROAD", "pre_job", 24)
    van = _van(courier)
    assert client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"status": "out_of_service"},
                        headers=make.headers("dispatcher")).status_code == 200
    result = _shift_only(device, courier, datetime.now(timezone.utc))
    assert (result["status"], result["code"]) == ("rejected", "training_required"), result
    assert "PJ-ROAD Course PJ-ROAD" in result["detail"] and "PJ-SAFETY Course PJ-SAFETY" in result["detail"]
    assert result["fields"] == {"pre_job": ["PJ-ROAD", "PJ-SAFETY"]}
    train(make, courier)
    result = _shift_only(device, courier, datetime.now(timezone.utc))
    assert result["fields"] == {"pre_job": ["PJ-ROAD"]}
    assert client.patch(f"/api/v1/quality/training/courses/{road['id']}", json={"active": False},
                        headers=make.headers("quality")).status_code == 200
    result = _shift_only(device, courier, datetime.now(timezone.utc))
    assert result["code"] == "vehicle_out_of_service", result
    assert client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"status": "in_service"},
                        headers=make.headers("dispatcher")).status_code == 200
    assert _shift_only(device, courier, datetime.now(timezone.utc))["code"] == "checklist_required"
    assert [r["status"] for r in _start(make, device, courier)] == ["applied"] * 3
    assert _shift_only(device, courier, datetime.now(timezone.utc))["code"] == "shift_already_started"


def test_a_shift_start_pushed_hours_late_is_judged_by_the_training_held_then(midday, make, courier, device):
    """Trained two hours ago: a shift.start made offline five hours ago is refused, one made an hour ago is applied.
    An expired pass does not start a shift; a pass valid when the shift started offline does. At midday in the depot:
    near midnight the checks made five hours ago belong to the day before and do not open today's shift."""
    now = datetime.now(timezone.utc)
    train(make, courier, held_at=now - timedelta(hours=2))
    early = _start(make, device, courier, at=now - timedelta(hours=5))
    assert [r["status"] for r in early] == ["applied", "applied", "rejected"] and early[2]["code"] == \
        "training_required" and not early[2].get("clock_suspect")
    assert early[2]["fields"] == {"pre_job": ["PJ-SAFETY"]}
    later = _shift_only(device, courier, now - timedelta(hours=1))
    assert later["status"] == "applied", later


def test_a_lapsed_pre_job_pass_blocks_and_the_record_says_expired(make, client, courier, device):
    """A pre-job course whose pass is valid a month: passed 40 days ago it has lapsed; the refusal says expired and
    the courier's record shows it due."""
    course(make, "PJ-SAFETY", "pre_job", 1)
    train(make, courier, held_at=datetime.now(timezone.utc) - timedelta(days=40))
    result = _start(make, device, courier)[2]
    assert result["code"] == "training_required" and "(expired)" in result["detail"]
    record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=make.headers("dispatcher"))
    assert [(d["course_code"], d["reason"]) for d in record.json["due"]] == [("PJ-SAFETY", "expired")]


def test_a_wrong_clock_is_judged_at_its_effective_time(make, client, courier, device):
    """A handheld whose clock (device_now too) runs a week behind: its ops are corrected by the measured skew and
    flagged; the shift is judged at the corrected time, after today's training, not a week ago before it."""
    now = datetime.now(timezone.utc)
    train(make, courier, held_at=now - timedelta(hours=2))
    behind = now - timedelta(days=7)
    ops = day_start_ops(device, _templates(make), _van(courier), at=behind)
    response = client.post("/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": ops,
                                                                 "device_now": behind.isoformat()}),
                           content_type="application/json", headers=device.headers)
    results = response.json["results"]
    assert [r["status"] for r in results] == ["applied"] * 3, results
    assert all(r.get("clock_suspect") for r in results)


def _make_c(make, client, courier) -> None:
    """An upheld complaint about the courier (a major violation) and a recompute: C under a strict B threshold."""
    headers = make.headers("quality")
    complaint = client.post("/api/v1/dispatch/complaints", json={
        "courier_id": courier["id"], "channel": "phone", "category": "impolite", "text": "Rude at the door."},
        headers=headers).json
    assert client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/respond", json={"text": "Called back."},
                       headers=headers).status_code == 200
    assert client.post(f"/api/v1/dispatch/complaints/{complaint['id']}/resolve",
                       json={"outcome": "upheld", "note": "Confirmed."}, headers=headers).status_code == 200
    graded = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/grade/recompute", headers=headers)
    assert graded.status_code == 200 and graded.json["recorded_grade"] == "C", graded.json


def test_a_c_grade_blocks_shifts_until_a_retraining_session_held_since_is_passed(app, make, client, courier, device,
                                                                                  server_clock):
    """C two hours ago: a periodic pass from before does not count; a shift.start is refused training_required naming
    the retraining; a session passed an hour ago lets a shift start now, not one made offline before it."""
    app.config["GRADE_A_MIN"], app.config["GRADE_B_MIN"] = 99, 95  # one major violation (8 points) makes a C
    now = datetime.now(timezone.utc)
    train(make, courier, "PR-1", kind="periodic", validity=12, held_at=now - timedelta(days=30))
    with server_clock.at(now - timedelta(hours=2)):
        _make_c(make, client, courier)
    refused = _start(make, device, courier, at=now - timedelta(minutes=90))
    assert [r["status"] for r in refused] == ["applied", "applied", "rejected"]
    assert refused[2]["code"] == "training_required" and "grade C requires retraining" in refused[2]["detail"]
    assert "PR-1" in refused[2]["detail"] and refused[2]["fields"] == {"retraining": ["PR-1"]}
    became = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/grade/history",
                        headers=make.headers("dispatcher")).json["items"][0]["computed_at"]
    depot = datetime.fromisoformat(became).astimezone(ZoneInfo(app.config["TIMEZONE"]))
    assert f"since {depot:%Y-%m-%d %H:%M} (depot time)" in refused[2]["detail"], refused[2]["detail"]
    record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=make.headers("dispatcher")).json
    assert record["may_start_shift"] is False and [d["reason"] for d in record["due"]] == ["retraining"]
    refresher = client.get("/api/v1/quality/training/courses", headers=make.headers("quality")).json["items"][0]
    held = session(make, refresher["id"], now - timedelta(hours=1))
    attend(make, held["id"], {"courier_id": courier["id"], "attended": True, "passed": False, "score": 30})
    record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=make.headers("dispatcher")).json
    assert record["may_start_shift"] is False  # a failed session is no retraining
    assert _shift_only(device, courier, now - timedelta(minutes=80))["code"] == "training_required"
    attend(make, held["id"], passed(courier))  # the result corrected: passed
    # Made offline ten minutes before the session, pushed now: judged then, so still refused.
    assert _shift_only(device, courier, now - timedelta(minutes=70))["code"] == "training_required"
    assert _shift_only(device, courier, now - timedelta(minutes=30))["status"] == "applied"
    record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=make.headers("dispatcher")).json
    assert record["may_start_shift"] is True and record["grade"] == "C"


def test_a_configured_retraining_course_is_the_only_one_that_counts(app, make, client, courier, device, server_clock):
    """GRADE_CONSEQUENCES names the course: another periodic pass after the grade does not lift the block."""
    app.config["GRADE_A_MIN"], app.config["GRADE_B_MIN"] = 99, 95
    app.config["GRADE_CONSEQUENCES"] = {"A": {}, "B": {}, "C": {"retraining_required": True,
                                                               "retraining_course": "RT-C"}}
    now = datetime.now(timezone.utc)
    with server_clock.at(now - timedelta(hours=2)):
        _make_c(make, client, courier)
    train(make, courier, "PR-1", kind="periodic", validity=12, held_at=now - timedelta(hours=1))
    result = _start(make, device, courier)[2]
    assert result["fields"] == {"retraining": ["RT-C"]} and "RT-C (no such course)" in result["detail"]
    train(make, courier, "RT-C", kind="periodic", validity=6, held_at=now - timedelta(minutes=30))
    assert _shift_only(device, courier, now)["status"] == "applied"


def test_the_reference_handheld_shows_why_its_shift_was_refused(app, make, tmp_path, capsys):
    """The command-line handheld's sync summary names the refused shift.start's code and the courses missing."""
    courier = make.courier()
    course(make)
    van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                      headers=make.headers("dispatcher"))
    _templates(make)
    store = tmp_path / "hh.sqlite3"
    assert _cli(app, store, "enroll", _code(make, courier)) == 0
    assert _cli(app, store, "sync") == 0
    for args in (("check", "conduct.pre_shift", "31.23", "121.47"),
                 ("check", "vehicle.pre_trip", "31.23", "121.47", "--odometer", "1000"), ("shift", "start", "1000")):
        assert _cli(app, store, *args) == 0
    capsys.readouterr()
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected_codes"] == {"training_required": 1}
    [refused] = summary["rejected_ops"]
    assert "pre-job training not passed" in refused["detail"] and "PJ-SAFETY" in refused["detail"]
