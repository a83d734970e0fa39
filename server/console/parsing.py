"""Console forms and query strings read by the API's own schemas: the same fields, limits and messages, 422
naming the field (and an unknown filter) as the API does; and what a form's post answers (acted)."""
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from typing import Callable

import marshmallow as ma
from flask import redirect, request

from schemas.limits import MAX_MONEY
from server.clock import local_zone
from server.console.auth import flash_error
from server.errors import DomainError, ValidationFailed, apply_keep
from server.extensions import db

# The console's own query parameters (the language switch, the message after a post), never a filter.
PAGE_PARAMETERS = ("lang", "done")


def _flat(messages, prefix: str = "") -> dict:
    """marshmallow's nested messages as {"a.0.b": [message, ...]} (as the API's problems name fields)."""
    if not isinstance(messages, dict):
        return {prefix or "_schema": messages if isinstance(messages, list) else [str(messages)]}
    flat = {}
    for key, value in messages.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _load(schema: type[ma.Schema], data: dict, *, filters: bool = False) -> dict:
    """The data as the schema reads it, or the 422 naming each field (filters: in its detail too, since a page
    whose filters are wrong is not shown, only the refusal)."""
    try:
        return schema().load(data)
    except ma.ValidationError as exc:
        fields = _flat(exc.messages)
        if not filters:
            raise ValidationFailed("The form is not valid.", fields=fields) from exc
        named = "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in fields.items())
        raise ValidationFailed(f"Not a valid filter: {named}", fields=fields) from exc


def query(schema: type[ma.Schema]) -> dict:
    """A page's filters from its query string (an empty box is no filter); an unknown parameter is a 422."""
    return load_args(schema, {key: value for key, value in request.args.items() if value.strip() != ""})


def load_args(schema: type[ma.Schema], args: dict) -> dict:
    """Query arguments read by the schema, less the console's own parameters."""
    return _load(schema, {key: value for key, value in args.items() if key not in PAGE_PARAMETERS}, filters=True)


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


def acted(action: Callable[[], object], *, again: Callable[[], tuple], done: str | None = None,
          answer: Callable[[object], object] | None = None):
    """Answer a form's post: its action done, post/redirect/get to `done` (or `answer(what the action returned)`,
    a page showing a secret made this once); refused by a rule, the page again (`again`) with the refusal and
    each field's message shown, under the refusal's status.

    The refused change is rolled back before the page is read again, so it never shows what was not kept (a
    service may have changed a row before a later rule refused); what a refusal keeps is kept, as the API does.
    """
    try:
        result = action()
    except DomainError as error:
        db.session.rollback()
        apply_keep(error)
        flash_error(error)
        for field, messages in (error.fields or {}).items():
            flash_error(f"{field}: {' '.join(str(message) for message in messages)}")
        body, _status = again()
        return body, error.status, error.headers
    return answer(result) if answer is not None else redirect(done, code=303)
