"""Upstream manifest rows the import could not take, kept for dispatch until someone resolves them."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class ManifestQuarantine(db.Model):
    """One manifest row held back: which file, which row, the row as received, and why (reasons naming fields)."""

    __tablename__ = "manifest_quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    # A CSV's first line of the waybill's rows (the header is line 1); a JSON array's element from 1; 0: the file.
    row_number: Mapped[int]
    waybill_no: Mapped[str | None] = mapped_column(String(100))
    raw: Mapped[dict | list | None] = mapped_column(JSONText)  # null once retention redacted it
    reasons: Mapped[list] = mapped_column(JSONText)  # [{field, code, message}]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    resolution_note: Mapped[str | None] = mapped_column(String(500))
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The same file again (under any name) quarantines nothing new.
    __table_args__ = (UniqueConstraint("file_sha256", "row_number", name="uq_manifest_quarantine_file_row"),
                      Index("ix_manifest_quarantine_resolved_at_id", "resolved_at", "id"))
