"""The cash ledger: payments collected, cash remitted, corrections; entries are never edited."""
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db


class LedgerEntry(db.Model):
    """One movement of a courier's money on a depot-local day, in fen."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # payment | remittance | correction
    # A payment or remittance is positive; a correction is signed (added to what was collected).
    amount: Mapped[int]
    method: Mapped[str | None] = mapped_column(String(8))  # a payment's: cash | qr
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"))
    op_id: Mapped[str | None] = mapped_column(String(64))  # the op that collected a payment
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    note: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_ledger_entries_courier_day", "courier_id", "day"),)
