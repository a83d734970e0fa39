"""Staff users, their API tokens and console sessions, the audit log and auth-failure records."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id
from server.models.types import JSONText


class StaffUser(db.Model):
    """A person in the dispatch office: dispatcher, quality, maintenance or admin."""

    __tablename__ = "staff_users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("s"))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The console's sign-in (argon2id, server/services/staff.py); none: the user cannot sign in to the console.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="staff", foreign_keys="ApiToken.staff_id",
                                                    order_by="ApiToken.id")


class ApiToken(db.Model):
    """A staff bearer token; only its SHA-256 is stored. last_used_at is stamped at most once a minute."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff: Mapped[StaffUser] = relationship(back_populates="tokens", foreign_keys=[staff_id])


class ConsoleSession(db.Model):
    """A signed-in console browser; only the SHA-256 of its cookie is stored. It ends at sign-out, at a new
    password, or after FIELDOPS_CONSOLE_IDLE_MINUTES without a request."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff: Mapped[StaffUser] = relationship()


class AuditEntry(db.Model):
    """One staff action: who, what, when, and the entity before and after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict | None] = mapped_column(JSONText)
    after: Mapped[dict | None] = mapped_column(JSONText)
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)


class AuthFailure(db.Model):
    """A failed authentication, kept in the database so every worker sees the count."""

    __tablename__ = "auth_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    __table_args__ = (Index("ix_auth_failures_key_at", "key", "at"),)
