"""The service-quality KPI report: its query, its figures, the tasks behind a figure."""
from datetime import timedelta

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import Day, Schema, integer, text
from schemas.vocab import KPI_GROUPS

KPI_FORMATS = ("json", "csv")
MAX_DAYS = 366


class KpiRange(Schema):
    """Depot-local dates, both included, at most MAX_DAYS days."""

    from_ = Day(required=True, data_key="from", metadata={"description": "First depot-local date; not after to"})
    to = Day(required=True, metadata={
        "description": f"Last depot-local date (included); fewer than {MAX_DAYS} days after from"})

    @ma.validates_schema
    def _ordered_and_bounded(self, data, **_kw):
        """from is not after to; the span is at most a year."""
        if "from_" in data and "to" in data:
            if data["from_"] > data["to"]:
                raise ma.ValidationError("Must not be after to.", "from")
            if data["to"] - data["from_"] >= timedelta(days=MAX_DAYS):
                raise ma.ValidationError(f"At most {MAX_DAYS} days after from.", "to")


class KpiQuery(KpiRange):
    """The report's dates, grouping and format."""

    group_by = fields.String(load_default=None, validate=validate.OneOf(KPI_GROUPS))
    format = fields.String(load_default="json", validate=validate.OneOf(KPI_FORMATS))


class KpiRowsQuery(KpiRange):
    """Which figure's rows, of which group, a page at a time."""

    group_by = fields.String(load_default=None, validate=validate.OneOf(KPI_GROUPS))
    group = text(40, required=False, load_default=None,
                 metadata={"description": "A courier id, a depot, or (group_by=day) a depot-local date"})
    cursor = text(200, required=False, load_default=None)
    limit = integer(minimum=1, maximum=1000, strict=False, load_default=100)


class FigureOut(Schema):
    """One figure of one group: value = numerator / denominator (null without a denominator); a count's value is
    its numerator."""

    numerator = fields.Integer()
    denominator = fields.Integer()
    value = fields.Float(allow_none=True)
    unit = fields.String(metadata={"enum": ["ratio", "seconds", "score", "count"]})
    unknown = fields.Integer(allow_none=True, metadata={
        "description": "Rows of the denominator a missing fact keeps from passing (a stop without coordinates), "
                       "counted apart; null for a figure without unknowns"})
    tasks_url = fields.String(metadata={"description": "The tasks (or complaints) behind the figure"})


class KpiGroupOut(Schema):
    """A group's figures (a courier, a depot, a day, or the total)."""

    group = fields.String()
    label = fields.String()
    figures = fields.Dict(keys=fields.String(), values=fields.Nested(FigureOut))


class KpiReportOut(Schema):
    """The report: per group, and the total."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()
    group_by = fields.String(allow_none=True)
    groups = fields.List(fields.Nested(KpiGroupOut))
    total = fields.Nested(KpiGroupOut)


class KpiRowOut(Schema):
    """A task (or complaint) in a figure's denominator; counted: also in its numerator; unknown: left open."""

    id = fields.String()
    counted = fields.Boolean()
    unknown = fields.Boolean(metadata={"description": "Not counted because a fact is missing (see the figure)"})


class KpiRowsOut(Schema):
    """A page of the rows behind a figure."""

    figure = fields.String()
    subject = fields.String(metadata={"enum": ["task", "complaint", "field_event", "claim", "leak_incident", "courier"]})
    items = fields.List(fields.Nested(KpiRowOut))
    next_cursor = fields.String(allow_none=True)
