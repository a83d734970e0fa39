"""Messages to customers: each one an event told to a task's recipient by SMS, its delivery, and their language."""
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db

_POSITION = BigInteger().with_variant(Integer, "sqlite")


class CustomerMessage(db.Model):
    """One event told to a task's recipient: the text as rendered, where it went, and how its delivery stands.

    One event makes at most one message (event_id is unique). The phone is the
    task's, stored as the task stores it, and never logged; the retention job
    clears it with the task's.
    """

    __tablename__ = "customer_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(String(1000))
    to_phone: Mapped[str | None] = mapped_column(String(32))
    # The depot-local day the message was made: the per-customer daily cap counts by it.
    local_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))  # why it was suppressed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker's claim, as webhook deliveries': its token and until when.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(100))  # the gateway's id of the sent message
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_customer_messages_due", "status", "next_attempt_at"),
                      Index("ix_customer_messages_task_id_id", "task_id", "id"),
                      Index("ix_customer_messages_phone_day", "to_phone", "local_day"))


class CustomerLanguage(db.Model):
    """The language a task's recipient chose (on their page); without one, messages are in Chinese."""

    __tablename__ = "customer_languages"
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageFeed(db.Model):
    """How far the event feed has been turned into messages (one row; made by the migration at the newest event,
    so history from before messages existed is never sent)."""

    __tablename__ = "message_feed"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(_POSITION, default=0)
