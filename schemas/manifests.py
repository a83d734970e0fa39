"""Upstream manifests on the wire: what an import did row by row, and the quarantine dispatch works through."""
from marshmallow import fields

from schemas.common import NewestFirstQuery, PageOut, Schema, identifier, text

MANIFEST_OUTCOMES = ("created", "updated", "unchanged", "quarantined")


class ReasonOut(Schema):
    """Why a row was held back: the field it names, a stable code, and a message (line: a CSV row's own line)."""

    field = fields.String()
    code = fields.String(metadata={"description": "required, invalid, unknown_field, malformed_row, "
                                                  "fee_not_published, fee_repeated, parcel_repeated, "
                                                  "duplicate_in_file, kind_changed, task_in_progress, "
                                                  "task_finished, unreadable"})
    message = fields.String()
    line = fields.Integer()
    changed = fields.List(fields.String(), metadata={
        "description": "task_in_progress, task_finished: the upstream fields the row would have changed"})


class ManifestCountsOut(Schema):
    """Every row counted once: rows = created + updated + unchanged + quarantined."""

    rows = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    quarantined = fields.Integer()


class ManifestRowOut(Schema):
    """What became of one row (a CSV waybill's lines are one row, numbered by its first line)."""

    row = fields.Integer()
    waybill_no = fields.String(allow_none=True)
    outcome = fields.String(metadata={"enum": list(MANIFEST_OUTCOMES)})
    task_id = fields.String(allow_none=True)
    reasons = fields.List(fields.Nested(ReasonOut))


class ManifestImportOut(Schema):
    """What a manifest import did."""

    file_name = fields.String()
    file_sha256 = fields.String()
    counts = fields.Nested(ManifestCountsOut)
    rows = fields.List(fields.Nested(ManifestRowOut))


class QuarantineQuery(NewestFirstQuery):
    """Filters for the quarantine list, newest first."""

    resolved = fields.Boolean(load_default=None, metadata={"description": "false: still to deal with"})
    file_sha256 = text(64, required=False, load_default=None, pattern=r"[0-9a-f]{64}",
                       pattern_error="Not a SHA-256 in hex.")
    waybill_no = identifier(100, required=False, load_default=None)


class QuarantineResolveIn(Schema):
    """How a quarantined row was dealt with."""

    note = text(500, multiline=True)


class QuarantineOut(Schema):
    """A manifest row held back, as received, with its reasons."""

    id = fields.Integer()
    file_name = fields.String()
    file_sha256 = fields.String()
    row_number = fields.Integer(metadata={"description": "CSV: the waybill's first line (header = 1); "
                                                         "JSON: the element, from 1; 0: the whole file"})
    waybill_no = fields.String(allow_none=True)
    raw = fields.Raw(allow_none=True, metadata={"description": "The row as received; null once retention redacted it"})
    reasons = fields.List(fields.Nested(ReasonOut))
    received_at = fields.AwareDateTime()
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolution_note = fields.String(allow_none=True)
    redacted_at = fields.AwareDateTime(allow_none=True)


class QuarantinePage(PageOut):
    """A page of quarantined rows, newest first."""

    items = fields.List(fields.Nested(QuarantineOut))


