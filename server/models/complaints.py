"""Customer complaints (about a courier, a depot, the hotline or the product), with their owner and handovers,
response, resolution and update times, contacts and reopenings."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db


class Complaint(db.Model):
    """A complaint: received, owned, first answered, resolved (upheld, rejected or withdrawn), then rated."""

    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    # What it is about (COMPLAINT_SUBJECTS); courier_id names the courier of a complaint about one, else none.
    subject: Mapped[str] = mapped_column(String(16), default="courier", server_default="courier")
    courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Fixed when the complaint is received, from the target then in force: changing the target later
    # does not make old complaints overdue or on time after the fact.
    response_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Fixed the same way, by category (anew when reopened); none on complaints received before issue 23.
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The next update to the customer is due by then: set at each contact (and reopening), until resolved.
    update_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 首问负责制: the staff member who first received it, until resolved or handed over (complaint_handovers).
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    owned_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The customer's photo from their page (a content-addressed attachment), and the low rating a follow-up opened.
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    rating_id: Mapped[int | None] = mapped_column(ForeignKey("ratings.id", ondelete="SET NULL"), unique=True)
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
                      Index("ix_complaints_received_at", "received_at"),
                      Index("ix_complaints_owner_id_id", "owner_id", "id"))

    contacts: Mapped[list["ComplaintContact"]] = relationship(
        back_populates="complaint", order_by="ComplaintContact.id", lazy="selectin")
    reopenings: Mapped[list["ComplaintReopening"]] = relationship(
        back_populates="complaint", order_by="ComplaintReopening.id", lazy="selectin")
    handovers: Mapped[list["ComplaintHandover"]] = relationship(
        back_populates="complaint", order_by="ComplaintHandover.id", lazy="selectin")

    @property
    def reference(self) -> str:
        """The number the customer is given (TS for 投诉)."""
        return f"TS{self.id:08d}"

    @property
    def overdue_reasons(self) -> list[str]:
        """Why it is overdue (COMPLAINT_OVERDUE_REASONS), as services.complaints.overdue_condition says in SQL."""
        now, reasons = utcnow(), []
        if self.first_response_at is None and self.response_due_at < now:
            reasons.append("response")
        if self.status != "resolved":
            if self.resolution_due_at is not None and self.resolution_due_at < now:
                reasons.append("resolution")
            if self.update_due_at is not None and self.update_due_at < now:
                reasons.append("update")
        return reasons

    @property
    def overdue(self) -> bool:
        """Overdue for any reason."""
        return bool(self.overdue_reasons)

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


class ComplaintHandover(db.Model):
    """The complaint passed from its owner (none: an unowned one assigned) to another staff member, and why."""

    __tablename__ = "complaint_handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    from_staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    to_staff_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"))
    reason: Mapped[str] = mapped_column(Text)
    handed_over_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handed_over_by: Mapped[str] = mapped_column(ForeignKey("staff_users.id"))

    complaint: Mapped[Complaint] = relationship(back_populates="handovers")
