"""Customer complaints about couriers, with their response and resolution times."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

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
    resolved_at_first_contact: Mapped[bool | None] = mapped_column()
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    satisfaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("violations.id"))
    __table_args__ = (Index("ix_complaints_courier_id_id", "courier_id", "id"),
                      Index("ix_complaints_open_due", "first_response_at", "response_due_at"),
                      Index("ix_complaints_received_at", "received_at"))

    @property
    def overdue(self) -> bool:
        """No first response yet, and its time is up."""
        return self.first_response_at is None and self.response_due_at < utcnow()

    @property
    def responded_in_time(self) -> bool | None:
        """Whether the first response came by its due time; None until there is one."""
        return None if self.first_response_at is None else self.first_response_at <= self.response_due_at
