"""The service grade on the wire: an evaluation with its reasons, and the history of changes."""
from marshmallow import fields

from schemas.common import NewestFirstQuery, PageOut, Schema
from schemas.vocab import GRADE_REASONS, GRADES, SEVERITIES, VIOLATION_CODES


class GradeReasonOut(Schema):
    """One reason for a grade: what it counts and the points it costs (members by reason code)."""

    code = fields.String(metadata={"enum": list(GRADE_REASONS)})
    points = fields.Integer(metadata={"description": "Points taken off the score of 100"})
    violation_code = fields.String(metadata={"enum": list(VIOLATION_CODES), "description": "violations"})
    severity = fields.String(metadata={"enum": list(SEVERITIES), "description": "violations"})
    count = fields.Integer(metadata={"description": "violations, critical_violation"})
    kept = fields.Integer(metadata={"description": "on_time_rate"})
    late = fields.Integer(metadata={"description": "on_time_rate"})
    missed = fields.Integer(metadata={"description": "on_time_rate"})
    not_attempted = fields.Integer(metadata={"description": "on_time_rate: promised windows never visited"})
    review = fields.Integer(metadata={"description": "on_time_rate: windows under dispatch's review (no credit yet)"})
    rate_percent = fields.Integer(allow_none=True, metadata={"description": "on_time_rate: kept of decided, floored"})
    target_percent = fields.Integer(metadata={"description": "on_time_rate"})
    counted = fields.Boolean(metadata={"description": "on_time_rate: enough appointments were decided to count"})
    ratings = fields.Integer(metadata={"description": "low_ratings: customer ratings given in the window"})
    low = fields.Integer(metadata={"description": "low_ratings: those of max_score or less"})
    max_score = fields.Integer(metadata={"description": "low_ratings: the highest score that counts as low"})


class GradeWindowOut(Schema):
    """The rolling window an evaluation covers: from inclusive, to exclusive."""

    from_ = fields.AwareDateTime(data_key="from", attribute="from")
    to = fields.AwareDateTime()


class GradeOut(Schema):
    """A courier's grade as the rules give it, beside the grade on record."""

    courier_id = fields.String()
    grade = fields.String(metadata={"enum": list(GRADES)})
    score = fields.Integer()
    window = fields.Nested(GradeWindowOut)
    reasons = fields.List(fields.Nested(GradeReasonOut))
    computed_at = fields.AwareDateTime()
    recorded_grade = fields.String(metadata={
        "enum": list(GRADES), "description": "The grade on the courier's record (what their handheld shows)"})


class GradeChangeQuery(NewestFirstQuery):
    """A courier's grade changes, newest first."""


class GradeChangeOut(Schema):
    """One change of grade, with the evaluation that made it."""

    id = fields.Integer()
    courier_id = fields.String()
    from_grade = fields.String(metadata={"enum": list(GRADES)})
    to_grade = fields.String(metadata={"enum": list(GRADES)})
    score = fields.Integer()
    reasons = fields.List(fields.Nested(GradeReasonOut))
    window_from = fields.AwareDateTime()
    window_to = fields.AwareDateTime()
    computed_at = fields.AwareDateTime()
    computed_by = fields.String(allow_none=True, metadata={"description": "The staff member; null for the job"})


class GradeChangePage(PageOut):
    """A page of grade changes, newest first."""

    items = fields.List(fields.Nested(GradeChangeOut))
