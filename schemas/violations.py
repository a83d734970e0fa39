"""Conduct violations on the wire."""
from marshmallow import fields

from schemas.common import NewestFirstQuery, PageOut, Schema
from schemas.vocab import SEVERITIES, VIOLATION_CODES, VIOLATION_SOURCES


class ViolationQuery(NewestFirstQuery):
    """A courier's violations, newest first."""


class ViolationOut(Schema):
    """A violation with its evidence."""

    id = fields.Integer()
    courier_id = fields.String()
    code = fields.String(metadata={"enum": list(VIOLATION_CODES)})
    severity = fields.String(metadata={"enum": list(SEVERITIES), "description": "What it weighs in the grade"})
    task_id = fields.String(allow_none=True)
    source = fields.String(metadata={"enum": list(VIOLATION_SOURCES)})
    evidence = fields.Dict()
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()


class ViolationPage(PageOut):
    """A page of violations, newest first."""

    items = fields.List(fields.Nested(ViolationOut))
