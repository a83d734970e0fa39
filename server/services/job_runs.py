"""What the scheduled jobs did: each job's last run, and a job's runs newest first."""
from sqlalchemy import func, select

from server import jobs
from server.errors import NotFound
from server.extensions import db
from server.models import JobRun
from server.services.common import newest_first


def get_all() -> list[dict]:
    """Every declared job with its schedule, description and last run (None if it never ran)."""
    latest = select(func.max(JobRun.id)).group_by(JobRun.job)
    last = {run.job: run for run in db.session.scalars(select(JobRun).where(JobRun.id.in_(latest)))}
    return [{"name": job.name, "schedule": job.schedule, "description": job.description,
             "last_run": last.get(job.name)} for job in jobs.JOBS]


def get_runs(*, job: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A page of one job's runs, newest first; an unknown job is a 404."""
    try:
        name = jobs.get(job).name
    except KeyError:
        raise NotFound(f"No job {job!r}.", code="job_not_found") from None
    return newest_first(select(JobRun).where(JobRun.job == name), JobRun.id, cursor=cursor, limit=limit)
