"""The scheduler's lease, and two real `fieldops scheduler` processes on one database: one leads, then the other."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server import jobs
from server.clock import utcnow
from server.database import mark_read_only, reset_read_only
from server.extensions import db
from server.models import JobRun, SchedulerLease, Task, TaskEvent
from server.scheduler import current_holder, is_leader, release, take_or_renew

TTL = timedelta(seconds=30)


def test_lease_taken_renewed_expired_and_released(app):
    """One holder at a time; renewable by its holder; free to take once expired or released."""
    now = utcnow()
    assert take_or_renew(holder="a", ttl=TTL, now=now)
    assert not take_or_renew(holder="b", ttl=TTL, now=now + timedelta(seconds=29))
    assert take_or_renew(holder="a", ttl=TTL, now=now + timedelta(seconds=20))  # renewed: until now + 50 s
    assert not take_or_renew(holder="b", ttl=TTL, now=now + timedelta(seconds=45))
    assert is_leader(holder="a", now=now + timedelta(seconds=45))
    assert take_or_renew(holder="b", ttl=TTL, now=now + timedelta(seconds=51))  # a stopped renewing
    assert not is_leader(holder="a", now=now + timedelta(seconds=51))
    assert is_leader(holder="b", now=now + timedelta(seconds=51))
    assert not take_or_renew(holder="a", ttl=TTL, now=now + timedelta(seconds=52))
    assert not release(holder="a")
    assert release(holder="b")
    assert current_holder().holder is None
    assert take_or_renew(holder="a", ttl=TTL, now=now + timedelta(seconds=53))


SHORT_SCHEDULES = "missed-appointments=every 1 s; op-results-archive=every 2 s"


def _start(database_url: str, tmp_path, name: str, lease_seconds: int, schedules: str = SHORT_SCHEDULES,
           **env) -> tuple[subprocess.Popen, str]:
    """A `fieldops scheduler` process with short schedules (and more FIELDOPS_* variables); its log file."""
    log_path = str(tmp_path / f"{name}.log")
    env = dict(os.environ, FIELDOPS_DATABASE_URL=database_url, FIELDOPS_INSTANCE_DIR=str(tmp_path / name),
               FIELDOPS_ATTACHMENTS_DIR=str(tmp_path / "attachments"),
               FIELDOPS_SCHEDULER_LEASE_SECONDS=str(lease_seconds), FIELDOPS_JOB_SCHEDULES=schedules,
               **{f"FIELDOPS_{key}": value for key, value in env.items()})
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from server.cli import main; main()", "scheduler"],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return proc, log_path


def wait_for(what, timeout: float, step: float = 0.2):
    """Poll what() (in a fresh transaction) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        if value := what():
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def holder_pid() -> int | None:
    """The pid of the scheduler holding an unexpired lease."""
    lease = current_holder()
    if lease is None or lease.holder is None or lease.expires_at < utcnow():
        return None
    return int(lease.holder.split(":")[1])


def _run_pids(since_id: int = 0) -> list[int]:
    return list(db.session.scalars(select(JobRun.pid).where(JobRun.id > since_id)))


def test_two_schedulers_one_leads_and_the_other_takes_over_after_sigkill(app, database_url, tmp_path):
    """Only the lease holder runs jobs; SIGKILLed, it is replaced within the lease plus a renewal; SIGTERM releases."""
    # Short for the test, long enough that a loaded machine's slow writes (SQLite's one writer) do not let it lapse.
    lease_seconds = 6
    procs = {}
    logs = []
    # The test only reads: on SQLite a write transaction would hold the schedulers' one writer.
    reading = mark_read_only(True)
    try:
        for name in ("one", "two"):
            proc, log_path = _start(database_url, tmp_path, name, lease_seconds)
            procs[proc.pid] = proc
            logs.append(log_path)
        leader = wait_for(holder_pid, 60)
        other = next(pid for pid in procs if pid != leader)
        # Several turns of the every-second jobs, and the daily ones caught up on taking the lease.
        every_job = {"missed-appointments", "op-results-archive", "sync-maintain", "grades", "attachments-gc"}
        wait_for(lambda: set(db.session.scalars(select(JobRun.job).where(JobRun.outcome == "ok"))) >= every_job, 60)
        time.sleep(lease_seconds)
        db.session.rollback()
        assert set(_run_pids()) == {leader}
        assert all(p.poll() is None for p in procs.values())

        last_id = db.session.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1))
        procs[leader].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[leader].wait(10)
        wait_for(lambda: holder_pid() == other, 30, step=0.05)
        took_over = time.monotonic() - killed
        # The bound: the lease plus one renewal interval (a third of it); 5 s more for a loaded machine.
        assert took_over <= lease_seconds + lease_seconds / 3 + 5, took_over
        wait_for(lambda: _run_pids(last_id).count(other) >= 3, 30)
        db.session.rollback()
        after = db.session.scalars(select(JobRun).where(JobRun.id > last_id)).all()
        # The killed leader may have finished a run it had started; none begins after the takeover.
        assert {r.pid for r in after if r.pid != other} <= {leader}
        first_of_other = min(r.id for r in after if r.pid == other)
        assert {r.pid for r in after if r.id > first_of_other} == {other}

        procs[other].send_signal(signal.SIGTERM)
        assert procs[other].wait(30) == 0
        db.session.rollback()
        assert current_holder().holder is None  # released: the next scheduler need not wait out the lease
    finally:
        db.session.rollback()
        reset_read_only(reading)
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        db.session.rollback()
        db.session.execute(SchedulerLease.__table__.delete())
        db.session.commit()
        for path in logs:
            with open(path) as log:
                sys.stderr.write(f"--- {path}\n{log.read()[-3000:]}\n")


@pytest.mark.parametrize("overrides", ["nope=every 1 s", "grades=whenever"])
def test_a_bad_schedule_override_stops_the_scheduler_at_start(app, database_url, tmp_path, overrides):
    """FIELDOPS_JOB_SCHEDULES naming no job, or a bad schedule, is a one-line error before anything runs."""
    env = dict(os.environ, FIELDOPS_DATABASE_URL=database_url, FIELDOPS_INSTANCE_DIR=str(tmp_path),
               FIELDOPS_JOB_SCHEDULES=overrides)
    result = subprocess.run([sys.executable, "-c", "from server.cli import main; main()", "scheduler"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    db.session.rollback()
    assert current_holder() is None


MANIFEST_ROWS = 1500  # enough that importing them takes seconds: the kill lands inside the run


def test_the_leader_killed_mid_job_the_next_run_completes_it_once(app, make, database_url, tmp_path):
    """A manifest import is running when the leading scheduler is SIGKILLed: its transaction is gone (no task, the
    file still in the inbox, the run unfinished); the next leader closes that run as interrupted, and its own run
    imports the file once."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [make.task_spec(waybill_no=f"KILL-{n:05d}") for n in range(MANIFEST_ROWS)]
    (inbox / "big.json").write_text(json.dumps(rows))
    db.session.remove()
    only_the_import = "manifest-import=every 1 s; " + "; ".join(
        f"{job.name}=off" for job in jobs.JOBS if job.name != "manifest-import")
    procs, logs = [], []
    reading = mark_read_only(True)  # SQLite: the test's reads never hold the schedulers' one writer
    try:
        proc, log_path = _start(database_url, tmp_path, "first", 3, only_the_import, MANIFEST_INBOX=str(inbox))
        procs.append(proc)
        logs.append(log_path)
        killed_run = wait_for(lambda: db.session.scalar(select(JobRun).where(JobRun.job == "manifest-import")),
                               60, step=0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        db.session.rollback()
        db.session.refresh(killed_run)
        # Killed inside the run: nothing of it committed, and its record says it never finished.
        assert (killed_run.outcome, killed_run.finished_at) == (None, None)
        assert set(os.listdir(inbox)) - {"done"} == {"big.json"} and not os.listdir(inbox / "done")
        assert _manifest_tasks() == 0

        proc, log_path = _start(database_url, tmp_path, "second", 3, only_the_import, MANIFEST_INBOX=str(inbox))
        procs.append(proc)
        logs.append(log_path)
        finished = wait_for(lambda: db.session.scalars(select(JobRun).where(
            JobRun.job == "manifest-import", JobRun.outcome == "ok", JobRun.counts["files"].as_integer() == 1)).all(),
            120)
        time.sleep(2.5)  # a few more turns: each finds the inbox empty
        db.session.rollback()
        assert [run.counts["rows_created"] for run in finished] == [MANIFEST_ROWS]
        db.session.refresh(killed_run)  # closed by the scheduler that took the lease over
        assert killed_run.outcome == "interrupted" and killed_run.finished_at is not None
        assert [run.pid for run in finished] == [proc.pid]
        runs = db.session.scalars(select(JobRun).where(JobRun.job == "manifest-import", JobRun.id > killed_run.id)
                                  ).all()
        assert all(run.pid == proc.pid for run in runs) and len(runs) >= 2
        assert {run.counts["files"] for run in runs if run.outcome == "ok"} == {0, 1}
        assert _manifest_tasks() == MANIFEST_ROWS
        assert db.session.scalar(select(func.count(func.distinct(Task.waybill_no))).where(
            Task.waybill_no.like("KILL-%"))) == MANIFEST_ROWS
        assert sorted(os.listdir(inbox)) == ["done"]
        assert sorted(os.listdir(inbox / "done")) == ["big.json", "big.json.report.json"]
        assert db.session.scalar(select(func.count()).select_from(TaskEvent).join(Task).where(
            Task.waybill_no.like("KILL-%"), TaskEvent.kind == "created")) == MANIFEST_ROWS
    finally:
        db.session.rollback()
        reset_read_only(reading)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        db.session.execute(SchedulerLease.__table__.delete())
        db.session.commit()
        for path in logs:
            with open(path) as log:
                sys.stderr.write(f"--- {path}\n{log.read()[-3000:]}\n")


def _manifest_tasks() -> int:
    """Tasks the test's manifest made."""
    return db.session.scalar(select(func.count()).select_from(Task).where(Task.waybill_no.like("KILL-%")))


def test_taking_an_expired_lease_closes_the_dead_leaders_unfinished_runs_only(app):
    """The new leader closes as interrupted the runs the expired holder left open; its finished runs, and open
    runs of other processes (a `fieldops jobs run` elsewhere), are left as they are."""
    now = utcnow()
    assert take_or_renew(holder="alpha:101:aaaa", ttl=TTL, now=now)
    runs = {name: JobRun(job="grades", host=host, pid=pid, started_at=now, outcome=outcome,
                         finished_at=now if outcome else None)
            for name, host, pid, outcome in [("open", "alpha", 101, None), ("done", "alpha", 101, "ok"),
                                             ("cli", "alpha", 202, None), ("elsewhere", "beta", 101, None)]}
    db.session.add_all(runs.values())
    db.session.commit()
    assert not take_or_renew(holder="beta:7:bbbb", ttl=TTL, now=now + timedelta(seconds=10))  # not expired
    db.session.expire_all()
    assert runs["open"].outcome is None
    assert take_or_renew(holder="beta:7:bbbb", ttl=TTL, now=now + timedelta(seconds=31))
    db.session.expire_all()
    assert {name: run.outcome for name, run in runs.items()} == {
        "open": "interrupted", "done": "ok", "cli": None, "elsewhere": None}
    assert runs["open"].finished_at is not None and "lease" in runs["open"].error
    db.session.execute(SchedulerLease.__table__.delete())
    db.session.commit()
