"""Building blocks shared by every schema."""
import marshmallow as ma
from marshmallow import ValidationError, fields, validate, validates_schema


class Schema(ma.Schema):
    """Base: unknown fields are an error, so typos never pass silently."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class PatchSchema(Schema):
    """Base of partial updates: a body that changes nothing is an error, not a silent 200."""

    @validates_schema
    def _changes_something(self, data, **_kw):
        """At least one field must be given."""
        if not data:
            raise ValidationError("Give at least one field to change.")


PHONE = validate.Regexp(r"^\+?[0-9][0-9 \-]{5,30}$", error="Not a phone number.")


def text(max_len: int, *, required: bool = True, min_len: int = 1, **kw) -> fields.String:
    """A stripped-length-checked string field."""
    return fields.String(required=required, validate=validate.Length(min=min_len, max=max_len), **kw)


def money(**kw) -> fields.Integer:
    """An amount in fen: a whole number, never a float that would be truncated."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=100_000_000), **kw)


class PageQuery(Schema):
    """Cursor pagination: pass back next_cursor to get the next page."""

    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class PageOut(Schema):
    """A page of items; next_cursor is null on the last page."""

    next_cursor = fields.String(allow_none=True)
