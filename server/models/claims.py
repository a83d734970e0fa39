"""Claims (理赔) for a damaged or lost parcel: where each stands, and every step and correction as its own row."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class Claim(db.Model):
    """A claim for one parcel of a task, from one origin: its current step, amounts and the due time of the next."""

    __tablename__ = "claims"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)  # evidence outlives nothing: no cascade
    parcel_no: Mapped[str] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(16))  # schemas.vocab.CLAIM_ORIGINS
    origin_id: Mapped[str | None] = mapped_column(String(64))  # the exception, complaint or receipt it came from
    kind: Mapped[str] = mapped_column(String(16))  # damage | loss | other
    description: Mapped[str] = mapped_column(Text)
    claimed_amount: Mapped[int]  # fen
    status: Mapped[str] = mapped_column(String(16), default="opened")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by: Mapped[str | None] = mapped_column(String(32))  # a staff id, or the receipt of a customer's claim
    opened_by_kind: Mapped[str] = mapped_column(String(16))  # staff | customer | system
    # The next step's due time, fixed when the step before it was taken (null once paid or rejected), and how
    # many steps were taken after theirs: what 理赔时效 reads (docs/kpis.md).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late_steps: Mapped[int] = mapped_column(default=0)
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rule: Mapped[str | None] = mapped_column(String(32))
    first_assessed_amount: Mapped[int | None]
    amount: Mapped[int | None]  # the amount now owed: assessed, as corrected
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_amount: Mapped[int | None]  # as paid, as corrected
    payment_reference: Mapped[str | None] = mapped_column(String(64))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    corrections: Mapped[int] = mapped_column(default=0)
    __table_args__ = (Index("ix_claims_parcel_origin", "task_id", "parcel_no", "origin", "origin_id"),
                      Index("ix_claims_status_due", "status", "due_at"),
                      Index("ix_claims_opened_at", "opened_at"))

    entries: Mapped[list["ClaimEntry"]] = relationship(
        back_populates="claim", order_by="ClaimEntry.id", lazy="selectin")

    @property
    def overdue(self) -> bool:
        """Still open, and its next step's time is up."""
        return self.due_at is not None and self.due_at < utcnow()


class ClaimEntry(db.Model):
    """One step of a claim or one correction, never changed: a correction is a new entry naming the one it corrects."""

    __tablename__ = "claim_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"))
    kind: Mapped[str] = mapped_column(String(16))  # schemas.vocab.CLAIM_ENTRY_KINDS
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | customer | system
    actor_id: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[int | None]  # fen: assessed, paid, or the corrected amount
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("claim_entries.id"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # this step's due time, as it stood
    late: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict | None] = mapped_column(JSONText)  # the rule and its inputs, a reference, a reason
    __table_args__ = (Index("ix_claim_entries_claim_id_id", "claim_id", "id"),)

    claim: Mapped[Claim] = relationship(back_populates="entries")
