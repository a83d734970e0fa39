"""Sync state: the op log, conflicts, the change feed and attachments."""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


# The conditions of the partial indexes, as every query that means to use one states them: SQLite uses a
# partial index only for a query whose WHERE names its condition as written (`in_sequence IS 1` is not).
IN_SEQUENCE = text("in_sequence")
HOLDS_OP_ID = text("holds_op_id")


class OpLog(db.Model):
    """Every op a device pushed, with what became of it: the field audit trail."""

    __tablename__ = "op_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    op_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(64), index=True)
    base_version: Mapped[int | None]
    payload: Mapped[dict] = mapped_column(JSONText)
    payload_hash: Mapped[str] = mapped_column(String(64))
    # When the op happened, as the device said (device_time, its offset) and as the engine decided
    # (effective_time, sync.timing: what every rule and the ledger went by). None for an op whose
    # device_time is not a time at all; effective_time is the device's for rows logged before it existed.
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device_utc_offset_min: Mapped[int | None]
    effective_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The device's clock minus the server's when the batch arrived (push's device_now), and whether this op's
    # time cannot be trusted (held beyond the tolerance, or its batch's clock off by more): decisions taken
    # on it are for dispatch to review.
    clock_skew_s: Mapped[int | None]
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), index=True)
    code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict] = mapped_column(JSONText)
    # False for a seq_reused op: it is kept for the record but holds no seq slot.
    in_sequence: Mapped[bool] = mapped_column(default=True)
    # True for the row that took its op_id for the device: the first in-sequence op with a well-formed
    # op_id. An op sent again under another seq (a duplicate, op_id_reused), a seq_reused op and an op
    # whose op_id is malformed hold none.
    holds_op_id: Mapped[bool] = mapped_column(default=False)
    # Set when the op-results-archive job slimmed `result` past the sync retention (sync.maintenance).
    result_archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        # The database, not Python, guarantees one effect per (device, seq).
        Index("uq_op_log_device_seq", "device_id", "seq", unique=True,
              sqlite_where=IN_SEQUENCE, postgresql_where=IN_SEQUENCE),
        # ... and one effect per (device, op_id). A query uses it with the bare HOLDS_OP_ID condition
        # (SQLite takes a partial index only for a query stating its condition as written).
        Index("uq_op_log_device_op_id", "device_id", "op_id", unique=True,
              sqlite_where=HOLDS_OP_ID, postgresql_where=HOLDS_OP_ID),
        Index("ix_op_log_device_id_id", "device_id", "id"),
        Index("ix_op_log_received_at", "received_at"),  # the attachment collector reads the recent ops
        # Only the rows still to archive: small, whatever the size of the log.
        Index("ix_op_log_unarchived", "received_at", sqlite_where=db.text("result_archived_at IS NULL"),
              postgresql_where=db.text("result_archived_at IS NULL")),
    )


class SyncConflict(db.Model):
    """An op made on a version that dispatch changed since; dispatch must look at it."""

    __tablename__ = "sync_conflicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    op_log_id: Mapped[int] = mapped_column(ForeignKey("op_log.id"), unique=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    applied: Mapped[bool]  # a field fact applied anyway, or a wish only recorded
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Change(db.Model):
    """One change to an entity in a courier's scope; position orders the feed.

    courier_id NULL means the entity is in every courier's scope (e.g. a
    checklist template). Positions are assigned in commit order (see
    server.database.take_feed_lock) and never reused (AUTOINCREMENT on SQLite).
    """

    __tablename__ = "changes"
    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    courier_id: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (
        Index("ix_changes_courier_position", "courier_id", "position"),
        {"sqlite_autoincrement": True},
    )


class SyncDoc(db.Model):
    """An entity as the handheld holds it, materialised as JSON when the entity changes.

    Written in the same transaction as the entity's feed row (sync.docs), so it
    is exactly as consistent as the feed; `version` is the entity's version the
    body shows, and a reader that finds it behind the entity renders afresh.
    """

    __tablename__ = "sync_docs"
    entity: Mapped[str] = mapped_column(String(32), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int]
    body: Mapped[str] = mapped_column(Text)


class SyncState(db.Model):
    """Server-wide sync facts: this database's epoch, how far the feed was compacted."""

    __tablename__ = "sync_state"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))


class Attachment(db.Model):
    """A content-addressed file (signature, photo); bytes live on disk."""

    __tablename__ = "attachments"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the attachments-gc job found something naming it: it is never collected after that.
    kept_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        Index("ix_attachments_unchecked", "created_at", sqlite_where=db.text("kept_at IS NULL"),
              postgresql_where=db.text("kept_at IS NULL")),
    )


class RefusedAttachment(db.Model):
    """Bytes that hashed to their name but were refused (unsafe SVG, not an image).

    Content-addressed, so the refusal is final for that sha256: an op naming it
    is rejected at once instead of waiting for an upload that cannot succeed.
    """

    __tablename__ = "refused_attachments"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    refused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CreatedEntity(db.Model):
    """An entity_id a device's create op made: one entity per id, whatever its kind or device.

    The primary key is what makes the rule hold across devices pushing at once
    (sync.push inserts here before it flushes the batch's new entities).
    """

    __tablename__ = "created_entities"
    entity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
