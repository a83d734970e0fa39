"""What the OpenAPI spec says beyond the schemas: problem answers, who may call, the protocol header."""
from http import HTTPStatus

from apispec import BasePlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask

from schemas.common import PatchSchema

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROTOCOL_PARAMETER = "FieldopsProtocol"
_WRITES = {"post", "put", "patch", "delete"}
# Every operation may meet these: a URL longer than the server reads (414), the database busy or
# gone (503); a bug is the default (500).
_ALWAYS = (HTTPStatus.REQUEST_URI_TOO_LONG, HTTPStatus.SERVICE_UNAVAILABLE)
_AUTHENTICATED = (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN, HTTPStatus.TOO_MANY_REQUESTS)
# Any write may clash with a concurrent one (409) or break a business rule (422).
_WRITE = (HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY)
# A body may be malformed (400) or too large (413).
_BODY = (HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


def protocol_parameter(supported: tuple[int, ...]) -> dict:
    """The Fieldops-Protocol header a sync route requires (426 without an accepted version)."""
    return {"in": "header", "name": "Fieldops-Protocol", "required": True,
            "description": "Sync protocol version the handheld speaks; others are refused with 426.",
            "schema": {"type": "integer", "enum": list(supported)}}


def error_statuses(*, method: str, operation: dict, roles: tuple | None, path_has_id: bool,
                   protocol: bool) -> list[HTTPStatus]:
    """The error statuses an operation can answer, from what its route and decorators imply."""
    statuses = list(_ALWAYS)
    if roles:
        statuses += _AUTHENTICATED
    if path_has_id:
        statuses.append(HTTPStatus.NOT_FOUND)
    if method in _WRITES:
        statuses += _WRITE
    if "requestBody" in operation:
        statuses += _BODY
    if "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", [])
                                         if isinstance(p, dict)):
        statuses.append(HTTPStatus.UNPROCESSABLE_ENTITY)
    if protocol:
        statuses.append(HTTPStatus.UPGRADE_REQUIRED)
    return statuses


class ProblemDocsPlugin(BasePlugin):
    """Completes every operation from its view: problem answers, security, roles, protocol header."""

    def __init__(self, app: Flask):
        """Views are looked up in this app's view functions."""
        super().__init__()
        self._app = app

    def schema_helper(self, name, definition, **kwargs):
        """A partial update must change something: say so, as the schema's check enforces it."""
        schema = kwargs.get("schema")
        if schema is not None and issubclass(resolve_schema_cls(schema), PatchSchema):
            return {"minProperties": 1}
        return None

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add each operation's error answers (references to problem+json responses) and auth facts."""
        rule = kwargs["rule"]
        view = self._app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method, operation in operations.items():
            func = getattr(view_class, method) if view_class else view
            roles = getattr(func, "_fieldops_roles", None)
            protocol = getattr(func, "_fieldops_protocol", False)
            if roles:
                operation["x-fieldops-roles"] = list(roles)
            else:
                operation["security"] = []
            if protocol:
                operation.setdefault("parameters", []).append(PROTOCOL_PARAMETER)
            responses = operation.setdefault("responses", {})
            for status in error_statuses(method=method, operation=operation, roles=roles,
                                         path_has_id=bool(rule.arguments), protocol=protocol):
                responses.setdefault(str(status.value), status.name)

