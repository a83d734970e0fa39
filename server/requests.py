"""Per-request plumbing: read-only transactions for reads, per-route body limits, JSON bodies."""
import functools
from urllib.parse import urlsplit

import marshmallow as ma
from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge
from werkzeug.routing import IntegerConverter, UnicodeConverter

from schemas.limits import MAX_INT32
from server.database import mark_read_only, reset_read_only
from server.errors import ValidationFailed
from server.extensions import db
from server.jsonio import request_json

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class Int64Converter(IntegerConverter):
    """`<int:...>` in a route: an id beyond its column matches no row, so it is a 404, never a 500.

    Every integer id a route takes (tokens, conflicts) is an INTEGER column, which
    PostgreSQL refuses to compare with anything beyond 32 bits; a route over a
    BIGINT id says so with `<int(max=...):...>`.
    """

    def __init__(self, url_map, *args, **kwargs):
        """Bound the converter to what an INTEGER id column holds."""
        kwargs.setdefault("max", MAX_INT32)
        super().__init__(url_map, *args, **kwargs)


class TextConverter(UnicodeConverter):
    """A plain `<name>` in a route: no control characters (PostgreSQL cannot even compare a NUL), so a 404."""

    def __init__(self, url_map, *args, **kwargs):
        """As werkzeug's string converter, minus the control characters."""
        super().__init__(url_map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f]")


def _load_json_body(req):
    """Every blueprint's JSON arguments: parsed by jsonio (orjson, depth limit, 400/415 problems)."""
    body = request_json(req)
    return ma.missing if body is None else body


def _query_names() -> set[str] | None:
    """The query parameters the matched API view reads (its flask-smorest query schemas' fields; none without
    one); None where this is not decided here: no view matched (404, 405 say so), the spec's own pages."""
    if not request.path.startswith("/api/") or (request.blueprint or "").startswith("api-docs"):
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        method = request.method.lower()
        view = getattr(view_class, method, None) or (getattr(view_class, "get", None) if method == "head" else None)
    if view is None:
        return None
    names: set[str] = set()
    for parameter in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", []):
        if parameter.get("in") in ("query", "querystring"):
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            names.update(field.data_key or name for name, field in schema.fields.items() if not field.dump_only)
    return names


def init_app(app: Flask) -> None:
    """Bounded route ids, our JSON parsing; reads begin deferred, writes take the lock up front."""
    app.url_map.converters["int"] = Int64Converter
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    # flask-smorest parses every blueprint's arguments with one shared webargs
    # parser; its own JSON loading (stdlib json, no depth limit, a non-JSON body
    # read as "no body") is replaced by ours.
    Blueprint.ARGUMENTS_PARSER._raw_load_json = _load_json_body
    # A query parameter no route reads is refused, not ignored (`?q=Sun` on a list without q listed everything):
    # webargs excludes unknown query parameters unless told to take the schema's own rule (ours: RAISE), and a
    # route with no query schema at all is held to the same by _refuse_unknown_query below.
    Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION = {
        **Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    @app.before_request
    def _refuse_overlong_uris():
        # First: a URL too long to be one of ours is refused before it is read any further.
        if _uri_length() > current_app.config["URI_LIMIT"]:
            raise RequestURITooLarge()

    @app.before_request
    def _refuse_unknown_query():
        # A query parameter the route does not read is a 422 naming it, on every API route, before anything
        # else is looked at (credentials included), so every route answers it alike.
        if not request.args:
            return
        known = _query_names()
        unknown = sorted(set(request.args) - known) if known is not None else []
        if unknown:
            raise ValidationFailed("Unknown query parameter(s): " + ", ".join(unknown) + ".",
                                   fields={name: ["Unknown query parameter."] for name in unknown})

    @app.before_request
    def _mark_reads():
        g.read_only_token = mark_read_only(request.method in _READ_METHODS)

    @app.before_request
    def _refuse_oversize_bodies():
        # Before the view, so before its credentials are looked at: an oversize
        # body is a 413 naming the route's limit with or without a token.
        key = _body_limit_key()
        if key is not None:
            request.max_content_length = current_app.config[key]
        limit, length = request.max_content_length, request.content_length
        if limit is not None and length is not None and length > limit:
            raise RequestEntityTooLarge()

    @app.after_request
    def _nosniff(response):
        # A browser must never second-guess a declared type (an upload rendered as HTML).
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.teardown_request
    def _end(_exc):
        # A request's unit of work ends with the request, even where an outer
        # app context (a CLI command, a test) outlives it.
        db.session.remove()
        token = g.pop("read_only_token", None)
        if token is not None:
            reset_read_only(token)


def _uri_length() -> int:
    """The request target's length as the client sent it (path and query; gunicorn and werkzeug keep it raw)."""
    raw = request.environ.get("RAW_URI")
    return len(raw) if raw is not None else len(request.full_path)


def _body_limit_key() -> str | None:
    """The config key of the routed view's body_limit, if it has one (read before the view runs)."""
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None) if view_class else view
    return getattr(handler, "_fieldops_body_limit", None)


def body_limit(config_key: str):
    """Decorate a view: allow a request body up to config[config_key] bytes (413 beyond)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            request.max_content_length = current_app.config[config_key]
            return view(*args, **kwargs)
        # Carried outwards by functools.wraps, so the limit is known before auth runs.
        wrapper._fieldops_body_limit = config_key
        return wrapper
    return decorator

def public_url(endpoint: str, **values) -> str:
    """An absolute URL for a public page: under FIELDOPS_PUBLIC_URL when set, else the request's host.

    Outside a request (a CLI command, a job) it is built from the URL map
    directly: pushing a request context there would end it, and its teardown
    would throw away the caller's unit of work.
    """
    base = current_app.config.get("PUBLIC_URL")
    if base is None and has_request_context():
        return url_for(endpoint, _external=True, **values)
    parts = urlsplit(base or "http://127.0.0.1:8000")
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)
