"""The history of couriers' service grades, and the grades quality staff set by hand."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime
from server.extensions import db
from server.models.types import JSONText


class GradeChange(db.Model):
    """One change of a courier's grade, with the evaluation that made it."""

    __tablename__ = "grade_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    from_grade: Mapped[str] = mapped_column(String(1))
    to_grade: Mapped[str] = mapped_column(String(1))
    score: Mapped[int] = mapped_column()
    reasons: Mapped[list] = mapped_column(JSONText)
    window_from: Mapped[datetime] = mapped_column(UTCDateTime)
    window_to: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))  # None: the job
    __table_args__ = (Index("ix_grade_changes_courier_id_id", "courier_id", "id"),)


class GradeOverride(db.Model):
    """A grade quality staff set by hand, with a reason: the rules do not overwrite it until `until` or its lifting."""

    __tablename__ = "grade_overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    grade: Mapped[str] = mapped_column(String(1))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("staff_users.id"))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    lift_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_grade_overrides_courier_id_id", "courier_id", "id"),)
