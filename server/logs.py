"""Structured JSON logs: one object a line, with the request id and the caller's id, secrets redacted."""
import json
import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request
from werkzeug.serving import WSGIRequestHandler

from server.ids import ENROLLMENT_CODE_ALPHABET, ENROLLMENT_CODE_LENGTH

REDACTED = "[redacted]"
# Anything shaped like our bearer tokens, webhook signing secrets, receipt tokens, customer link tokens (signed, so with dots)
# or enrollment codes, wherever it turns up in a line (message, arguments, extra
# fields, a traceback): the last line of defence.
_SECRET_SHAPES = re.compile(r"(?P<token>fo[sdr]_|whsec_)[A-Za-z0-9_+/=-]{8,}|(?P<link>foc_)[A-Za-z0-9_.-]{8,}"
                            rf"|\b[{ENROLLMENT_CODE_ALPHABET}]{{{ENROLLMENT_CODE_LENGTH}}}\b")
# URL variables that carry a secret (the enrollment code of the QR routes, a customer link's token).
_SECRET_URL_VARIABLES = ("code", "token")
# Responses logged above INFO: auth failures (these, and a bad enrollment code's 404)
# and throttling at WARNING, server errors at ERROR.
_WARNING_STATUSES = {401, 403, 429}


def redact(text: str) -> str:
    """Replace token- and code-shaped substrings (a token keeps its kind prefix)."""
    return _SECRET_SHAPES.sub(lambda m: (m.group("token") or m.group("link") or "") + REDACTED, text)


def _scrub(value):
    """Redact every string inside a value about to be logged."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return value


# Attributes every LogRecord has; anything else passed in `extra` is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# Terminal colour codes some libraries put in messages (Werkzeug's development-server banner).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; never includes tokens, codes or customer data."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record with request context where there is one."""
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "msg": _ANSI.sub("", record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Values are scrubbed before encoding (escapes such as \n would hide a word
        # boundary), and the line after it (objects rendered by str()).
        return redact(json.dumps(_scrub(entry), default=str))


_base_factory = logging.getLogRecordFactory()


def _record_with_request(*args, **kwargs) -> logging.LogRecord:
    """Stamp each record with the request id and the caller when it is created (not formatted)."""
    record = _base_factory(*args, **kwargs)
    if has_request_context():
        record.request_id = g.get("request_id")
        actor = g.get("actor")
        if actor is not None:
            record.actor = {"kind": actor.kind, "id": actor.id, "device_id": actor.device_id}
    return record


_QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")


def init_app(app: Flask) -> None:
    """JSON logging to stderr, a request id per request, one access line per response."""
    logging.setLogRecordFactory(_record_with_request)
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    # The S3 client's debug lines carry request signatures and Authorization headers: never below WARNING.
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("fieldops.access")

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isprintable() \
            else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        status = response.status_code
        line = {"method": request.method, "path": _loggable_path(), "status": status,
                "client": request.remote_addr,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1)}
        # Popped: where an app context outlives its requests (tests, CLI), g does too.
        for key, name in (("code", "problem_code"), ("auth_failure", "auth_failure")):
            value = g.pop(name, None)
            if value is not None:
                line[key] = value
        level = logging.ERROR if status >= 500 else \
            logging.WARNING if status in _WARNING_STATUSES or "auth_failure" in line else logging.INFO
        access.log(level, "request", extra=line)
        return response


def _loggable_path() -> str:
    """The request path with secret URL variables replaced by [redacted]."""
    path = request.path
    for name in _SECRET_URL_VARIABLES:
        value = (request.view_args or {}).get(name)
        if value:
            path = path.replace(value, REDACTED)
    return path


class DevRequestHandler(WSGIRequestHandler):
    """The development server's handler, without werkzeug's own request line (the app logs one)."""

    def log_request(self, code="-", size="-") -> None:
        """Say nothing: the app's JSON access line covers the request."""
