"""Tasks (a delivery or a pickup at one stop), their parcels, fees, history and assignments."""
from datetime import date, datetime, timedelta

from flask import current_app

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym, validates

from schemas.vocab import FINISHED_STATUSES, OPEN_STATUSES
from server import names
from server.clock import UTCDateTime, utcnow
from server.extensions import db
from server.ids import new_id
from server.models.types import JSONText


class FeeCode(db.Model):
    """A published fee; a task may charge only these (no private rush fees).

    Every handheld holds the active ones offline (pull entity `fee_code`, id = the code): a pickup charges
    only these. `version` is the row's sync version; a change to a code reaches the devices through the feed.
    """

    __tablename__ = "fee_codes"
    feed_entity = "fee_code"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    id = synonym("code")  # the sync engine names every entity's key `id`
    __mapper_args__ = {"version_id_col": version}

    def feed_scope(self) -> set[None]:
        """Published fees are in every courier's scope (None: every courier)."""
        return {None}


class ServiceProduct(db.Model):
    """A published service product (当日达, 次日达, ...) and the promise it makes, counted from collection.

    Exactly one of end_of_day_after (by the end of the depot-local day N after the day of collection) and
    within_hours (N hours after collection) is set (server.services.promises.promise_of).
    """

    __tablename__ = "service_products"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    end_of_day_after: Mapped[int | None]
    within_hours: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def id(self) -> str:
        """The code (the audit log names an entity by its id)."""
        return self.code


class Task(db.Model):
    """One delivery or pickup for one recipient, within an appointment window."""

    __tablename__ = "tasks"
    feed_entity = "task"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("t"))
    waybill_no: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="unassigned", index=True)
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_phone: Mapped[str] = mapped_column(String(32))
    # What dispatch searches by, kept in step with the name and phone (_search_keys): the surname case-folded
    # and the phone's last four digits (docs/decisions.md, "Task search").
    recipient_surname: Mapped[str | None] = mapped_column(String(100))
    recipient_phone_suffix: Mapped[str | None] = mapped_column(String(4))
    address: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    cod_amount: Mapped[int] = mapped_column(default=0)  # fen
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    service_date: Mapped[date] = mapped_column(Date, index=True)  # depot-local date of window_start
    courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)
    # The version at dispatch's last change: a device op based on an older
    # version did not see it, which is what makes the op a conflict.
    dispatch_version: Mapped[int] = mapped_column(default=1)
    # The version at which the current gift was set: a handheld whose copy is older never showed it.
    gift_version: Mapped[int | None]
    needs_review: Mapped[bool] = mapped_column(default=False)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    # Why the day's attempt failed (schemas.vocab.ATTEMPT_FAILURES) while the task is `failed`.
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    # An enclosed gift the courier must tell the customer about before they sign.
    gift_description: Mapped[str | None] = mapped_column(String(200))
    # The recipient must give the handover PIN dispatch issued (the hash is on the handover).
    pin_required: Mapped[bool] = mapped_column(default=False)
    # A return task: the task whose refused parcels it brings back.
    return_of_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    # The promise (server.services.promises): the product, the collection (揽收) upstream reported, and the time
    # and depot-local day the product promised, fixed when the task is created (null: promise unknown).
    service_product: Mapped[str | None] = mapped_column(ForeignKey("service_products.code"))
    collected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    promise_date: Mapped[date | None] = mapped_column(Date, index=True)
    # When the retention job redacted the recipient's personal data (docs/decisions.md, "Retention").
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    parcels: Mapped[list["Parcel"]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="Parcel.id")
    fees: Mapped[list["TaskFee"]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="TaskFee.id")
    events: Mapped[list["TaskEvent"]] = relationship(
        back_populates="task", order_by="TaskEvent.id", cascade="all, delete-orphan")
    appointment: Mapped["Appointment | None"] = relationship(  # noqa: F821 - server.models.appointments
        back_populates="task", cascade="all, delete-orphan", uselist=False)
    handover: Mapped["Handover | None"] = relationship(  # noqa: F821 - server.models.handover
        back_populates="task", cascade="all, delete-orphan", uselist=False)
    product: Mapped[ServiceProduct | None] = relationship()
    __mapper_args__ = {"version_id_col": version}
    # The retention job's search: finished long ago, not yet redacted.
    __table_args__ = (Index("ix_tasks_redacted_at_finished_at", "redacted_at", "finished_at"),
                      Index("ix_tasks_status_promised_at", "status", "promised_at"),
                      # Task search (services.tasks.get_all's q): by surname or phone suffix, on a day or any day;
                      # by waybill prefix (PostgreSQL's LIKE 'AB%' needs pattern ops under a non-C collation).
                      Index("ix_tasks_recipient_surname_service_date", "recipient_surname", "service_date"),
                      Index("ix_tasks_recipient_phone_suffix_service_date", "recipient_phone_suffix", "service_date"),
                      Index("ix_tasks_waybill_prefix", "waybill_no", postgresql_ops={"waybill_no": "varchar_pattern_ops"}))

    @validates("recipient_name", "recipient_phone")
    def _search_keys(self, key: str, value: str) -> str:
        """Whenever the name or the phone changes (created, updated from a manifest, redacted), so do their keys."""
        if key == "recipient_name":
            self.recipient_surname = names.surname_key(value)
        else:
            self.recipient_phone_suffix = names.phone_suffix(value)
        return value

    def feed_scope(self) -> set[str]:
        """A task is in its assigned courier's scope (the feed decides tombstones)."""
        return {self.courier_id} if self.courier_id else set()

    @property
    def is_finished(self) -> bool:
        """Delivered, refused, failed or cancelled."""
        return self.status in FINISHED_STATUSES

    def promise_state(self, now: datetime, lead: timedelta) -> str:
        """Where the task stands against its promise (schemas.vocab.PROMISE_STATES; docs/decisions.md, "Issue 22").

        Open: on_track, at_risk (within the lead) or breached (past). Delivered: kept or missed by the handover's
        device time. Refused, cancelled: closed (no promise was failed). Failed past the promise: breached (the
        parcel still waits). Without a promise: unknown.
        """
        if self.promised_at is None:
            return "unknown"
        if self.status == "delivered":
            signed = self.handover.completed_at if self.handover is not None else None
            signed = signed or self.finished_at
            return "kept" if signed is not None and signed <= self.promised_at else "missed"
        if self.status in ("refused", "cancelled", "collected"):
            return "closed"
        if self.promised_at <= now:
            return "breached"
        if self.status in OPEN_STATUSES and self.promised_at <= now + lead:
            return "at_risk"
        return "on_track"

    @property
    def promise_view(self) -> dict | None:
        """The promise as every face shows it (schemas.tasks.PromiseOut), now; None without product or collection."""
        if self.service_product is None and self.collected_at is None:
            return None
        lead = timedelta(minutes=current_app.config["PROMISE_AT_RISK_MINUTES"])
        state = self.promise_state(utcnow(), lead)
        product = self.product
        return {"service_product": self.service_product, "name_zh": product.name_zh if product else None,
                "name_en": product.name_en if product else None, "collected_at": self.collected_at,
                "promised_at": self.promised_at, "promise_date": self.promise_date, "state": state,
                "at_risk": state in ("at_risk", "breached")}


class Parcel(db.Model):
    """A parcel of a task, with how many pieces the recipient should count."""

    __tablename__ = "parcels"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    parcel_no: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(200), default="")
    count: Mapped[int] = mapped_column(default=1)
    # suspected_lost (the scheduler: unscanned too long) | lost | found (dispatch), who said so and when.
    lost_state: Mapped[str | None] = mapped_column(String(16))
    lost_state_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_state_by: Mapped[str | None] = mapped_column(String(32))  # a staff id, or "system"
    # What the sender declared it worth (fen) and whether they paid to insure it: a claim's rule reads them.
    declared_value: Mapped[int | None]
    insured: Mapped[bool] = mapped_column(default=False, server_default="0")
    task: Mapped[Task] = relationship(back_populates="parcels")
    __table_args__ = (
        # Dispatch's list of parcels in a lost state: small, whatever the number of parcels.
        Index("ix_parcels_lost_state", "lost_state", sqlite_where=db.text("lost_state IS NOT NULL"),
              postgresql_where=db.text("lost_state IS NOT NULL")),
    )


class TaskFee(db.Model):
    """A published fee charged on a task, in fen."""

    __tablename__ = "task_fees"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(ForeignKey("fee_codes.code"))
    amount: Mapped[int]
    task: Mapped[Task] = relationship(back_populates="fees")


class TaskEvent(db.Model):
    """Something that happened to a task: created, assigned, a note, an arrival, ..."""

    __tablename__ = "task_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff | courier | system
    actor_id: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONText)
    task: Mapped[Task] = relationship(back_populates="events")


class TaskAssignment(db.Model):
    """Who held a task and when; a courier's past tasks stay answerable."""

    __tablename__ = "task_assignments"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    __table_args__ = (Index("ix_task_assignments_task_courier", "task_id", "courier_id"),)
