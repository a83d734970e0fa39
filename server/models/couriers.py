"""Couriers, their handheld devices and device enrollments."""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id
from server.models.types import JSONText


class Courier(db.Model):
    """A courier; their own record (grade, conduct) syncs to their handheld."""

    __tablename__ = "couriers"
    feed_entity = "courier"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("c"))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    employee_no: Mapped[str] = mapped_column(String(32), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # The depot (station) the courier works out of, as the company codes it; reports group by it.
    depot: Mapped[str | None] = mapped_column(String(32), index=True)
    grade: Mapped[str] = mapped_column(String(1), default="A")
    # The evaluation behind the grade ({score, reasons, window, computed_at}); None until first graded.
    grade_detail: Mapped[dict | None] = mapped_column(JSONText)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    devices: Mapped[list["Device"]] = relationship(back_populates="courier")
    __mapper_args__ = {"version_id_col": version}

    def feed_scope(self) -> set[str]:
        """A courier's own record is in their own scope only."""
        return {self.id}


class Device(db.Model):
    """A handheld enrolled to a courier; it syncs with its own token and seq counter."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("d"))
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    last_seq: Mapped[int] = mapped_column(default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ops of this device the push engine rejected since it enrolled (seq_reused and op_id_reused too; a
    # replayed duplicate not): beyond FIELDOPS_DEVICE_REJECTIONS_ALERT dispatch sees the device as noisy.
    rejected_ops: Mapped[int] = mapped_column(default=0)
    # What the push engine knows of when this device's next op happened (sync.timing): not before its
    # last trusted sync (the server's time of the last push whose clock was within the tolerance, for ops
    # numbered after the highest seq the device had assigned then), nor before its last op.
    trusted_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trusted_sync_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_op_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    courier: Mapped[Courier] = relationship(back_populates="devices")

    @hybrid_method
    def rejections_beyond(self, threshold: int):
        """Whether the device had more rejected ops than threshold (in Python, or as an SQL condition)."""
        return self.rejected_ops > threshold


class Enrollment(db.Model):
    """A one-time code with which a handheld enrolls for a courier."""

    __tablename__ = "enrollments"
    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))  # None: the CLI
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
