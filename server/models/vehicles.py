"""Vans and other vehicles."""
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id


class Vehicle(db.Model):
    """A vehicle; the one assigned to a courier syncs to their handheld."""

    __tablename__ = "vehicles"
    feed_entity = "vehicle"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("v"))
    plate: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="in_service")
    courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"), unique=True)
    # Kept by the checklists: open defects (a change re-syncs the van), the highest odometer
    # reading, where and when it was last checked, and its newest check (the report the next
    # driver acknowledges).
    open_defects: Mapped[int] = mapped_column(default=0)
    odometer: Mapped[int | None] = mapped_column(BigInteger)
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_report_id: Mapped[str | None] = mapped_column(String(36))
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    __mapper_args__ = {"version_id_col": version}

    def feed_scope(self) -> set[str]:
        """The vehicle is in the scope of the courier driving it."""
        return {self.courier_id} if self.courier_id else set()


class VehicleGrounding(db.Model):
    """A span of time a van was off the road: from a critical defect or dispatch's word until back in service.

    Rules that ask whether a van could be driven at some past moment (an offline
    handheld's op, hours late) read these spans, not the van's status now.
    """

    __tablename__ = "vehicle_groundings"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[str] = mapped_column(ForeignKey("vehicles.id"))
    reason: Mapped[str] = mapped_column(String(16))  # schemas.vocab.GROUNDING_REASONS
    # The check that found the critical defect (device time, never after its receipt), or dispatch's change.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # back in service (server time)
    submission_id: Mapped[str | None] = mapped_column(String(36))  # the check whose critical failure it was
    __table_args__ = (Index("ix_vehicle_groundings_vehicle_started", "vehicle_id", "started_at"),)
