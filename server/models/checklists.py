"""Checklists: versioned templates, the submissions made against them, van defects and shifts."""
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id
from server.models.types import JSONText


class ChecklistTemplate(db.Model):
    """A checklist (conduct or vehicle) whose items change only by publishing a new version.

    `version` is the row's sync version (every device holds the active
    templates); `current` is the number of the version devices fill in now.
    """

    __tablename__ = "checklist_templates"
    feed_entity = "checklist_template"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("k"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    current: Mapped[int] = mapped_column(default=1)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    versions: Mapped[list["ChecklistTemplateVersion"]] = relationship(
        order_by="ChecklistTemplateVersion.number", back_populates="template")
    __mapper_args__ = {"version_id_col": version}

    def feed_scope(self) -> set[None]:
        """Templates are in every courier's scope (None: every courier)."""
        return {None}


class ChecklistTemplateVersion(db.Model):
    """One published version of a template: its items never change once published."""

    __tablename__ = "checklist_template_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("checklist_templates.id", ondelete="CASCADE"))
    number: Mapped[int]
    items: Mapped[list] = mapped_column(JSONText)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    # When the next version was published: submissions made later are taken only within the grace period.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    template: Mapped[ChecklistTemplate] = relationship(back_populates="versions")
    __table_args__ = (UniqueConstraint("template_id", "number"),)


class ChecklistSubmission(db.Model):
    """A filled-in checklist: made on the handheld (its id is the device's UUID), never changed after."""

    __tablename__ = "checklist_submissions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("checklist_templates.id"))
    template_version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    vehicle_id: Mapped[str | None] = mapped_column(ForeignKey("vehicles.id"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    answers: Mapped[list] = mapped_column(JSONText)
    failed: Mapped[list] = mapped_column(JSONText)  # codes of the items that failed
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    signature: Mapped[str | None] = mapped_column(String(64))
    # The vehicle report this (pre-trip) check acknowledged: the DVIR chain driver -> mechanic -> next driver.
    acknowledged_id: Mapped[str | None] = mapped_column(String(36))
    flags: Mapped[list] = mapped_column(JSONText)  # far_from_vehicle, odometer_lower, stale_acknowledgement, ...
    device_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    op_id: Mapped[str] = mapped_column(String(64))
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    __table_args__ = (
        Index("ix_checklist_submissions_courier_time", "courier_id", "device_time"),
        Index("ix_checklist_submissions_vehicle_time", "vehicle_id", "device_time"),
    )


class VehicleDefect(db.Model):
    """A failed vehicle item: open until maintenance certifies a repair or that none is needed."""

    __tablename__ = "vehicle_defects"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    submission_id: Mapped[str] = mapped_column(ForeignKey("checklist_submissions.id"))
    item: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    value: Mapped[dict] = mapped_column(JSONText)  # the answer as given: {value, photo}
    reported_by: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the check's device time
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list] = mapped_column(JSONText, default=list)
    __table_args__ = (
        Index("ix_vehicle_defects_vehicle_status", "vehicle_id", "status"),
        Index("ix_vehicle_defects_status_id", "status", "id"),
    )


class Shift(db.Model):
    """A courier's shift on a van, from shift.start to shift.end (device times)."""

    __tablename__ = "shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_odometer: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_odometer: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, ended, abandoned
    flags: Mapped[list] = mapped_column(JSONText, default=list)
    start_op_id: Mapped[str] = mapped_column(String(64))
    end_op_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_shifts_courier_status", "courier_id", "status"),)
