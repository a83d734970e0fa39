"""Appointment ops through the sync engine: every state change, notice, the wait rule, skew, offline queues."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from schemas.vocab import WORK_CHECK_CODES
from server.extensions import db
from server.models import Appointment, ContactAttempt, OpLog, Violation
from tests.sync.conftest import SHANGHAI, Device, morning_task

HERE = {"lat": 31.23, "lon": 121.47}


def _window(start: datetime, hours: float = 2) -> dict:
    """A window payload."""
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def _at(op: dict, when: datetime) -> dict:
    """The op, made at `when` by the device's clock."""
    return dict(op, device_time=when.astimezone(SHANGHAI).isoformat())


def _one(device: Device, op: dict) -> dict:
    """Push one op; its result."""
    return device.push([op])["results"][0]


def _task_window(task: dict) -> tuple[datetime, datetime]:
    """A task's window as datetimes."""
    return (datetime.fromisoformat(task["window"]["start"]), datetime.fromisoformat(task["window"]["end"]))


def _appointment(task_id: str) -> Appointment:
    """The stored appointment, fresh."""
    db.session.expire_all()
    return db.session.scalars(select(Appointment).where(Appointment.task_id == task_id)).one()


def _violations(task_id: str) -> list[Violation]:
    """Violations the appointment rules recorded for a task (these days are worked without a shift: the checks
    before work are tests/sync/test_checks_before_work.py's)."""
    db.session.expire_all()
    return list(db.session.scalars(select(Violation).where(Violation.task_id == task_id,
                                                           Violation.code.notin_(WORK_CHECK_CODES))))


def test_new_task_is_pulled_with_an_unconfirmed_appointment(device, make, courier):
    """The handheld's task carries its appointment: unconfirmed, proposing the task's window, no attempts."""
    task = make.task(courier=courier)
    store, _, _ = device.pull_all()
    appointment = store[("task", task["id"])]["data"]["appointment"]
    assert appointment["status"] == "unconfirmed" and appointment["needs_new_appointment"] is False
    assert appointment["window"] == task["window"]
    assert [(w["status"], w["via"]) for w in appointment["windows"]] == [("proposed", "dispatch")]
    assert appointment["contact_attempts"] == [] and appointment["notice"] is None


def test_confirm_in_the_field_agrees_the_window(device, make, courier):
    """appointment.confirm: confirmed, the proposed window agreed by the courier by phone, a new version."""
    task = make.task(courier=courier)
    result = _one(device, device.op("appointment.confirm", task["id"],
                                    {"window": task["window"], "via": "phone"}, base_version=task["version"]))
    assert result["status"] == "applied" and result["entity"]["version"] == task["version"] + 1
    appointment = result["entity"]["data"]["appointment"]
    assert appointment["status"] == "confirmed"
    [window] = appointment["windows"]
    assert (window["status"], window["via"], window["agreed_by_kind"]) == ("agreed", "phone", "courier")
    # Another window agreed in the field replaces it, and the task's own window follows.
    start = _task_window(task)[0] + timedelta(hours=3)
    result = _one(device, device.op("appointment.confirm", task["id"], {"window": _window(start), "via": "in_person"}))
    appointment = result["entity"]["data"]["appointment"]
    assert [w["status"] for w in appointment["windows"]] == ["superseded", "agreed"]
    assert result["entity"]["data"]["window"] == appointment["window"] == _window(start)


def test_reschedule_without_agreement_is_only_a_proposal(device, make, courier):
    """appointment.reschedule: without the customer's agreement the window stays; with it, it becomes current."""
    task = make.task(courier=courier)
    _one(device, device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    later = _task_window(task)[0] + timedelta(hours=4)
    proposal = _one(device, device.op("appointment.reschedule", task["id"], {
        "window": _window(later), "reason": "traffic", "customer_agreed": False}))
    appointment = proposal["entity"]["data"]["appointment"]
    assert appointment["status"] == "confirmed" and appointment["window"] == task["window"]
    assert [w["status"] for w in appointment["windows"]] == ["agreed", "proposed"]
    agreed = _one(device, device.op("appointment.reschedule", task["id"], {
        "window": _window(later), "reason": "customer ok", "customer_agreed": True}))
    appointment = agreed["entity"]["data"]["appointment"]
    assert appointment["window"] == _window(later) and appointment["status"] == "confirmed"
    assert [w["status"] for w in appointment["windows"]] == ["superseded", "agreed"]


def _windows_after(device, task, batches) -> list[tuple[str, str]]:
    """Push the batches; the task's windows as (status, start) in order."""
    for batch in batches:
        assert {r["status"] for r in device.push(batch)["results"]} == {"applied"}
    return [(w.status, w.start.isoformat()) for w in
            sorted(_appointment(task["id"]).windows, key=lambda w: w.id)]


def test_proposals_made_and_agreed_in_one_batch_settle_as_in_separate_ones(device, make, courier):
    """A proposal agreed later in the same push (not flushed yet) is the one agreed, the others declined.

    The windows an agreement changes are settled in SQL for stored ones and in
    memory for those the batch added, so one batch and four batches must agree.
    """
    outcomes = []
    for batched in (True, False):
        task = make.task(courier=courier)
        start, _ = _task_window(task)
        first, second = _window(start + timedelta(hours=3)), _window(start + timedelta(hours=5))
        ops = [device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
               device.op("appointment.reschedule", task["id"], {"window": first, "reason": "a", "customer_agreed": False}),
               device.op("appointment.reschedule", task["id"], {"window": second, "reason": "b", "customer_agreed": False}),
               device.op("appointment.confirm", task["id"], {"window": first, "via": "phone"})]
        windows = _windows_after(device, task, [ops] if batched else [[op] for op in ops])
        assert [status for status, _ in windows] == ["superseded", "agreed", "declined"]
        assert windows[1][1] == datetime.fromisoformat(first["start"]).astimezone(timezone.utc).isoformat()
        outcomes.append([status for status, _ in windows])
    assert outcomes[0] == outcomes[1]


def test_evidence_names_the_agreement_made_in_the_same_batch(device, make, courier, server_clock):
    """A late arrival in the batch that agreed a new window cites the agreeing op, not yet flushed."""
    task = morning_task(make, courier, server_clock)
    start, _ = _task_window(task)
    window = _window(start + timedelta(hours=1))
    confirm = _at(device.op("appointment.confirm", task["id"], {"window": window, "via": "phone"}),
                  start - timedelta(minutes=30))
    arrive = _at(device.op("stop.arrive", task["id"], HERE), datetime.fromisoformat(window["end"]) + timedelta(hours=1))
    device.push([confirm, arrive])
    [violation] = _violations(task["id"])
    assert confirm["op_id"] in violation.evidence["ops"]


def test_reschedule_on_a_task_dispatch_cancelled_is_recorded_not_applied(device, make, courier, client):
    """A wish dispatch overruled (cancelled since the device's version) is a conflict; nothing changes."""
    task = make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "customer cancelled"},
                headers=make.headers("dispatcher"))
    result = _one(device, device.op("appointment.reschedule", task["id"], {
        "window": _window(_task_window(task)[0] + timedelta(hours=1)), "reason": "x", "customer_agreed": True},
        base_version=task["version"]))
    assert (result["status"], result["code"]) == ("conflict", "cancelled_by_dispatch")
    assert len(_appointment(task["id"]).windows) == 1


def test_confirming_a_finished_task_is_rejected(device, make, courier, client):
    """A fact about a cancelled task's appointment cannot change it: task_closed."""
    task = make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "gone"},
                headers=make.headers("dispatcher"))
    result = _one(device, device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    assert result["status"] == "rejected" and result["code"] in ("task_closed", "not_assigned")
    assert _appointment(task["id"]).status == "unconfirmed"


def test_contact_attempts_are_kept_and_wrong_number_raises_an_exception(device, make, courier, client):
    """Every attempt is stored; a wrong number flags the task for dispatch with a visible reason."""
    task = make.task(courier=courier)
    first = _one(device, device.op("appointment.contact", task["id"], {"outcome": "no_answer"}))
    assert first["entity"]["data"]["appointment"]["exception"] is None
    result = _one(device, device.op("appointment.contact", task["id"],
                                    {"outcome": "wrong_number", "note": "a bakery answered"}))
    appointment = result["entity"]["data"]["appointment"]
    assert [a["outcome"] for a in appointment["contact_attempts"]] == ["no_answer", "wrong_number"]
    assert appointment["exception"] == "wrong_number"
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert detail["needs_review"] is True


def test_bad_payloads_are_rejected_with_their_fields(device, make, courier):
    """Window end before start, unknown outcome or via, huge numbers: invalid_payload naming the field."""
    task = make.task(courier=courier)
    start = _task_window(task)[0]
    cases = [
        ("appointment.confirm", {"window": {"start": start.isoformat(),
                                            "end": (start - timedelta(hours=1)).isoformat()}, "via": "phone"},
         "end"),
        ("appointment.confirm", {"window": task["window"], "via": "customer_link"}, "via"),
        ("appointment.contact", {"outcome": "shouted"}, "outcome"),
        ("stop.customer_absent", {"waited_minutes": 2 ** 62}, "waited_minutes"),
        ("appointment.late_notice", {"eta": "tomorrow", "reason": "x"}, "eta"),
        ("appointment.reschedule", {"window": task["window"], "reason": "x"}, "customer_agreed"),
    ]
    for op_type, payload, field in cases:
        result = _one(device, device.op(op_type, task["id"], payload))
        assert (result["status"], result["code"]) == ("rejected", "invalid_payload"), op_type
        assert field in result["detail"], (op_type, result["detail"])
    assert _appointment(task["id"]).status == "unconfirmed"


def test_window_beyond_the_allowed_range_is_rejected(device, make, courier, server_clock):
    """A 20-hour window, or one already over when the courier agreed it, breaks the window rule."""
    task, morning = make.task(courier=courier), morning_task(make, courier, server_clock)
    start = _task_window(task)[0]
    too_long = _one(device, device.op("appointment.confirm", task["id"], {"window": _window(start, 20), "via": "phone"}))
    over = _one(device, device.op("appointment.confirm", morning["id"], {"window": morning["window"], "via": "phone"}))
    for result in (too_long, over):
        assert (result["status"], result["code"]) == ("rejected", "validation_failed")
    assert _appointment(task["id"]).status == _appointment(morning["id"]).status == "unconfirmed"


def test_arrival_inside_the_window_keeps_the_appointment(device, make, courier, server_clock):
    """stop.arrive inside the agreed window: kept, no violation."""
    task = morning_task(make, courier, server_clock)
    start, _ = _task_window(task)
    _one(device, _at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                     start - timedelta(minutes=50)))
    result = _one(device, _at(device.op("stop.arrive", task["id"], HERE), start + timedelta(minutes=30)))
    assert result["entity"]["data"]["appointment"]["status"] == "kept"
    assert _violations(task["id"]) == []


def test_late_arrival_without_notice_is_a_violation_recorded_once(device, make, courier, client, server_clock):
    """Arriving after the window without timely notice: late, and late_without_notice with its evidence, once."""
    task = morning_task(make, courier, server_clock)
    start, end = _task_window(task)
    confirm = _at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                  start - timedelta(minutes=30))
    attempt = _at(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}), end + timedelta(minutes=10))
    arrive = _at(device.op("stop.arrive", task["id"], HERE), end + timedelta(minutes=40))
    device.push([confirm, attempt, arrive])
    assert _appointment(task["id"]).status == "late"
    [violation] = _violations(task["id"])
    assert (violation.code, violation.source, violation.courier_id) == ("late_without_notice", "auto", courier["id"])
    evidence = violation.evidence
    assert evidence["window"]["end"] == end.astimezone(timezone.utc).isoformat()
    assert [a["outcome"] for a in evidence["contact_attempts"]] == ["no_answer"]
    assert {confirm["op_id"], attempt["op_id"]} <= set(evidence["ops"]) and evidence["arrival_op"] == arrive["op_id"]
    assert evidence["notice"] is None and evidence["clock_suspect"] is False
    # The same batch again is a duplicate; a second arrival decides nothing more.
    again = device.push([confirm, attempt, arrive])
    assert all(r["duplicate"] for r in again["results"])
    _one(device, _at(device.op("stop.arrive", task["id"], HERE), end + timedelta(minutes=50)))
    assert len(_violations(task["id"])) == 1
    page = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations", headers=make.headers("quality")).json
    assert [(v["code"], v["task_id"]) for v in page["items"] if v["code"] not in WORK_CHECK_CODES] == [
        ("late_without_notice", task["id"])]


def test_notice_before_the_window_starts_excuses_the_lateness(device, make, courier, server_clock):
    """A late notice given the lead (30 minutes) before the window starts: the late arrival is late, but no
    violation."""
    task = morning_task(make, courier, server_clock)
    start, end = _task_window(task)
    device.push([_at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                     start - timedelta(minutes=50)),
                 _at(device.op("appointment.late_notice", task["id"], {
                     "eta": (end + timedelta(minutes=30)).isoformat(), "reason": "flat tyre"}),
                     start - timedelta(minutes=40)),
                 _at(device.op("stop.arrive", task["id"], HERE), end + timedelta(minutes=25))])
    appointment = _appointment(task["id"])
    assert (appointment.status, appointment.notice_in_time) == ("late", True)
    assert _violations(task["id"]) == []


def test_notice_after_the_window_ended_is_recorded_but_lateness_stands(device, make, courier, server_clock):
    """A late notice sent after the window's end: kept in history, and the late arrival is a violation."""
    task = morning_task(make, courier, server_clock)
    start, end = _task_window(task)
    body = device.push([
        _at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
            start - timedelta(minutes=30)),
        _at(device.op("appointment.late_notice", task["id"], {
            "eta": (end + timedelta(minutes=30)).isoformat(), "reason": "forgot"}), end + timedelta(minutes=5)),
        _at(device.op("stop.arrive", task["id"], HERE), end + timedelta(minutes=25))])
    notice = body["results"][1]["entity"]["data"]["appointment"]["notice"]
    assert notice["in_time"] is False and notice["reason"] == "forgot"
    [violation] = _violations(task["id"])
    assert violation.evidence["notice"]["in_time"] is False


def test_ops_arriving_hours_late_are_decided_by_device_time(device, make, courier, server_clock):
    """An offline queue pushed hours after the window: arrival inside it by device time is kept, and no op of it
    is suspect (its clock was right)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(hours=6)
    with server_clock.at(now - timedelta(hours=8)):  # the tasks of the morning
        task = make.task(courier=courier, window={"start": start.isoformat(),
                                                  "end": (start + timedelta(hours=2)).isoformat()})
        other = make.task(courier=courier, window={"start": start.isoformat(),
                                                   "end": (start + timedelta(hours=2)).isoformat()})
    device.push([  # in the order the courier did them (a device numbers its ops as they happen)
        _at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
            start - timedelta(hours=1)),
        _at(device.op("appointment.confirm", other["id"], {"window": other["window"], "via": "phone"}),
            start - timedelta(hours=1)),
        _at(device.op("appointment.late_notice", other["id"], {
            "eta": (start + timedelta(hours=3)).isoformat(), "reason": "traffic"}), start - timedelta(minutes=50)),
        _at(device.op("stop.arrive", task["id"], HERE), start + timedelta(minutes=90)),
        _at(device.op("stop.arrive", other["id"], HERE), start + timedelta(hours=3)),
    ])
    assert _appointment(task["id"]).status == "kept"
    assert (_appointment(other["id"]).status, _appointment(other["id"]).notice_in_time) == ("late", True)
    assert _violations(task["id"]) == _violations(other["id"]) == []
    rows = db.session.scalars(select(OpLog).where(OpLog.entity_id == task["id"]).order_by(OpLog.seq)).all()
    assert all(r.received_at - r.device_time > timedelta(hours=3) for r in rows)
    assert all(r.effective_time == r.device_time and not r.clock_suspect for r in rows)


def _arrive_and_wait(device, task, minutes: float, *, contact_after: bool = True) -> dict:
    """Arrive, maybe phone, and report the customer absent `minutes` after arriving; the last result."""
    start, _ = _task_window(task)
    arrival = start + timedelta(minutes=10)
    ops = [_at(device.op("stop.arrive", task["id"], HERE), arrival)]
    if contact_after:
        ops.append(_at(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}),
                       arrival + timedelta(minutes=2)))
    ops.append(_at(device.op("stop.customer_absent", task["id"], {"waited_minutes": round(minutes)}),
                   arrival + timedelta(minutes=minutes)))
    return device.push(ops)["results"][-1]


def test_customer_absent_needs_an_arrival_first(device, make, courier):
    """Reporting absence without having arrived is wait_too_short."""
    task = make.task(courier=courier)
    result = _one(device, device.op("stop.customer_absent", task["id"], {"waited_minutes": 30}))
    assert (result["status"], result["code"]) == ("rejected", "wait_too_short")


def test_customer_absent_before_the_minimum_wait_is_rejected(device, make, courier, server_clock):
    """Five minutes after arriving (of the default ten) is wait_too_short; nothing changes."""
    task = morning_task(make, courier, server_clock)
    result = _arrive_and_wait(device, task, 5)
    assert (result["status"], result["code"]) == ("rejected", "wait_too_short")
    assert _appointment(task["id"]).needs_new_appointment is False


def test_customer_absent_without_a_contact_attempt_is_rejected(device, make, courier, server_clock):
    """A long wait without phoning the customer after arriving is still wait_too_short."""
    task = morning_task(make, courier, server_clock)
    result = _arrive_and_wait(device, task, 15, contact_after=False)
    assert (result["status"], result["code"]) == ("rejected", "wait_too_short")


def test_customer_absent_after_waiting_and_phoning_fails_the_attempt(midday, device, make, courier, client, server_clock):
    """Waited and phoned: the window keeps its decision (kept: the arrival was in it) and why the attempt failed;
    the task is failed with the reason, needing a new appointment, flagged for dispatch. Nothing is unconfirmed.
    At midday in the depot (midday): a task failed on an earlier depot day leaves the handheld (deleted)."""
    task = morning_task(make, courier, server_clock)
    result = _arrive_and_wait(device, task, 12)
    assert result["status"] == "applied"
    data = result["entity"]["data"]
    appointment = data["appointment"]
    assert (appointment["status"], appointment["needs_new_appointment"], appointment["exception"]) == (
        "kept", True, "customer_absent")
    [window] = appointment["windows"]
    assert (window["outcome"], window["failure_reason"], window["attempt"]) == ("kept", "customer_absent", 1)
    assert (data["status"], data["failure_reason"]) == ("failed", "customer_absent")
    detail = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=make.headers("dispatcher")).json
    assert detail["needs_review"] is True and detail["failure_reason"] == "customer_absent"
    assert "appointment.customer_absent" in [e["kind"] for e in detail["history"]]


def test_minimum_wait_is_configurable(app, device, make, courier, server_clock):
    """FIELDOPS_MIN_WAIT_MINUTES: with 3 minutes, a 5-minute wait is enough."""
    app.config["MIN_WAIT_MINUTES"] = 3
    task = morning_task(make, courier, server_clock)
    assert _arrive_and_wait(device, task, 5)["status"] == "applied"


def _push_with_clock(client, device: Device, ops: list[dict], skew: timedelta) -> dict:
    """Push with device_now = the server's time plus skew."""
    response = client.post("/api/v1/sync/push", headers=device.headers, json={
        "device_id": device.id, "ops": ops, "device_now": (datetime.now(timezone.utc) + skew).isoformat()})
    assert response.status_code == 200, response.json
    return response.json


def test_a_skewed_clock_is_flagged_and_its_decisions_marked(client, device, make, courier, server_clock):
    """device_now 20 minutes ahead: skew and clock_suspect on the reply, each op-log row, the decision's evidence;
    each op dated by the device's clock less the skew."""
    task = morning_task(make, courier, server_clock)
    start, end = _task_window(task)
    fast = timedelta(minutes=20)  # what the device's clock reads beyond the true time
    ops = [_at(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
               start - timedelta(minutes=30) + fast),
           _at(device.op("stop.arrive", task["id"], HERE), end + timedelta(minutes=30) + fast)]
    body = _push_with_clock(client, device, ops, fast)
    assert body["clock_suspect"] is True and 1190 <= body["clock_skew_s"] <= 1210
    rows = db.session.scalars(select(OpLog).order_by(OpLog.seq)).all()
    assert [r.clock_suspect for r in rows] == [True, True] and all(1190 <= r.clock_skew_s <= 1210 for r in rows)
    assert all(abs(r.device_time - fast - r.effective_time) <= timedelta(seconds=10) for r in rows)
    # No credit by time on a flagged clock: the late arrival is not decided, it goes to dispatch's review (and no
    # violation is recorded until dispatch decides).
    appointment = body["results"][1]["entity"]["data"]["appointment"]
    assert appointment["status"] == "review" and appointment["clock_suspect"] is True
    window = appointment["windows"][-1]
    assert (window["outcome"], window["review_reason"], window["provisional_outcome"]) == (
        "review", "clock_suspect", "late")
    assert _violations(task["id"]) == []
    ops_page = client.get("/api/v1/dispatch/ops", headers=make.headers("dispatcher")).json["items"]
    assert {o["clock_suspect"] for o in ops_page} == {True}


def test_a_clock_within_tolerance_is_not_flagged(client, device, make, courier):
    """Two minutes off (of the default five) is measured but not flagged; without device_now nothing is measured."""
    task = make.task(courier=courier)
    body = _push_with_clock(client, device, [device.op("appointment.contact", task["id"], {"outcome": "reached"})],
                            timedelta(minutes=-2))
    assert body["clock_suspect"] is False and -125 <= body["clock_skew_s"] <= -115
    device.sends_device_now = False
    plain = device.push([device.op("appointment.contact", task["id"], {"outcome": "reached"})])
    assert "clock_skew_s" not in plain
    rows = db.session.scalars(select(OpLog).order_by(OpLog.seq)).all()
    assert [(r.clock_suspect, r.clock_skew_s is None) for r in rows] == [(False, False), (False, True)]
    assert _appointment(task["id"]).clock_suspect is False


def test_a_courier_cannot_touch_another_couriers_appointment(client, make, courier, device):
    """Ops on another courier's task are not_assigned; their task (and appointment) is a 404 online."""
    bob = make.courier()
    bobs_task = make.task(courier=bob)
    result = _one(device, device.op("appointment.confirm", bobs_task["id"],
                                    {"window": bobs_task["window"], "via": "phone"}))
    assert (result["status"], result["code"]) == ("rejected", "not_assigned")
    assert _appointment(bobs_task["id"]).status == "unconfirmed"
    assert client.get(f"/api/v1/me/tasks/{bobs_task['id']}", headers=device.headers).status_code == 404
    store, _, _ = device.pull_all()
    assert ("task", bobs_task["id"]) not in store


def test_replayed_contact_op_is_a_duplicate(device, make, courier):
    """The same contact op pushed twice is stored once."""
    task = make.task(courier=courier)
    op = device.op("appointment.contact", task["id"], {"outcome": "reached"})
    device.push([op])
    assert device.push([op])["results"][0]["duplicate"] is True
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ContactAttempt)) == 1


def test_online_arrival_decides_the_appointment_too(client, device, make, courier):
    """The online arrive route runs the same rule as the op."""
    task = make.task(courier=courier)
    _one(device, device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}))
    response = client.post(f"/api/v1/me/tasks/{task['id']}/arrive", json=HERE, headers=device.headers)
    assert response.status_code == 200
    assert response.json["appointment"]["status"] == "kept"


def test_a_handheld_pull_reads_appointments_without_a_query_per_task(app, device, make, courier):
    """Dumping many tasks costs the same number of queries as dumping a few."""
    from sqlalchemy import event
    for _ in range(3):
        make.task(courier=courier)
    counts = []

    def count(*_args, **_kw):
        counts[-1] += 1

    for extra in (0, 12):
        for _ in range(extra):
            make.task(courier=courier)
        db.session.execute(db.text("DELETE FROM sync_docs"))
        db.session.commit()
        counts.append(0)
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            device.pull_all()
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert counts[0] == counts[1]


def test_device_now_must_be_a_time(client, device):
    """device_now that is not a time with an offset is a 422 naming it."""
    for bad in ("soon", "2026-11-24T10:00:00", 12):
        response = client.post("/api/v1/sync/push", headers=device.headers,
                               json={"device_id": device.id, "ops": [], "device_now": bad})
        assert response.status_code == 422 and "device_now" in response.json["fields"], bad


def test_handheld_holds_the_newest_history_dispatch_all_of_it(client, make, courier, device, midday):
    """12 contact attempts: the handheld's task shows the newest 10 (oldest first), the board all 12."""
    task = make.task(courier=courier)
    device.push([device.op("appointment.contact", task["id"], {"outcome": "no_answer", "note": f"call {i}"})
                 for i in range(12)])
    store, _, _ = device.pull_all()
    attempts = store[("task", task["id"])]["data"]["appointment"]["contact_attempts"]
    assert [a["note"] for a in attempts] == [f"call {i}" for i in range(2, 12)]
    board = client.get("/api/v1/dispatch/appointments", headers=make.headers("dispatcher")).json["items"]
    assert len(board[0]["appointment"]["contact_attempts"]) == 12
