"""Building blocks shared by every schema."""
from collections.abc import Mapping

import marshmallow as ma
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema


def _has_nul(value) -> bool:
    """Whether a string anywhere in the value (keys included) holds the NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _is_nested(field) -> bool:
    """Whether a field loads through another schema (itself or as a list's items)."""
    return isinstance(field, fields.Nested) or (isinstance(field, fields.List)
                                                and isinstance(field.inner, fields.Nested))


class Schema(ma.Schema):
    """Base: unknown fields are an error, so typos never pass silently."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @pre_load
    def _refuse_nul(self, data, **_kw):
        """PostgreSQL cannot store NUL in text or JSON: refuse it as a field error, not a 500."""
        if isinstance(data, Mapping):
            by_key = {field.data_key or name: field for name, field in self.load_fields.items()}
            # Nested schemas check their own fields, so the error names the innermost one.
            bad = [str(key) for key, value in data.items()
                   if not _is_nested(by_key.get(key)) and (_has_nul(key) or _has_nul(value))]
            if bad:
                raise ValidationError({key: ["Must not contain the NUL character."] for key in bad})
        return data


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
