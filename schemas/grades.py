"""The service grade on the wire: an evaluation with its reasons, and the history of changes."""
from marshmallow import fields, validate

from schemas.common import NewestFirstQuery, PageOut, Schema, Time, text
from schemas.grade_words import why
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
    grade = fields.String(metadata={"enum": list(GRADES), "description": "override, override_lifted, override_ended"})
    reason = fields.String(metadata={"description": "override, override_lifted, violation_voided: staff's words"})
    by = fields.String(allow_none=True, metadata={
        "description": "override, override_lifted, violation_voided: the staff member (null: a rule)"})
    until = fields.String(metadata={"description": "override: when it ends"})
    rules_grade = fields.String(metadata={"enum": list(GRADES),
                                          "description": "override: the grade the rules gave when it was set"})
    override_id = fields.Integer(metadata={"description": "override, override_lifted, override_ended"})
    violation_id = fields.Integer(metadata={"description": "violation_voided"})
    appeal_id = fields.String(metadata={"description": "violation_voided: the appeal that voided it"})
    task_id = fields.String(metadata={"description": "violation_voided: the task whose review voided it"})
    window_id = fields.Integer(metadata={"description": "violation_voided: the window dispatch's review found kept"})


class OverrideOut(Schema):
    """A grade set by hand, in force until `until` unless lifted."""

    id = fields.Integer()
    grade = fields.String(metadata={"enum": list(GRADES)})
    reason = fields.String()
    until = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    created_by = fields.String()


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
    override = fields.Nested(OverrideOut, allow_none=True, metadata={
        "description": "The grade set by hand now in force (the recorded grade), if any"})
    consequences = fields.Dict(metadata={
        "description": "What the recorded grade entails (settings GRADE_CONSEQUENCES; docs/decisions.md)"})


class OverrideIn(Schema):
    """Quality sets a courier's grade by hand, with a reason, until a time (default: one grade window from now)."""

    grade = text(1, validate=validate.OneOf(GRADES))
    reason = text(2000, multiline=True)
    until = Time(load_default=None)


class LiftIn(Schema):
    """Why the override is lifted."""

    reason = text(2000, multiline=True)


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
    why = fields.Function(lambda change: why(change.reasons, change.score), metadata={
        "description": "The reasons in words: what staff did (override, void), then what the rules counted (under "
                       "an override: 'rules alone', the rules' grade and score it set aside)"})


class GradeChangePage(PageOut):
    """A page of grade changes, newest first."""

    items = fields.List(fields.Nested(GradeChangeOut))
