"""Information-leak incidents (信息泄露事件): the register, who was told, and what the service watches to open one."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class LeakIncident(db.Model):
    """One incident: when it happened and was found, what data of how many people, how found, where it stands."""

    __tablename__ = "leak_incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # schemas.vocab.LEAK_STATUSES
    source: Mapped[str] = mapped_column(String(16))  # schemas.vocab.LEAK_SOURCES: how it was found
    # What the service saw when it opened one on its own (link:<kind>:<id>, export:<staff>:<day>): one incident
    # per cause, however often the cause is seen again. Null for an incident staff reported.
    cause: Mapped[str | None] = mapped_column(String(96), unique=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # null: not known
    occurred_approximate: Mapped[bool] = mapped_column(default=False)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data_kinds: Mapped[list] = mapped_column(JSONText)  # schemas.vocab.LEAK_DATA_KINDS
    people_affected: Mapped[int | None]  # null: not known yet
    description: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSONText)  # an automatic cause's facts (the link, the export)
    responsible_staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    responsible_courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))  # null: the service itself
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_leak_incidents_discovered_at", "discovered_at"),
                      Index("ix_leak_incidents_status", "status"))

    notifications: Mapped[list["LeakNotification"]] = relationship(
        back_populates="incident", order_by="LeakNotification.id", lazy="selectin")


class LeakNotification(db.Model):
    """Whom the company told of an incident, when and how: each telling kept, never changed."""

    __tablename__ = "leak_notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("leak_incidents.id"), index=True)
    audience: Mapped[str] = mapped_column(String(16))  # schemas.vocab.LEAK_AUDIENCES
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))  # schemas.vocab.LEAK_CHANNELS
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))

    incident: Mapped[LeakIncident] = relationship(back_populates="notifications")


class LeakLinkUse(db.Model):
    """A customer or receipt link seen from one client address: the address as a keyed hash, never itself."""

    __tablename__ = "leak_link_uses"
    link_kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # schemas.vocab.LEAK_LINK_KINDS
    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LeakExportNote(db.Model):
    """Customer data handed to a staff member in bulk (a page of the task list, a task): what and how many rows."""

    __tablename__ = "leak_export_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(32))  # no foreign key: a note outlives nothing and is pruned
    what: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_leak_export_notes_staff_at", "staff_id", "at"),)
