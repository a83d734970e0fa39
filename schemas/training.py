"""Training on the wire: courses, sessions, attendance (JSON or a CSV import), a courier's training record."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import CODE, NewestFirstQuery, PageOut, PatchSchema, Schema, Time, identifier, integer, text
from schemas.limits import MAX_INT32
from schemas.vocab import TRAINING_KINDS

MAX_VALIDITY_MONTHS = 120
MAX_SCORE = 100
MAX_ATTENDANCE = 500  # couriers per attendance post
MAX_IMPORT_ROWS = 5000
CSV_COLUMNS = ("course_code", "held_at", "courier_id", "attended", "passed", "score", "trainer", "location")
REQUIRED_COLUMNS = ("course_code", "held_at", "courier_id", "attended", "passed")


class CourseIn(Schema):
    """A new course."""

    code = identifier(32, **CODE, metadata={"description": "Unique, as upper-cased (PJ-SAFETY)"})
    name = text(200)
    kind = text(16, validate=validate.OneOf(TRAINING_KINDS))
    validity_months = integer(minimum=1, maximum=MAX_VALIDITY_MONTHS, load_default=None, allow_none=True, metadata={
        "description": "How long a pass is valid; null (pre-job courses only): for good"})
    active = fields.Boolean(load_default=True)

    @validates_schema
    def _periodic_expires(self, data, **_kw):
        """A periodic course is a refresher: its pass expires."""
        if data.get("kind") == "periodic" and data.get("validity_months") is None:
            raise ValidationError("A periodic course's pass expires: give its validity.", field_name="validity_months")


class CoursePatch(PatchSchema):
    """A course's name, validity (for passes recorded from now on) or active flag."""

    name = text(200, required=False)
    validity_months = integer(minimum=1, maximum=MAX_VALIDITY_MONTHS, required=False, allow_none=True)
    active = fields.Boolean(required=False)


class CourseOut(Schema):
    """A course."""

    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"enum": list(TRAINING_KINDS)})
    validity_months = fields.Integer(allow_none=True)
    active = fields.Boolean()
    created_at = fields.AwareDateTime()


class CourseSavedOut(CourseOut):
    """A course as created or changed, with the couriers it keeps from starting a shift."""

    couriers_blocked = fields.Integer(metadata={
        "description": "Active couriers without a valid pass of this course, refused shift.start (training_required) "
                       "until they pass it; 0 unless an active pre-job course"})


class CourseQuery(Schema):
    """Filters for the course list."""

    kind = text(16, required=False, load_default=None, validate=validate.OneOf(TRAINING_KINDS))
    active = fields.Boolean(load_default=None)


class SessionIn(Schema):
    """A session of a course: when it is (or was) held, by whom, where."""

    course_id = integer(minimum=1, maximum=MAX_INT32, required=True)
    held_at = Time(required=True, metadata={"description": "When it was held; at most FIELDOPS_TRAINING_AHEAD_DAYS ahead"})
    trainer = text(100)
    location = text(200)


class AttendanceIn(Schema):
    """A courier's attendance and result at a session."""

    courier_id = text(32)
    attended = fields.Boolean(required=True)
    passed = fields.Boolean(required=True)
    score = integer(minimum=0, maximum=MAX_SCORE, load_default=None, allow_none=True)

    @validates_schema
    def _absent_fails(self, data, **_kw):
        """No one passes a session they did not attend."""
        if data.get("passed") and data.get("attended") is False:
            raise ValidationError("An absent courier cannot pass.", field_name="passed")


class AttendanceRowIn(AttendanceIn):
    """One row of an attendance CSV: the session by course and time, and a courier's result at it."""

    course_code = identifier(32, **CODE)
    held_at = Time(required=True)
    trainer = text(100, required=False, load_default="-")
    location = text(200, required=False, load_default="-")


class AttendanceBatchIn(Schema):
    """Attendance at one session: a courier once each."""

    attendance = fields.List(fields.Nested(AttendanceIn), required=True,
                             validate=validate.Length(min=1, max=MAX_ATTENDANCE))

    @validates_schema
    def _once_each(self, data, **_kw):
        """The same courier twice in one post is a mistake, not a correction."""
        seen = set()
        for n, row in enumerate(data.get("attendance", [])):
            if row["courier_id"] in seen:
                raise ValidationError({n: {"courier_id": ["Listed twice."]}}, field_name="attendance")
            seen.add(row["courier_id"])


class AttendanceOut(Schema):
    """A courier's attendance and result; valid_until is when a pass lapses (null: never, or not passed)."""

    id = fields.Integer()
    session_id = fields.Integer()
    courier_id = fields.String()
    attended = fields.Boolean()
    passed = fields.Boolean()
    score = fields.Integer(allow_none=True)
    valid_until = fields.AwareDateTime(allow_none=True)
    recorded_at = fields.AwareDateTime()
    corrections = fields.Integer(metadata={"description": "How many times the result was corrected (audited)"})


class SessionOut(Schema):
    """A session with its course and attendance."""

    id = fields.Integer()
    course = fields.Nested(CourseOut)
    held_at = fields.AwareDateTime()
    trainer = fields.String()
    location = fields.String()
    created_at = fields.AwareDateTime()
    attendance = fields.List(fields.Nested(AttendanceOut))


class SessionQuery(NewestFirstQuery):
    """Sessions newest first, of one course if asked."""

    course_id = integer(minimum=1, maximum=MAX_INT32, strict=False, load_default=None)


class SessionPage(PageOut):
    """A page of sessions."""

    items = fields.List(fields.Nested(SessionOut))


class CoursePage(PageOut):
    """The courses."""

    items = fields.List(fields.Nested(CourseOut))


class ImportRowOut(Schema):
    """What became of one CSV row."""

    row = fields.Integer(metadata={"description": "The CSV line"})
    session_id = fields.Integer()
    courier_id = fields.String()
    outcome = fields.String(metadata={"enum": ["recorded", "unchanged", "corrected"]})


class ImportOut(Schema):
    """An attendance import: counts and every row's outcome."""

    sessions_created = fields.Integer()
    recorded = fields.Integer()
    unchanged = fields.Integer()
    corrected = fields.Integer()
    rows = fields.List(fields.Nested(ImportRowOut))


class PassOut(Schema):
    """A course's newest pass for the courier."""

    course_code = fields.String()
    course_name = fields.String()
    kind = fields.String(metadata={"enum": list(TRAINING_KINDS)})
    session_id = fields.Integer()
    held_at = fields.AwareDateTime()
    score = fields.Integer(allow_none=True)
    valid_until = fields.AwareDateTime(allow_none=True)
    valid = fields.Boolean(metadata={"description": "Still valid now"})


class DueOut(Schema):
    """Training the courier needs."""

    course_code = fields.String(allow_none=True, metadata={"description": "null: any active periodic course"})
    course_name = fields.String(allow_none=True)
    kind = fields.String(metadata={"enum": list(TRAINING_KINDS)})
    reason = fields.String(metadata={"enum": ["never_passed", "expired", "expires_soon", "retraining"], "description": (
        "never_passed, expired (both keep a pre-job course's holder from starting a shift), expires_soon (within "
        "FIELDOPS_TRAINING_DUE_DAYS), retraining (the grade requires it; blocks shifts)")})
    since = fields.AwareDateTime(allow_none=True, metadata={"description": "retraining: the grade's change"})
    expires_at = fields.AwareDateTime(allow_none=True)
    blocks_shift = fields.Boolean()


class CourierTrainingOut(Schema):
    """A courier's training record: newest pass of each course, what is due, whether a shift may start now."""

    courier_id = fields.String()
    grade = fields.String()
    passes = fields.List(fields.Nested(PassOut))
    attendance = fields.List(fields.Nested(AttendanceOut), metadata={"description": "Every session, newest first"})
    due = fields.List(fields.Nested(DueOut))
    may_start_shift = fields.Boolean()


CSV_IMPORT_DESCRIPTION = (
    "A UTF-8 CSV file (a byte-order mark is allowed) with a header row, one row per courier at a session. "
    f"Columns: {', '.join(CSV_COLUMNS)}. Required: {', '.join(REQUIRED_COLUMNS)}. course_code a course's code; "
    "held_at the session's time, ISO 8601 with a time zone (2026-01-05T09:00:00+08:00), not in the future (a "
    "session of that course at that time is found, or created with the row's trainer and location); courier_id a "
    "courier's id; attended and passed true/false (yes/no, 1/0; an absent courier cannot pass); score 0-100 or "
    "empty. All rows are imported or none; each bad cell is named in the problem's fields as rows.<line>.<column>. "
    "The same rows imported again change nothing; a different result for a courier already recorded at that session "
    "is a correction (audited).")

