"""JSON for every request and response, through orjson.

orjson encodes 5-10× faster than the standard library, and `orjson.Fragment`
lets a pull splice each entity's stored JSON (sync.docs) into the answer
without parsing it again. Keys are not sorted (nothing depends on their order).
"""
import dataclasses
import decimal
import json
import math
from typing import Any

import orjson
from flask.json.provider import JSONProvider

from server.errors import InvalidJson, UnsupportedMediaType

_OPTIONS = orjson.OPT_NON_STR_KEYS  # marshmallow's error dicts have integer keys for list items
# No request of this API nests deeper; refusing more keeps every recursive
# consumer (marshmallow, the op handlers) far from Python's recursion limit.
MAX_DEPTH = 64


def _default(obj: Any) -> Any:
    """What orjson does not encode by itself."""
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "__html__"):
        return str(obj.__html__())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps_bytes(obj: Any) -> bytes:
    """Encode to UTF-8 JSON bytes."""
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


def dumps_str(obj: Any) -> str:
    """Encode to a JSON str (what SQLAlchemy's JSON columns want)."""
    return dumps_bytes(obj).decode()


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if arrays and objects nest more than limit deep (walked level by level, no recursion)."""
    level, depth = [value], 0
    while level:
        level = [v for v in level if isinstance(v, (dict, list))]
        if level and (depth := depth + 1) > limit:
            return True
        level = [child for v in level for child in (v.values() if isinstance(v, dict) else v)]
    return False


def _double(text: str) -> float:
    """A JSON number with a fraction or an exponent, as orjson reads it: a double, refused beyond its range."""
    value = float(text)
    if math.isinf(value):
        raise ValueError("number is infinity when parsed as double")
    return value


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON (orjson refuses them too)."""
    raise ValueError(f"{name} is not a JSON value")


def loads(data: str | bytes) -> Any:
    """Decode request JSON; ValueError if malformed or nested deeper than MAX_DEPTH."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        # orjson refuses a lone surrogate escape outright, which would hide where it
        # is; the standard library decodes it, so the field's own check can name it.
        # It refuses what orjson refuses, NaN, Infinity and numbers beyond a double
        # (a JSON column would store them as null). Its integers stay exact, beyond 64
        # bits too: the stores that take any JSON keep those as decimal text.
        try:
            value = json.loads(data, parse_float=_double, parse_constant=_no_constant)
        except RecursionError as deep:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from deep
    if _depth_exceeds(value, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def request_json(request) -> Any:
    """A request's JSON body: None when empty, 415 for another content type, 400 if malformed or too deep."""
    data = request.get_data(cache=True)
    if not data:
        return None
    if not request.is_json:
        raise UnsupportedMediaType(
            f"Send the body as application/json (got {request.mimetype or 'no content type'}).")
    try:
        return loads(data)
    except ValueError as exc:
        message = str(exc).replace("depth limit exceeded", f"nested deeper than {MAX_DEPTH} levels")
        raise InvalidJson(f"The body is not valid JSON: {message}.") from exc


class OrjsonProvider(JSONProvider):
    """Flask's JSON provider (jsonify, request.get_json, the test client) on orjson."""

    mimetype = "application/json"

    def dumps(self, obj: Any, **_kwargs: Any) -> str:
        """Encode to a str."""
        return dumps_str(obj)

    def loads(self, s: str | bytes, **_kwargs: Any) -> Any:
        """Decode str or bytes, within the depth limit."""
        return loads(s)

    def response(self, *args: Any, **kwargs: Any):
        """A JSON response, encoded once straight to bytes."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(dumps_bytes(obj), mimetype=self.mimetype)


def init_app(app) -> None:
    """Use orjson for the app's JSON."""
    app.json = OrjsonProvider(app)
