"""Background jobs, declared once: the CLI runs them now (`fieldops jobs run NAME`), the scheduler on schedule.

Each job is a function of the current time returning counts; a run gets its
own transaction (the job commits), is timed, logged, and recorded in job_runs.
A schedule is a short string ("every 5 min", "daily 00:10" in the depot's time
zone), parsed when the job is declared: a bad one fails at import, not at 3 a.m.
"""
import logging
import os
import re
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, time as clock_time, timedelta, tzinfo
from typing import Callable

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import current_app
from sqlalchemy import update

from server import metrics
from server.clock import utcnow
from server.extensions import db
from server.models import JobRun
from server.services import appointments, attachments, grades, manifests, messages, retention, scans, webhooks

log = logging.getLogger(__name__)

HOST = socket.gethostname()
_EVERY = re.compile(r"every (\d{1,6}) (s|min|h)")
_DAILY = re.compile(r"daily (\d{2}):(\d{2})")
_UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600}
_ERROR_CHARS = 8000  # the end of a traceback is the part that says what failed


@dataclass(frozen=True)
class Schedule:
    """When a job runs: every `every`, or daily at `at` (depot time)."""

    text: str
    every: timedelta | None = None
    at: clock_time | None = None

    def trigger(self, zone: tzinfo) -> BaseTrigger:
        """The APScheduler trigger for this schedule in the depot's time zone."""
        if self.every is not None:
            return IntervalTrigger(seconds=self.every.total_seconds(), timezone=zone)
        return CronTrigger(hour=self.at.hour, minute=self.at.minute, timezone=zone)

    def last_due(self, now: datetime, zone: tzinfo) -> datetime | None:
        """The latest daily time at or before now (None for an interval schedule)."""
        if self.at is None:
            return None
        local = now.astimezone(zone)
        due = datetime.combine(local.date(), self.at, zone)
        return due if due <= local else datetime.combine(local.date() - timedelta(days=1), self.at, zone)


def parse_schedule(text: str) -> Schedule:
    """'every N s|min|h' or 'daily HH:MM'; ValueError says what is accepted."""
    if match := _EVERY.fullmatch(text):
        seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
        if seconds > 0:
            return Schedule(text, every=timedelta(seconds=seconds))
    elif match := _DAILY.fullmatch(text):
        hour, minute = int(match[1]), int(match[2])
        if hour < 24 and minute < 60:
            return Schedule(text, at=clock_time(hour, minute))
    raise ValueError(f"schedule {text!r}: write 'every N s', 'every N min', 'every N h' (N > 0) "
                     "or 'daily HH:MM' (depot time)")


@dataclass(frozen=True)
class Job:
    """A named job: its stable name, when it should run, and what it does."""

    name: str
    schedule: str
    function: Callable[[datetime], dict]
    description: str
    parsed: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        """Parse the schedule now: a job declared with a bad one cannot be imported."""
        object.__setattr__(self, "parsed", parse_schedule(self.schedule))


def _sync_maintain(now: datetime) -> dict:
    """Day-end tombstones, feed compaction past the retention, handheld docs brought up to date."""
    from server.services.tasks import close_day
    from sync import docs
    from sync.maintenance import compact_feed
    tombstones = close_day(now=now)
    compacted = compact_feed(now=now, retention=current_app.config["SYNC_RETENTION"])
    written = docs.rebuild(db.session, current_app.extensions["fieldops_sync"])
    db.session.commit()
    return {"tombstones": tombstones, "compacted": compacted, "docs": written}


def _archive_op_results(now: datetime) -> dict:
    """Stored op results past the sync retention lose their entity (exactly-once is kept)."""
    from sync.maintenance import archive_results
    return {"archived": archive_results(now=now, retention=current_app.config["SYNC_RETENTION"])}


JOBS = [
    Job("missed-appointments", "every 5 min", lambda now: appointments.sweep_missed(now=now),
        "Confirmed appointments whose window ended unvisited become missed (with a violation), "
        "or late after a timely notice."),
    Job("grades", "daily 01:00", lambda now: grades.recompute_all(now=now),
        "Every active courier's service grade over the rolling window; a changed grade goes into the history."),
    Job("sync-maintain", "daily 00:10", _sync_maintain,
        "Day-end tombstones for tasks finished before the depot's midnight, change-feed compaction past "
        "the sync retention, handheld docs missing or behind rewritten."),
    Job("op-results-archive", "daily 00:40", _archive_op_results,
        "Op results stored longer than the sync retention keep their status and lose the entity; "
        "a replay is still answered as a duplicate and never applied twice."),
    Job("attachments-gc", "daily 01:30",
        lambda now: attachments.collect_garbage(now=now, grace=current_app.config["ATTACHMENT_GC_GRACE"]),
        "Uploads that nothing names after the grace period are deleted, row and file."),
    Job("manifest-import", "every 2 min",
        lambda now: manifests.import_inbox(inbox=current_app.config["MANIFEST_INBOX"]),
        "Upstream manifests dropped in FIELDOPS_MANIFEST_INBOX (*.csv, *.json) create or update tasks by waybill; "
        "bad rows are quarantined; each file moves to done/ with a .report.json beside."),
    Job("retention", "daily 03:30",
        lambda now: retention.redact_finished(now=now, days=current_app.config["RETENTION_DAYS"]),
        "Recipients' phone, address and full name are redacted from tasks finished more than "
        "FIELDOPS_RETENTION_DAYS (90) days ago; evidence, receipts and the ledger are kept. Leak detection's link "
        "uses older than FIELDOPS_LEAK_LINK_USE_DAYS (30) and export notes past their window are deleted."),
    Job("outbox", "every 5 s", lambda now: webhooks.deliver_due(now=now),
        "New events become deliveries for the webhook subscriptions that want them; due deliveries are sent "
        "(signed, retried with backoff, dead after the last attempt)."),
    Job("customer-messages", "every 10 s", lambda now: messages.deliver_due(now=now),
        "New events become messages to customers (at most one each; suppressed over FIELDOPS_SMS_PER_CUSTOMER_DAY); "
        "due ones are sent to FIELDOPS_SMS_GATEWAY_URL (signed, retried with backoff, dead after the last attempt), "
        "never in the quiet hours (FIELDOPS_SMS_QUIET_HOURS); without a gateway they are recorded, not sent."),
    Job("lost-parcels", "every 15 min", lambda now: scans.flag_unscanned(now=now),
        "Parcels of open tasks unscanned FIELDOPS_LOST_AFTER_HOURS since their last scan become suspected_lost "
        "for dispatch (a scan dated within that time of now, or a handover step, clears the suspicion)."),
]


def get(name: str) -> Job:
    """The job of that name; KeyError names the known ones."""
    for job in JOBS:
        if job.name == name:
            return job
    raise KeyError(f"no job {name!r}; known: {', '.join(j.name for j in JOBS)}")


def schedules(overrides: str | None) -> dict[str, Schedule | None]:
    """Each job's schedule, with FIELDOPS_JOB_SCHEDULES ('name=every 1 min; name=off') applied; None: off."""
    result: dict[str, Schedule | None] = {job.name: job.parsed for job in JOBS}
    for item in filter(None, (part.strip() for part in (overrides or "").split(";"))):
        name, sep, text = (piece.strip() for piece in item.partition("="))
        if not sep:
            raise ValueError(f"FIELDOPS_JOB_SCHEDULES: {item!r} is not NAME=SCHEDULE")
        get(name)  # an unknown name is a KeyError naming the known ones
        result[name] = None if text == "off" else parse_schedule(text)
    return result


def _finish(run_id: int, outcome: str, counts: dict | None, error: str | None) -> None:
    """Close a run's record in a transaction of its own."""
    db.session.execute(update(JobRun).where(JobRun.id == run_id).values(
        finished_at=utcnow(), outcome=outcome, counts=counts, error=error))
    db.session.commit()


def close_interrupted(*, host: str, pid: int, now: datetime) -> int:
    """Close the runs a dead scheduler left without an outcome (`interrupted`); how many. Does not commit."""
    return db.session.execute(update(JobRun).where(
        JobRun.host == host, JobRun.pid == pid, JobRun.outcome.is_(None)).values(
        finished_at=now, outcome="interrupted",
        error="The scheduler running it stopped holding the lease (it died or stalled) before the run ended; "
              "its own work was rolled back with it.")).rowcount


def record_skipped(name: str, reason: str) -> None:
    """Record a run that did not happen (its previous run was still going). Commits."""
    at = utcnow()
    db.session.add(JobRun(job=get(name).name, host=HOST, pid=os.getpid(), started_at=at, finished_at=at,
                          outcome="skipped", error=reason))
    db.session.commit()
    metrics.observe_job(job=name, outcome="skipped")


def run(name: str, *, now: datetime | None = None) -> dict:
    """Run one job now in a transaction of its own, recorded in job_runs (a failure too); returns its counts."""
    job = get(name)
    db.session.rollback()
    record = JobRun(job=job.name, host=HOST, pid=os.getpid(), started_at=utcnow())
    db.session.add(record)
    db.session.commit()
    run_id = record.id
    started = time.monotonic()
    try:
        counts = job.function(now or utcnow())
    except Exception as exc:
        db.session.rollback()  # the job's own half-done work goes; the failure is recorded apart
        seconds = round(time.monotonic() - started, 3)
        log.exception("job failed", extra={"job": name, "seconds": seconds})
        error = "".join(traceback.format_exception(exc))
        _finish(run_id, "failed", None, f"{type(exc).__name__}: {exc}\n{error[-_ERROR_CHARS:]}")
        db.session.remove()
        metrics.observe_job(job=job.name, outcome="failed", seconds=seconds)
        raise
    _finish(run_id, "ok", counts, None)
    db.session.remove()
    metrics.observe_job(job=job.name, outcome="ok", seconds=time.monotonic() - started)
    log.info("job done", extra={"job": name, "seconds": round(time.monotonic() - started, 3), **counts})
    return counts
