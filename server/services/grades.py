"""The courier's service grade (A, B, C): scored over a rolling window, stored by a job and on demand.

The rules (docs/decisions.md, "Complaints and the service grade"): a score of
100, less each violation in the window by its severity (the code's,
schemas.vocab.VIOLATION_SEVERITY, or a failed checklist item's own; points in GRADE_POINTS), less points per
percentage point of on-time rate below target once enough appointments were
decided, less GRADE_LOW_RATING_POINTS per customer rating of GRADE_LOW_RATING_MAX
or less given in the window; A at or above GRADE_A_MIN, B at or above GRADE_B_MIN, else C; a
critical violation in the window keeps a courier out of A. Every setting is
in server.config.
"""
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, func, select

from schemas.vocab import ON_TIME_DECIDED, ON_TIME_KEPT, SEVERITIES
from server.auth import Actor
from server.clock import utcnow
from server.extensions import db
from server.models import Appointment, AppointmentWindow, Courier, GradeChange, Rating, Task, Violation
from server.services import events
from server.services.common import get_or_404, newest_first

_CHUNK = 100


_SEVERITY_ORDER = list(SEVERITIES)

def _violation_counts(courier_ids: list[str], start: datetime,
                      end: datetime) -> dict[str, dict[tuple[str, str], int]]:
    """{courier: {(code, severity): count}} of violations that occurred in [start, end)."""
    rows = db.session.execute(
        select(Violation.courier_id, Violation.code, Violation.severity, func.count())
        .where(Violation.courier_id.in_(courier_ids), Violation.occurred_at >= start, Violation.occurred_at < end)
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


def _store(courier: Courier, evaluation: dict, *, by: str | None) -> bool:
    """Keep an evaluation on the courier; a new grade is one history row. True if the grade changed.

    The courier row (and so their handheld's copy) changes only when the
    grade, the score or the reasons do: a window that merely moved is no change.
    """
    changed = courier.grade != evaluation["grade"]
    if changed:
        events.emit("grade.changed", courier.id, {
            "courier_id": courier.id, "from_grade": courier.grade, "to_grade": evaluation["grade"],
            "score": evaluation["score"], "reasons": evaluation["reasons"],
            "computed_at": evaluation["computed_at"].isoformat()})
        db.session.add(GradeChange(
            courier_id=courier.id, from_grade=courier.grade, to_grade=evaluation["grade"],
            score=evaluation["score"], reasons=evaluation["reasons"], window_from=evaluation["window"]["from"],
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


def evaluate(*, courier_id: str, now: datetime | None = None) -> dict:
    """The courier's grade as the rules give it now (nothing stored), beside the grade on record."""
    courier = get_or_404(Courier, courier_id, what="courier")
    evaluation = _evaluate_many([courier.id], now or utcnow())[courier.id]
    return {**evaluation, "courier_id": courier.id, "recorded_grade": courier.grade}


def recompute(*, actor: Actor, courier_id: str, now: datetime | None = None) -> dict:
    """Evaluate the courier now and keep the result (a changed grade goes into the history). Commits."""
    get_or_404(Courier, courier_id, what="courier")
    courier = _locked([courier_id])[0]
    evaluation = _evaluate_many([courier.id], now or utcnow())[courier.id]
    _store(courier, evaluation, by=actor.id if actor.kind == "staff" else None)
    db.session.commit()
    return {**evaluation, "courier_id": courier.id, "recorded_grade": courier.grade}


def recompute_all(*, now: datetime | None = None) -> dict:
    """The `grades` job: every active courier, a chunk per transaction. Idempotent: an unchanged grade records nothing."""
    now = now or utcnow()
    ids = list(db.session.scalars(select(Courier.id).where(Courier.active.is_(True)).order_by(Courier.id)))
    db.session.rollback()
    counts = {"couriers": 0, "changed": 0}
    for begin in range(0, len(ids), _CHUNK):
        chunk = _locked(ids[begin:begin + _CHUNK])
        evaluations = _evaluate_many([c.id for c in chunk], now)
        for courier in chunk:
            counts["couriers"] += 1
            counts["changed"] += _store(courier, evaluations[courier.id], by=None)
        db.session.commit()
    return counts


def history(*, courier_id: str, cursor: int | None = None, limit: int = 50) -> dict:
    """A courier's grade changes, newest first, a page at a time."""
    get_or_404(Courier, courier_id, what="courier")
    return newest_first(select(GradeChange).where(GradeChange.courier_id == courier_id), GradeChange.id,
                        cursor=cursor, limit=limit)
