"""Task imports: a JSON list, or a CSV file with one row per parcel (rows of a waybill group)."""
import csv
import io
import os
import re

from marshmallow import ValidationError

from schemas.tasks import MAX_IMPORT_TASKS, TaskIn
from server.errors import UnsupportedMediaType, ValidationFailed, fields_from_messages
from server.jsonio import request_json

CSV_COLUMNS = ("waybill_no", "kind", "recipient_name", "recipient_phone", "address", "lat", "lon",
               "window_start", "window_end", "cod_amount", "fees", "parcel_no",
               "parcel_description", "parcel_count", "service_product", "collected_at", "parcel_declared_value",
               "parcel_insured")
_REQUIRED_COLUMNS = ("waybill_no", "kind", "recipient_name", "recipient_phone", "address",
                     "window_start", "window_end", "parcel_no")
# Where a TaskIn field comes from in the CSV.
_COLUMN_OF = {"recipient.name": "recipient_name", "recipient.phone": "recipient_phone",
              "recipient.address": "address", "recipient.lat": "lat", "recipient.lon": "lon",
              "window.start": "window_start", "window.end": "window_end",
              "window._schema": "window_end", "recipient": "recipient_name"}
_PARCEL_COLUMN = {"parcel_no": "parcel_no", "description": "parcel_description",
                  "count": "parcel_count", "declared_value": "parcel_declared_value", "insured": "parcel_insured"}
# ASCII digits only: str.isdigit() also accepts superscripts and other digits int() refuses.
# At most 30 of them: int() refuses over 4,300 digits, and any longer number is out of range anyway
# (left as text, the schema calls it not a valid integer).
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")
_TOO_MANY = f"At most {MAX_IMPORT_TASKS} tasks per import."
_TASK_IN = TaskIn()


def _blank_to_none(value: str | None):
    """CSV has no null: an empty cell means 'not given'."""
    return None if value is None or value.strip() == "" else value.strip()


def _whole_number(value: str | None, default=None):
    """A CSV cell holding a whole number becomes an int; anything else is left for the schema."""
    value = _blank_to_none(value)
    if value is None:
        return default
    return int(value) if _WHOLE_NUMBER.fullmatch(value) else value


def _parse_fees(cell: str | None):
    """'delivery:1200;insurance:300' -> [{code, amount}]; malformed is left for the schema."""
    cell = _blank_to_none(cell)
    if cell is None:
        return []
    fees = []
    for part in cell.split(";"):
        code, sep, amount = part.partition(":")
        fees.append({"code": code.strip(), "amount": _whole_number(amount) if sep else None})
    return fees


def _csv_group_to_spec(rows: list[tuple[int, dict]]) -> dict:
    """One waybill's rows as a TaskIn-shaped dict (strings; the schema converts)."""
    _, first = rows[0]
    spec = {
        "waybill_no": first.get("waybill_no", "").strip(), "kind": _blank_to_none(first.get("kind")),
        "recipient": {"name": _blank_to_none(first.get("recipient_name")),
                      "phone": _blank_to_none(first.get("recipient_phone")),
                      "address": _blank_to_none(first.get("address")),
                      "lat": _blank_to_none(first.get("lat")), "lon": _blank_to_none(first.get("lon"))},
        "window": {"start": _blank_to_none(first.get("window_start")),
                   "end": _blank_to_none(first.get("window_end"))},
        "cod_amount": _whole_number(first.get("cod_amount"), 0),
        "service_product": _blank_to_none(first.get("service_product")),
        "collected_at": _blank_to_none(first.get("collected_at")),
        "fees": _parse_fees(first.get("fees")),
        "parcels": [{"parcel_no": _blank_to_none(row.get("parcel_no")),
                     "description": (row.get("parcel_description") or "").strip(),
                     "count": _whole_number(row.get("parcel_count"), 1),
                     "declared_value": _whole_number(row.get("parcel_declared_value")),
                     "insured": _blank_to_none(row.get("parcel_insured")) or False} for _, row in rows],
    }
    return spec


def _csv_error_path(path: str, rows: list[tuple[int, dict]]) -> str:
    """Map a TaskIn error path to 'rows.<csv line>.<column>'."""
    parts = path.split(".")
    if parts[0] == "parcels" and len(parts) >= 3 and parts[1].isdigit():
        line = rows[int(parts[1])][0]
        return f"rows.{line}.{_PARCEL_COLUMN.get(parts[2], parts[2])}"
    line = rows[0][0]
    column = _COLUMN_OF.get(".".join(parts[:2]), parts[0])
    return f"rows.{line}.{column}"


def check_csv_header(reader: csv.DictReader, *, required, known) -> list[str]:
    """The CSV's header, stripped, set on the reader; a missing, unknown or repeated column is a ValidationFailed
    naming them (field `header`). Shared by every CSV import."""
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in known]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        messages = ([f"Missing columns: {', '.join(missing)}."] if missing else []) + \
                   ([f"Unknown columns: {', '.join(unknown)}."] if unknown else []) + \
                   ([f"Repeated columns: {', '.join(repeated)}."] if repeated else [])
        raise ValidationFailed("The CSV header is wrong.", fields={"header": messages})
    reader.fieldnames = header
    return header


def read_csv(text: str, *, limit: int | None = MAX_IMPORT_TASKS) -> tuple[int, list[list[tuple[int, dict]]]]:
    """Check a CSV's header and group its rows by waybill: (header width, groups of (line, row) in file order).

    A wrong header, an unreadable line or more than limit waybills is a
    ValidationFailed: nothing after it could be read row by row.
    """
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = check_csv_header(reader, required=_REQUIRED_COLUMNS, known=CSV_COLUMNS)
        groups: dict[str, list[tuple[int, dict]]] = {}
        for row in reader:
            groups.setdefault((row.get("waybill_no") or "").strip(), []).append((reader.line_num, row))
            if limit is not None and len(groups) > limit:
                raise ValidationFailed(_TOO_MANY, fields={"rows": [_TOO_MANY]})
    except csv.Error as exc:
        line = reader.reader.line_num  # DictReader's own line_num only moves past good rows
        raise ValidationFailed(f"The CSV cannot be read at line {line}: {exc}.",
                               fields={f"rows.{line}": [str(exc)]}) from exc
    return len(header), list(groups.values())


def validate_csv_group(rows: list[tuple[int, dict]], width: int) -> tuple[dict | None, dict[str, list[str]]]:
    """One waybill's rows as a TaskIn: (spec, {}), or (None, messages by 'rows.<line>[.<column>]')."""
    errors: dict[str, list[str]] = {}
    # More cells than columns (an unquoted comma in an address) would shift or drop values silently.
    for line, row in rows:
        if row.get(None):
            errors[f"rows.{line}"] = [f"More cells than the header's {width} columns; "
                                      "quote cells that hold commas."]
    try:
        spec = _TASK_IN.load(_csv_group_to_spec(rows))
    except ValidationError as exc:
        for path, messages in fields_from_messages(exc.messages).items():
            errors.setdefault(_csv_error_path(path, rows), []).extend(messages)
    return (None, errors) if errors else (spec, errors)


def _load_csv(text: str) -> tuple[list[dict], list[str]]:
    """Parse and validate a CSV import; every bad row and column is reported at once."""
    width, groups = read_csv(text)
    if not groups:
        raise ValidationFailed("The CSV has no rows.", fields={"rows": ["No data rows."]})
    specs, labels, errors = [], [], {}
    for rows in groups:
        spec, group_errors = validate_csv_group(rows, width)
        errors.update(group_errors)
        if spec is not None:
            specs.append(spec)
            labels.append(f"rows.{rows[0][0]}")
    if errors:
        raise ValidationFailed(f"{len({k.split('.')[1] for k in errors})} row(s) are invalid; "
                               "nothing was imported.", fields=errors)
    return specs, labels


def _load_json(body) -> tuple[list[dict], list[str]]:
    """Validate a JSON list of tasks (or {"tasks": [...]})."""
    if isinstance(body, dict) and set(body) == {"tasks"}:
        body = body["tasks"]
    if not isinstance(body, list) or not body:
        raise ValidationFailed("Send a non-empty JSON list of tasks.",
                               fields={"tasks": ["Must be a non-empty list."]})
    if len(body) > MAX_IMPORT_TASKS:
        raise ValidationFailed(_TOO_MANY, fields={"tasks": [_TOO_MANY]})
    try:
        specs = TaskIn(many=True).load(body)
    except ValidationError as exc:
        fields = {f"tasks.{path}": msgs for path, msgs in fields_from_messages(exc.messages).items()}
        raise ValidationFailed(f"{len({k.split('.')[1] for k in fields})} row(s) are invalid; "
                               "nothing was imported.", fields=fields) from exc
    return specs, [f"tasks.{i}" for i in range(len(specs))]


def load_import(request) -> tuple[list[dict], list[str]]:
    """Read an import request by its content type: JSON, text/csv, or a multipart CSV file."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        return _load_json(request_json(request))
    if mimetype in ("text/csv", "text/plain"):
        raw = request.get_data()
    elif mimetype == "multipart/form-data" and "file" in request.files:
        raw = request.files["file"].read()
    else:
        raise UnsupportedMediaType("Send application/json, text/csv, or multipart/form-data "
                                "with a CSV in 'file'.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The CSV must be UTF-8.", fields={"file": ["Not UTF-8."]}) from exc
    return _load_csv(text)


def read_manifest_upload(request) -> tuple[str, bytes, str]:
    """An uploaded manifest as (file name, bytes, csv|json), by content type: JSON rows, text/csv, or a multipart file."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        return "upload.json", request.get_data(), "json"
    if mimetype in ("text/csv", "text/plain"):
        return "upload.csv", request.get_data(), "csv"
    if mimetype == "multipart/form-data" and "file" in request.files:
        upload = request.files["file"]
        name = os.path.basename(upload.filename or "") or "upload.csv"
        return name, upload.read(), "json" if name.lower().endswith(".json") else "csv"
    raise UnsupportedMediaType("Send application/json, text/csv, or multipart/form-data with the manifest in 'file'.")


def read_csv_upload(request) -> str:
    """A CSV's text (training attendance), sent as text/csv or as a multipart 'file'."""
    mimetype = request.mimetype
    if mimetype in ("text/csv", "text/plain"):
        raw = request.get_data()
    elif mimetype == "multipart/form-data" and "file" in request.files:
        raw = request.files["file"].read()
    else:
        raise UnsupportedMediaType("Send text/csv, or multipart/form-data with the CSV in 'file'.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The CSV must be UTF-8.", fields={"file": ["Not UTF-8."]}) from exc
