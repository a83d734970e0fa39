"""Customers' satisfaction ratings of a handover, one per task."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db


class Rating(db.Model):
    """A customer's 1–5 rating (and optional comment) of a delivered or collected task, given on the customer page."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    # One rating per task, ever: the unique key is what refuses a second (two tabs, a retried post).
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column()
    comment: Mapped[str | None] = mapped_column(String(500))
    link_id: Mapped[str | None] = mapped_column(String(32))  # the customer link it came through
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_1_to_5"),)
