"""Scheduled jobs and their runs, for the admin's view."""
from marshmallow import fields

from schemas.common import PageOut, Schema

JOB_OUTCOMES = ("ok", "failed", "skipped", "interrupted")


class JobRunOut(Schema):
    """One run of a job: where and when it ran, how it ended (null while running; interrupted: its scheduler died)."""

    id = fields.Integer()
    job = fields.String()
    host = fields.String()
    pid = fields.Integer()
    started_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"enum": list(JOB_OUTCOMES)})
    counts = fields.Dict(allow_none=True, metadata={"description": "What the run did, by name (e.g. archived: 120)"})
    error = fields.String(allow_none=True, metadata={"description": "A failed run's exception and traceback"})


class JobOut(Schema):
    """A declared job, its schedule (the scheduler's, in depot time) and its last run."""

    name = fields.String()
    schedule = fields.String(metadata={"description": "'every N s|min|h' or 'daily HH:MM' (depot time)"})
    description = fields.String()
    last_run = fields.Nested(JobRunOut, allow_none=True)


class JobList(Schema):
    """Every job."""

    items = fields.List(fields.Nested(JobOut))


class JobRunPage(PageOut):
    """A page of a job's runs, newest first."""

    items = fields.List(fields.Nested(JobRunOut))
