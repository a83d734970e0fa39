"""Customer complaints about couriers, with their response and resolution times, contacts and reopenings."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db


class Complaint(db.Model):
    """A complaint: received, first answered, resolved (upheld, rejected or withdrawn), then rated by the customer."""

    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Fixed when the complaint is received, from the target then in force: changing the target later
    # does not make old complaints overdue or on time after the fact.
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    first_response_text: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    # What the office ticked when resolving (deprecated, kept as given): first-contact resolution is derived from
    # the contacts and reopenings below (docs/kpis.md), never from this box.
    resolved_at_first_contact: Mapped[bool | None] = mapped_column()
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    satisfaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("violations.id"))
    __table_args__ = (Index("ix_complaints_courier_id_id", "courier_id", "id"),
                      Index("ix_complaints_open_due", "first_response_at", "response_due_at"),
                      Index("ix_complaints_received_at", "received_at"))

    contacts: Mapped[list["ComplaintContact"]] = relationship(
        back_populates="complaint", order_by="ComplaintContact.id", lazy="selectin")
    reopenings: Mapped[list["ComplaintReopening"]] = relationship(
        back_populates="complaint", order_by="ComplaintReopening.id", lazy="selectin")

    @property
    def overdue(self) -> bool:
        """No first response yet, and its time is up."""
        return self.first_response_at is None and self.response_due_at < utcnow()

    @property
    def responded_in_time(self) -> bool | None:
        """Whether the first response came by its due time; None until there is one."""
        return None if self.first_response_at is None else self.first_response_at <= self.response_due_at


class ComplaintContact(db.Model):
    """A contact with the customer about a complaint (its first response is one), dated when recorded."""

    __tablename__ = "complaint_contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # first_response | contact | legacy
    channel: Mapped[str | None] = mapped_column(String(16))  # none for a first response by /respond, or legacy
    note: Mapped[str | None] = mapped_column(Text)
    contacted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    __table_args__ = (Index("ix_complaint_contacts_complaint_id_contacted_at", "complaint_id", "contacted_at"),)

    complaint: Mapped[Complaint] = relationship(back_populates="contacts")


class ComplaintReopening(db.Model):
    """A resolved complaint brought back by its customer: why, when, by whom, and the resolution it undid."""

    __tablename__ = "complaint_reopenings"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    reopened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reopened_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    # The resolution (and the customer's satisfaction with it) as it stood when reopened.
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_at_first_contact: Mapped[bool | None] = mapped_column()
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    satisfaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    complaint: Mapped[Complaint] = relationship(back_populates="reopenings")
