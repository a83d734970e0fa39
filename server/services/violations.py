"""Conduct violations: recorded by rules (idempotently), appealed by couriers, decided and voided by quality.

A violation is `open` when recorded; the courier may appeal it once from the
handheld (`appealed`); quality staff uphold or void the appeal, or confirm
(`upheld`) or void a violation with no appeal. A voided violation weighs nothing
in the grade, which is evaluated again at once (the history says why).
"""
from datetime import datetime, timedelta

from flask import current_app

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from schemas.limits import MAX_INT32
from schemas.vocab import VIOLATION_SEVERITY
from server import changes
from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, NotFound, RuleViolation
from server.extensions import db
from server.models import Courier, Violation, ViolationAppeal
from server.services import events, grades
from server.services.common import audit, get_or_404, newest_first, pending, snapshot

# How many of their newest violations a courier's handheld holds.
HANDHELD_VIOLATIONS = 20
DECIDERS = ("admin", "quality")
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def record_auto(*, courier_id: str, code: str, occurred_at: datetime, evidence: dict, task_id: str | None = None,
                key: str | None = None, source: str = "auto", severity: str | None = None,
                clock_suspect: bool | None = None) -> bool:
    """Record a violation once per (code, key), even from two hosts at once; True if this call did.

    The key defaults to the task (one late_without_notice per task); a checklist
    names its submission and item (one conduct_item_failed per failed item), a
    complaint itself. The courier's own record (violations and grade, on their
    handheld) moves its version when the transaction commits, so their device pulls it.
    The severity is the code's (VIOLATION_SEVERITY) unless the caller knows better: a failed
    checklist item weighs what the item's severity says. clock_suspect: the fact was
    dated by a device clock the sync engine flagged (None: as the evidence says), which
    puts the violation on quality's review list.
    """
    suspect = bool(evidence.get("clock_suspect")) if clock_suspect is None else clock_suspect
    insert = _INSERT[db.session.get_bind().dialect.name]
    statement = insert(Violation.__table__).values(
        courier_id=courier_id, code=code, task_id=task_id, source=source, evidence=evidence,
        severity=severity or VIOLATION_SEVERITY[code], status="open", clock_suspect=suspect,
        occurred_at=occurred_at, recorded_at=utcnow(), dedupe_key=f"{code}:{key or task_id}",
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Violation.id)
    if db.session.execute(statement).scalar() is None:
        return False
    changes.bump(db.session, "courier", courier_id)
    return True


def _with_appeals(rows: list[Violation]) -> list[Violation]:
    """Give each violation its appeal (or None), in one query."""
    found = {a.violation_id: a for a in db.session.scalars(
        select(ViolationAppeal).where(ViolationAppeal.violation_id.in_([v.id for v in rows])))} if rows else {}
    for violation in rows:
        violation.appeal = found.get(violation.id)
    return rows


def for_courier(*, courier_id: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A courier's violations, newest first, a page at a time."""
    get_or_404(Courier, courier_id, what="courier")
    page = newest_first(select(Violation).where(Violation.courier_id == courier_id), Violation.id,
                        cursor=cursor, limit=limit)
    _with_appeals(page["items"])
    return page


def mine(*, actor: Actor, cursor: int | None = None, limit: int = 50) -> dict:
    """The calling courier's own violations with their appeals, newest first."""
    return for_courier(courier_id=actor.courier_id, cursor=cursor, limit=limit)


def review_list(*, status: str | None = None, courier_id: str | None = None, clock_suspect: bool | None = None,
                code: str | None = None, cursor: int | None = None, limit: int = 50) -> dict:
    """Quality's list: violations newest first, by status, courier, code and whether the clock was suspect."""
    query = select(Violation)
    if status:
        query = query.where(Violation.status == status)
    if courier_id:
        query = query.where(Violation.courier_id == courier_id)
    if clock_suspect is not None:
        query = query.where(Violation.clock_suspect.is_(clock_suspect))
    if code:
        query = query.where(Violation.code == code)
    page = newest_first(query, Violation.id, cursor=cursor, limit=limit)
    _with_appeals(page["items"])
    return page


def between(*, courier_id: str, start: datetime, end: datetime) -> list[Violation]:
    """A courier's violations that happened in [start, end), oldest first, with their appeals."""
    return _with_appeals(list(db.session.scalars(select(Violation).where(
        Violation.courier_id == courier_id, Violation.occurred_at >= start, Violation.occurred_at < end)
        .order_by(Violation.occurred_at, Violation.id))))


def get(*, violation_id: int, for_update: bool = False) -> Violation:
    """One violation with its appeal, or 404."""
    query = select(Violation).where(Violation.id == violation_id)
    violation = db.session.scalar(query.with_for_update() if for_update else query) \
        if violation_id <= MAX_INT32 else None
    if violation is None:
        raise NotFound(f"No violation {violation_id}.", code="violation_not_found")
    return _with_appeals([violation])[0]


def attach_recent(couriers: list[Courier]) -> None:
    """Give each courier their newest violations (as recent_violations) with their appeals, in two queries."""
    ranked = (select(Violation.id, func.row_number().over(partition_by=Violation.courier_id,
                                                         order_by=Violation.id.desc()).label("n"))
              .where(Violation.courier_id.in_([c.id for c in couriers])).subquery())
    by_courier: dict[str, list[Violation]] = {c.id: [] for c in couriers}
    rows = list(db.session.scalars(select(Violation).join(ranked, ranked.c.id == Violation.id)
                                   .where(ranked.c.n <= HANDHELD_VIOLATIONS).order_by(Violation.id.desc())))
    made = {a.violation_id: a for a in pending(ViolationAppeal)}
    for violation in _with_appeals(rows):
        violation.appeal = violation.appeal or made.get(violation.id)
        by_courier[violation.courier_id].append(violation)
    for courier in couriers:
        courier.recent_violations = by_courier[courier.id]


# --- appeals and decisions -----------------------------------------------------------------------------------

def appeal(*, actor: Actor, appeal_id: str, violation_id: int, reason: str, photos: list[str],
           device_time: datetime, op_id: str, clock_suspect: bool = False) -> ViolationAppeal:
    """violation.appeal: the courier appeals their own violation, once; quality decides. Does not commit.

    Another courier's violation is not_assigned (as none); a voided one needs no
    appeal (violation_voided); a violation takes one appeal (appeal_exists). The
    appeal is dated by its device time, however late it arrives; a flagged clock is kept. An appeal dated before
    its violation was recorded (beyond CLOCK_SKEW_TOLERANCE_SECONDS) is flagged too: the handheld learns of a
    violation only once the server has recorded it, so that clock is wrong in a way the batch could not see.
    """
    violation = db.session.scalar(select(Violation).where(Violation.id == violation_id).with_for_update()) \
        if violation_id <= MAX_INT32 else None
    if violation is None or violation.courier_id != actor.courier_id:
        raise NotFound(f"No violation {violation_id} of this courier.", code="not_assigned",
                       fields={"payload.violation_id": ["Not a violation of this courier."]})
    if violation.status == "voided":
        raise RuleViolation(f"Violation {violation_id} is voided; there is nothing to appeal.",
                            code="violation_voided", fields={"payload.violation_id": ["Voided."]})
    existing = next((a for a in pending(ViolationAppeal) if a.violation_id == violation_id), None) or \
        db.session.scalar(select(ViolationAppeal).where(ViolationAppeal.violation_id == violation_id))
    if existing is not None:
        raise Conflict(f"Violation {violation_id} was appealed already ({existing.status}).", code="appeal_exists",
                       fields={"payload.violation_id": [f"Appeal {existing.id} is {existing.status}."]})
    tolerance = timedelta(seconds=current_app.config["CLOCK_SKEW_TOLERANCE_SECONDS"])
    clock_suspect = clock_suspect or device_time < violation.recorded_at - tolerance
    made = ViolationAppeal(id=appeal_id, violation_id=violation.id, courier_id=actor.courier_id, reason=reason,
                           photos=photos, status="open", device_time=device_time, received_at=utcnow(),
                           clock_suspect=clock_suspect, op_id=op_id, version=1)
    db.session.add(made)
    violation.status = "appealed"
    changes.bump(db.session, "courier", violation.courier_id)
    events.emit("violation.appealed", str(violation.id), {
        "violation_id": violation.id, "appeal_id": appeal_id, "courier_id": violation.courier_id,
        "code": violation.code, "device_time": device_time.isoformat(), "clock_suspect": clock_suspect})
    return made


def _close_appeal(appeal: ViolationAppeal, violation: Violation, *, outcome: str, reason: str, by: str) -> None:
    """Quality's word on an open appeal (upheld or voided): kept on the appeal, which the courier's handheld
    holds, and told as violation.appeal_decided."""
    appeal.status, appeal.decided_at, appeal.decided_by, appeal.decision_reason = outcome, utcnow(), by, reason
    appeal.version += 1
    events.emit("violation.appeal_decided", str(violation.id), {
        "violation_id": violation.id, "appeal_id": appeal.id, "courier_id": violation.courier_id,
        "outcome": outcome, "reason": reason, "by": by})


def _uphold(violation: Violation, *, by: str, reason: str) -> None:
    """The violation stands, decided (on its appeal, or confirmed): the courier's handheld copy changes."""
    violation.status, violation.decided_at, violation.decided_by = "upheld", utcnow(), by
    violation.decision_reason = reason
    changes.bump(db.session, "courier", violation.courier_id)


def _void(violation: Violation, *, by: str | None, reason: str, cause: dict) -> None:
    """Void the violation: it leaves the grade, which is kept again now (the history names the cause)."""
    violation.status, violation.decided_at, violation.decided_by = "voided", utcnow(), by
    violation.decision_reason = reason
    changes.bump(db.session, "courier", violation.courier_id)
    events.emit("violation.voided", str(violation.id), {
        "violation_id": violation.id, "courier_id": violation.courier_id, "code": violation.code,
        "reason": reason, "by": by})
    db.session.flush()
    grades.refresh(courier_id=violation.courier_id, by=by, cause={
        "code": "violation_voided", "violation_id": violation.id, "violation_code": violation.code,
        "severity": violation.severity, "reason": reason, "by": by, "points": 0, **cause})


def decide_appeal(*, actor: Actor, violation_id: int, outcome: str, reason: str) -> Violation:
    """Quality decides the violation's open appeal: upheld (it stands) or voided (it goes, with the grade). Commits."""
    violation = get(violation_id=violation_id, for_update=True)
    found = violation.appeal
    if found is None:
        raise NotFound(f"Violation {violation_id} has no appeal.", code="appeal_not_found")
    if found.status != "open":
        raise Conflict(f"The appeal of violation {violation_id} is already decided ({found.status}).",
                       code="appeal_decided")
    before, appeal_before = snapshot(violation), snapshot(found)
    _close_appeal(found, violation, outcome=outcome, reason=reason, by=actor.id)
    if outcome == "voided":
        _void(violation, by=actor.id, reason=reason, cause={"appeal_id": found.id})
    else:
        _uphold(violation, by=actor.id, reason=reason)
    audit(actor, "violation_appeal.decide", found, appeal_before)
    audit(actor, "violation.appeal_decided", violation, before)
    db.session.commit()
    return violation


def void(*, actor: Actor, violation_id: int, reason: str) -> Violation:
    """Quality voids a violation without (or before deciding) an appeal; an open appeal is decided voided. Commits."""
    violation = get(violation_id=violation_id, for_update=True)
    if violation.status == "voided":
        raise Conflict(f"Violation {violation_id} is already voided.", code="violation_voided")
    before = snapshot(violation)
    found = violation.appeal
    cause = {}
    if found is not None and found.status == "open":
        _close_appeal(found, violation, outcome="voided", reason=reason, by=actor.id)
        cause = {"appeal_id": found.id}
        audit(actor, "violation_appeal.decide", found, None)
    _void(violation, by=actor.id, reason=reason, cause=cause)
    audit(actor, "violation.void", violation, before)
    db.session.commit()
    return violation


def confirm(*, actor: Actor, violation_id: int, reason: str) -> Violation:
    """Quality confirms an open violation (one on a suspect clock, say): it stands, upheld. Commits."""
    violation = get(violation_id=violation_id, for_update=True)
    if violation.status == "appealed":
        raise Conflict(f"Violation {violation_id} is appealed: decide the appeal.", code="appeal_open")
    if violation.status != "open":
        raise Conflict(f"Violation {violation_id} is already {violation.status}.", code="violation_decided")
    before = snapshot(violation)
    _uphold(violation, by=actor.id, reason=reason)
    audit(actor, "violation.confirm", violation, before)
    db.session.commit()
    return violation


def void_by_review(*, code: str, key: str, reason: str, task_id: str, window_id: int) -> bool:
    """A rule's violation (code, key) voided because dispatch's review found otherwise; True if one was. Does not
    commit: the review's transaction does."""
    violation = db.session.scalar(select(Violation).where(Violation.dedupe_key == f"{code}:{key}")
                                  .with_for_update())
    if violation is None or violation.status == "voided":
        return False
    found = _with_appeals([violation])[0].appeal
    if found is not None and found.status == "open":
        found.status, found.decided_at, found.decision_reason = "voided", utcnow(), reason
        found.version += 1
    _void(violation, by=None, reason=reason, cause={"task_id": task_id, "window_id": window_id})
    return True


def load_appeals(ids: list[str]) -> list[ViolationAppeal]:
    """Appeals by id (an op's result shows the one it made)."""
    return list(db.session.scalars(select(ViolationAppeal).where(ViolationAppeal.id.in_(ids))))


def never_held(_courier_id, _day_start):
    """SQL condition for appeals: no device keeps them (the courier's record shows each violation's appeal)."""
    return ViolationAppeal.id.is_(None)
