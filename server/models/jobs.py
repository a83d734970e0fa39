"""Scheduled jobs: the record of every run, and the lease that makes one scheduler the leader."""
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime
from server.extensions import db
from server.models.types import JSONText


class JobRun(db.Model):
    """One run of a job: where, when, how it ended and what it counted.

    Written when the run starts (outcome null) and finished in a transaction of its
    own, so a run whose process died shows as started and never finished, until the
    scheduler that takes the lease over closes it as interrupted (server.scheduler).
    """

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # ok|failed|skipped|interrupted; null: running
    counts: Mapped[dict | None] = mapped_column(JSONText)
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_job_runs_job_id", "job", "id"),)


class SchedulerLease(db.Model):
    """Who leads the schedulers, until when: taken or renewed by a conditional UPDATE (server.scheduler)."""

    __tablename__ = "scheduler_lease"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
