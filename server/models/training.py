"""Training: courses, the sessions held of them, and each courier's attendance and result."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime
from server.extensions import db


class TrainingCourse(db.Model):
    """A course: pre-job (岗前, before a courier's first shift) or periodic (定期); a pass is valid so many months."""

    __tablename__ = "training_courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    validity_months: Mapped[int | None] = mapped_column()  # None: a pass never expires (pre-job courses only)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))


class TrainingSession(db.Model):
    """One holding of a course: when, by whom, where. A course is held once at a given instant."""

    __tablename__ = "training_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("training_courses.id"))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    trainer: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    course: Mapped[TrainingCourse] = relationship(lazy="joined")
    attendance: Mapped[list["TrainingAttendance"]] = relationship(
        back_populates="session", order_by="TrainingAttendance.id")
    __table_args__ = (UniqueConstraint("course_id", "held_at", name="uq_training_sessions_course_id_held_at"),
                      Index("ix_training_sessions_held_at", "held_at"))


class TrainingAttendance(db.Model):
    """A courier at a session: attended or absent, passed or failed (an absent courier never passes).

    valid_until is fixed when the pass is recorded: the session's time plus the
    course's validity then (None: never expires; or not passed).
    """

    __tablename__ = "training_attendance"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id"))
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    attended: Mapped[bool] = mapped_column()
    passed: Mapped[bool] = mapped_column()
    score: Mapped[int | None] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    corrections: Mapped[int] = mapped_column(default=0)
    session: Mapped[TrainingSession] = relationship(back_populates="attendance")
    __table_args__ = (UniqueConstraint("session_id", "courier_id", name="uq_training_attendance_session_id_courier_id"),
                      Index("ix_training_attendance_courier_id", "courier_id"))
