"""`fieldops scheduler`: APScheduler over the one job list, safe to run on several hosts.

Only the holder of the lease row runs jobs. The lease is taken or renewed by one
conditional UPDATE (holder = me, or the lease expired), which both engines settle
atomically (PostgreSQL re-checks the condition after waiting on the row lock; SQLite
has one writer). It is renewed every third of its length, so a dead holder is replaced
within the lease plus one renewal interval. Expiry is judged by each host's clock:
hosts must keep their clocks in step (NTP), as for everything else stamped here.
"""
import logging
import os
import signal
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server import jobs
from server.clock import utcnow
from server.extensions import db
from server.models import JobRun, SchedulerLease

log = logging.getLogger(__name__)

LEASE = "scheduler"
_NEVER = datetime(2000, 1, 1, tzinfo=timezone.utc)


def holder_name() -> str:
    """This process's name in the lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _ensure_lease_row() -> None:
    """Insert the lease row if it is not there (nobody holds it yet)."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    db.session.execute(dialect.insert(SchedulerLease).values(name=LEASE, holder=None, expires_at=_NEVER)
                       .on_conflict_do_nothing())


def take_or_renew(*, holder: str, ttl: timedelta, now: datetime | None = None) -> bool:
    """Take the lease if it is free or expired, or renew it if it is ours; whether we hold it now. Commits.

    Taken from a holder whose lease ran out (it died, or stalled past its lease), the
    runs it left without an outcome are closed as interrupted: their transactions
    are gone, and the job's next run does their work.
    """
    now = now or utcnow()
    _ensure_lease_row()
    before = db.session.scalar(select(SchedulerLease.holder).where(SchedulerLease.name == LEASE))
    taken = db.session.execute(update(SchedulerLease).where(
        SchedulerLease.name == LEASE, or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)).rowcount == 1
    process = _process_of(before) if taken and before not in (None, holder) else None
    if process:
        closed = jobs.close_interrupted(host=process[0], pid=process[1], now=now)
        if closed:
            log.warning("runs of the previous leader closed as interrupted", extra={"previous": before,
                                                                                   "runs": closed})
    db.session.commit()
    return taken


def _process_of(holder: str) -> tuple[str, int] | None:
    """The host and pid in a lease holder's name (host:pid:random; None for any other name)."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdecimal():
        return None
    return parts[0], int(parts[1])


def is_leader(*, holder: str, now: datetime | None = None) -> bool:
    """Whether this process holds an unexpired lease."""
    return db.session.scalar(select(SchedulerLease.name).where(
        SchedulerLease.name == LEASE, SchedulerLease.holder == holder,
        SchedulerLease.expires_at > (now or utcnow()))) is not None


def release(*, holder: str) -> bool:
    """Give the lease up (if ours) so another scheduler takes it at its next try; whether it was ours. Commits."""
    released = db.session.execute(update(SchedulerLease).where(
        SchedulerLease.name == LEASE, SchedulerLease.holder == holder)
        .values(holder=None, expires_at=_NEVER)).rowcount == 1
    db.session.commit()
    return released


def current_holder() -> SchedulerLease | None:
    """The lease row (who holds it, until when), if any scheduler ever ran."""
    return db.session.get(SchedulerLease, LEASE)


class Scheduler:
    """One `fieldops scheduler` process: a lease thread and an APScheduler running the jobs when leading."""

    def __init__(self, app: Flask):
        """Read the job list with its schedules and the lease length; a bad override fails here."""
        self.app = app
        self.holder = holder_name()
        self.ttl = timedelta(seconds=app.config["SCHEDULER_LEASE_SECONDS"])
        self.renew_every = self.ttl.total_seconds() / 3
        self.zone = ZoneInfo(app.config["TIMEZONE"])
        self.schedules = {name: s for name, s in jobs.schedules(app.config["JOB_SCHEDULES"]).items() if s}
        self.leading = False
        self._stop = threading.Event()
        self._stopping = False
        self.apscheduler = BlockingScheduler(timezone=self.zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        for name, schedule in self.schedules.items():
            self.apscheduler.add_job(self._fire, schedule.trigger(self.zone), args=[name], id=name, name=name)
        self.apscheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

    def _fire(self, name: str) -> None:
        """A job's turn: run it if this process leads, else do nothing at all."""
        with self.app.app_context():
            try:
                leading = is_leader(holder=self.holder)
            except Exception:
                log.exception("leadership check failed", extra={"job": name})
                leading = False
            finally:
                db.session.remove()
            if leading:
                try:
                    jobs.run(name)
                except Exception:  # noqa: S110 - recorded and logged by jobs.run; the scheduler goes on
                    pass

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """Record a turn missed because the job's previous run is still going (leader only)."""
        with self.app.app_context():
            try:
                if is_leader(holder=self.holder):
                    jobs.record_skipped(event.job_id.removesuffix(":catch-up"), "the previous run was still going")
            except Exception:  # a busy database: the log has the warning APScheduler wrote
                log.exception("could not record a skipped run", extra={"job": event.job_id})
            finally:
                db.session.remove()

    def _catch_up(self) -> None:
        """On becoming leader, run now each daily job whose last due time passed with no run since."""
        now = utcnow()
        for name, schedule in self.schedules.items():
            due = schedule.last_due(now, self.zone)
            if due is None:
                continue
            last = db.session.scalar(select(JobRun.started_at).where(JobRun.job == name)
                                     .order_by(JobRun.id.desc()).limit(1))
            if last is None or last < due:
                log.info("catching up a missed daily job", extra={"job": name, "due": due.isoformat()})
                self.apscheduler.add_job(self._fire, args=[name], id=f"{name}:catch-up", name=name,
                                         replace_existing=True)

    def _hold_lease(self) -> None:
        """Take or renew the lease every third of its length until stopped; catch up on becoming leader."""
        while not self._stop.is_set():
            with self.app.app_context():
                try:
                    leading = take_or_renew(holder=self.holder, ttl=self.ttl)
                    if leading and not self.leading:
                        log.info("scheduler leads", extra={"holder": self.holder})
                        self._catch_up()
                    elif self.leading and not leading:
                        log.warning("scheduler lost the lease", extra={"holder": self.holder})
                    self.leading = leading
                except Exception:
                    log.exception("lease renewal failed", extra={"holder": self.holder})
                    self.leading = False
                finally:
                    db.session.remove()
            self._stop.wait(self.renew_every)

    def _shutdown(self, signum, _frame) -> None:
        """SIGTERM/SIGINT: start no more jobs, let running ones finish (start() then returns).

        The handler interrupts the main thread wherever it is, perhaps inside a transaction
        (a skipped run being recorded): waiting for the jobs here could wait on that very
        transaction, so another thread does the waiting.
        """
        log.info("scheduler stopping", extra={"signal": signal.Signals(signum).name})
        if not self._stopping and self.apscheduler.running:
            threading.Thread(target=self.apscheduler.shutdown, kwargs={"wait": True}, name="scheduler-stop").start()
        self._stopping = True

    def run(self) -> None:
        """Block until SIGTERM or SIGINT, then give the lease up."""
        signal.signal(signal.SIGTERM, self._shutdown)
        signal.signal(signal.SIGINT, self._shutdown)
        lease_thread = threading.Thread(target=self._hold_lease, name="scheduler-lease", daemon=True)
        log.info("scheduler started", extra={"holder": self.holder, "lease_seconds": self.ttl.total_seconds(),
                                              "jobs": ", ".join(f"{n} ({s.text})" for n, s in self.schedules.items())})
        lease_thread.start()
        if not self._stopping:
            self.apscheduler.start()
        self._stop.set()
        lease_thread.join()
        with self.app.app_context():
            released = release(holder=self.holder)
            db.session.remove()
        log.info("scheduler stopped", extra={"holder": self.holder, "released": released})
