"""The handover at the door: its current state per task, every step as a row, and the exceptions dispatch sees."""
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.models.types import JSONText


class Handover(db.Model):
    """Where a task's handover stands: what the handheld pulls to carry on after a restart."""

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    # The handover PIN: a salted PBKDF2 hash the handheld checks offline; sealed (server.sealing) for the
    # customer page, which shows it to its customer; never stored as issued.
    pin_salt: Mapped[str | None] = mapped_column(String(32))
    pin_hash: Mapped[str | None] = mapped_column(String(64))
    pin_iterations: Mapped[int | None]
    pin_sealed: Mapped[str | None] = mapped_column(String(200))
    pin_failures: Mapped[int] = mapped_column(default=0, server_default="0")  # wrong PINs since it was issued
    recipient_verified: Mapped[bool] = mapped_column(default=False)
    verify_method: Mapped[str | None] = mapped_column(String(16))
    recipient_name: Mapped[str | None] = mapped_column(String(100))
    recipient_relation: Mapped[str | None] = mapped_column(String(100))
    inspection: Mapped[str | None] = mapped_column(String(16))  # accepted | refused (by the customer)
    items: Mapped[list | None] = mapped_column(JSONText)  # [{parcel_no, counted, expected, condition}]
    discrepancy: Mapped[bool] = mapped_column(default=False)
    # The inspection's parcel lines, and how many of them were damaged or short (missing, or fewer pieces
    # counted than expected): kept beside `items` so the damage and loss rates are sums in SQL.
    items_inspected: Mapped[int | None]
    items_damaged: Mapped[int | None]
    items_short: Mapped[int | None]
    damaged: Mapped[bool] = mapped_column(default=False)
    paid_amount: Mapped[int | None]  # fen
    paid_method: Mapped[str | None] = mapped_column(String(8))
    fees: Mapped[list | None] = mapped_column(JSONText)  # a pickup's fees charged [{code, amount}]
    photos: Mapped[list | None] = mapped_column(JSONText)  # sha256 of every photo of its accepted steps
    signed: Mapped[bool] = mapped_column(default=False)
    signer_name: Mapped[str | None] = mapped_column(String(100))
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    gift_disclosed: Mapped[bool] = mapped_column(default=False)
    refusal_reason: Mapped[str | None] = mapped_column(String(16))
    alternate_place: Mapped[str | None] = mapped_column(String(16))
    authorization: Mapped[dict | None] = mapped_column(JSONText)  # {via, reference}
    # Consent to an alternate place given on the customer page (place, note, at), checked by pod.deliver_alternate;
    # withdrawn_at is set when the customer takes it back (a new consent clears it).
    consent_place: Mapped[str | None] = mapped_column(String(16))
    consent_note: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_at_address: Mapped[bool] = mapped_column(default=False)
    distance_m: Mapped[float | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered | refused | collected, once complete
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # device time
    completed_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_op_id: Mapped[str | None] = mapped_column(String(64))
    courier_id: Mapped[str | None] = mapped_column(String(32))  # who completed it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    task: Mapped["Task"] = relationship(back_populates="handover")  # noqa: F821 - server.models.tasks

    @property
    def begun(self) -> bool:
        """Whether a step at the door was taken (recipient checked, parcels inspected, paid, or completed).

        A PIN issued is not a step: it makes the row before the courier arrives.
        """
        return (self.recipient_verified or self.inspection is not None or self.paid_amount is not None
                or self.outcome is not None)


class HandoverStep(db.Model):
    """One step of a handover as the field reported it, kept forever (the timeline); refused steps too."""

    __tablename__ = "handover_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    courier_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | rejected
    code: Mapped[str | None] = mapped_column(String(32))  # why it was rejected
    op_id: Mapped[str | None] = mapped_column(String(64))
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    clock_suspect: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict] = mapped_column(JSONText)  # the payload as the rules read it (a PIN never)
    # The refused steps alone, by task (few beside the accepted ones): the KPI report reads a task's refusals
    # for order and unauthorised drops from it (docs/kpis.md), without visiting the accepted steps.
    __table_args__ = (Index("ix_handover_steps_rejected", "task_id", "kind", "code",
                            sqlite_where=text("outcome = 'rejected'"), postgresql_where=text("outcome = 'rejected'")),)


class HandoverException(db.Model):
    """Something at a handover dispatch must look at: damage, a count discrepancy, a refusal, a mismatch."""

    __tablename__ = "handover_exceptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    courier_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    day: Mapped[date] = mapped_column(Date)  # depot-local date it happened (device time)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    op_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSONText)
    # Dispatch works the queue: acknowledged (someone has it), then resolved with a note. Status follows
    # from the times: open, acknowledged, resolved.
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))  # a staff user id
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_note: Mapped[str | None] = mapped_column(String(500))
    __table_args__ = (Index("ix_handover_exceptions_day_kind_id", "day", "kind", "id"),
                      Index("ix_handover_exceptions_resolved_at", "resolved_at"))

    @property
    def queue_status(self) -> str:
        """open, acknowledged or resolved (server/services/exception_queue.py filters on the same times)."""
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acknowledged_at is not None else "open"
