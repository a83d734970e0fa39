"""Service products on the wire (admin): a code, its names, and the promise it makes from collection."""
from marshmallow import ValidationError, fields, validates_schema

from schemas.common import PatchSchema, Schema, integer, text
from schemas.tasks import PRODUCT_CODE

_PROMISE = "Give exactly one of end_of_day_after and within_hours."


class ServiceProductIn(Schema):
    """A new service product: by the end of the depot-local day N after collection, or within N hours of it."""

    code = text(32, **PRODUCT_CODE)
    name_zh = text(100)
    name_en = text(100)
    end_of_day_after = integer(maximum=30, load_default=None, allow_none=True, metadata={
        "description": "N: promised by the end of the depot-local day N after the day of collection (0: same day)"})
    within_hours = integer(minimum=1, maximum=720, load_default=None, allow_none=True, metadata={
        "description": "N: promised N hours after collection"})
    active = fields.Boolean(load_default=True)

    @validates_schema
    def _one_promise(self, data, **_kw):
        """Exactly one way of promising."""
        if (data.get("end_of_day_after") is None) == (data.get("within_hours") is None):
            raise ValidationError({"end_of_day_after": [_PROMISE], "within_hours": [_PROMISE]})


class ServiceProductPatch(PatchSchema):
    """What admin may change on a product (the code stays); a new promise gives both fields, one of them null.
    active=false takes it off offer: tasks that have it keep their promise, new ones cannot name it."""

    name_zh = text(100, required=False)
    name_en = text(100, required=False)
    end_of_day_after = integer(maximum=30, required=False, allow_none=True)
    within_hours = integer(minimum=1, maximum=720, required=False, allow_none=True)
    active = fields.Boolean()


class ServiceProductOut(Schema):
    """A service product."""

    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    end_of_day_after = fields.Integer(allow_none=True)
    within_hours = fields.Integer(allow_none=True)
    active = fields.Boolean()
    updated_at = fields.AwareDateTime()


class ServiceProductList(Schema):
    """Every service product, by code."""

    items = fields.List(fields.Nested(ServiceProductOut))
