"""Console forms and query strings read by the API's own schemas: the same fields, limits and messages, 422
naming the field (and an unknown filter) as the API does."""
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

import marshmallow as ma
from flask import request

from schemas.limits import MAX_MONEY
from server.clock import local_zone
from server.errors import ValidationFailed

# The console's own query parameters (the language switch, the message after a post), never a filter.
PAGE_PARAMETERS = ("lang", "done")


def _load(schema: type[ma.Schema], data: dict) -> dict:
    """The data as the schema reads it, or the 422 naming each field."""
    try:
        return schema().load(data)
    except ma.ValidationError as exc:
        raise ValidationFailed("The form is not valid.", fields=exc.messages) from exc


def query(schema: type[ma.Schema]) -> dict:
    """A page's filters from its query string (an empty box is no filter); an unknown parameter is a 422."""
    return load_args(schema, {key: value for key, value in request.args.items() if value.strip() != ""})


def load_args(schema: type[ma.Schema], args: dict) -> dict:
    """Query arguments read by the schema, less the console's own parameters."""
    return _load(schema, {key: value for key, value in args.items() if key not in PAGE_PARAMETERS})


def form(schema: type[ma.Schema], *, lists: tuple[str, ...] = (), **given) -> dict:
    """A posted form read by the API's schema: boxes left empty are not sent (the schema says what is required);
    `lists` name fields given as several values; `given` are values the view has read already (None: not given)."""
    data = {key: value for key, value in request.form.items()
            if not key.startswith("csrf") and key not in lists and value.strip() != ""}
    for key in lists:
        values = [value for value in request.form.getlist(key) if value.strip() != ""]
        if values:
            data[key] = values
    data.update((key, value) for key, value in given.items() if value is not None)
    return _load(schema, data)


def fen(field: str) -> int | None:
    """An amount typed in yuan (up to two decimals) as fen; None when the box is empty; 422 naming the field."""
    typed = request.form.get(field, "").strip().replace(",", "")
    if not typed:
        return None
    try:
        amount = Decimal(typed)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) \
            or abs(amount * 100) > MAX_MONEY:
        raise ValidationFailed("The form is not valid.", fields={field: ["An amount in yuan, such as 12.50."]})
    return int(amount * 100)


def whole(field: str) -> int | None:
    """A whole number typed in a box (an id chosen from a list); None when empty; 422 naming the field."""
    typed = request.form.get(field, "").strip()
    if not typed:
        return None
    if not (typed.isascii() and typed.isdigit()) or len(typed) > 18:
        raise ValidationFailed("The form is not valid.", fields={field: ["A whole number."]})
    return int(typed)


def local_time(field: str) -> str | None:
    """A date and time typed in the depot's zone (datetime-local), as an aware ISO time; None when empty."""
    typed = request.form.get(field, "").strip()
    if not typed:
        return None
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        raise ValidationFailed("The form is not valid.", fields={field: ["A date and time."]}) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=local_zone())).isoformat()


def next_page(cursor) -> str | None:
    """This page's address with the next cursor (its filters kept), or None on the last page."""
    if cursor is None:
        return None
    args = {key: value for key, value in request.args.items() if key not in ("cursor", "done")}
    return request.path + "?" + urlencode({**args, "cursor": cursor})
