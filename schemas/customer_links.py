"""Customer links: what dispatch sends to issue one, what it gets back, and the customer page's forms."""
import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import Schema, Time, integer, text
from schemas.vocab import ALTERNATE_PLACES

MAX_SLOTS = 8
MAX_TTL_HOURS = 14 * 24


class SlotIn(Schema):
    """A window offered to the customer."""

    start = Time(required=True)
    end = Time(required=True, metadata={"description": "After start, and not over yet"})

    @ma.validates_schema
    def _ends_after_start(self, data, **_kw):
        """A slot ends after it starts."""
        if "start" in data and "end" in data and data["end"] <= data["start"]:
            raise ma.ValidationError("Must be after start.", "end")


class CustomerLinkIn(Schema):
    """Optional: the alternative windows offered (default: derived from depot hours) and the link's life."""

    slots = fields.List(fields.Nested(SlotIn), validate=validate.Length(min=1, max=MAX_SLOTS), load_default=None)
    ttl_hours = integer(minimum=1, maximum=MAX_TTL_HOURS, load_default=None)


class CustomerLinkOut(Schema):
    """The link to send the customer (shown once) and where its QR images are."""

    url = fields.String()
    expires_at = fields.AwareDateTime()
    qr_png = fields.String()
    qr_svg = fields.String()


class PageForm(Schema):
    """Every form post of the customer page: its CSRF token and the page language."""

    csrf = text(200)
    lang = fields.String(validate=validate.OneOf(["zh", "en"]), load_default=None)


class SlotForm(PageForm):
    """The slot the customer picked."""

    slot = integer(maximum=MAX_SLOTS - 1, strict=False, required=True)


class InstructionsForm(PageForm):
    """Delivery instructions left by the customer."""

    text = text(500, multiline=True)


class ConsentForm(PageForm):
    """The customer's consent to delivery at an alternate place, with an optional note (e.g. which neighbour)."""

    place = fields.String(required=True, validate=validate.OneOf(ALTERNATE_PLACES))
    note = text(200, required=False, min_len=0, load_default="")


class RatingForm(PageForm):
    """The customer's rating of the handover (1–5) and an optional comment."""

    score = integer(minimum=1, maximum=5, strict=False, required=True)
    comment = text(500, required=False, min_len=0, multiline=True, load_default="")
