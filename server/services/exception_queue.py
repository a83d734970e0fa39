"""The exceptions queue: everything at a door or a window dispatch must act on, acknowledged and resolved.

Handover exceptions (damage, a refusal, a mismatch, work without a shift check) are
written by the handover and duty services; the appointment's (a promised window
never attempted, a wrong number, a failed attempt, a window under review) by
flag() below. All are rows of one table, so one queue lists them. A row is open,
then acknowledged (someone has it), then resolved with a note; both steps are
audited and idempotent. A window under review is resolved by deciding the review
(appointments.decide_review), never in the queue: the decision is the resolution.
"""
from datetime import date, datetime

from sqlalchemy import select

from server.auth import Actor
from server.clock import filed_at, local_date, utcnow
from server.errors import Conflict, NotFound
from server.extensions import db
from server.models import HandoverException, Task
from server.services.common import audit, oldest_first, snapshot

REVIEW_KIND = "window_review"


def flag(*, task: Task, kind: str, occurred_at: datetime | None, op_id: str | None = None,
         detail: dict | None = None) -> None:
    """Put an appointment's exception in the queue, dated by when it happened (clock.filed_at's day). Does not
    commit."""
    now = utcnow()
    db.session.add(HandoverException(
        task_id=task.id, courier_id=task.courier_id, kind=kind, day=local_date(filed_at(occurred_at, now)),
        occurred_at=occurred_at or now, recorded_at=now, op_id=op_id,
        detail={"waybill_no": task.waybill_no, **(detail or {})}))


def get_all(*, day: date | None = None, kind: str | None = None, status: str | None = None,
            courier_id: str | None = None, task_id: str | None = None, cursor: int | None = None,
            limit: int = 50) -> dict:
    """The queue, oldest first, a page at a time: of a depot-local day or every day, of a kind, in a status."""
    query = _filtered(day=day, kind=kind, status=status, courier_id=courier_id, task_id=task_id)
    return oldest_first(query, HandoverException.id, cursor=cursor, limit=limit)


def export_rows(*, day: date | None = None, kind: str | None = None, status: str | None = None,
                courier_id: str | None = None, limit: int) -> list[HandoverException]:
    """The queue's rows for a CSV, oldest first, at most limit."""
    query = _filtered(day=day, kind=kind, status=status, courier_id=courier_id, task_id=None)
    return list(db.session.scalars(query.order_by(HandoverException.id).limit(limit)))


def _filtered(*, day, kind, status, courier_id, task_id):
    """The queue's query with its filters."""
    query = select(HandoverException)
    for column, value in ((HandoverException.day, day), (HandoverException.kind, kind),
                          (HandoverException.courier_id, courier_id), (HandoverException.task_id, task_id)):
        if value is not None:
            query = query.where(column == value)
    if status == "open":
        query = query.where(HandoverException.acknowledged_at.is_(None), HandoverException.resolved_at.is_(None))
    elif status == "acknowledged":
        query = query.where(HandoverException.acknowledged_at.is_not(None), HandoverException.resolved_at.is_(None))
    elif status == "resolved":
        query = query.where(HandoverException.resolved_at.is_not(None))
    return query


def get(*, exception_id: int, for_update: bool = False) -> HandoverException:
    """One exception, or 404."""
    query = select(HandoverException).where(HandoverException.id == exception_id)
    exception = db.session.scalar(query.with_for_update() if for_update else query)
    if exception is None:
        raise NotFound(f"No exception {exception_id}.", code="exception_not_found")
    return exception


def acknowledge(*, actor: Actor, exception_id: int) -> HandoverException:
    """Dispatch has it: who and when, audited. Again (or once resolved) changes nothing. Commits."""
    exception = get(exception_id=exception_id, for_update=True)
    if exception.acknowledged_at is None:
        before = snapshot(exception)
        exception.acknowledged_by, exception.acknowledged_at = actor.id, utcnow()
        audit(actor, "exception.acknowledge", exception, before)
    db.session.commit()
    return exception


def resolve(*, actor: Actor, exception_id: int, note: str) -> HandoverException:
    """Resolved with a note: who, when, why, audited; acknowledged too if no one had. Commits.

    The same note again is the same resolution (a retry) and changes nothing;
    another note on a resolved exception is a conflict. A window under review is
    resolved by deciding it.
    """
    exception = get(exception_id=exception_id, for_update=True)
    if exception.resolved_at is not None:
        if exception.resolution_note != note:
            raise Conflict(f"Exception {exception_id} was resolved at {exception.resolved_at.isoformat()} with "
                           "another note.", code="exception_already_resolved")
        db.session.commit()
        return exception
    if exception.kind == REVIEW_KIND:
        raise Conflict(f"Exception {exception_id} is a window under review: decide it "
                       f"(POST /api/v1/dispatch/tasks/{exception.task_id}/appointment/review).",
                       code="review_decides")
    _resolve(actor, exception, note)
    db.session.commit()
    return exception


def _resolve(actor: Actor, exception: HandoverException, note: str) -> None:
    """Write the resolution and its audit row. Does not commit."""
    before = snapshot(exception)
    now = utcnow()
    if exception.acknowledged_at is None:
        exception.acknowledged_by, exception.acknowledged_at = actor.id, now
    exception.resolved_by, exception.resolved_at, exception.resolution_note = actor.id, now, note
    audit(actor, "exception.resolve", exception, before)


def resolve_review(*, actor: Actor, task_id: str, window_id: int, note: str) -> None:
    """The review of a window was decided: its queue entry is resolved with the decision's note. Does not
    commit."""
    rows = db.session.scalars(select(HandoverException).where(
        HandoverException.task_id == task_id, HandoverException.kind == REVIEW_KIND,
        HandoverException.resolved_at.is_(None)))
    for exception in rows:
        if (exception.detail or {}).get("window_id") == window_id:
            _resolve(actor, exception, note)
