"""Structured JSON logs: one object a line, with the request id and the caller's id."""
import json
import logging
import time
import uuid

from flask import Flask, g, has_request_context, request

# Attributes every LogRecord has; anything else passed in `extra` is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; never includes tokens or customer data."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record with request context where there is one."""
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


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


def init_app(app: Flask) -> None:
    """JSON logging to stderr, a request id per request, one access line per response."""
    logging.setLogRecordFactory(_record_with_request)
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
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
        access.info("request", extra={
            "method": request.method, "path": request.path, "status": response.status_code,
            "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1)})
        return response
