"""Appointments: the window agreed with a task's customer, every window ever proposed, and contact attempts."""
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db


class Appointment(db.Model):
    """A task's appointment: its status and current window (the task's window_start/end mirror it)."""

    __tablename__ = "appointments"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="unconfirmed", index=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The courier's first counted arrival (device time) for the current window; a new window clears it.
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest late notice (device time), and whether any notice came NOTICE_LEAD_MINUTES before the window began.
    notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notice_eta: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notice_reason: Mapped[str | None] = mapped_column(String(300))
    notice_in_time: Mapped[bool] = mapped_column(default=False)
    # A notice that would have been in time, given on a clock the push engine flagged: no credit, dispatch decides.
    notice_suspect: Mapped[bool] = mapped_column(default=False)
    needs_new_appointment: Mapped[bool] = mapped_column(default=False)
    # Why dispatch must look (schemas.vocab.APPOINTMENT_EXCEPTIONS), shown on the board.
    exception: Mapped[str | None] = mapped_column(String(32))
    # The current attempt's number: one more each time a window agreed after a decided one (not a replaced one).
    attempt: Mapped[int] = mapped_column(default=1)
    # A decision (kept/late, notice in time, the wait) was taken on a device clock off by more than the tolerance.
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    task: Mapped["Task"] = relationship(back_populates="appointment")  # noqa: F821 - server.models.tasks
    windows: Mapped[list["AppointmentWindow"]] = relationship(
        back_populates="appointment", cascade="all, delete-orphan", order_by="AppointmentWindow.id")
    attempts: Mapped[list["ContactAttempt"]] = relationship(
        back_populates="appointment", cascade="all, delete-orphan", order_by="ContactAttempt.id")


class AppointmentWindow(db.Model):
    """A window proposed or agreed for a task, kept forever as history."""

    __tablename__ = "appointment_windows"
    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    proposed_by_kind: Mapped[str] = mapped_column(String(16))
    proposed_by_id: Mapped[str | None] = mapped_column(String(64))
    agreed_by_kind: Mapped[str | None] = mapped_column(String(16))
    agreed_by_id: Mapped[str | None] = mapped_column(String(64))
    via: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    op_id: Mapped[str | None] = mapped_column(String(64))  # the op that proposed it
    agreed_op_id: Mapped[str | None] = mapped_column(String(64))  # the op that agreed it
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    # The window's own decision (docs/decisions.md, "Issue 21"), never undone by a later window: null while it is
    # open (or only ever proposed), then one of schemas.vocab.WINDOW_OUTCOMES, when (server time) and by what.
    attempt: Mapped[int | None]  # the attempt this window was (null: a proposal never agreed or promised)
    outcome: Mapped[str | None] = mapped_column(String(16), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(16))
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the counted arrival that decided it
    notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the latest late notice for it
    notice_in_time: Mapped[bool] = mapped_column(default=False)  # a notice NOTICE_LEAD_MINUTES before its start
    failure_reason: Mapped[str | None] = mapped_column(String(16))  # the attempt failed: ATTEMPT_FAILURES
    # Under review: why, what the facts would decide if trusted; then dispatch's decision.
    review_reason: Mapped[str | None] = mapped_column(String(16))
    provisional_outcome: Mapped[str | None] = mapped_column(String(16))
    reviewed_by_id: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(500))
    appointment: Mapped[Appointment] = relationship(back_populates="windows")


class ContactAttempt(db.Model):
    """A courier's attempt to reach the customer, whatever its outcome."""

    __tablename__ = "contact_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    courier_id: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    op_id: Mapped[str | None] = mapped_column(String(64))
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int | None]  # the appointment's attempt it was made in
    appointment: Mapped[Appointment] = relationship(back_populates="attempts")
