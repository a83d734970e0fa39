"""Issue 21, "Appointments that cannot be rewritten": every agreed window decided on itself, every attempt kept.

Each test lives on a timeline: the server's clock (and the handheld twin's) is set by the test, hours in the past
of the real one, and moved forward as the day goes, so every fact is dated when it happened (after its task
existed, never after it reached the server). Facts go in through the handheld twin or the raw push path and the
HTTP API, never by writing rows.
"""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from schemas.vocab import WORK_CHECK_CODES
import server.clock
import sync.client
from server.extensions import db
from server.models import AuditEntry
from server.services import appointments
from sync.client import Handheld
from tests.sync.conftest import SHANGHAI, Device
from tests.sync.test_events import emitted
from tests.sync.transport import FlaskTransport

HERE = {"lat": 31.23, "lon": 121.47}  # the factory's stop
FAR = {"lat": 31.25, "lon": 121.47}  # 2.2 km north of it


class Clock:
    """The server's (and the twin's) now, set by the test; the real clock keeps running underneath."""

    def __init__(self, monkeypatch):
        """Install a shifted datetime where the server and the reference client read the time."""
        self.shifted = type("ShiftedDatetime", (datetime,), {"offset": timedelta(0), "now": classmethod(
            lambda cls, tz=None: datetime.now(tz) + cls.offset)})
        monkeypatch.setattr(server.clock, "datetime", self.shifted)
        monkeypatch.setattr(sync.client, "datetime", self.shifted)

    def now(self) -> datetime:
        """The shifted now, in UTC."""
        return datetime.now(timezone.utc) + self.shifted.offset

    def set(self, at: datetime) -> datetime:
        """Make it `at` (never ahead of the real clock); returns it."""
        assert at <= datetime.now(timezone.utc)
        self.shifted.offset = at - datetime.now(timezone.utc)
        return at

    def advance(self, **delta) -> datetime:
        """Let time pass."""
        return self.set(self.now() + timedelta(**delta))


@pytest.fixture
def clock(monkeypatch, midday) -> Clock:
    """A timeline starting ten hours ago (about 02:00 depot time: the day's windows fall on one depot day)."""
    timeline = Clock(monkeypatch)
    timeline.set(datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=10))
    return timeline


def _window(start: datetime, hours: float = 2) -> dict:
    """A window payload."""
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def _op(device: Device, clock: Clock, type_: str, task_id: str, payload: dict, *, at: datetime | None = None) -> dict:
    """An op made now by the timeline (or at `at`, a time already past)."""
    op = device.op(type_, task_id, payload)
    return dict(op, device_time=(at or clock.now()).astimezone(SHANGHAI).isoformat())


def _push(device: Device, *ops: dict, device_now: datetime | None = None) -> list[dict]:
    """Push the ops (with device_now, if given); their results."""
    if device_now is None:
        return device.push(list(ops))["results"]
    response = device.client.post("/api/v1/sync/push", headers=device.headers, json={
        "device_id": device.id, "ops": list(ops), "device_now": device_now.isoformat()})
    assert response.status_code == 200, response.json
    return response.json["results"]


def _task(client, make, task_id: str) -> dict:
    """The task as dispatch reads it."""
    response = client.get(f"/api/v1/dispatch/tasks/{task_id}", headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json


def _appointment(client, make, task_id: str) -> dict:
    """The task's appointment as the board shows it (every window and attempt)."""
    response = client.get("/api/v1/dispatch/appointments", headers=make.headers("dispatcher"),
                          query_string={"date": _task(client, make, task_id)["service_date"], "limit": 500})
    assert response.status_code == 200, response.json
    [item] = [i for i in response.json["items"] if i["task_id"] == task_id]
    return item["appointment"]


def _violations(client, make, courier: dict) -> list[dict]:
    """The courier's violations the appointment rules recorded, oldest first (these days are worked without a
    shift: the checks before work are tests/sync/test_checks_before_work.py's)."""
    response = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations",
                          headers=make.headers("quality"), query_string={"limit": 500})
    assert response.status_code == 200, response.json
    return [v for v in response.json["items"][::-1] if v["code"] not in WORK_CHECK_CODES]


def _review_list(client, make, role: str = "dispatcher"):
    """GET the review list."""
    return client.get("/api/v1/dispatch/appointments/review", headers=make.headers(role))


def _decide(client, make, task_id: str, body: dict, role: str = "dispatcher"):
    """POST a review decision."""
    return client.post(f"/api/v1/dispatch/tasks/{task_id}/appointment/review", json=body, headers=make.headers(role))


def _twin(app, client, make, courier, tmp_path, clock: Clock) -> Handheld:
    """The courier's handheld (the reference client), on the timeline's clock, enrolled and synced."""
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    handheld = Handheld(str(tmp_path / "hh.sqlite3"), FlaskTransport(app), sleep=lambda s: None,
                        clock=lambda: clock.now().astimezone(SHANGHAI))
    handheld.enroll(code, "PDA")
    handheld.sync()
    return handheld


@pytest.mark.parametrize("swept_first", [False, True])
def test_a_window_that_ended_unvisited_is_missed_before_a_new_one_replaces_it(app, client, make, courier, tmp_path,
                                                                              clock, swept_first):
    """The first evasion, from the handheld: the agreed window ends with nobody there; later the courier agrees by
    phone a window containing now and arrives in it. The old window is missed, with its violation, whether or not
    the sweep ran first; the new one is attempt 2, kept; the sweep finds nothing more; retries change nothing."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    handheld = _twin(app, client, make, courier, tmp_path, clock)
    handheld.queue("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"})
    handheld.sync()
    clock.set(start + timedelta(hours=3))  # the window ended an hour ago; nobody came
    if swept_first:
        assert appointments.sweep_missed()["missed"] == 1
    new = _window(clock.now() - timedelta(minutes=30))
    handheld.queue("appointment.confirm", task["id"], {"window": new, "via": "phone"})
    clock.advance(minutes=5)
    handheld.queue("stop.arrive", task["id"], HERE)
    handheld.sync()
    assert [r["status"] for r in handheld.results().values()] == ["applied"] * 3
    appointment = handheld.task(task["id"])["appointment"]  # what the handheld holds
    first, second = appointment["windows"]
    assert (first["status"], first["outcome"], first["attempt"]) == ("superseded", "missed", 1)
    assert first["decided_by"] == ("sweep" if swept_first else "replacement") and first["arrived_at"] is None
    assert (second["status"], second["outcome"], second["attempt"]) == ("agreed", "kept", 2)
    assert (appointment["status"], appointment["attempt"]) == ("kept", 2)
    [violation] = _violations(client, make, courier)
    assert violation["code"] == "late_without_notice" and violation["evidence"]["window_id"] == first["id"]
    assert violation["evidence"]["window"] == {"start": datetime.fromisoformat(task["window"]["start"]).astimezone(
        timezone.utc).isoformat(), "end": datetime.fromisoformat(task["window"]["end"]).astimezone(
        timezone.utc).isoformat()}
    # The sweep has nothing left; the same ops again are duplicates and decide nothing more.
    assert appointments.sweep_missed()["due"] == 0
    seqs = sorted(handheld.results())
    handheld.db.execute("UPDATE queue SET state = 'pending'")
    handheld.db.commit()
    handheld.sync()
    assert sorted(handheld.results()) == seqs
    assert len(_violations(client, make, courier)) == 1
    assert [w["outcome"] for w in _appointment(client, make, task["id"])["windows"]] == ["missed", "kept"]


def test_customer_absent_keeps_the_attempt_and_a_new_window_is_attempt_two(client, make, courier, device, clock):
    """The second evasion: customer_absent no longer erases. The window is decided (kept: the courier came in time),
    the task failed with its reason, the attempts listed; dispatch's new window opens attempt 2 on the same task."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=20))
    _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
    clock.advance(minutes=2)
    _push(device, _op(device, clock, "appointment.contact", task["id"], {"outcome": "no_answer"}))
    clock.advance(minutes=10)
    absent = _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 12})
    [result] = _push(device, absent)
    assert result["status"] == "applied"
    data = result["entity"]["data"]  # the handheld's copy
    assert (data["status"], data["failure_reason"]) == ("failed", "customer_absent")
    assert data["appointment"]["status"] == "kept" and data["appointment"]["exception"] == "customer_absent"
    [window] = data["appointment"]["windows"]
    assert (window["outcome"], window["failure_reason"], window["attempt"]) == ("kept", "customer_absent", 1)
    assert [(a["outcome"], a["attempt"]) for a in data["appointment"]["contact_attempts"]] == [("no_answer", 1)]
    # A retry is the same op; reporting again on the failed task is refused; the sweep leaves it alone.
    assert _push(device, absent)[0]["duplicate"] is True
    again = _push(device, _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 20}))[0]
    assert (again["status"], again["code"]) == ("rejected", "task_closed")
    clock.set(start + timedelta(hours=3))
    assert appointments.sweep_missed()["due"] == 0
    assert [e.data["exception"] for e in emitted("task.exception_raised")
            if e.data["exception"] not in WORK_CHECK_CODES] == ["customer_absent"]  # (and the arrival's, no shift)
    # Dispatch agrees a new window with the customer: attempt 2 of the same task, which is open again.
    later = _window(clock.now() + timedelta(hours=1))
    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm", json={"window": later},
                           headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["failure_reason"], response.json["id"]) == (
        "assigned", None, task["id"])
    appointment = _appointment(client, make, task["id"])
    assert [(w["attempt"], w["outcome"], w["failure_reason"]) for w in appointment["windows"]] == [
        (1, "kept", "customer_absent"), (2, None, None)]
    assert (appointment["status"], appointment["attempt"], appointment["exception"]) == ("confirmed", 2, None)
    history = [(e["kind"], e["data"] or {}) for e in _task(client, make, task["id"])["history"]]
    assert [(kind, data.get("attempt")) for kind, data in history if kind.startswith("appointment.")] == [
        ("appointment.confirmed", 1), ("appointment.contact", 1), ("appointment.customer_absent", 1),
        ("appointment.confirmed", 2)]
    assert history[-1][1]["reopened"] is True
    # The courier comes in the new window: attempt 2 is kept; attempt 1 stands as it was.
    clock.set(datetime.fromisoformat(later["start"]) + timedelta(minutes=15))
    [arrival] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
    windows = arrival["entity"]["data"]["appointment"]["windows"]
    assert [(w["attempt"], w["outcome"], w["failure_reason"]) for w in windows] == [
        (1, "kept", "customer_absent"), (2, "kept", None)]
    assert arrival["entity"]["data"]["status"] == "arrived" and _violations(client, make, courier) == []


def test_notice_counts_only_before_the_window_starts_less_the_lead(app, client, make, courier, device, clock):
    """"提前给顾客打电话或另约时间": a notice 40 minutes before the start excuses a late arrival; one after the start
    (before the end) does not; the lead (30 minutes by default) is FIELDOPS_NOTICE_LEAD_MINUTES."""
    start = clock.now() + timedelta(hours=2)
    early, after_start, short_lead = (make.task(courier=courier, window=_window(start)) for _ in range(3))
    for task in (early, after_start, short_lead):
        _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))

    def notice(task, at):
        clock.set(at)
        return _push(device, _op(device, clock, "appointment.late_notice", task["id"], {
            "eta": (start + timedelta(hours=3)).isoformat(), "reason": "van broke down"}))[0]

    assert notice(early, start - timedelta(minutes=40))["entity"]["data"]["appointment"]["notice"]["in_time"] is True
    app.config["NOTICE_LEAD_MINUTES"] = 0
    assert notice(short_lead, start - timedelta(minutes=5))["entity"]["data"]["appointment"]["notice"]["in_time"]
    app.config["NOTICE_LEAD_MINUTES"] = 30
    told_late = notice(after_start, start + timedelta(minutes=10))
    assert told_late["entity"]["data"]["appointment"]["notice"]["in_time"] is False
    clock.set(start + timedelta(hours=2, minutes=20))
    for task in (early, after_start, short_lead):
        [result] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
        window = result["entity"]["data"]["appointment"]["windows"][-1]
        assert window["outcome"] == "late", task
        assert window["notice_in_time"] is (task is not after_start)
    assert [v["task_id"] for v in _violations(client, make, courier)] == [after_start["id"]]


def test_an_arrival_far_from_the_stop_is_kept_but_is_no_arrival(client, make, courier, device, clock):
    """2 km away (beyond FIELDOPS_HANDOVER_MAX_DISTANCE_M, 200): the fact is in the history with its distance, but the
    window is not kept, the wait rule has no arrival, and the sweep finds the window missed; online too."""
    start = clock.now() + timedelta(hours=1)
    task, online = make.task(courier=courier, window=_window(start)), make.task(courier=courier, window=_window(start))
    for t in (task, online):
        _push(device, _op(device, clock, "appointment.confirm", t["id"], {"window": t["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=30))
    [far] = _push(device, _op(device, clock, "stop.arrive", task["id"], FAR))
    assert far["status"] == "applied"
    assert (far["entity"]["data"]["appointment"]["status"], far["entity"]["data"]["status"]) == ("confirmed",
                                                                                                "assigned")
    response = client.post(f"/api/v1/me/tasks/{online['id']}/arrive", json=FAR, headers=device.headers)
    assert response.status_code == 200 and response.json["appointment"]["status"] == "confirmed"
    [event] = [e for e in _task(client, make, task["id"])["history"] if e["kind"] == "arrived"]
    assert event["data"]["counted"] is False and 2000 < event["data"]["distance_m"] < 2400
    assert event["data"]["limit_m"] == 200
    clock.advance(minutes=1)
    _push(device, _op(device, clock, "appointment.contact", task["id"], {"outcome": "no_answer"}))
    clock.advance(minutes=15)
    absent = _push(device, _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 15}))[0]
    assert (absent["status"], absent["code"]) == ("rejected", "wait_too_short")
    clock.set(start + timedelta(hours=2, minutes=5))
    counts = appointments.sweep_missed()
    assert (counts["missed"], counts["violations"]) == (2, 2)
    # Reaching the stop after all, late: late, and the violation is not recorded again.
    clock.advance(minutes=10)
    [near] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
    assert near["entity"]["data"]["appointment"]["windows"][-1]["outcome"] == "late"
    assert [v["task_id"] for v in _violations(client, make, courier)].count(task["id"]) == 1


def test_an_arrival_at_a_stop_without_coordinates_goes_to_review(client, make, courier, device, clock):
    """No coordinates to measure against: the arrival counts (the wait rule has it) but decides nothing by itself;
    the window is under review, location_unknown, for dispatch."""
    start = clock.now() + timedelta(hours=1)
    spec = make.task_spec(window=_window(start))
    spec["recipient"] = {k: v for k, v in spec["recipient"].items() if k not in ("lat", "lon")}
    task = make.task(courier=courier, **spec)
    _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=10))
    [result] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE))
    window = result["entity"]["data"]["appointment"]["windows"][-1]
    assert (window["outcome"], window["review_reason"], window["provisional_outcome"]) == (
        "review", "location_unknown", "kept")
    [item] = _review_list(client, make).json["items"]
    assert (item["task_id"], item["id"]) == (task["id"], window["id"])
    clock.advance(minutes=2)
    _push(device, _op(device, clock, "appointment.contact", task["id"], {"outcome": "no_answer"}))
    clock.advance(minutes=10)
    absent = _push(device, _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 12}))[0]
    assert absent["status"] == "applied" and absent["entity"]["data"]["status"] == "failed"


def test_a_promised_window_that_passed_unconfirmed_is_not_attempted(client, make, courier, device, clock):
    """Never confirmed, never visited: the sweep decides the window not_attempted, an exception for dispatch (on the
    board and the event feed), no violation; a late arrival from an offline queue refines it to late, once."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    clock.set(start + timedelta(hours=2, minutes=1))
    counts = appointments.sweep_missed()
    assert (counts["due"], counts["not_attempted"], counts["violations"]) == (1, 1, 0)
    assert appointments.sweep_missed()["due"] == 0
    appointment = _appointment(client, make, task["id"])
    assert (appointment["status"], appointment["exception"]) == ("not_attempted", "not_attempted")
    assert [(w["status"], w["outcome"], w["decided_by"]) for w in appointment["windows"]] == [
        ("proposed", "not_attempted", "sweep")]
    [raised] = emitted("task.exception_raised")
    assert (raised.data["exception"], raised.data["task_id"]) == ("not_attempted", task["id"])
    board = client.get("/api/v1/dispatch/appointments", headers=make.headers("dispatcher"),
                       query_string={"status": "not_attempted"}).json["items"]
    assert [i["task_id"] for i in board] == [task["id"]] and _task(client, make, task["id"])["needs_review"]
    # The courier had been there after all, late, offline: pushed later, it is late (no violation: never agreed).
    arrival = _op(device, clock, "stop.arrive", task["id"], HERE, at=start + timedelta(hours=2, minutes=10))
    clock.advance(hours=1)
    [result] = _push(device, arrival)
    assert result["entity"]["data"]["appointment"]["windows"][0]["outcome"] == "late"
    assert _violations(client, make, courier) == []


def test_a_suspect_clock_arrival_goes_to_review_and_dispatch_decides_it(client, make, courier, device, clock):
    """An arrival on a clock the engine flags (a device_now of 1970) gives no credit: the window is under review,
    on dispatch's list; dispatch (and only dispatch) decides it, once, audited, with late_without_notice for late."""
    start = clock.now() + timedelta(hours=1)
    task, other = (make.task(courier=courier, window=_window(start)) for _ in range(2))
    for t in (task, other):
        _push(device, _op(device, clock, "appointment.confirm", t["id"], {"window": t["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=30))
    reset = datetime(1970, 1, 1, tzinfo=timezone.utc)
    [result] = _push(device, _op(device, clock, "stop.arrive", task["id"], HERE), device_now=reset)
    assert result["status"] == "applied"
    window = result["entity"]["data"]["appointment"]["windows"][-1]
    assert (window["outcome"], window["review_reason"]) == ("review", "clock_suspect")
    assert result["entity"]["data"]["appointment"]["status"] == "review"
    listed = _review_list(client, make)
    assert listed.status_code == 200
    [item] = listed.json["items"]
    assert (item["task_id"], item["id"], item["courier_id"], item["review_reason"]) == (
        task["id"], window["id"], courier["id"], "clock_suspect")
    for role in ("quality", "maintenance"):
        assert _review_list(client, make, role).status_code == 403
        assert _decide(client, make, task["id"], {"outcome": "kept", "note": "x"}, role).status_code == 403
    as_courier = client.get("/api/v1/dispatch/appointments/review", headers=device.headers)
    assert as_courier.status_code == 403
    bad = _decide(client, make, task["id"], {"outcome": "lost", "note": "x"})
    assert bad.status_code == 422 and "outcome" in bad.json["fields"]
    assert _decide(client, make, task["id"], {"outcome": "late"}).json["fields"].keys() == {"note"}
    unknown = _decide(client, make, "t-nope", {"outcome": "late", "note": "x"})
    assert (unknown.status_code, unknown.json["code"]) == (404, "task_not_found")
    elsewhere = _decide(client, make, other["id"], {"outcome": "late", "note": "x", "window_id": window["id"]})
    assert (elsewhere.status_code, elsewhere.json["code"]) == (404, "review_not_found")
    nothing = _decide(client, make, other["id"], {"outcome": "late", "note": "x"})
    assert (nothing.status_code, nothing.json["code"]) == (409, "nothing_to_review")
    bob = make.courier()
    bobs_device = Device(client, make.device(bob))
    assert client.get(f"/api/v1/me/tasks/{task['id']}", headers=bobs_device.headers).status_code == 404
    assert _violations(client, make, courier) == []
    decided = _decide(client, make, task["id"], {"outcome": "late", "note": "phone log: arrived 40 min late"})
    assert decided.status_code == 200, decided.json
    assert (decided.json["outcome"], decided.json["decided_by"], decided.json["review_note"]) == (
        "late", "dispatch", "phone log: arrived 40 min late")
    assert decided.json["review_reason"] == "clock_suspect"
    assert _review_list(client, make).json["items"] == []
    assert [v["code"] for v in _violations(client, make, courier)] == ["late_without_notice"]
    again = _decide(client, make, task["id"], {"outcome": "kept", "note": "second thoughts"})
    assert (again.status_code, again.json["code"]) == (409, "nothing_to_review")
    assert _appointment(client, make, task["id"])["status"] == "late"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "appointment.review", AuditEntry.entity_id == str(window["id"]))) == 1


def test_customer_absent_on_a_suspect_clock_is_recorded_and_goes_to_review(client, make, courier, device, clock):
    """The wait is not taken as long enough on a flagged clock: the attempt still fails (the fact stands) and the
    window goes to review; a wait the device's own times show too short is refused as ever."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    _push(device, _op(device, clock, "appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    clock.set(start + timedelta(minutes=15))
    arrival = clock.now()
    _push(device, _op(device, clock, "stop.arrive", task["id"], HERE),
          _op(device, clock, "appointment.contact", task["id"], {"outcome": "no_answer"}))
    reset = datetime(1970, 1, 1, tzinfo=timezone.utc)
    clock.advance(minutes=12)
    short = _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 12},
                at=arrival + timedelta(minutes=3))
    assert _push(device, short, device_now=reset)[0]["code"] == "wait_too_short"
    [result] = _push(device, _op(device, clock, "stop.customer_absent", task["id"], {"waited_minutes": 12}),
                     device_now=reset)
    assert result["status"] == "applied"
    data = result["entity"]["data"]
    assert (data["status"], data["failure_reason"]) == ("failed", "customer_absent")
    window = data["appointment"]["windows"][-1]
    assert (window["outcome"], window["review_reason"], window["provisional_outcome"], window["failure_reason"]) == (
        "review", "clock_suspect", "kept", "customer_absent")
    assert [i["task_id"] for i in _review_list(client, make).json["items"]] == [task["id"]]


def test_an_arrival_from_an_offline_queue_after_the_sweep_is_decided_once(client, make, courier, device, clock):
    """The sweep decided the window missed (and its violation) before the offline queue arrived. A late arrival
    refines it to late, with no second violation; an arrival inside the window would give credit the sweep did
    not, so dispatch reviews it (late_sync), the violation standing until then; retries are duplicates."""
    start = clock.now() + timedelta(hours=1)
    late, inside = (make.task(courier=courier, window=_window(start)) for _ in range(2))
    for t in (late, inside):
        _push(device, _op(device, clock, "appointment.confirm", t["id"], {"window": t["window"], "via": "phone"}))
    end = start + timedelta(hours=2)
    queued = [_op(device, clock, "stop.arrive", inside["id"], HERE, at=end - timedelta(minutes=30)),
              _op(device, clock, "stop.arrive", late["id"], HERE, at=end + timedelta(minutes=20))]
    clock.set(end + timedelta(minutes=5))
    assert appointments.sweep_missed()["violations"] == 2
    clock.set(end + timedelta(hours=3))  # the handheld comes back online
    results = _push(device, *queued)
    assert [r["status"] for r in results] == ["applied", "applied"]
    in_window = results[0]["entity"]["data"]["appointment"]["windows"][-1]
    assert (in_window["outcome"], in_window["review_reason"], in_window["provisional_outcome"]) == (
        "review", "late_sync", "kept")
    after = results[1]["entity"]["data"]["appointment"]["windows"][-1]
    assert (after["outcome"], after["decided_by"]) == ("late", "arrival")
    assert sorted(v["task_id"] for v in _violations(client, make, courier)) == sorted([late["id"], inside["id"]])
    assert all(r["duplicate"] for r in _push(device, *queued))
    assert appointments.sweep_missed()["due"] == 0
    assert len(_violations(client, make, courier)) == 2
    assert [i["task_id"] for i in _review_list(client, make).json["items"]] == [inside["id"]]


def test_replacing_a_window_decides_it_by_when_and_by_whom(client, make, courier, device, clock):
    """Another window agreed before the start less the lead: the old one is replaced (decides nothing, the same
    attempt). Agreed by the courier once the lead had passed: late, with late_without_notice. By dispatch (for the
    customer) before the end: replaced."""
    start = clock.now() + timedelta(hours=2)
    early, courier_late, dispatch_late = (make.task(courier=courier, window=_window(start)) for _ in range(3))
    for t in (early, courier_late, dispatch_late):
        _push(device, _op(device, clock, "appointment.confirm", t["id"], {"window": t["window"], "via": "phone"}))
    later = _window(start + timedelta(hours=4))
    clock.set(start - timedelta(minutes=45))
    [result] = _push(device, _op(device, clock, "appointment.confirm", early["id"], {"window": later, "via": "phone"}))
    windows = result["entity"]["data"]["appointment"]["windows"]
    assert [(w["outcome"], w["attempt"]) for w in windows] == [("replaced", 1), (None, 1)]
    clock.set(start + timedelta(minutes=20))
    [result] = _push(device, _op(device, clock, "appointment.reschedule", courier_late["id"], {
        "window": later, "reason": "running late", "customer_agreed": True, "via": "phone"}))
    windows = result["entity"]["data"]["appointment"]["windows"]
    assert [(w["outcome"], w["decided_by"], w["attempt"]) for w in windows] == [
        ("late", "replacement", 1), (None, None, 2)]
    response = client.post(f"/api/v1/dispatch/tasks/{dispatch_late['id']}/appointment/confirm",
                           json={"window": later}, headers=make.headers("dispatcher"))
    assert response.status_code == 200
    assert [w["outcome"] for w in _appointment(client, make, dispatch_late["id"])["windows"]] == ["replaced", None]
    assert [v["task_id"] for v in _violations(client, make, courier)] == [courier_late["id"]]


def test_deciding_windows_in_a_push_reads_nothing_per_task(app, make, courier, device, clock):
    """A batch that agrees (replacing a window), announces, arrives and phones on 3 tasks or on 12 reads the same
    number of times: the windows a decision needs come with the batch's locks (load_open_windows). (Writes are
    per row, as before.)"""
    from sqlalchemy import event
    start = clock.now() + timedelta(hours=1)
    counts = []
    for n in (3, 12):
        tasks = [make.task(courier=courier, window=_window(start)) for _ in range(n)]
        clock.set(start - timedelta(minutes=50))
        ops = [_op(device, clock, "appointment.confirm", t["id"], {"window": _window(start + timedelta(minutes=30)),
                                                                  "via": "phone"}) for t in tasks]
        ops += [_op(device, clock, "appointment.late_notice", t["id"], {
            "eta": (start + timedelta(hours=3)).isoformat(), "reason": "traffic"}) for t in tasks]
        clock.set(start + timedelta(minutes=40))
        ops += [_op(device, clock, "stop.arrive", t["id"], HERE) for t in tasks]
        ops += [_op(device, clock, "appointment.contact", t["id"], {"outcome": "address_unknown"}) for t in tasks]
        reads = [0]

        def count(_conn, _cursor, statement, *_args, reads=reads, **_kw):
            reads[0] += statement.lstrip().upper().startswith("SELECT")

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            results = _push(device, *ops)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert {r["status"] for r in results} == {"applied"}
        data = results[-1]["entity"]["data"]
        assert (data["status"], data["failure_reason"]) == ("failed", "address_unknown")
        assert [(w["outcome"], w["failure_reason"]) for w in data["appointment"]["windows"]] == [
            ("replaced", None), ("kept", "address_unknown")]
        counts.append(reads[0])
        clock.set(start + timedelta(hours=3))
        start = clock.now() + timedelta(hours=1)
    assert counts[0] == counts[1]
