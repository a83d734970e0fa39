"""Conduct violations recorded against couriers, their appeals, and spot checks (inspections) that find them."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class Violation(db.Model):
    """A conduct violation: automatic (a rule), from a complaint, a checklist or an inspection."""

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
    # open -> appealed -> upheld | voided; open -> upheld (quality confirmed it) | voided (quality, or a review).
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    # Recorded on a device clock the sync engine flagged: quality's review list (GET /quality/violations).
    clock_suspect: Mapped[bool] = mapped_column(default=False, server_default="0")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))  # None: a rule (a review's void)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_violations_courier_id_id", "courier_id", "id"),
                      Index("ix_violations_status_id", "status", "id"))


class ViolationAppeal(db.Model):
    """A courier's appeal of a violation, made on the handheld (its id is the device's UUID); one per violation."""

    __tablename__ = "violation_appeals"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), unique=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    photos: Mapped[list] = mapped_column(JSONText)
    status: Mapped[str] = mapped_column(String(16))  # open -> upheld | voided (the violation's fate)
    device_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    op_id: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)


class Inspection(db.Model):
    """A spot check or a mystery-shopper visit (联合稽查): an inspection checklist filled in by staff."""

    __tablename__ = "inspections"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # spot_check | mystery_shopper
    template_id: Mapped[str] = mapped_column(ForeignKey("checklist_templates.id"))
    template_version: Mapped[int]
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    vehicle_id: Mapped[str | None] = mapped_column(ForeignKey("vehicles.id"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    inspector: Mapped[str] = mapped_column(String(100))
    inspected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notes: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list] = mapped_column(JSONText)
    answers: Mapped[list] = mapped_column(JSONText)
    failed: Mapped[list] = mapped_column(JSONText)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(ForeignKey("staff_users.id"))
    __table_args__ = (Index("ix_inspections_courier_id_id", "courier_id", "id"),)
