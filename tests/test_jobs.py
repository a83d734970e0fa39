"""Jobs: schedules parsed at declaration, every run recorded (failures apart from the job's work), the CLI."""
import os
import socket
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select

from server import jobs
from server.auth import SYSTEM
from server.extensions import db
from server.models import Courier, JobRun

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("text,every,at", [
    ("every 5 s", timedelta(seconds=5), None),
    ("every 2 min", timedelta(minutes=2), None),
    ("every 1 h", timedelta(hours=1), None),
    ("daily 03:30", None, time(3, 30)),
    ("daily 00:00", None, time(0, 0)),
    ("daily 23:59", None, time(23, 59)),
])
def test_schedules_parse(text, every, at):
    """'every N s|min|h' and 'daily HH:MM' are read exactly."""
    schedule = jobs.parse_schedule(text)
    assert (schedule.every, schedule.at, schedule.text) == (every, at, text)


@pytest.mark.parametrize("text", [
    "daily", "every 5", "every 0 s", "every -1 min", "every 5 sec", "every five min", "Every 5 min",
    "daily 24:00", "daily 12:60", "daily 3:30", "daily 03:30 UTC", " every 5 min", "hourly", "", "every 5min",
])
def test_bad_schedules_fail_at_declaration(text):
    """A bad schedule cannot even be declared: the import fails, not the 3 a.m. run."""
    with pytest.raises(ValueError, match="daily HH:MM"):
        jobs.Job("x", text, lambda now: {}, "nothing")


def test_every_declared_job_has_a_parsed_schedule_and_a_unique_name():
    """The one list: names unique, each schedule parsed."""
    names = [job.name for job in jobs.JOBS]
    assert len(names) == len(set(names))
    assert {"missed-appointments", "grades", "sync-maintain", "op-results-archive", "attachments-gc"} <= set(names)
    assert all(job.parsed.text == job.schedule for job in jobs.JOBS)


def test_triggers_fire_in_depot_time():
    """A daily schedule fires at HH:MM in the depot's zone; an interval every N seconds."""
    daily = jobs.parse_schedule("daily 00:10").trigger(SHANGHAI)
    assert isinstance(daily, CronTrigger)
    now = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)  # 23:00 in Shanghai
    assert daily.get_next_fire_time(None, now) == datetime(2026, 11, 26, 0, 10, tzinfo=SHANGHAI)
    interval = jobs.parse_schedule("every 2 min").trigger(SHANGHAI)
    assert isinstance(interval, IntervalTrigger) and interval.interval == timedelta(minutes=2)


def test_last_due_is_the_latest_daily_time_passed():
    """What a newly elected leader catches up on: today's time if passed, else yesterday's."""
    schedule = jobs.parse_schedule("daily 00:10")
    before = datetime(2026, 11, 25, 16, 5, tzinfo=timezone.utc)  # 00:05 on the 26th, Shanghai
    after = datetime(2026, 11, 25, 16, 15, tzinfo=timezone.utc)  # 00:15
    assert schedule.last_due(before, SHANGHAI) == datetime(2026, 11, 25, 0, 10, tzinfo=SHANGHAI)
    assert schedule.last_due(after, SHANGHAI) == datetime(2026, 11, 26, 0, 10, tzinfo=SHANGHAI)
    assert jobs.parse_schedule("every 5 s").last_due(after, SHANGHAI) is None


def test_schedule_overrides():
    """FIELDOPS_JOB_SCHEDULES changes or switches off a schedule; a bad one names what is wrong."""
    result = jobs.schedules("missed-appointments=every 10 s; grades = off ;")
    assert result["missed-appointments"].every == timedelta(seconds=10)
    assert result["grades"] is None
    assert result["sync-maintain"].at == time(0, 10)
    with pytest.raises(KeyError, match="no job 'nope'"):
        jobs.schedules("nope=every 1 s")
    with pytest.raises(ValueError, match="daily HH:MM"):
        jobs.schedules("grades=sometimes")
    with pytest.raises(ValueError, match="NAME=SCHEDULE"):
        jobs.schedules("grades")


def _runs(name: str) -> list[JobRun]:
    db.session.rollback()
    return list(db.session.scalars(select(JobRun).where(JobRun.job == name).order_by(JobRun.id)))


def test_a_run_is_recorded_with_host_pid_times_and_counts(app, make):
    """An ok run: where, when, and what it counted."""
    make.courier()
    counts = jobs.run("grades")
    assert counts == {"couriers": 1, "changed": 0}
    [run] = _runs("grades")
    assert (run.outcome, run.counts, run.error) == ("ok", counts, None)
    assert (run.host, run.pid) == (socket.gethostname(), os.getpid())
    assert run.started_at <= run.finished_at


@pytest.fixture
def failing_job(monkeypatch):
    """A job (the test's own) that writes a courier, then fails."""
    def work(now):
        db.session.add(Courier(id="c-half-done", name="Half Done", phone="13800000000", employee_no="EHALF"))
        db.session.flush()
        raise RuntimeError("the upstream folder is not mounted")
    monkeypatch.setattr(jobs, "JOBS", [*jobs.JOBS, jobs.Job("test-fails", "every 1 min", work, "fails")])
    return "test-fails"


def test_a_failed_run_is_recorded_apart_from_its_rolled_back_work(app, failing_job):
    """The job's own work is undone; the failure with its error is committed on its own."""
    with pytest.raises(RuntimeError):
        jobs.run(failing_job)
    [run] = _runs(failing_job)
    assert run.outcome == "failed" and run.counts is None and run.finished_at is not None
    assert run.error.startswith("RuntimeError: the upstream folder is not mounted")
    assert "Traceback" in run.error and "work" in run.error
    assert db.session.scalar(select(func.count()).select_from(Courier)) == 0


def test_cli_jobs_run_and_list(app, make, failing_job):
    """`jobs run` prints the counts (or the failure, exit 1); `jobs list` shows each job's last run."""
    make.courier()
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.output.splitlines()}
    assert lines["grades"][1:3] == ["daily 01:00", "never ran"]
    ran = runner.invoke(args=["jobs", "run", "grades"])
    assert ran.exit_code == 0 and ran.output.strip() == "grades: couriers 1, changed 0"
    failed = runner.invoke(args=["jobs", "run", failing_job])
    assert failed.exit_code == 1
    assert "test-fails failed (recorded in its runs): RuntimeError: the upstream folder is not mounted" in failed.output
    unknown = runner.invoke(args=["jobs", "run", "nope"])
    assert unknown.exit_code == 1 and "no job 'nope'; known: missed-appointments" in unknown.output
    listed = runner.invoke(args=["jobs", "list"])
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.output.splitlines()}
    assert lines["grades"][2].startswith("ok ") and lines["grades"][2].endswith(
        f"on {socket.gethostname()} (couriers 1, changed 0)")
    assert lines[failing_job][2].startswith("failed ") and lines[failing_job][2].endswith("(-)")
    assert [r.outcome for r in _runs("grades")] == ["ok"]


def test_sync_maintain_command_is_the_job_and_is_recorded(app):
    """`fieldops sync-maintain` prints its three lines and leaves a run of the sync-maintain job."""
    from sync import docs

    docs.rebuild(db.session, app.extensions["fieldops_sync"])  # reference data kept between tests (the fee codes)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["sync-maintain"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "day-end tombstones: 0 tasks", "feed compaction: 0 changes older than 30 days, 0:00:00 removed",
        "handheld docs: 0 missing or behind, rewritten"]
    [run] = _runs("sync-maintain")
    assert run.outcome == "ok" and run.counts == {"tombstones": 0, "compacted": 0, "docs": 0}


def test_skipped_runs_are_recorded(app):
    """A turn missed because the previous run is still going is recorded as skipped."""
    jobs.record_skipped("grades", "the previous run was still going")
    [run] = _runs("grades")
    assert (run.outcome, run.error) == ("skipped", "the previous run was still going")
    with pytest.raises(KeyError):
        jobs.record_skipped("nope", "x")


def _fingerprint() -> dict[str, list]:
    """Every row of every table but the runs' own records, as text: what a job run may have changed."""
    db.session.expire_all()
    return {table.name: sorted(map(repr, db.session.execute(table.select()).all()))
            for table in db.metadata.sorted_tables if table.name not in ("job_runs", "scheduler_lease")}


# What the world below gives work to: a task finished 400 days ago, a manifest in the inbox, events for a
# subscription. (The sweep's own second run: tests/sync/test_appointment_dispatch.py.)
_JOBS_WITH_WORK_HERE = ("sync-maintain", "manifest-import", "retention", "outbox")


@pytest.mark.parametrize("name", [job.name for job in jobs.JOBS])
def test_every_job_run_twice_at_the_same_time_changes_nothing_the_second_time(app, make, tmp_path, name):
    """Each declared job, run twice for the same moment over a world with work for it, leaves every table as the
    first run left it (the issue's "every job's idempotence")."""
    from server.services import webhooks
    from tests.api.test_manifests import HEADER, csv_line
    from tests.sync.test_retention import finished_ago
    app.config["MANIFEST_INBOX"] = str(tmp_path / "inbox")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "orders.csv").write_text("\n".join([HEADER, csv_line("JOB-GOOD"), csv_line("JOB-BAD",
                                                                                                   kind="x")]) + "\n")
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 1  # loopback is forbidden: the one attempt fails, the delivery is dead
    webhooks.create(actor=SYSTEM, url="http://127.0.0.1:9/x", event_types=["*"])
    courier = make.courier()
    make.task(courier=courier)
    cancelled = make.task()
    assert make.client.post(f"/api/v1/dispatch/tasks/{cancelled['id']}/cancel", json={"reason": "customer left"},
                            headers=make.headers("dispatcher")).status_code == 200
    finished_ago(cancelled["id"], 400)
    now = datetime.now(timezone.utc) + timedelta(days=1)
    before = _fingerprint()
    jobs.run(name, now=now)
    first = _fingerprint()
    if name in _JOBS_WITH_WORK_HERE:  # else the test could pass by doing nothing
        assert first != before
    jobs.run(name, now=now)
    assert _fingerprint() == first
