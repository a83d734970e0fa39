"""Upstream manifests: the integration upload, and the quarantine of rows the import could not take."""
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.imports import read_manifest_upload
from schemas.manifests import ManifestImportOut, QuarantineOut, QuarantinePage, QuarantineQuery, QuarantineResolveIn
from server.auth import DISPATCH, current_actor, require
from server.requests import body_limit
from server.services import manifests

blp = Blueprint("manifests", __name__, url_prefix="/api/v1", description="Upstream manifests (integration, dispatch)")
# The order system's token: staff with the integration role (issue 12); dispatch may upload by hand.
UPLOADERS = (*DISPATCH, "integration")
_ROWS = ("Rows as /dispatch/tasks/import reads them (a JSON array of task bodies, or a CSV with a header row, one "
         "line per parcel), but row by row: good rows are created or updated by waybill, bad rows quarantined.")


@blp.route("/integrations/manifests")
class ManifestUpload(MethodView):
    """An upstream manifest, sent instead of dropped in the inbox."""

    @require(*UPLOADERS)
    @body_limit("IMPORT_BODY_LIMIT")
    @blp.doc(requestBody={"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}, "description": _ROWS}},
        "text/csv": {"schema": {"type": "string", "description": _ROWS}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": _ROWS + " A .json name reads JSON."}}}}}})
    @blp.response(200, ManifestImportOut)
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    def post(self):
        """Import a manifest: tasks created or updated by waybill, bad rows quarantined, every row counted."""
        file_name, content, fmt = read_manifest_upload(request)
        return manifests.import_manifest(actor=current_actor(), file_name=file_name, content=content, fmt=fmt)


@blp.route("/dispatch/manifests/quarantine")
class Quarantine(MethodView):
    """Manifest rows held back."""

    @require(*DISPATCH)
    @blp.arguments(QuarantineQuery, location="query")
    @blp.response(200, QuarantinePage)
    def get(self, query):
        """Quarantined rows newest first, with their reasons; resolved=false for those still to deal with."""
        return manifests.get_quarantine(**query)


@blp.route("/dispatch/manifests/quarantine/<int:entry_id>/resolve")
class QuarantineResolution(MethodView):
    """Dealing with a quarantined row."""

    @require(*DISPATCH)
    @blp.arguments(QuarantineResolveIn)
    @blp.response(200, QuarantineOut)
    def post(self, data, entry_id):
        """Mark a row dealt with (once), saying how."""
        return manifests.resolve(actor=current_actor(), entry_id=entry_id, note=data["note"])
