"""Domain exceptions and the one handler that turns every error into problem+json."""
import http
import logging
import os

import marshmallow as ma
import swagger_ui_bundle
from flask import current_app, g, jsonify, request, send_from_directory
from flask_smorest import Api
from flask_smorest.spec import _add_leading_slash
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from server.database_faults import database_fault
from server.extensions import db
from server.openapi import PROBLEM_MEDIA_TYPE, PROTOCOL_PARAMETER, ProblemDocsPlugin, protocol_parameter

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://fieldops.dev/problems/"

# A database that cannot write waits for someone to end the fault: clients come back less often than when busy.
DATABASE_UNAVAILABLE_RETRY_AFTER = 30  # seconds


class DomainError(Exception):
    """An error a service raises; it knows its HTTP status and stable code."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, fields: dict | None = None,
                 headers: dict | None = None, extra: dict | None = None, keep=None, unchanged: bool = False):
        super().__init__(detail)
        # keep(): what the refusal itself leaves behind (a violation, a flag for dispatch), applied after
        # the refused change is rolled back; it must read nothing but plain values it was given.
        self.keep = keep
        # unchanged: raised before the refused action changed anything, so there is nothing to roll back and
        # keep may run at once, in the same transaction, under the locks the refusal was decided under.
        self.unchanged = unchanged
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}
        clash = set(self.extra) & _PROBLEM_MEMBERS
        if clash:  # a refusal's facts never overwrite problem+json's own members (RFC 9457)
            raise ValueError(f"extra members {sorted(clash)} would overwrite the problem's own")


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it exists."""

    status, code, title = 404, "not_found", "Not found"


class Gone(DomainError):
    """The thing existed but is no longer usable (an expired or revoked link)."""

    status, code, title = 410, "gone", "Gone"


class Conflict(DomainError):
    """The request clashes with stored state (a duplicate, a stale version)."""

    status, code, title = 409, "conflict", "Conflict"


class RuleViolation(DomainError):
    """A business rule forbids the action; the code names the rule."""

    status, code, title = 422, "rule_violation", "Rule violated"


class ValidationFailed(DomainError):
    """Input failed validation; fields maps each failing path to its messages."""

    status, code, title = 422, "validation_failed", "Validation failed"


class InvalidJson(DomainError):
    """The body is not JSON this API can read (malformed, not UTF-8, nested too deep)."""

    status, code, title = 400, "invalid_json", "Invalid JSON"


class UnsupportedMediaType(DomainError):
    """The body comes in a content type the endpoint does not read."""

    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class Unauthorized(DomainError):
    """No valid credentials."""

    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(DomainError):
    """Valid credentials, wrong role."""

    status, code, title = 403, "forbidden", "Forbidden"


class TooManyRequests(DomainError):
    """The caller failed too often; it must wait."""

    status, code, title = 429, "rate_limited", "Too many requests"


class UpgradeRequired(DomainError):
    """The device speaks a protocol version the server no longer accepts."""

    status, code, title = 426, "protocol_unsupported", "Upgrade required"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error of this API is sent."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    code = ma.fields.String(required=True, metadata={"description": "Stable machine-readable error code"})
    fields = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()),
                            metadata={"description": "Failing fields by path (validation)"})
    request_id = ma.fields.String()
    # Extension members some problems carry (RFC 9457 lets problems add members; clients ignore others).
    supported = ma.fields.List(ma.fields.Integer(), metadata={
        "description": "protocol_unsupported: the Fieldops-Protocol versions the server accepts"})
    missing = ma.fields.List(ma.fields.String(), metadata={
        "description": "attachment_missing: the attachments to upload first"})

    class Meta:
        unknown = ma.INCLUDE


# Stable codes for errors raised by Flask/webargs rather than by our services.
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 414: "uri_too_long",
    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
    500: "internal_error",
}


def http_error_code(status: int) -> str:
    """The stable code of an HTTP error raised outside our services (routing, parsing, limits)."""
    return _HTTP_CODES.get(status, f"http_{status}")


def _flatten(messages, prefix: str = "") -> dict:
    """Turn marshmallow's nested messages into {"a.0.b": [msg, ...]}."""
    flat: dict = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict,)):
                flat.update(_flatten(value, path))
            else:
                flat[path] = value if isinstance(value, list) else [value]
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = messages
    return flat


_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code", "fields"})


def problem_response(status: int, code: str, title: str, detail: str,
                     fields: dict | None = None, headers: dict | None = None,
                     extra: dict | None = None):
    """Build an application/problem+json response."""
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status,
            "detail": detail, "code": code}
    if fields:
        body["fields"] = fields
    if extra:
        body.update(extra)
    g.problem_code = code  # for the access line
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def fields_from_messages(messages) -> dict:
    """Flatten webargs' {location: {field: msgs}} into field paths."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "files",
                                                        "headers", "view_args", "path"}:
        flat = {}
        for location_messages in messages.values():
            flat.update(_flatten(location_messages))
        return flat
    return _flatten(messages)


class ProblemApi(Api):
    """flask-smorest Api whose errors are all problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, *, extra_plugins=None, **options):
        """Add the plugin that documents every operation's problem answers, and the protocol header."""
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), ProblemDocsPlugin(self._app)], **options)
        self.spec.components.parameter(PROTOCOL_PARAMETER, "header",
                                       protocol_parameter(self._app.config["SYNC_PROTOCOLS"]), lazy=True)

    def _register_responses(self):
        """One lazily registered problem+json response per error status, all with the Problem schema."""
        for status in http.HTTPStatus:
            if status >= 400:
                response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
                prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
                self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Unexpected error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def _register_swagger_ui_rule(self, blueprint):
        """Serve Swagger UI's assets from the app (swagger-ui-bundle): the docs work without internet."""
        super()._register_swagger_ui_rule(blueprint)
        path = self.config.get("OPENAPI_SWAGGER_UI_PATH")
        if path is not None:
            blueprint.add_url_rule(_add_leading_slash(path) + "/<path:filename>",
                                   endpoint="openapi_swagger_ui_asset", view_func=_swagger_ui_asset)

    def _register_error_handlers(self):
        """Register one handler per error family; nothing else formats errors."""
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(DomainError, handle_domain_error)
        self._app.register_error_handler(StaleDataError, handle_concurrent_update)
        self._app.register_error_handler(DBAPIError, handle_database_error)
        self._app.register_error_handler(Exception, handle_unexpected)

    def handle_http_exception(self, error):
        """Werkzeug/webargs errors (routing, parsing, body size) as problems."""
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        fields = None
        title = error.name
        detail = error.description or error.name
        if "messages" in data:
            fields = fields_from_messages(data["messages"])
            if fields:
                status, title = ValidationFailed.status, ValidationFailed.title
            detail = "Request has invalid fields: " + ", ".join(sorted(fields))
        elif status == 400:
            detail = "The request is malformed."
        if status == 413:
            limit = request.max_content_length
            detail = (f"The request body is larger than {limit} bytes, the most this endpoint accepts."
                      if limit else "The request body is larger than this endpoint accepts.")
        if status == 414:
            detail = (f"The URL (path and query) is longer than {current_app.config['URI_LIMIT']} characters, "
                      "the most this server reads.")
        return problem_response(status, http_error_code(status),
                                title, detail, fields, data.get("headers"))


def _swagger_ui_asset(filename: str):
    """One file of the bundled Swagger UI."""
    return send_from_directory(os.fspath(swagger_ui_bundle.swagger_ui_path), filename, max_age=86400)


def apply_keep(error: DomainError) -> None:
    """Write what a refusal leaves behind (error.keep) after rolling back the refused change. Commits.

    Push applies keep itself, after restarting the batch without the refused
    op (sync.push). Over HTTP no route reaches a rule with a keep today (the
    handover rules run only as sync ops), but one that ever does gets the same
    treatment here: the request's half-made change goes, the kept facts
    (violation, exception, rejected step) stay. If writing them fails, the
    refusal is still answered and the failure logged.
    """
    if error.keep is None:
        return
    db.session.rollback()
    try:
        error.keep()
        db.session.commit()
    except Exception:  # the refusal stands; what it leaves behind is lost, and logged
        log.exception("could not keep what a refusal leaves behind", extra={"code": error.code})
        db.session.rollback()


def handle_domain_error(error: DomainError):
    """Services' errors carry their own status and code (and what a refusal keeps is kept)."""
    apply_keep(error)
    return problem_response(error.status, error.code, error.title, error.detail,
                            error.fields, error.headers, error.extra)


def handle_concurrent_update(_error: StaleDataError):
    """Someone changed the row between our read and our write: the caller may simply retry."""
    return problem_response(409, "concurrent_update", "Conflict",
                            "The record changed while this request was being applied; retry.",
                            headers={"Retry-After": "1"})


def handle_database_error(error: DBAPIError):
    """Busy (locked, unreachable, shutting down): retry shortly. Unavailable (it cannot write: read-only,
    full, failing storage): retry later. Nothing was half-written either way; any other error is a bug."""
    fault = database_fault(error)
    if fault is None:
        return handle_unexpected(error)
    log.warning("database %s", fault.kind, extra={"error": str(error.orig)[:200], "reason": fault.reason})
    if fault.kind == "busy":
        return problem_response(503, "database_busy", "Service unavailable",
                                "The database is busy or unreachable; retry shortly.",
                                headers={"Retry-After": "2"})
    return problem_response(503, "database_unavailable", "Service unavailable",
                            f"The database cannot take writes now ({fault.reason}); nothing was changed, retry later.",
                            headers={"Retry-After": str(DATABASE_UNAVAILABLE_RETRY_AFTER)})


def handle_unexpected(error: Exception):
    """A bug: log it with its stack, answer a problem without internals."""
    log.exception("unhandled error")
    return problem_response(500, "internal_error", "Internal server error",
                            "An unexpected error occurred; it has been logged.")
