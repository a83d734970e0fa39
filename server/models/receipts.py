"""Sealed receipts of completed handovers, the keys that seal them, and the daily receipt counter."""
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id


class ReceiptKey(db.Model):
    """A public key that has sealed receipts; it stays published after rotation so old receipts verify."""

    __tablename__ = "receipt_keys"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)  # sha256(raw public key)[:16 hex]
    public_key: Mapped[str] = mapped_column(String(64))  # the 32 raw bytes, base64url without padding
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: the key that signs now


class Receipt(db.Model):
    """One handover's receipt: the canonical JSON exactly as signed, and its Ed25519 signature."""

    __tablename__ = "receipts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("r"))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    # The public page's capability (random, 256 bits; unrelated to the number): its SHA-256 finds the
    # receipt, and it is kept sealed (server.sealing) to be shown again; never stored as issued.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_sealed: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"))  # evidence outlives nothing: no cascade
    kind: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(ForeignKey("receipt_keys.key_id"))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON, the bytes that were signed (UTF-8)
    signature: Mapped[str] = mapped_column(String(100))  # base64url without padding, 64 bytes
    __table_args__ = (UniqueConstraint("task_id", "kind"),)


class ReceiptCounter(db.Model):
    """The last receipt number given out on a depot-local day; the upsert on it serialises issuers."""

    __tablename__ = "receipt_counters"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int]
