"""The courier's service grade (A, B, C): scored over a rolling window, stored by a job and on demand.

The rules (docs/decisions.md, "Complaints and the service grade"): a score of
100, less each violation in the window by its severity (the code's,
schemas.vocab.VIOLATION_SEVERITY, or a failed checklist item's own; points in GRADE_POINTS), less points per
percentage point of on-time rate below target once enough appointments were
decided, less GRADE_LOW_RATING_POINTS per customer rating of GRADE_LOW_RATING_MAX
or less given in the window; A at or above GRADE_A_MIN, B at or above GRADE_B_MIN, else C; a
critical violation in the window keeps a courier out of A. Every setting is
in server.config.

Voided violations weigh nothing. A grade quality staff set by hand (an override, with
its reason) holds until its `until` or its lifting: neither the job nor a recompute
overwrites it. Each history row says why the grade changed: the evaluation's reasons,
led by what staff did (an override set or lifted, a violation voided) when they did it.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, func, or_, select

from schemas.vocab import ON_TIME_DECIDED, ON_TIME_KEPT, SEVERITIES
from server.auth import Actor
from server.clock import utcnow
from server.extensions import db
from server.errors import Conflict, ValidationFailed
from server.models import (Appointment, AppointmentWindow, Courier, GradeChange, GradeOverride, Rating, Task,
                           Violation)
from server.services import events
from server.services.common import audit, get_or_404, newest_first, snapshot

_CHUNK = 100


_SEVERITY_ORDER = list(SEVERITIES)

def _violation_counts(courier_ids: list[str], start: datetime,
                      end: datetime) -> dict[str, dict[tuple[str, str], int]]:
    """{courier: {(code, severity): count}} of violations that occurred in [start, end)."""
    rows = db.session.execute(
        select(Violation.courier_id, Violation.code, Violation.severity, func.count())
        .where(Violation.courier_id.in_(courier_ids), Violation.occurred_at >= start, Violation.occurred_at < end,
               Violation.status != "voided")
        .group_by(Violation.courier_id, Violation.code, Violation.severity))
    out: dict[str, dict[tuple[str, str], int]] = {}
    for courier_id, code, severity, count in rows:
        out.setdefault(courier_id, {})[(code, severity)] = count
    return out


def _appointment_counts(courier_ids: list[str], start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """{courier: {outcome: count}} of their tasks' windows on-time counts (ON_TIME_DECIDED, as the KPI report:
    every agreed or promised window decided, replaced after its decision too) that ended in [start, end)."""
    rows = db.session.execute(
        select(Task.courier_id, AppointmentWindow.outcome, func.count())
        .select_from(AppointmentWindow)
        .join(Appointment, Appointment.id == AppointmentWindow.appointment_id)
        .join(Task, Task.id == Appointment.task_id)
        .where(Task.courier_id.in_(courier_ids), AppointmentWindow.outcome.in_(ON_TIME_DECIDED),
               AppointmentWindow.end >= start, AppointmentWindow.end < end)
        .group_by(Task.courier_id, AppointmentWindow.outcome))
    out: dict[str, dict[str, int]] = {}
    for courier_id, outcome, count in rows:
        out.setdefault(courier_id, {})[outcome] = count
    return out


def _rating_counts(courier_ids: list[str], start: datetime, end: datetime, low_max: int) -> dict[str, dict[str, int]]:
    """{courier: {ratings, low}} of customer ratings given in [start, end) of their tasks (low: at most low_max)."""
    rows = db.session.execute(
        select(Task.courier_id, func.count(), func.sum(case((Rating.score <= low_max, 1), else_=0)))
        .join(Task, Task.id == Rating.task_id)
        .where(Task.courier_id.in_(courier_ids), Rating.created_at >= start, Rating.created_at < end)
        .group_by(Task.courier_id))
    return {courier_id: {"ratings": count, "low": int(low or 0)} for courier_id, count, low in rows}


def score(*, violations: dict[tuple[str, str], int], appointments: dict[str, int], config,
          ratings: dict[str, int] | None = None) -> tuple[str, int, list[dict]]:
    """(grade, score, reasons) from a window's violation counts by (code, severity), appointments by outcome, ratings."""
    total, reasons, critical = 100, [], 0
    for code, severity in sorted(violations, key=lambda k: (k[0], _SEVERITY_ORDER.index(k[1]))):
        count = violations[(code, severity)]
        points = count * config["GRADE_POINTS"][severity]
        reasons.append({"code": "violations", "violation_code": code, "severity": severity,
                        "count": count, "points": points})
        total -= points
        critical += count if severity == "critical" else 0
    # Every window on-time counts; one under review is counted and gets no credit until dispatch decides it.
    kept = appointments.get(ON_TIME_KEPT, 0)
    decided = sum(appointments.get(outcome, 0) for outcome in ON_TIME_DECIDED)
    target = config["GRADE_ON_TIME_TARGET_PERCENT"]
    on_time = {"code": "on_time_rate", "kept": kept, "late": appointments.get("late", 0),
               "missed": appointments.get("missed", 0), "not_attempted": appointments.get("not_attempted", 0),
               "review": appointments.get("review", 0), "target_percent": target, "counted": decided >= config["GRADE_ON_TIME_MIN_APPOINTMENTS"],
               "rate_percent": kept * 100 // decided if decided else None, "points": 0}
    if on_time["counted"]:
        on_time["points"] = max(0, target - on_time["rate_percent"]) * config["GRADE_ON_TIME_POINTS_PER_PERCENT"]
        total -= on_time["points"]
    reasons.append(on_time)
    if ratings and ratings.get("ratings"):
        low = {"code": "low_ratings", "ratings": ratings["ratings"], "low": ratings["low"],
               "max_score": config["GRADE_LOW_RATING_MAX"], "points": ratings["low"] * config["GRADE_LOW_RATING_POINTS"]}
        reasons.append(low)
        total -= low["points"]
    total = max(total, 0)
    grade = "A" if total >= config["GRADE_A_MIN"] else "B" if total >= config["GRADE_B_MIN"] else "C"
    if critical:
        reasons.append({"code": "critical_violation", "count": critical, "points": 0})
        grade = "B" if grade == "A" else grade
    return grade, total, reasons


def _evaluate_many(courier_ids: list[str], now: datetime) -> dict[str, dict]:
    """{courier: evaluation} over the window ending now: two queries for all of them."""
    start = now - timedelta(days=current_app.config["GRADE_WINDOW_DAYS"])
    by_code = _violation_counts(courier_ids, start, now)
    by_outcome = _appointment_counts(courier_ids, start, now)
    by_rating = _rating_counts(courier_ids, start, now, current_app.config["GRADE_LOW_RATING_MAX"])
    out = {}
    for courier_id in courier_ids:
        grade, total, reasons = score(violations=by_code.get(courier_id, {}),
                                      appointments=by_outcome.get(courier_id, {}), config=current_app.config,
                                      ratings=by_rating.get(courier_id))
        out[courier_id] = {"grade": grade, "score": total, "reasons": reasons,
                           "window": {"from": start, "to": now}, "computed_at": now}
    return out


def _store(courier: Courier, evaluation: dict, *, by: str | None, cause: dict | None = None,
           always: bool = False) -> bool:
    """Keep an evaluation on the courier; a new grade is one history row. True if the grade changed.

    The courier row (and so their handheld's copy) changes only when the
    grade, the score or the reasons do: a window that merely moved is no change.
    `cause` (what staff did) leads the history row's reasons; `always` writes the row
    even when the grade stays (an override is history whatever it sets).
    """
    changed = courier.grade != evaluation["grade"]
    was = ((courier.grade_detail or {}).get("reasons") or [{}])[0]
    now_held = (evaluation["reasons"] or [{}])[0].get("code") == "override"
    if cause is None and was.get("code") == "override" and not now_held:
        cause = {"code": "override_ended", "grade": was.get("grade"), "override_id": was.get("override_id"),
                 "until": was.get("until"), "points": 0}  # the rules' grade again, after the override's time
    if changed or always:
        reasons = ([cause] if cause else []) + evaluation["reasons"]
        events.emit("grade.changed", courier.id, {
            "courier_id": courier.id, "from_grade": courier.grade, "to_grade": evaluation["grade"],
            "score": evaluation["score"], "reasons": reasons,
            "computed_at": evaluation["computed_at"].isoformat()})
        db.session.add(GradeChange(
            courier_id=courier.id, from_grade=courier.grade, to_grade=evaluation["grade"],
            score=evaluation["score"], reasons=reasons, window_from=evaluation["window"]["from"],
            window_to=evaluation["window"]["to"], computed_at=evaluation["computed_at"], computed_by=by))
    held = courier.grade_detail or {}
    if changed or (held.get("score"), held.get("reasons")) != (evaluation["score"], evaluation["reasons"]):
        courier.grade = evaluation["grade"]
        courier.grade_detail = {
            "score": evaluation["score"], "reasons": evaluation["reasons"],
            "window": {"from": evaluation["window"]["from"].isoformat(), "to": evaluation["window"]["to"].isoformat()},
            "computed_at": evaluation["computed_at"].isoformat()}
    return changed


def _locked(courier_ids: list[str]) -> list[Courier]:
    """The couriers, locked until commit in id order, as stored now (not as this session last saw them)."""
    return list(db.session.scalars(select(Courier).where(Courier.id.in_(courier_ids)).order_by(Courier.id)
                                   .with_for_update().execution_options(populate_existing=True)))


def _overrides(courier_ids: list[str], now: datetime) -> dict[str, GradeOverride]:
    """{courier: their override in force now} (not lifted, until still ahead)."""
    rows = db.session.scalars(select(GradeOverride).where(
        GradeOverride.courier_id.in_(courier_ids), GradeOverride.lifted_at.is_(None), GradeOverride.until > now)
        .order_by(GradeOverride.id))
    return {row.courier_id: row for row in rows}


def _answer(courier: Courier, evaluation: dict, now: datetime) -> dict:
    """An evaluation beside the grade on record, its override in force, and the consequences of that grade.

    The consequences are the settings' (GRADE_CONSEQUENCES, per grade) for the grade
    on record: what the product does about it (docs/decisions.md).
    """
    consequences = current_app.config.get("GRADE_CONSEQUENCES", {}).get(courier.grade) or {}
    return {**evaluation, "courier_id": courier.id, "recorded_grade": courier.grade,
            "override": _overrides([courier.id], now).get(courier.id), "consequences": consequences}


def evaluate(*, courier_id: str, now: datetime | None = None) -> dict:
    """The courier's grade as the rules give it now (nothing stored), beside the grade on record."""
    courier = get_or_404(Courier, courier_id, what="courier")
    now = now or utcnow()
    return _answer(courier, _evaluate_many([courier.id], now)[courier.id], now)


def recompute(*, actor: Actor, courier_id: str, now: datetime | None = None) -> dict:
    """Evaluate the courier now and keep the result (a changed grade goes into the history). Commits.

    A grade overridden by hand stays: the evaluation is answered, not kept.
    """
    get_or_404(Courier, courier_id, what="courier")
    now = now or utcnow()
    courier = _locked([courier_id])[0]
    evaluation = _evaluate_many([courier.id], now)[courier.id]
    if courier.id not in _overrides([courier.id], now):
        _store(courier, evaluation, by=actor.id if actor.kind == "staff" else None)
    db.session.commit()
    return _answer(courier, evaluation, now)


def refresh(*, courier_id: str, cause: dict, by: str | None, now: datetime | None = None) -> bool:
    """Evaluate and keep the courier's grade after staff changed what it counts (a voided violation).

    The history row, if the grade changes, leads with `cause`. An override in force
    holds. Does not commit; True if the grade changed.
    """
    now = now or utcnow()
    courier = _locked([courier_id])[0]
    if courier.id in _overrides([courier.id], now):
        return False
    return _store(courier, _evaluate_many([courier.id], now)[courier.id], by=by, cause=cause)


def override(*, actor: Actor, courier_id: str, grade: str, reason: str, until: datetime | None = None) -> dict:
    """Quality staff set the courier's grade by hand, with a reason, until `until` (default: a grade window). Commits.

    One override is in force at a time: a new one replaces the one before (lifted,
    naming the new one). The grade is kept on the courier and written to the history
    even when it does not change (an override to C starts the retraining it requires).
    """
    get_or_404(Courier, courier_id, what="courier")
    now = utcnow()
    until = until or now + timedelta(days=current_app.config["GRADE_WINDOW_DAYS"])
    if until <= now:
        raise ValidationFailed("An override holds until a time to come.", code="invalid_payload",
                               fields={"until": ["Must be in the future."]})
    courier = _locked([courier_id])[0]
    previous = _overrides([courier.id], now).get(courier.id)
    row = GradeOverride(courier_id=courier.id, grade=grade, reason=reason, until=until, created_at=now,
                        created_by=actor.id)
    db.session.add(row)
    db.session.flush()
    if previous is not None:
        before = snapshot(previous)
        previous.lifted_at, previous.lifted_by = now, actor.id
        previous.lift_reason = f"replaced by override {row.id}"
        audit(actor, "grade.override_replaced", previous, before)
    evaluation = _evaluate_many([courier.id], now)[courier.id]
    cause = {"code": "override", "grade": grade, "reason": reason, "by": actor.id, "until": until.isoformat(),
             "override_id": row.id, "rules_grade": evaluation["grade"], "points": 0}
    held = {**evaluation, "grade": grade, "reasons": [cause] + evaluation["reasons"]}
    _store(courier, held, by=actor.id, always=True)
    events.emit("grade.overridden", courier.id, {
        "courier_id": courier.id, "grade": grade, "reason": reason, "until": until.isoformat(), "by": actor.id})
    audit(actor, "grade.override", row, None)
    db.session.commit()
    return _answer(courier, evaluation, now)


def lift_override(*, actor: Actor, courier_id: str, reason: str) -> dict:
    """Lift the courier's override in force: the rules' grade is kept again at once (the history says why). Commits."""
    get_or_404(Courier, courier_id, what="courier")
    now = utcnow()
    courier = _locked([courier_id])[0]
    row = _overrides([courier.id], now).get(courier.id)
    if row is None:
        raise Conflict(f"Courier {courier_id} has no grade override in force.", code="no_override")
    before = snapshot(row)
    row.lifted_at, row.lifted_by, row.lift_reason = now, actor.id, reason
    audit(actor, "grade.override_lift", row, before)
    evaluation = _evaluate_many([courier.id], now)[courier.id]
    _store(courier, evaluation, by=actor.id, cause={
        "code": "override_lifted", "grade": row.grade, "reason": reason, "by": actor.id, "override_id": row.id,
        "points": 0})
    db.session.commit()
    return _answer(courier, evaluation, now)


def recompute_all(*, now: datetime | None = None) -> dict:
    """The `grades` job: every active courier, a chunk per transaction. Idempotent: an unchanged grade records nothing.

    A courier whose grade is overridden is skipped until the override ends.
    """
    now = now or utcnow()
    ids = list(db.session.scalars(select(Courier.id).where(Courier.active.is_(True)).order_by(Courier.id)))
    db.session.rollback()
    counts = {"couriers": 0, "changed": 0}
    for begin in range(0, len(ids), _CHUNK):
        chunk = _locked(ids[begin:begin + _CHUNK])
        evaluations = _evaluate_many([c.id for c in chunk], now)
        held = _overrides([c.id for c in chunk], now)
        for courier in chunk:
            counts["couriers"] += 1
            if courier.id in held:  # counted only when some are, as the job's outcome has said before
                counts["overridden"] = counts.get("overridden", 0) + 1
                continue
            counts["changed"] += _store(courier, evaluations[courier.id], by=None)
        db.session.commit()
    return counts


def _change_before(courier_id: str, at: datetime, *, strictly_before: GradeChange | None = None) -> GradeChange | None:
    """The courier's newest grade change at or before `at` (or the one just before `strictly_before`)."""
    query = select(GradeChange).where(GradeChange.courier_id == courier_id)
    if strictly_before is not None:
        query = query.where(or_(GradeChange.computed_at < strictly_before.computed_at,
                                and_(GradeChange.computed_at == strictly_before.computed_at,
                                     GradeChange.id < strictly_before.id)))
    else:
        query = query.where(GradeChange.computed_at <= at)
    return db.session.scalar(query.order_by(GradeChange.computed_at.desc(), GradeChange.id.desc()).limit(1))


def grade_at(*, courier: Courier, at: datetime) -> tuple[str, datetime | None]:
    """The courier's grade at `at` and since when (None: held since the courier was created): what the shift gate
    reads (GRADE_CONSEQUENCES).

    The history's newest row by then, except that an override which ran out by then (its `until` passed, not
    lifted nor replaced: those write a row) no longer holds, whether or not the nightly job has since kept the
    rules' grade: from its end the grade is the rules' grade then, since the override ended, or, the rules giving
    back the grade it interrupted, since that grade was given (a short override dodges no retraining).
    """
    change = _change_before(courier.id, at)
    if change is None:
        later = db.session.scalar(select(GradeChange).where(GradeChange.courier_id == courier.id,
                                                            GradeChange.computed_at > at)
                                  .order_by(GradeChange.computed_at, GradeChange.id).limit(1))
        return (later.from_grade if later is not None else courier.grade), None
    lead = (change.reasons or [{}])[0]
    if lead.get("code") == "override_ended":  # the job kept the rules' grade after an override ran out
        overridden = _change_before(courier.id, at, strictly_before=change)
        if overridden is not None and (overridden.reasons or [{}])[0].get("override_id") == lead.get("override_id"):
            return _after_override(courier, overridden, change.to_grade, at)
        return change.to_grade, change.computed_at
    row = db.session.get(GradeOverride, lead["override_id"]) if lead.get("code") == "override" else None
    if row is None or row.lifted_at is not None or row.until > at:
        return change.to_grade, change.computed_at
    return _after_override(courier, change, _evaluate_many([courier.id], row.until)[courier.id]["grade"], at)


def _after_override(courier: Courier, overridden: GradeChange, rules: str, at: datetime) -> tuple[str, datetime | None]:
    """The rules' grade after the override `overridden` set ran out, and since when: the override's own time if
    it set that grade, the time of the grade it interrupted if the rules give that back, else its end."""
    if rules == overridden.to_grade:
        return rules, overridden.computed_at
    if rules == overridden.from_grade:
        before = _change_before(courier.id, at, strictly_before=overridden)
        return rules, before.computed_at if before is not None else None
    return rules, db.session.get(GradeOverride, overridden.reasons[0]["override_id"]).until


def history(*, courier_id: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A courier's grade changes, newest first, a page at a time."""
    get_or_404(Courier, courier_id, what="courier")
    return newest_first(select(GradeChange).where(GradeChange.courier_id == courier_id), GradeChange.id,
                        cursor=cursor, limit=limit)
