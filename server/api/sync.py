"""The handheld sync protocol (push, pull, attachments) and dispatch's view of it."""
import functools
import re

from flask import Response, current_app, redirect, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.sync import (ConflictOut, ConflictPage, ConflictQuery, OpLogPage, OpLogQuery, PullOut,
                          PullQuery, PushIn, PushOut, ResolveIn)
from server.auth import COURIER, DISPATCH, OFFICE, current_actor, require
from server.errors import UpgradeRequired
from server.requests import body_limit
from server.services import attachments, oplog
from server.services import sync as sync_service

blp = Blueprint("sync", __name__, url_prefix="/api/v1", description="Handheld sync protocol v1")
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGES = {"image/jpeg": _BINARY, "image/png": _BINARY, "image/svg+xml": _BINARY}


_PROTOCOL_VERSION = re.compile(r"[0-9]{1,9}")


def speaks_protocol(view):
    """Refuse, loudly, a handheld whose Fieldops-Protocol version is not accepted (426)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        supported = current_app.config["SYNC_PROTOCOLS"]
        header = request.headers.get("Fieldops-Protocol", "")
        # ASCII digits, a few of them: str.isdigit() also takes "²" (a header byte 0xB2), and
        # int() refuses both it and 5,000 digits (each was a 500).
        if not _PROTOCOL_VERSION.fullmatch(header) or int(header) not in supported:
            raise UpgradeRequired(
                f"Fieldops-Protocol {header[:20] or '(missing)'} is not accepted; update the app.",
                headers={"Fieldops-Protocol": ", ".join(map(str, supported))},
                extra={"supported": list(supported)})
        return view(*args, **kwargs)
    wrapper._fieldops_protocol = True  # the spec declares the header and the 426 (server/openapi.py)
    return wrapper


@blp.route("/sync/push")
class Push(MethodView):
    """Ops from a handheld's queue."""

    @speaks_protocol
    @require(*COURIER)
    @body_limit("PUSH_BODY_LIMIT")
    @blp.arguments(PushIn)
    @blp.response(200, PushOut)
    def post(self, body):
        """Apply ops exactly once, in seq order; every op gets a result."""
        return sync_service.push(actor=current_actor(), device_id=body["device_id"], ops=body["ops"],
                                 device_now=body["device_now"], last_seq=body["last_seq"])


@blp.route("/sync/pull")
class Pull(MethodView):
    """Changes for a handheld."""

    @speaks_protocol
    @require(*COURIER)
    @blp.arguments(PullQuery, location="query")
    @blp.response(200, PullOut)
    def get(self, query):
        """The device's scope, then what changed since the cursor."""
        # Entities arrive as stored JSON (sync.docs): encoded as they are, the
        # schema above documents them; each was dumped by its schema when written.
        return current_app.json.response(sync_service.pull(actor=current_actor(), **query))


@blp.route("/attachments/<sha256>")
class AttachmentUpload(MethodView):
    """Content-addressed uploads from handhelds."""

    @speaks_protocol
    @require(*COURIER)
    @body_limit("ATTACHMENT_LIMIT")
    @blp.doc(requestBody={"required": True, "description": "JPEG, PNG, or SVG without scripts, whose "
                          "SHA-256 is the name in the path; the type is read from the bytes",
                          "content": {"application/octet-stream": _BINARY, **_IMAGES}})
    @blp.response(201, description="Stored")
    @blp.alt_response(200, description="Already stored", success=True)
    def put(self, sha256):
        """Store the bytes if they hash to the name; a repeat upload is harmless (200)."""
        _, created = attachments.store(actor=current_actor(), sha256=sha256, data=request.get_data())
        return Response(status=201 if created else 200)

    @speaks_protocol
    @require(*COURIER)
    @blp.doc(responses={"200": {"description": "Stored"}, "404": {"description": "Not stored"}})
    def head(self, sha256):
        """200 if the attachment is already stored, else 404."""
        return Response(status=200 if attachments.exists(sha256=sha256) else 404)


@blp.route("/dispatch/attachments/<sha256>")
class AttachmentDownload(MethodView):
    """Photos and signatures for the office."""

    @require(*OFFICE)
    @blp.doc(responses={"200": {"description": "The attachment (attachments kept in a local folder)",
                                "content": _IMAGES},
                        "302": {"description": "Attachments kept in an object store: Location is a signed URL "
                                               "of the store, valid FIELDOPS_ATTACHMENT_URL_SECONDS, answering "
                                               "with the checked type (SVG as a download)"}})
    def get(self, sha256):
        """The stored bytes with their checked content type; SVGs only as downloads, nothing runs."""
        found = attachments.download(sha256=sha256)
        if found.url is not None:
            response = redirect(found.url, code=302)
            response.headers["Cache-Control"] = "private, no-store"  # the URL expires; never reuse the answer
            return response
        response = send_file(found.path, mimetype=found.row.content_type, max_age=86400, etag=sha256,
                             as_attachment=found.disposition == "attachment", download_name=found.download_name)
        # Opened directly, a file gets no origin, no scripts, nothing fetched (nosniff: every response).
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        return response


@blp.route("/dispatch/ops")
class Ops(MethodView):
    """The op log: every op received, with its result."""

    @require(*OFFICE)
    @blp.arguments(OpLogQuery, location="query")
    @blp.response(200, OpLogPage)
    def get(self, query):
        """Filter by device, courier, status, type or entity; newest first."""
        return oplog.get_ops(**query)


@blp.route("/dispatch/conflicts")
class Conflicts(MethodView):
    """Conflicts between field ops and dispatch changes."""

    @require(*OFFICE)
    @blp.arguments(ConflictQuery, location="query")
    @blp.response(200, ConflictPage)
    def get(self, query):
        """Open or resolved conflicts, newest first."""
        return oplog.get_conflicts(**query)


@blp.route("/dispatch/conflicts/<int:conflict_id>/resolve")
class ConflictResolution(MethodView):
    """Settling a conflict."""

    @require(*DISPATCH)
    @blp.arguments(ResolveIn)
    @blp.response(200, ConflictOut)
    def post(self, data, conflict_id):
        """Resolve with a resolution and a note."""
        return oplog.resolve_conflict(actor=current_actor(), conflict_id=conflict_id, **data)
