"""Conduct violations recorded against couriers."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class Violation(db.Model):
    """A conduct violation: automatic (a rule), from a complaint, or from a checklist."""

    __tablename__ = "violations"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    code: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # critical | major | minor: what it weighs in the grade
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[dict] = mapped_column(JSONText)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An automatic violation has one key (code:task): recording it twice, even from two hosts, inserts once.
    dedupe_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    __table_args__ = (Index("ix_violations_courier_id_id", "courier_id", "id"),)
