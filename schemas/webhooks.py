"""Webhook subscriptions, their delivery log, and the integration event feed on the wire."""
import ipaddress
import re
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate, validates

from schemas.common import (URL_CHAR, NewestFirstQuery, PageOut, PageQuery, PatchSchema, Schema, Text, integer,
                            text)
from schemas.vocab import DELIVERY_STATUSES, EVENT_TYPES

_TYPE_CHOICES = (*EVENT_TYPES, "*")
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
# An IPv6 address as RFC 3986 writes it (IPv6address: every form ipaddress reads, no zone).
_IPV6 = "|".join([rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}",
                  *(rf"(?:(?:{_H16}:){{0,{n - 1}}}{_H16})?::(?:{_H16}:){{{5 - n}}}{_LS32}" for n in range(1, 5)),
                  rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}", rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
                  rf"(?:(?:{_H16}:){{0,6}}{_H16})?::"])
# Scheme, host (a registered name or IPv4 address in ASCII, or an IPv6 address in brackets), an optional
# port 1-65535, then path, query and fragment: what _well_formed accepts, said as a pattern.
_URL = (r"https?://(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[(?:" + _IPV6 + r")\])"
        r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
        rf"(?:[/?#]{URL_CHAR}*)?")


def _well_formed(url: str) -> None:
    """A URL the sender can read: no user or password in it, a port 1-65535, a bracketed host an IPv6 address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"Not a valid URL: {exc}.") from None
    if "@" in parts.netloc:
        raise ValidationError("No user name or password in the URL: the receiver checks the signature.")
    if port == 0:
        raise ValidationError("A port is 1-65535.")
    if parts.netloc.split("]")[0].startswith("["):
        try:
            ipaddress.IPv6Address(parts.hostname.split("%")[0])
        except ValueError:
            raise ValidationError("Between [ and ] goes an IPv6 address.") from None


def _url(**kw) -> Text:
    """A webhook URL: http or https, one line, well formed (where it may point is checked when sending)."""
    return Text(2000, pattern=_URL, pattern_error="An http:// or https:// URL (no user name; a port 1-65535).",
                validate=_well_formed, **kw)


def _event_types(**kw) -> fields.List:
    """Event types from the catalogue, or ["*"] for all."""
    return fields.List(fields.String(validate=validate.OneOf(_TYPE_CHOICES)),
                       validate=validate.Length(min=1, max=len(_TYPE_CHOICES)), metadata={
                           "description": 'Event types (docs/events.md), or ["*"] for every type',
                           "anyOf": [{"items": {"enum": list(EVENT_TYPES)}}, {"maxItems": 1}]}, **kw)


def _star_alone(value: list[str]) -> None:
    """"*" means every type: it stands alone."""
    if "*" in value and len(value) > 1:
        raise ValidationError('"*" means every type: give it alone.')


class WebhookIn(Schema):
    """A new subscription."""

    url = _url(required=True)
    event_types = _event_types(required=True)
    description = text(200, required=False, load_default=None)

    @validates("event_types")
    def _types(self, value, **_kw):
        """"*" stands alone."""
        _star_alone(value)


class WebhookPatch(PatchSchema):
    """Changes to a subscription."""

    url = _url()
    event_types = _event_types()
    description = text(200, required=False, allow_none=True)
    active = fields.Boolean()

    @validates("event_types")
    def _types(self, value, **_kw):
        """"*" stands alone."""
        _star_alone(value)


class WebhookOut(Schema):
    """A subscription: never its secret."""

    id = fields.String()
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    secret_rotated_at = fields.AwareDateTime(allow_none=True)


class WebhookSecretOut(Schema):
    """A subscription with its signing secret, shown this once (at creation and on rotation)."""

    webhook = fields.Nested(WebhookOut)
    secret = fields.String(metadata={"description": "whsec_ + base64: verify webhook-signature with it"})


class WebhookPage(PageOut):
    """A page of subscriptions."""

    items = fields.List(fields.Nested(WebhookOut))


class DeliveryQuery(NewestFirstQuery):
    """Filters for a subscription's delivery log."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(DELIVERY_STATUSES))


class DeliveryOut(Schema):
    """One event's delivery to one subscription."""

    id = fields.Integer()
    subscription_id = fields.String()
    event_id = fields.String(allow_none=True, metadata={"description": "The webhook-id header"})
    event_type = fields.String(allow_none=True)
    event_position = fields.Integer()
    status = fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime()
    last_attempt_at = fields.AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class DeliveryPage(PageOut):
    """A page of deliveries, newest first."""

    items = fields.List(fields.Nested(DeliveryOut))


_TYPE = "(?:" + "|".join(map(re.escape, EVENT_TYPES)) + ")"
_TYPE_LIST = rf" *{_TYPE} *(?:, *{_TYPE} *)*"


class EventQuery(PageQuery):
    """Reading the event feed: after a cursor, of some types."""

    cursor = integer(minimum=0, strict=False, load_default=0, metadata={
        "description": "The cursor of the previous answer (0: from the first event)"})
    types = text(1000, required=False, load_default=None, pattern=_TYPE_LIST,
                 pattern_error="Event types, comma-separated.",
                 metadata={"description": "Comma-separated event types (default: all)"})
    limit = integer(minimum=1, maximum=1000, strict=False, load_default=100)

    @validates("types")
    def _known(self, value, **_kw):
        """Every type named is in the catalogue."""
        if value is None:
            return
        unknown = sorted({t.strip() for t in value.split(",")} - set(EVENT_TYPES))
        if unknown:
            raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")


class EventOut(Schema):
    """One domain event."""

    id = fields.String(metadata={"description": "Unique: de-duplicate by it (the webhook-id of its webhooks)"})
    position = fields.Integer()
    type = fields.String(metadata={"enum": list(EVENT_TYPES)})
    subject_id = fields.String()
    occurred_at = fields.AwareDateTime()
    data = fields.Dict()


class EventPage(Schema):
    """Events in position order and the cursor to pass next (it never skips an event)."""

    items = fields.List(fields.Nested(EventOut))
    cursor = fields.Integer()
    has_more = fields.Boolean()
