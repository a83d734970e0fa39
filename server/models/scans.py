"""Parcel scans: the parcel's journey before, at and after the door (handheld, upstream, the handover's steps)."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db

UPSTREAM_ID = text("upstream_event_id IS NOT NULL")


class ParcelScan(db.Model):
    """One event of a parcel: where it was in the network, by whom, when the device said and when we heard."""

    __tablename__ = "parcel_scans"
    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_no: Mapped[str] = mapped_column(String(40))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(24))  # schemas.vocab.SCAN_EVENTS
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # handheld | upstream | handover
    # The time the device (or the upstream system) reported, and the time the rules go by (sync.timing for
    # a handheld; for upstream the reported time if it is possible, else the receipt).
    reported_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    effective_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"))
    device_id: Mapped[str | None] = mapped_column(String(32))
    upstream_id: Mapped[str | None] = mapped_column(String(32))  # the integration's staff user or token owner
    upstream_event_id: Mapped[str | None] = mapped_column(String(64))
    upstream_digest: Mapped[str | None] = mapped_column(String(64))  # a retry must carry the same body
    op_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_parcel_scans_parcel_no_effective_time", "parcel_no", "effective_time"),
        Index("ix_parcel_scans_task_id_effective_time", "task_id", "effective_time"),
        Index("uq_parcel_scans_source_upstream_event_id", "source", "upstream_event_id", unique=True,
              sqlite_where=UPSTREAM_ID, postgresql_where=UPSTREAM_ID),
    )
