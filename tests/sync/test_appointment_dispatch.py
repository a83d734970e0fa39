"""Dispatch: confirming and rescheduling by phone, the day's board, violations, the missed-appointment sweep."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from schemas.vocab import WORK_CHECK_CODES
from server import jobs
from server.auth import customer
from server.errors import RuleViolation, ValidationFailed
from server.extensions import db
from server.models import Appointment, Task, Violation
from server.services import appointments
from tests.sync.conftest import SHANGHAI, at_once

HERE = {"lat": 31.23, "lon": 121.47}


def _window(start: datetime, hours: float = 2) -> dict:
    """A window body."""
    return {"start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()}


def _start(task: dict) -> datetime:
    """A task's window start."""
    return datetime.fromisoformat(task["window"]["start"])


def _end(task: dict) -> datetime:
    """A task's window end."""
    return datetime.fromisoformat(task["window"]["end"])


def _confirm(client, make, task: dict, window: dict | None = None, role: str = "dispatcher"):
    """POST the dispatch confirm route."""
    return client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm",
                       json={"window": window or task["window"]}, headers=make.headers(role))


def _appointment(task_id: str) -> Appointment:
    """The stored appointment, fresh."""
    db.session.expire_all()
    return db.session.scalars(select(Appointment).where(Appointment.task_id == task_id)).one()


def _violation_count() -> int:
    """How many violations the appointment rules recorded (these days are worked without a shift: the checks before
    work are tests/sync/test_checks_before_work.py's)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Violation).where(Violation.code.notin_(WORK_CHECK_CODES)))


def test_dispatch_confirms_by_phone_and_the_device_pulls_it(client, make, courier, device):
    """The dispatch route agrees the window via dispatch; the courier's next pull shows it."""
    task = make.task(courier=courier)
    _, cursor, _ = device.pull_all()
    later = _window(_start(task) + timedelta(hours=1))
    response = _confirm(client, make, task, later)
    assert response.status_code == 200, response.json
    assert response.json["window"] == later
    assert response.json["history"][-1]["kind"] == "appointment.confirmed"
    store, _, _ = device.pull_all(cursor)
    appointment = store[("task", task["id"])]["data"]["appointment"]
    assert appointment["status"] == "confirmed" and appointment["window"] == later
    assert [(w["status"], w["via"]) for w in appointment["windows"]] == [("declined", "dispatch"),
                                                                      ("agreed", "dispatch")]


def test_dispatch_reschedule_proposes_or_agrees(client, make, courier):
    """Without the customer's agreement a proposal; with it the current window."""
    task = make.task(courier=courier)
    url = f"/api/v1/dispatch/tasks/{task['id']}/appointment/reschedule"
    later = _window(_start(task) + timedelta(hours=5))
    proposed = client.post(url, json={"window": later, "reason": "depot closed", "customer_agreed": False},
                           headers=make.headers("dispatcher"))
    assert proposed.status_code == 200 and proposed.json["window"] == task["window"]
    assert _appointment(task["id"]).status == "unconfirmed"
    agreed = client.post(url, json={"window": later, "reason": "customer called", "customer_agreed": True},
                         headers=make.headers("dispatcher"))
    assert agreed.status_code == 200 and agreed.json["window"] == later
    appointment = _appointment(task["id"])
    assert appointment.status == "confirmed"
    assert [w.status for w in appointment.windows] == ["declined", "agreed"]


def test_dispatch_routes_refuse_bad_input_with_fields(client, make, courier):
    """End before start, a 20-hour window, a missing reason, an unknown task: problems naming the fields."""
    task = make.task(courier=courier)
    start = _start(task)
    backwards = _confirm(client, make, task, {"start": start.isoformat(),
                                              "end": (start - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 422 and "window.end" in backwards.json["fields"]
    too_long = _confirm(client, make, task, _window(start, 20))
    assert too_long.status_code == 422 and "window.end" in too_long.json["fields"]
    far = _confirm(client, make, task, _window(start + timedelta(days=60)))
    assert far.status_code == 422 and "window.start" in far.json["fields"]
    year_3000 = _confirm(client, make, task, {"start": "3000-01-01T00:00:00+00:00", "end": "3000-01-01T02:00:00+00:00"})
    assert year_3000.status_code == 422 and "window.start" in year_3000.json["fields"]
    no_reason = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/reschedule",
                            json={"window": task["window"], "customer_agreed": True},
                            headers=make.headers("dispatcher"))
    assert no_reason.status_code == 422 and "reason" in no_reason.json["fields"]
    missing = _confirm(client, make, dict(task, id="t-missing"))
    assert missing.status_code == 404 and missing.json["code"] == "task_not_found"
    assert _appointment(task["id"]).status == "unconfirmed"


def test_a_closed_task_cannot_be_confirmed(client, make, courier):
    """Confirming a cancelled task's appointment: 422 task_closed (the customer page obeys the same rule)."""
    task = make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "x"},
                headers=make.headers("dispatcher"))
    response = _confirm(client, make, task)
    assert response.status_code == 422 and response.json["code"] == "task_closed"
    with pytest.raises(RuleViolation) as closed:
        appointments.confirm(actor=customer("link-1"), task_id=task["id"], start=_start(task), end=_end(task),
                             via="customer_link")
    assert closed.value.code == "task_closed"


def test_a_customer_confirms_through_the_service(app, make, courier):
    """The customer page's entry point: agreed by the customer via customer_link; a bad window is a 422."""
    task = make.task(courier=courier)
    with pytest.raises(ValidationFailed):
        appointments.confirm(actor=customer("link-1"), task_id=task["id"], start=_end(task), end=_start(task),
                             via="customer_link")
    appointments.confirm(actor=customer("link-1"), task_id=task["id"], start=_start(task), end=_end(task),
                         via="customer_link")
    current = appointments.current(task_id=task["id"])
    assert current.status == "confirmed"
    assert [(w.status, w.via, w.agreed_by_kind, w.agreed_by_id) for w in current.windows] == [
        ("agreed", "customer_link", "customer", "link-1")]
    # Confirming the same window twice changes nothing more.
    version = db.session.get(Task, task["id"]).version
    appointments.confirm(actor=customer("link-1"), task_id=task["id"], start=_start(task), end=_end(task),
                         via="customer_link")
    db.session.expire_all()
    assert db.session.get(Task, task["id"]).version == version


def _board(client, make, **query) -> dict:
    """GET the board as dispatch."""
    response = client.get("/api/v1/dispatch/appointments", query_string=query, headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json


def test_board_shows_every_state(client, make, courier, device, midday, server_clock):
    """unconfirmed, confirmed, at_risk, kept, late and missed, each with its windows and attempts (on one depot day:
    `midday`)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with server_clock.at(now - timedelta(hours=6, minutes=30)):  # the morning's tasks, their windows over by now
        missed, late = [make.task(courier=courier, window=_window(now - timedelta(hours=5))) for _ in range(2)]
        _confirm(client, make, late)
    soon = make.task(courier=courier, window=_window(now - timedelta(minutes=100)))  # ends in 20 minutes
    unconfirmed, confirmed, kept = [make.task(courier=courier, window=_window(now + timedelta(minutes=60)))
                                    for _ in range(3)]
    for task in (soon, confirmed, kept):
        _confirm(client, make, task)
    device.push([dict(device.op("appointment.confirm", missed["id"], {"window": missed["window"], "via": "phone"}),
                      device_time=(now - timedelta(hours=6)).astimezone(SHANGHAI).isoformat()),
                 dict(device.op("stop.arrive", late["id"], HERE),
                      device_time=(_end(late) + timedelta(minutes=5)).astimezone(SHANGHAI).isoformat()),
                 device.op("appointment.contact", confirmed["id"], {"outcome": "reached"}),
                 device.op("stop.arrive", kept["id"], HERE)])  # in the order they happened, as a device numbers them
    assert appointments.sweep_missed()["missed"] == 1
    items = {i["task_id"]: i for i in _board(client, make)["items"]}
    assert {tid: item["state"] for tid, item in items.items()} == {
        soon["id"]: "at_risk", unconfirmed["id"]: "unconfirmed", confirmed["id"]: "confirmed",
        kept["id"]: "kept", late["id"]: "late", missed["id"]: "missed"}
    assert [a["outcome"] for a in items[confirmed["id"]]["appointment"]["contact_attempts"]] == ["reached"]
    assert items[soon["id"]]["appointment"]["windows"][-1]["status"] == "agreed"
    assert [i["task_id"] for i in _board(client, make, status="at_risk")["items"]] == [soon["id"]]
    assert [i["task_id"] for i in _board(client, make, status="confirmed")["items"]] == [confirmed["id"]]
    assert [i["task_id"] for i in _board(client, make, status="kept")["items"]] == [kept["id"]]


def test_board_filters_pages_and_refuses_bad_input(client, make, courier, midday):
    """A courier filter, cursor pages, and an unknown status or bad date as 422s."""
    other = make.courier()
    mine = sorted(make.task(courier=courier)["id"] for _ in range(3))
    make.task(courier=other)
    first = _board(client, make, courier_id=courier["id"], limit=2)
    second = _board(client, make, courier_id=courier["id"], limit=2, cursor=first["next_cursor"])
    assert [i["task_id"] for i in first["items"] + second["items"]] == mine and second["next_cursor"] is None
    assert [i["state"] for i in _board(client, make, status="confirmed")["items"]] == []
    for query in ({"status": "lost"}, {"date": "yesterday"}, {"limit": 10 ** 6}):
        response = client.get("/api/v1/dispatch/appointments", query_string=query, headers=make.headers("dispatcher"))
        assert response.status_code == 422 and set(query) <= set(response.json["fields"])


def test_at_risk_lead_is_configurable(app, client, make, courier, midday):
    """FIELDOPS_AT_RISK_LEAD_MINUTES: a window ending in 90 minutes is at risk with a 120-minute lead."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    task = make.task(courier=courier, window=_window(now - timedelta(minutes=30)))
    _confirm(client, make, task)
    assert _board(client, make)["items"][0]["state"] == "confirmed"
    app.config["AT_RISK_LEAD_MINUTES"] = 120
    assert _board(client, make)["items"][0]["state"] == "at_risk"


def test_sweep_marks_missed_once_and_records_the_violation(client, make, courier, device, server_clock):
    """A confirmed window over without arrival: missed and late_without_notice; a second sweep changes nothing."""
    now = server_clock.now().replace(microsecond=0)
    with server_clock.at(now - timedelta(hours=4)):  # a task of the morning, its window ended an hour ago
        task = make.task(courier=courier, window=_window(now - timedelta(hours=3)))
        _confirm(client, make, task)
    device.push([dict(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}),
                      device_time=(_end(task) - timedelta(minutes=30)).astimezone(SHANGHAI).isoformat())])
    _, cursor, _ = device.pull_all()
    after = _end(task) + timedelta(minutes=1)
    assert appointments.sweep_missed(now=_end(task) - timedelta(minutes=1))["missed"] == 0
    nothing = {"due": 0, "missed": 0, "late": 0, "violations": 0, "not_attempted": 0, "review": 0, "replaced": 0}
    assert appointments.sweep_missed(now=after) == dict(nothing, due=1, missed=1, violations=1)
    assert appointments.sweep_missed(now=after) == nothing
    assert _appointment(task["id"]).status == "missed"
    [violation] = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations",
                             headers=make.headers("dispatcher")).json["items"]
    assert violation["code"] == "late_without_notice" and violation["source"] == "auto"
    assert violation["evidence"]["contact_attempts"][0]["outcome"] == "no_answer"
    assert violation["occurred_at"] == _end(task).astimezone(timezone.utc).isoformat()
    store, _, _ = device.pull_all(cursor)
    assert store[("task", task["id"])]["data"]["appointment"]["status"] == "missed"
    # The courier turns up after all: late, and the violation is not recorded again.
    device.push([dict(device.op("stop.arrive", task["id"], HERE),
                      device_time=(after + timedelta(minutes=20)).astimezone(SHANGHAI).isoformat())])
    assert _appointment(task["id"]).status == "late" and _violation_count() == 1


def test_sweep_after_a_timely_notice_leaves_it_late_without_a_violation(client, make, courier, device):
    """Notice given before the end and no arrival: late, needing a new appointment, no violation."""
    task = make.task(courier=courier)
    _confirm(client, make, task)
    device.push([device.op("appointment.late_notice", task["id"], {
        "eta": (_end(task) + timedelta(hours=1)).isoformat(), "reason": "van broke down"})])
    counts = appointments.sweep_missed(now=_end(task) + timedelta(minutes=1))
    assert (counts["late"], counts["violations"]) == (1, 0)
    appointment = _appointment(task["id"])
    assert (appointment.status, appointment.needs_new_appointment) == ("late", True)
    assert _violation_count() == 0


def test_sweep_leaves_visited_appointments_alone_and_unconfirmed_ones_not_attempted(client, make, courier, device):
    """A visited window is decided already; a promised window never agreed and never visited is not_attempted (an
    exception for dispatch, no violation); a finished task's promised window is not swept."""
    unconfirmed, visited, delivered = make.task(courier=courier), make.task(courier=courier), make.task(courier=courier)
    client.post(f"/api/v1/dispatch/tasks/{delivered['id']}/cancel", json={"reason": "x"},
                headers=make.headers("dispatcher"))
    _confirm(client, make, visited)
    device.push([device.op("stop.arrive", visited["id"], HERE)])
    counts = appointments.sweep_missed(now=_end(visited) + timedelta(hours=1))
    assert (counts["due"], counts["not_attempted"], counts["violations"]) == (1, 1, 0)
    assert (_appointment(unconfirmed["id"]).status, _appointment(visited["id"]).status) == ("not_attempted", "kept")
    assert _appointment(delivered["id"]).status == "unconfirmed"
    assert _violation_count() == 0


def test_violation_key_is_enforced_by_the_database(app, make, courier):
    """Even bypassing the service's check, the unique key refuses a second automatic violation."""
    task = make.task(courier=courier)
    for _ in range(2):
        appointments.violations.record_auto(courier_id=courier["id"], code="late_without_notice", task_id=task["id"],
                                            occurred_at=datetime.now(timezone.utc), evidence={})
    db.session.commit()
    assert _violation_count() == 1
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        db.session.add(Violation(courier_id=courier["id"], code="late_without_notice", task_id=task["id"],
                                 source="auto", evidence={}, occurred_at=datetime.now(timezone.utc),
                                 dedupe_key=f"late_without_notice:{task['id']}"))
        db.session.flush()
    db.session.rollback()


def test_two_concurrent_sweeps_record_nothing_twice(app, client, make, courier, engine_name):
    """Two sweeps at once (two hosts): each appointment is missed once, each violation recorded once."""
    if engine_name != "postgresql":
        pytest.skip("SQLite serialises writers by itself; concurrency matters on PostgreSQL")
    tasks = [make.task(courier=courier) for _ in range(8)]
    for task in tasks:
        _confirm(client, make, task)
    after = max(_end(t) for t in tasks) + timedelta(minutes=1)
    barrier = threading.Barrier(2)

    def run():
        with app.app_context():
            barrier.wait(10)
            return jobs.run("missed-appointments", now=after)

    answers = at_once(run, 2, timeout=60)
    assert sum(a["missed"] for a in answers) == 8 and sum(a["violations"] for a in answers) == 8
    assert _violation_count() == 8
    db.session.expire_all()
    versions = {t.id: t.version for t in db.session.scalars(select(Task))}
    assert all(versions[t["id"]] == t["version"] + 2 for t in tasks)  # confirmed, then missed: once each


def test_violations_page_newest_first_and_unknown_courier(client, make, courier):
    """Cursor pages newest first; an unknown courier is a 404; a bad cursor a 422."""
    tasks = [make.task(courier=courier) for _ in range(3)]
    for task in tasks:
        appointments.violations.record_auto(courier_id=courier["id"], code="late_without_notice", task_id=task["id"],
                                            occurred_at=datetime.now(timezone.utc), evidence={})
    db.session.commit()
    url = f"/api/v1/dispatch/couriers/{courier['id']}/violations"
    first = client.get(url, query_string={"limit": 2}, headers=make.headers("quality")).json
    second = client.get(url, query_string={"limit": 2, "cursor": first["next_cursor"]},
                        headers=make.headers("quality")).json
    assert [v["task_id"] for v in first["items"] + second["items"]] == [t["id"] for t in reversed(tasks)]
    missing = client.get("/api/v1/dispatch/couriers/c-none/violations", headers=make.headers("quality"))
    assert missing.status_code == 404 and missing.json["code"] == "courier_not_found"
    bad = client.get(url, query_string={"cursor": 2 ** 40}, headers=make.headers("quality"))
    assert bad.status_code == 422 and "cursor" in bad.json["fields"]


def test_jobs_cli_lists_and_runs_the_sweep(app, client, make, courier):
    """`fieldops jobs list` names the sweep; `jobs run missed-appointments` runs it; an unknown job is one line."""
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and "missed-appointments\tevery 5 min" in listed.output
    ran = runner.invoke(args=["jobs", "run", "missed-appointments"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("missed-appointments: due 0, missed 0")
    unknown = runner.invoke(args=["jobs", "run", "nope"])
    assert unknown.exit_code != 0 and "no job 'nope'" in unknown.output


def test_demo_day_shows_every_appointment_state(app):
    """`fieldops seed-demo` (today: a past --day's windows are all over): unconfirmed, confirmed, kept, late, missed
    and not attempted appointments, a failed attempt, and violations."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "appointments of Wang Lei" in result.output
    statuses = set(db.session.scalars(select(Appointment.status)))
    assert statuses == {"unconfirmed", "confirmed", "kept", "late", "missed", "not_attempted"}
    assert db.session.scalar(select(func.count()).select_from(Task).where(
        Task.status == "failed", Task.failure_reason == "customer_absent")) == 1
    codes = sorted(v.code for v in db.session.scalars(select(Violation)) if v.status != "voided")
    # Wang Lei's two late arrivals; the rest put the next couriers at grades B and C (and a spot check finds the
    # third impolite); the fourth's appealed surcharge is voided.
    assert codes == (["complaint_upheld"] * 4 + ["inspection_item_failed"] + ["late_without_notice"] * 2
                     + ["private_surcharge"])
    assert db.session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.exception == "wrong_number")) == 1
