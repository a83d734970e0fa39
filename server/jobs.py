"""Background jobs, declared once: the CLI runs them now (`fieldops jobs run NAME`), the scheduler later.

Each job is a function of the current time returning counts; a run gets its
own transaction (the job commits), is timed, and logs its counts.
"""
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from server.clock import utcnow
from server.extensions import db
from server.services import appointments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A named job: its stable name, when it should run, and what it does."""

    name: str
    schedule: str
    function: Callable[[datetime], dict]
    description: str


JOBS = [
    Job("missed-appointments", "every 5 min", lambda now: appointments.sweep_missed(now=now),
        "Confirmed appointments whose window ended unvisited become missed (with a violation), "
        "or late after a timely notice."),
]


def get(name: str) -> Job:
    """The job of that name; KeyError names the known ones."""
    for job in JOBS:
        if job.name == name:
            return job
    raise KeyError(f"no job {name!r}; known: {', '.join(j.name for j in JOBS)}")


def run(name: str, *, now: datetime | None = None) -> dict:
    """Run one job now in a transaction of its own; returns its counts (logged with its duration)."""
    job = get(name)
    db.session.rollback()
    started = time.monotonic()
    try:
        counts = job.function(now or utcnow())
    except Exception:
        db.session.rollback()
        log.exception("job failed", extra={"job": name, "seconds": round(time.monotonic() - started, 3)})
        raise
    finally:
        db.session.remove()
    log.info("job done", extra={"job": name, "seconds": round(time.monotonic() - started, 3), **counts})
    return counts
