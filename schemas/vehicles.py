"""Vehicles on the wire."""
from marshmallow import fields, validate

from schemas.common import PageOut, PageQuery, PatchSchema, Schema
from schemas.vocab import VEHICLE_KINDS, VEHICLE_STATUSES

PLATE = validate.Regexp(r"^[A-Z0-9\u4e00-\u9fff·\-]{4,16}$",
                        error="Plate: 4-16 upper-case letters, digits or province characters.")


class VehicleIn(Schema):
    """A new vehicle."""

    plate = fields.String(required=True, validate=PLATE)
    kind = fields.String(required=True, validate=validate.OneOf(VEHICLE_KINDS))


class VehiclePatch(PatchSchema):
    """Fields dispatch may change on a vehicle."""

    plate = fields.String(validate=PLATE)
    kind = fields.String(validate=validate.OneOf(VEHICLE_KINDS))
    status = fields.String(validate=validate.OneOf(VEHICLE_STATUSES))
    courier_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=32))


class VehicleOut(Schema):
    """A vehicle."""

    id = fields.String()
    plate = fields.String()
    kind = fields.String()
    status = fields.String()
    courier_id = fields.String(allow_none=True)
    version = fields.Integer()


class VehicleQuery(PageQuery):
    """Filters for listing vehicles."""

    status = fields.String(load_default=None, validate=validate.OneOf(VEHICLE_STATUSES))


class VehiclePage(PageOut):
    """A page of vehicles."""

    items = fields.List(fields.Nested(VehicleOut))
