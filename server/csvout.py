"""CSV exports: the one form every list the API or the console hands out as a spreadsheet takes.

The form (docs/decisions.md, "CSV exports"): the list's own route with `?format=csv` (schemas.common.CsvQuery
beside its filters), answering `text/csv; charset=utf-8`, UTF-8 with a byte-order mark (Excel reads Chinese
right), `\\r\\n` line ends, a header row of the JSON's field names (dotted for nested ones: `recipient.phone`),
each row the JSON item as the same schema dumps it (a masked phone stays masked), every text cell that a
spreadsheet would run as a formula prefixed with a quote. A CSV holds every row the filters match from the
cursor on (not one page), at most MAX_ROWS; more is 422 `export_too_large` (narrow the filters). Customer data
handed out so is noted for leak detection like a JSON page (server.exports.noted_export).
"""
import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

from flask import Response

from server.exports import noted_export
from server.errors import RuleViolation

BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"
# A cell opening with one of these is read by spreadsheets as a formula (or a DDE call): it gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
MAX_ROWS = 10_000
PAGE = 500


def cell(value) -> str:
    """One value as a CSV cell: None empty, booleans true/false, dates ISO, text never run as a formula.

    Numbers are written as they are (a negative amount stays a number); only text is guarded.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _pick(item: dict, path: str):
    """A dotted path into a dumped item (recipient.phone); a missing step is None."""
    for step in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(step)
    if isinstance(item, (list, dict)):
        return None if not item else str(item)
    return item


def render(items: Iterable[dict], columns: Sequence[str]) -> str:
    """Dumped items as CSV text: the BOM, a header of the column paths, a row per item."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([cell(_pick(item, column)) for column in columns])
    return out.getvalue()


def every_row(fetch: Callable[..., dict], *, cursor: str | None = None) -> list:
    """All rows a paged service answers from the cursor on (fetch(cursor=, limit=) -> {items, next_cursor}),
    at most MAX_ROWS (more: 422 export_too_large)."""
    rows: list = []
    while True:
        page = fetch(cursor=cursor, limit=PAGE)
        rows.extend(page["items"])
        cursor = page["next_cursor"]
        if len(rows) > MAX_ROWS:
            raise RuleViolation(f"More than {MAX_ROWS} rows match; narrow the filters (a date, a courier, a status).",
                                code="export_too_large")
        if cursor is None:
            return rows


def respond(rows: list, *, schema, columns: Sequence[str], filename: str, what: str | None) -> Response:
    """Rows as a CSV download, dumped by the schema the JSON uses; what: the leak-detection name of customer
    data handed out (None for figures without any)."""
    items = schema.dump(rows, many=True)
    if what is not None:
        noted_export(what, len(items))
    return Response(render(items, columns), mimetype="text/csv", content_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def documented(json_schema) -> dict:
    """The 200 response of a list with ?format=csv, for blp.doc(responses=...)."""
    return {"200": {"description": "The list (JSON), or every matching row as CSV with ?format=csv "
                                   "(docs/decisions.md, \"CSV exports\")",
                    "content": {"application/json": {"schema": json_schema},
                                "text/csv": {"schema": {"type": "string"}}}}}
