"""Training: courses, sessions and attendance; a courier's record; the training a shift needs (training_required).

Who may do what (docs/decisions.md, "Issue 23: training and the shift gate"):
quality staff and admins record courses, sessions and results; dispatchers read
them. A pass is valid from its session's time for the course's validity then
(fixed on the attendance as valid_until; null: for good). The same attendance
posted again changes nothing; a different result for the same courier and
session is a correction, audited and counted.

The shift gate, checked first in checklists.start_shift at the op's effective
time: once at least one active pre-job course exists, a courier must hold a
valid pass of every active pre-job course; and a courier whose grade (at that
time) has `retraining_required` in GRADE_CONSEQUENCES must have passed a
retraining session (the grade's `retraining_course`, else any active periodic
course) held at or after the grade was given and before the shift.
"""
import calendar
import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from schemas.imports import check_csv_header
from schemas.training import CSV_COLUMNS, MAX_IMPORT_ROWS, REQUIRED_COLUMNS, AttendanceRowIn
from server.auth import Actor
from server.clock import local_minute, local_zone, utcnow
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed, fields_from_messages
from server.extensions import db
from server.models import Courier, TrainingAttendance, TrainingCourse, TrainingSession
from server.services import grades
from server.services.common import audit, audit_created, get_or_404, newest_first, snapshot

RECORDERS = ("admin", "quality")
READERS = ("admin", "dispatcher", "quality")
_ROW_IN = AttendanceRowIn()
_WHOLE = re.compile(r"[0-9]{1,9}")  # ASCII digits (str.isdigit() takes others int() refuses)
_TRUE, _FALSE = ("true", "yes", "1", "y"), ("false", "no", "0", "n")


def add_months(at: datetime, months: int) -> datetime:
    """The same depot-local time `months` calendar months later (the 31st in a shorter month: its last day)."""
    local = at.astimezone(local_zone())
    month = local.month - 1 + months
    year, month = local.year + month // 12, month % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(at.tzinfo)


# --- courses -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SavedCourse:
    """A course as created or changed, with how many couriers it now keeps from starting a shift."""

    course: TrainingCourse
    couriers_blocked: int

    def __getattr__(self, name):
        """The course's own attributes (id, code, ...)."""
        return getattr(self.course, name)


def couriers_blocked(*, course: TrainingCourse, at: datetime) -> int:
    """Active couriers without a valid pass of the course at `at`, whom it keeps from shift.start (0 unless it is an
    active pre-job course: a periodic course blocks only as a grade's retraining, which it does not decide)."""
    if course.kind != "pre_job" or not course.active:
        return 0
    valid_pass = (select(TrainingAttendance.id)
                  .join(TrainingSession, TrainingSession.id == TrainingAttendance.session_id)
                  .where(TrainingAttendance.courier_id == Courier.id, TrainingAttendance.passed.is_(True),
                         TrainingSession.course_id == course.id, TrainingSession.held_at <= at,
                         or_(TrainingAttendance.valid_until.is_(None), TrainingAttendance.valid_until > at)))
    return db.session.scalar(select(func.count(Courier.id)).where(Courier.active.is_(True), ~valid_pass.exists()))


def create_course(*, actor: Actor, code: str, name: str, kind: str, validity_months: int | None,
                  active: bool = True) -> SavedCourse:
    """A new course; its code is unique (409 course_exists). The answer counts the couriers it blocks at once."""
    if db.session.scalar(select(TrainingCourse.id).where(TrainingCourse.code == code)) is not None:
        raise Conflict(f"A course {code} exists.", code="course_exists", fields={"code": ["Already used."]})
    course = TrainingCourse(code=code, name=name, kind=kind, validity_months=validity_months, active=active,
                            created_at=utcnow(), created_by=actor.id if actor.kind == "staff" else None)
    db.session.add(course)
    audit(actor, "training_course.create", course, None)
    db.session.commit()
    return SavedCourse(course, couriers_blocked(course=course, at=utcnow()))


def get_course(*, course_id: int) -> TrainingCourse:
    """One course or 404."""
    course = db.session.get(TrainingCourse, course_id)
    if course is None:
        raise NotFound(f"No training course {course_id}.", code="course_not_found")
    return course


def update_course(*, actor: Actor, course_id: int, changes: dict) -> SavedCourse:
    """Rename, retire or reactivate a course, or change its validity for passes recorded from now on; the answer
    counts the couriers it blocks now."""
    course = get_course(course_id=course_id)
    if course.kind == "periodic" and "validity_months" in changes and changes["validity_months"] is None:
        raise ValidationFailed("A periodic course's pass expires.", fields={"validity_months": ["Must be given."]})
    before = snapshot(course)
    for key, value in changes.items():
        setattr(course, key, value)
    audit(actor, "training_course.update", course, before)
    db.session.commit()
    return SavedCourse(course, couriers_blocked(course=course, at=utcnow()))


def list_courses(*, kind: str | None = None, active: bool | None = None) -> dict:
    """Every course (there are few), by code."""
    query = select(TrainingCourse).order_by(TrainingCourse.code)
    if kind:
        query = query.where(TrainingCourse.kind == kind)
    if active is not None:
        query = query.where(TrainingCourse.active.is_(active))
    return {"items": list(db.session.scalars(query)), "next_cursor": None}


# --- sessions and attendance ---------------------------------------------------------------------------------

def _check_held_at(held_at: datetime, field: str = "held_at") -> None:
    """A session is planned at most FIELDOPS_TRAINING_AHEAD_DAYS ahead."""
    ahead = timedelta(days=current_app.config["TRAINING_AHEAD_DAYS"])
    if held_at > utcnow() + ahead:
        raise ValidationFailed(f"A session is planned at most {ahead.days} days ahead.",
                               fields={field: [f"Must be within {ahead.days} days from now."]})


def create_session(*, actor: Actor, course_id: int, held_at: datetime, trainer: str, location: str) -> TrainingSession:
    """A session of a course; a course is held once at a given time (409 session_exists)."""
    course = get_course(course_id=course_id)
    _check_held_at(held_at)
    existing = db.session.scalar(select(TrainingSession.id).where(TrainingSession.course_id == course.id,
                                                                  TrainingSession.held_at == held_at))
    if existing is not None:
        raise Conflict(f"Course {course.code} already has session {existing} at that time.", code="session_exists",
                       fields={"held_at": [f"Session {existing} is at this time."]})
    session = TrainingSession(course_id=course.id, held_at=held_at, trainer=trainer, location=location,
                              created_at=utcnow(), created_by=actor.id if actor.kind == "staff" else None)
    db.session.add(session)
    audit(actor, "training_session.create", session, None)
    db.session.commit()
    return get_session(session_id=session.id)


def get_session(*, session_id: int, for_update: bool = False) -> TrainingSession:
    """One session with its course and attendance, or 404."""
    query = (select(TrainingSession).where(TrainingSession.id == session_id)
             .options(selectinload(TrainingSession.attendance)).execution_options(populate_existing=True))
    session = db.session.scalar(query.with_for_update(of=TrainingSession) if for_update else query)
    if session is None:
        raise NotFound(f"No training session {session_id}.", code="session_not_found")
    return session


def list_sessions(*, course_id: int | None = None, cursor: int | None = None, limit: int = 50) -> dict:
    """Sessions newest first (by id), of one course if asked."""
    query = select(TrainingSession).options(selectinload(TrainingSession.attendance))
    if course_id is not None:
        query = query.where(TrainingSession.course_id == course_id)
    return newest_first(query, TrainingSession.id, cursor=cursor, limit=limit)


def _record(actor: Actor, session: TrainingSession, row: dict, created: list) -> tuple[str, TrainingAttendance]:
    """One courier's result at a session: recorded, unchanged (the same again) or corrected (audited)."""
    passed = row["passed"]
    valid_until = None
    if passed and session.course.validity_months:
        valid_until = add_months(session.held_at, session.course.validity_months)
    held = next((a for a in session.attendance if a.courier_id == row["courier_id"]), None)
    if held is None:
        held = TrainingAttendance(session_id=session.id, courier_id=row["courier_id"], attended=row["attended"],
                                  passed=passed, score=row.get("score"), valid_until=valid_until,
                                  recorded_at=utcnow(), recorded_by=actor.id if actor.kind == "staff" else None,
                                  corrections=0)
        session.attendance.append(held)
        created.append(held)
        return "recorded", held
    if (held.attended, held.passed, held.score) == (row["attended"], passed, row.get("score")):
        return "unchanged", held
    before = snapshot(held)
    held.attended, held.passed, held.score = row["attended"], passed, row.get("score")
    # A correction of the result keeps the validity the pass was first given (or gives the course's now).
    held.valid_until = (held.valid_until or valid_until) if passed else None
    held.corrections += 1
    held.recorded_at, held.recorded_by = utcnow(), actor.id if actor.kind == "staff" else None
    audit(actor, "training_attendance.correct", held, before)
    return "corrected", held


def _check_session_held(session: TrainingSession, field: str = "held_at") -> None:
    """Results are recorded once the session has been held."""
    if session.held_at > utcnow():
        raise RuleViolation(f"Session {session.id} is at {local_minute(session.held_at)}: record results once it is "
                            "held.", code="session_not_held", fields={field: ["In the future."]})


def _known_couriers(ids: set[str]) -> set[str]:
    """Which of the ids are couriers."""
    return set(db.session.scalars(select(Courier.id).where(Courier.id.in_(ids)))) if ids else set()


def record_attendance(*, actor: Actor, session_id: int, attendance: list[dict]) -> TrainingSession:
    """Record couriers' attendance and results at a held session; all or nothing. Commits."""
    session = get_session(session_id=session_id, for_update=True)
    _check_session_held(session)
    known = _known_couriers({row["courier_id"] for row in attendance})
    unknown = {f"attendance.{n}.courier_id": ["No such courier."] for n, row in enumerate(attendance)
               if row["courier_id"] not in known}
    if unknown:
        raise ValidationFailed("Some couriers do not exist; nothing was recorded.", fields=unknown)
    created: list[TrainingAttendance] = []
    for row in attendance:
        _record(actor, session, row, created)
    _commit_created(actor, created)
    return get_session(session_id=session.id)


def _commit_created(actor: Actor, created: list[TrainingAttendance]) -> None:
    """Audit the new rows and commit; a concurrent post of the same courier and session is a 409 to retry."""
    try:
        audit_created(actor, "training_attendance.record", created)
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("Another post recorded the same attendance at the same time: send it again.",
                       code="attendance_race") from exc


# --- CSV import ----------------------------------------------------------------------------------------------

def _flag(value: str | None):
    """A CSV yes/no cell as a boolean; anything else is left for the schema to name."""
    cell = (value or "").strip().lower()
    return True if cell in _TRUE else False if cell in _FALSE else (value or None)


def _read_rows(text: str) -> list[tuple[int, dict]]:
    """The CSV's rows with their line numbers; a wrong header or an unreadable line is a 422 at once."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        check_csv_header(reader, required=REQUIRED_COLUMNS, known=CSV_COLUMNS)
        rows = []
        for row in reader:
            rows.append((reader.line_num, row))
            if len(rows) > MAX_IMPORT_ROWS:
                raise ValidationFailed(f"At most {MAX_IMPORT_ROWS} rows per import.",
                                       fields={"rows": [f"At most {MAX_IMPORT_ROWS} rows."]})
    except csv.Error as exc:
        line = reader.reader.line_num
        raise ValidationFailed(f"The CSV cannot be read at line {line}: {exc}.",
                               fields={f"rows.{line}": [str(exc)]}) from exc
    if not rows:
        raise ValidationFailed("The CSV has no rows.", fields={"rows": ["No data rows."]})
    return rows


def _parse_row(line: int, row: dict, errors: dict) -> dict:
    """One CSV row checked by the row schema: its values (only the valid ones, if any cell is bad: each bad cell
    noted as rows.<line>.<column>)."""
    if row.get(None):
        errors[f"rows.{line}"] = ["More cells than the header's columns; quote cells that hold commas."]
    cells = {k: (v.strip() or None if isinstance(v, str) else v) for k, v in row.items() if k is not None}
    score = cells.get("score")
    cells.update(attended=_flag(cells.get("attended")), passed=_flag(cells.get("passed")),
                 score=int(score) if score and _WHOLE.fullmatch(score) else score)
    try:
        return _ROW_IN.load({k: v for k, v in cells.items() if v is not None or k in REQUIRED_COLUMNS})
    except ValidationError as exc:
        for path, messages in fields_from_messages(exc.messages).items():
            errors.setdefault(f"rows.{line}.{path}", []).extend(messages)
        return exc.valid_data if isinstance(exc.valid_data, dict) else {}


def import_attendance(*, actor: Actor, text: str) -> dict:
    """Attendance from a CSV (course_code, held_at, courier_id, attended, passed[, score, trainer, location]).

    All rows or none: every bad cell is named as rows.<line>.<column>. A
    session is found by its course and time, or created (with the row's trainer
    and location). The same rows imported again change nothing. Commits once.
    """
    rows = _read_rows(text)
    errors: dict[str, list[str]] = {}
    # Rows with a bad cell are still checked for what their good cells name (an unknown course or courier).
    good = [(line, _parse_row(line, row, errors)) for line, row in rows]
    courses = {c.code: c for c in db.session.scalars(select(TrainingCourse).where(
        TrainingCourse.code.in_({p["course_code"] for _, p in good if "course_code" in p})))}
    known = _known_couriers({p["courier_id"] for _, p in good if "courier_id" in p})
    seen: dict[tuple, int] = {}
    now = utcnow()
    for line, p in good:
        if "course_code" in p and p["course_code"] not in courses:
            errors.setdefault(f"rows.{line}.course_code", []).append(f"No course {p['course_code']}.")
        if "courier_id" in p and p["courier_id"] not in known:
            errors.setdefault(f"rows.{line}.courier_id", []).append("No such courier.")
        if "held_at" not in p:
            continue
        if p["held_at"] > now:
            errors.setdefault(f"rows.{line}.held_at", []).append("In the future: record results once it is held.")
        key = (p.get("course_code"), p["held_at"], p.get("courier_id"))
        if key in seen:
            errors.setdefault(f"rows.{line}.courier_id", []).append(
                f"The same courier at the same session as row {seen[key]}.")
        seen.setdefault(key, line)
    if errors:
        raise ValidationFailed(f"{len({k.split('.')[1] for k in errors})} row(s) are invalid; nothing was imported.",
                               fields=errors)
    sessions: dict[tuple, TrainingSession] = {}
    counts = {"sessions_created": 0, "recorded": 0, "unchanged": 0, "corrected": 0}
    report, created = [], []
    for line, p in good:
        course = courses[p["course_code"]]
        key = (course.id, p["held_at"])
        if key not in sessions:
            session = db.session.scalar(select(TrainingSession).where(
                TrainingSession.course_id == course.id, TrainingSession.held_at == p["held_at"])
                .options(selectinload(TrainingSession.attendance)).with_for_update(of=TrainingSession))
            if session is None:
                session = TrainingSession(course_id=course.id, course=course, held_at=p["held_at"],
                                          trainer=p["trainer"], location=p["location"], created_at=now,
                                          created_by=actor.id if actor.kind == "staff" else None, attendance=[])
                db.session.add(session)
                audit(actor, "training_session.create", session, None)
                counts["sessions_created"] += 1
            sessions[key] = session
        outcome, held = _record(actor, sessions[key], p, created)
        counts[outcome] += 1
        report.append((line, sessions[key], held, outcome))
    _commit_created(actor, created)
    return {**counts, "rows": [{"row": line, "session_id": session.id, "courier_id": held.courier_id,
                                "outcome": outcome} for line, session, held, outcome in report]}


# --- a courier's record and the shift gate -------------------------------------------------------------------

def _passes(courier_id: str, at: datetime) -> list[tuple[TrainingAttendance, TrainingSession]]:
    """The courier's passes of sessions held by `at`, newest session first."""
    return list(db.session.execute(
        select(TrainingAttendance, TrainingSession).join(TrainingSession, TrainingSession.id ==
                                                         TrainingAttendance.session_id)
        .where(TrainingAttendance.courier_id == courier_id, TrainingAttendance.passed.is_(True),
               TrainingSession.held_at <= at)
        .order_by(TrainingSession.held_at.desc(), TrainingAttendance.id.desc())).all())


def _retraining_courses(grade: str) -> tuple[list[TrainingCourse], str | None]:
    """The courses whose pass counts as retraining for the grade, and the configured code (None: any periodic)."""
    code = current_app.config["GRADE_CONSEQUENCES"].get(grade, {}).get("retraining_course")
    if code:
        return list(db.session.scalars(select(TrainingCourse).where(TrainingCourse.code == code.upper()))), code.upper()
    return list(db.session.scalars(select(TrainingCourse).where(
        TrainingCourse.kind == "periodic", TrainingCourse.active.is_(True)).order_by(TrainingCourse.code))), None


def _valid(attendance: TrainingAttendance, at: datetime) -> bool:
    """A pass still valid at `at`."""
    return attendance.valid_until is None or attendance.valid_until > at


def needs(*, courier: Courier, at: datetime) -> list[dict]:
    """What the courier lacks to start a shift at `at`: pre-job courses without a valid pass, and retraining."""
    passes = _passes(courier.id, at)
    missing = []
    pre_job = list(db.session.scalars(select(TrainingCourse).where(
        TrainingCourse.kind == "pre_job", TrainingCourse.active.is_(True)).order_by(TrainingCourse.code)))
    for course in pre_job:
        held = [a for a, s in passes if s.course_id == course.id]
        if not any(_valid(a, at) for a in held):
            missing.append({"course_code": course.code, "course_name": course.name, "kind": "pre_job",
                            "reason": "expired" if held else "never_passed", "since": None,
                            "expires_at": held[0].valid_until if held else None, "blocks_shift": True})
    grade, since = grades.grade_at(courier=courier, at=at)
    if current_app.config["GRADE_CONSEQUENCES"].get(grade, {}).get("retraining_required"):
        courses, code = _retraining_courses(grade)
        ids = {c.id for c in courses}
        if not any(s.course_id in ids and (since is None or s.held_at >= since) for _, s in passes):
            missing.append({"course_code": code, "course_name": courses[0].name if code and courses else None,
                            "kind": "periodic" if not courses or not code else courses[0].kind,
                            "reason": "retraining", "since": since, "expires_at": None, "blocks_shift": True,
                            "grade": grade, "courses": [c.code for c in courses]})
    return missing


def check_shift(*, courier_id: str, at: datetime) -> None:
    """The shift gate: RuleViolation training_required naming what is missing at `at` (the op's effective time)."""
    courier = db.session.get(Courier, courier_id)
    missing = needs(courier=courier, at=at)
    if not missing:
        return
    pre_job = [m for m in missing if m["reason"] != "retraining"]
    retraining = next((m for m in missing if m["reason"] == "retraining"), None)
    parts = []
    if pre_job:
        parts.append("pre-job training not passed (or lapsed): " + ", ".join(
            f"{m['course_code']} {m['course_name']}" + (" (expired)" if m["reason"] == "expired" else "")
            for m in pre_job))
    fields = {"pre_job": [m["course_code"] for m in pre_job]} if pre_job else {}
    if retraining:
        since = f" since {local_minute(retraining['since'])}" if retraining["since"] else ""
        which = (f"{retraining['course_code']} ({retraining['course_name'] or 'no such course'})"
                 if retraining["course_code"] else
                 ("any periodic course: " + ", ".join(retraining["courses"])) if retraining["courses"]
                 else "a periodic course (none is active: quality must set one up)")
        parts.append(f"grade {retraining['grade']} requires retraining{since}: pass a session of {which}")
        fields["retraining"] = [retraining["course_code"]] if retraining["course_code"] else retraining["courses"]
    raise RuleViolation(f"Before the shift: {'; '.join(parts)}.", code="training_required", fields=fields)


def courier_record(*, courier_id: str, now: datetime | None = None) -> dict:
    """A courier's training: newest pass of each course, every attendance, what is due, whether a shift may start."""
    courier = get_or_404(Courier, courier_id, what="courier")
    now = now or utcnow()
    newest: dict[int, tuple[TrainingAttendance, TrainingSession]] = {}
    for attendance, session in _passes(courier.id, now):
        newest.setdefault(session.course_id, (attendance, session))
    due = needs(courier=courier, at=now)
    soon = now + timedelta(days=current_app.config["TRAINING_DUE_DAYS"])
    listed = {d["course_code"] for d in due}
    courses = {c.id: c for c in db.session.scalars(select(TrainingCourse))}
    passes = []
    for course_id, (attendance, session) in newest.items():
        course = courses[course_id]
        passes.append({"course_code": course.code, "course_name": course.name, "kind": course.kind,
                       "session_id": session.id, "held_at": session.held_at, "score": attendance.score,
                       "valid_until": attendance.valid_until, "valid": _valid(attendance, now)})
        if course.active and course.code not in listed and attendance.valid_until is not None and (
                course.kind == "periodic" or _valid(attendance, now)) and attendance.valid_until <= soon:
            due.append({"course_code": course.code, "course_name": course.name, "kind": course.kind,
                        "reason": "expires_soon" if _valid(attendance, now) else "expired", "since": None,
                        "expires_at": attendance.valid_until, "blocks_shift": False})
    history = list(db.session.scalars(
        select(TrainingAttendance).join(TrainingSession, TrainingSession.id == TrainingAttendance.session_id)
        .where(TrainingAttendance.courier_id == courier.id)
        .order_by(TrainingSession.held_at.desc(), TrainingAttendance.id.desc())))
    return {"courier_id": courier.id, "grade": grades.grade_at(courier=courier, at=now)[0], "passes": sorted(
        passes, key=lambda p: p["course_code"]), "attendance": history, "due": due,
        "may_start_shift": not any(d["blocks_shift"] for d in due)}

