"""Conduct violations on the wire."""
from marshmallow import fields

from schemas.common import PageOut, PageQuery, Schema, integer
from schemas.vocab import VIOLATION_CODES, VIOLATION_SOURCES


class ViolationQuery(PageQuery):
    """Newest first: the cursor is the last id seen."""

    cursor = integer(minimum=1, maximum=2**31 - 1, strict=False, load_default=None)


class ViolationOut(Schema):
    """A violation with its evidence."""

    id = fields.Integer()
    courier_id = fields.String()
    code = fields.String(metadata={"enum": list(VIOLATION_CODES)})
    task_id = fields.String(allow_none=True)
    source = fields.String(metadata={"enum": list(VIOLATION_SOURCES)})
    evidence = fields.Dict()
    occurred_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()


class ViolationPage(PageOut):
    """A page of violations, newest first."""

    items = fields.List(fields.Nested(ViolationOut))
