"""Domain events (the outbox), webhook subscriptions and their deliveries."""
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText

_POSITION = BigInteger().with_variant(Integer, "sqlite")


class Event(db.Model):
    """One domain event, written in the transaction of the change it tells of.

    Positions are assigned at commit under the feed lock, so they follow commit
    order and a reader's cursor never passes an event still in flight; never
    reused (AUTOINCREMENT on SQLite). `id` is the event's public id (the
    webhook-id a receiver de-duplicates by).
    """

    __tablename__ = "events"
    position: Mapped[int] = mapped_column(_POSITION, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(JSONText)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_events_type_position", "type", "position"), {"sqlite_autoincrement": True})


class WebhookSubscription(db.Model):
    """Where an upstream system wants events POSTed, which types, and the secret they are signed with."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list] = mapped_column(JSONText)  # ["*"] for every type
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # The signing secret sealed with a key derived from SECRET_KEY (server.services.webhooks.seal).
    secret_sealed: Mapped[str] = mapped_column(String(200))
    # Events up to this position have their deliveries made (or did not match); new subscriptions start at
    # the newest event, so they receive what happens after they were made.
    fanned_out_to: Mapped[int] = mapped_column(_POSITION, default=0)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(db.Model):
    """One event for one subscription: its attempts, the last answer, and whether it is done."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_position: Mapped[int] = mapped_column(_POSITION, ForeignKey("events.position", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A worker's claim: its token and until when; an expired claim (a crashed worker) is claimed again.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("subscription_id", "event_position", name="uq_webhook_deliveries_event"),
                      Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_webhook_deliveries_subscription_id_id", "subscription_id", "id"))
