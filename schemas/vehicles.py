"""Vehicles on the wire."""
from marshmallow import fields, validate

from schemas.common import PageOut, PageQuery, PatchSchema, Schema, identifier, text
from schemas.vocab import VEHICLE_KINDS, VEHICLE_STATUSES

# Checked once upper-cased, so lower-case letters pass too.
PLATE = {"pattern": r"[A-Za-z0-9\u4e00-\u9fff·\-]{4,16}",
         "pattern_error": "Plate: 4-16 letters, digits or province characters."}


class VehicleIn(Schema):
    """A new vehicle."""

    plate = identifier(16, **PLATE)
    kind = text(16, validate=validate.OneOf(VEHICLE_KINDS))


class VehiclePatch(PatchSchema):
    """Fields dispatch may change on a vehicle."""

    plate = identifier(16, required=False, **PLATE)
    kind = text(16, required=False, validate=validate.OneOf(VEHICLE_KINDS))
    status = text(16, required=False, validate=validate.OneOf(VEHICLE_STATUSES))
    courier_id = text(32, required=False, allow_none=True)


class VehicleOut(Schema):
    """A vehicle."""

    id = fields.String()
    plate = fields.String()
    kind = fields.String()
    status = fields.String()
    courier_id = fields.String(allow_none=True)
    open_defects = fields.Integer()
    odometer = fields.Integer(allow_none=True, metadata={"description": "Highest reading reported, km"})
    version = fields.Integer()


class VehicleQuery(PageQuery):
    """Filters for listing vehicles."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(VEHICLE_STATUSES))


class VehiclePage(PageOut):
    """A page of vehicles."""

    items = fields.List(fields.Nested(VehicleOut))
