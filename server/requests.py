"""Per-request plumbing: read-only transactions for reads, per-route body limits."""
import functools

from flask import Flask, current_app, g, request
from werkzeug.routing import IntegerConverter, UnicodeConverter

from server.database import mark_read_only, reset_read_only
from server.extensions import db

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class TextConverter(UnicodeConverter):
    """A path segment without NUL, which PostgreSQL cannot even compare: such a URL is a 404."""

    def __init__(self, url_map, *args, **kwargs):
        """Werkzeug's string segment, NUL excluded."""
        super().__init__(url_map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]")


class IdConverter(IntegerConverter):
    """An integer path id as an integer column holds it: a larger one is a 404, not an overflow 500."""

    def __init__(self, url_map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = 2**31 - 1, signed: bool = False):
        """Werkzeug's int, capped at PostgreSQL's integer unless the rule says otherwise."""
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app: Flask) -> None:
    """Reads begin deferred (never block writers on SQLite); writes take the lock up front."""
    app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _mark_reads():
        g.read_only_token = mark_read_only(request.method in _READ_METHODS)

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


def body_limit(config_key: str):
    """Decorate a view: allow a request body up to config[config_key] bytes (413 beyond)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            request.max_content_length = current_app.config[config_key]
            return view(*args, **kwargs)
        return wrapper
    return decorator
