"""Upstream order manifests: tasks created or updated by waybill, row by row; rows that cannot be taken are quarantined.

`/dispatch/tasks/import` is the other tool: all rows or none, for a dispatcher
at a screen. A manifest comes from the order system unattended, so one bad row
must not hold back the others, and a file delivered twice must change nothing.
"""
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from schemas.imports import read_csv, validate_csv_group
from schemas.tasks import TaskIn
from server import jsonio
from server.auth import SYSTEM, Actor
from server.clock import utcnow
from server.errors import Conflict, DomainError, NotFound, ValidationFailed, fields_from_messages
from server.extensions import db
from server.models import ManifestQuarantine, Parcel, Task, TaskFee
from server.models.types import JSON_INTEGERS
from server.services import promises
from server.services import tasks as task_service
from server.services.common import audit, audit_created, newest_first, snapshot

log = logging.getLogger(__name__)

MANIFEST_FORMATS = ("csv", "json")
# What the order system owns on a task once it exists; the window is the appointment's (customer and dispatch
# agree it), the gift dispatch's, the kind fixed at creation.
UPSTREAM_FIELDS = ("recipient_name", "recipient_phone", "address", "lat", "lon", "cod_amount", "parcels", "fees",
                   "service_product", "collected_at")
PERSONAL_FIELDS = ("recipient_name", "recipient_phone", "address", "lat", "lon")
# Upstream changes apply until the courier is at the door; after that the field decides.
UPDATABLE_STATUSES = ("unassigned", "assigned")
OUTCOMES = ("created", "updated", "unchanged", "quarantined")
_LOOKUP_CHUNK = 500
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_TASK_IN = TaskIn()
_MARSHMALLOW_CODES = {"Missing data for required field.": "required", "Unknown field.": "unknown_field"}
# What no store can keep: PostgreSQL text refuses NUL, and no JSON encoder writes a lone surrogate.
_NOT_STORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(value):
    """A value as received, with every NUL and lone surrogate (in strings and keys) replaced by U+FFFD,
    and an integer no JSON column holds as its decimal text (as the op log keeps one)."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in JSON_INTEGERS:
        return str(value)
    if isinstance(value, str):
        return _NOT_STORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


@dataclass
class Row:
    """One manifest row (a CSV waybill's lines, or a JSON element): where it was, what it said, what came of it."""

    number: int
    raw: object
    waybill_no: str | None
    spec: dict | None = None
    reasons: list[dict] = field(default_factory=list)
    outcome: str | None = None
    task_id: str | None = None

    def __post_init__(self):
        """Keep what was received in a form every store can hold (the row is quarantined for it anyway)."""
        self.raw = storable(self.raw)

    def refuse(self, field_name: str, code: str, message: str, **extra) -> None:
        """Add a reason this row cannot be taken."""
        self.reasons.append(storable({"field": field_name, "code": code, "message": message, **extra}))


def _waybill_of(value) -> str | None:
    """The waybill a raw row names, normalised as the schema would, for the quarantine list."""
    if value is None:
        return None
    return storable(str(value)).strip().upper()[:100] or None


def _csv_raw(line: int, cells: dict) -> dict:
    """A CSV line as received (cells beyond the header's columns kept under `extra`)."""
    raw = {"line": line, "cells": {key: value for key, value in cells.items() if key is not None}}
    if cells.get(None):
        raw["extra"] = cells[None]
    return raw


def _csv_rows(text: str) -> list[Row]:
    """A CSV manifest's rows: each waybill's lines (one per parcel) are one row, numbered by its first line."""
    width, groups = read_csv(text, limit=None)
    rows = []
    for group in groups:
        spec, errors = validate_csv_group(group, width)
        row = Row(number=group[0][0], raw=[_csv_raw(line, cells) for line, cells in group],
                  waybill_no=_waybill_of(group[0][1].get("waybill_no")), spec=spec)
        for path, messages in errors.items():
            _, line, *column = path.split(".", 2)
            for message in messages:
                if column:
                    row.refuse(column[0], _MARSHMALLOW_CODES.get(message, "invalid"), message, line=int(line))
                else:
                    row.refuse("row", "malformed_row", message, line=int(line))
        rows.append(row)
    return rows


def _json_rows(text: str) -> list[Row]:
    """A JSON manifest's rows: an array of task bodies (or {"tasks": [...]}), numbered from 1."""
    try:
        body = jsonio.loads(text)
    except ValueError as exc:
        raise ValidationFailed(f"The manifest is not JSON this service can read: {exc}.",
                               fields={"file": [str(exc)]}) from exc
    if isinstance(body, dict) and set(body) == {"tasks"}:
        body = body["tasks"]
    if not isinstance(body, list):
        raise ValidationFailed("A JSON manifest is an array of tasks.", fields={"file": ["Not a JSON array."]})
    rows = []
    for number, element in enumerate(body, start=1):
        if not isinstance(element, dict):
            row = Row(number=number, raw=element, waybill_no=None)
            row.refuse("row", "malformed_row", "A row must be a JSON object.")
        else:
            row = Row(number=number, raw=element, waybill_no=_waybill_of(element.get("waybill_no")))
            try:
                row.spec = _TASK_IN.load(element)
            except ValidationError as exc:
                for path, messages in fields_from_messages(exc.messages).items():
                    for message in messages:
                        row.refuse(path, _MARSHMALLOW_CODES.get(message, "invalid"), message)
        rows.append(row)
    return rows


def read_rows(*, content: bytes, fmt: str) -> list[Row]:
    """Parse and validate a manifest's rows with the task schema; a file that cannot be read row by row is a 422."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The manifest must be UTF-8.", fields={"file": ["Not UTF-8."]}) from exc
    return _csv_rows(text) if fmt == "csv" else _json_rows(text)


def _state_of_task(task: Task) -> dict:
    """A task's upstream-owned fields, comparable with _state_of_spec."""
    return {"recipient_name": task.recipient_name, "recipient_phone": task.recipient_phone, "address": task.address,
            "lat": task.lat, "lon": task.lon, "cod_amount": task.cod_amount,
            "parcels": sorted((p.parcel_no, p.description, p.count, p.declared_value, p.insured) for p in task.parcels),
            "fees": sorted((f.code, f.amount) for f in task.fees),
            "service_product": task.service_product, "collected_at": task.collected_at}


def _state_of_spec(spec: dict) -> dict:
    """A validated row's upstream-owned fields."""
    recipient = spec["recipient"]
    return {"recipient_name": recipient["name"], "recipient_phone": recipient["phone"],
            "address": recipient["address"], "lat": recipient.get("lat"), "lon": recipient.get("lon"),
            "cod_amount": spec.get("cod_amount", 0),
            "parcels": sorted((p["parcel_no"], p.get("description", ""), p.get("count", 1), p.get("declared_value"),
                               p.get("insured", False)) for p in spec["parcels"]),
            "fees": sorted((f["code"], f["amount"]) for f in spec.get("fees", [])),
            "service_product": spec.get("service_product"), "collected_at": spec.get("collected_at")}


_LOST_STATES = ("suspected_lost", "lost")


def _update_parcels(task: Task, specs: list[dict]) -> None:
    """The task's parcels as the manifest lists them: a parcel it keeps is the same row updated (its lost state,
    which dispatch and the scans gave it, stays), a new one is added, one it no longer lists is dropped."""
    kept = {parcel.parcel_no: parcel for parcel in task.parcels}
    parcels = []
    for spec in specs:
        parcel = kept.get(spec["parcel_no"])
        if parcel is None:
            parcel = Parcel(**spec)
        else:
            parcel.description, parcel.count = spec.get("description", ""), spec.get("count", 1)
            parcel.declared_value, parcel.insured = spec.get("declared_value"), spec.get("insured", False)
        parcels.append(parcel)
    task.parcels = parcels


def _apply(task: Task, row: Row, actor: Actor, source: dict, products: dict) -> str:
    """Bring an existing task up to its manifest row: updated, unchanged, or quarantined (the reason on the row)."""
    if row.spec["kind"] != task.kind:
        row.refuse("kind", "kind_changed", f"Task {task.id} is a {task.kind}; a manifest cannot change its kind.")
        return "quarantined"
    have, want = _state_of_task(task), _state_of_spec(row.spec)
    # A redacted task's personal data is gone on purpose: an old manifest does not bring it back.
    compared = [f for f in UPSTREAM_FIELDS if not (task.redacted_at is not None and f in PERSONAL_FIELDS)]
    changed = [f for f in compared if have[f] != want[f]]
    if not changed:
        return "unchanged"
    # The handover's steps need not wait for stop.arrive: one begun at the door (the COD paid, say) has taken the
    # task as it was; a new COD amount then would be signed as delivered against the old payment.
    begun = task.handover is not None and task.handover.begun
    if task.status not in UPDATABLE_STATUSES or begun:
        code = "task_finished" if task.is_finished else "task_in_progress"
        state = "at its handover" if begun and task.status in UPDATABLE_STATUSES else task.status
        row.refuse("waybill_no", code, f"Task {task.id} is {state}; the manifest's changes to "
                   f"{', '.join(changed)} are not applied.", changed=changed)
        return "quarantined"
    passed = promises.change_problems(task, changed, utcnow())
    for path, code, message in passed:
        row.refuse(path, code, message, changed=changed)
    if passed:
        return "quarantined"
    wanted = {parcel["parcel_no"] for parcel in row.spec["parcels"]}
    held = [p.parcel_no for p in task.parcels if p.lost_state in _LOST_STATES and p.parcel_no not in wanted]
    if "parcels" in changed and held:
        row.refuse("parcels", "parcel_in_lost_state", f"Parcels {', '.join(held)} of task {task.id} are suspected "
                   "or confirmed lost; the manifest cannot drop them (dispatch settles them first).", changed=changed)
        return "quarantined"
    before = snapshot(task)
    for name in changed:
        if name == "parcels":
            _update_parcels(task, row.spec["parcels"])
        elif name == "fees":
            task.fees = [TaskFee(code=fee["code"], amount=fee["amount"]) for fee in row.spec.get("fees", [])]
        elif name in ("service_product", "collected_at"):
            promises.apply(task, row.spec, products)
        else:
            setattr(task, name, want[name])
    task_service.mark_dispatch_change(task)
    task_service.record_event(task, "manifest_updated", actor, data={**source, "row": row.number, "fields": changed})
    audit(actor, "task.manifest_update", task, before)
    return "updated"


def _existing(waybills: list[str]) -> dict[str, Task]:
    """The tasks of these waybills, locked in id order (a concurrent import or dispatcher queues behind)."""
    found = {}
    for i in range(0, len(waybills), _LOOKUP_CHUNK):
        found.update((task.waybill_no, task) for task in db.session.scalars(
            select(Task).where(Task.waybill_no.in_(waybills[i:i + _LOOKUP_CHUNK]))
            .options(selectinload(Task.parcels), selectinload(Task.fees)).order_by(Task.id).with_for_update()))
    return found


def _quarantine(rows: list[Row], file_name: str, sha256: str) -> None:
    """Keep the rows held back; a row of this file already kept stays as it is (resolved or not)."""
    if not rows:
        return
    insert = _INSERT[db.session.get_bind().dialect.name]
    now = utcnow()
    db.session.execute(insert(ManifestQuarantine.__table__).values([
        {"file_name": file_name[:255], "file_sha256": sha256, "row_number": row.number, "waybill_no": row.waybill_no,
         "raw": row.raw, "reasons": row.reasons, "received_at": now} for row in rows
    ]).on_conflict_do_nothing(index_elements=["file_sha256", "row_number"]))


def _report(file_name: str, sha256: str, rows: list[Row]) -> dict:
    """What an import did: counts that add up to the rows, and every row's outcome."""
    counts = {"rows": len(rows), **{outcome: sum(r.outcome == outcome for r in rows) for outcome in OUTCOMES}}
    return {"file_name": file_name, "file_sha256": sha256, "counts": counts,
            "rows": [{"row": r.number, "waybill_no": r.waybill_no, "outcome": r.outcome, "task_id": r.task_id,
                      "reasons": r.reasons} for r in rows]}


def import_manifest(*, actor: Actor, file_name: str, content: bytes, fmt: str) -> dict:
    """Create or update tasks from a manifest by waybill; bad rows are quarantined, the rest taken. Commits once.

    A file that cannot be read row by row (not UTF-8, not JSON, a wrong CSV
    header) is a 422 and stores nothing. A waybill another import creates at the
    same moment is a 409 duplicate_waybill and stores nothing: the file is simply
    imported again.
    """
    sha256, file_name = hashlib.sha256(content).hexdigest(), storable(file_name)
    rows = read_rows(content=content, fmt=fmt)
    published = task_service.published_fee_codes()
    products = promises.offered([row.spec for row in rows if row.spec is not None])
    first_of: dict[str, int] = {}
    for row in rows:
        if row.spec is None:
            continue
        for path, code, message in task_service.spec_problems(row.spec, published, products):
            row.refuse(path, code, message)
        waybill = row.spec["waybill_no"]
        if waybill in first_of:
            row.refuse("waybill_no", "duplicate_in_file", f"Repeats the waybill of row {first_of[waybill]}.")
        first_of.setdefault(waybill, row.number)
    good = [row for row in rows if row.spec is not None and not row.reasons]
    existing = _existing(sorted({row.spec["waybill_no"] for row in good}))
    source = {"file": file_name, "sha256": sha256}
    created = []
    for row in good:
        task = existing.get(row.spec["waybill_no"])
        if task is None:
            task = task_service.build_task(row.spec, actor, products)
            db.session.add(task)
            created.append((row, task))
            row.outcome = "created"
        else:
            row.outcome, row.task_id = _apply(task, row, actor, source, products), task.id
    task_service.flush_new_tasks([task for _, task in created])
    for row, task in created:
        row.task_id = task.id
    audit_created(actor, "task.manifest_import", [task for _, task in created])
    for row in rows:
        if row.reasons:
            row.outcome = "quarantined"
    _quarantine([row for row in rows if row.reasons], file_name, sha256)
    db.session.commit()
    report = _report(file_name, sha256, rows)
    log.info("manifest imported", extra={"file": file_name, "sha256": sha256,
                                         **{f"rows_{key}": value for key, value in report["counts"].items()}})
    return report


def quarantine_file(*, file_name: str, content: bytes, error: DomainError) -> dict:
    """Keep a file that could not be read row by row as row 0 of its own, with the reasons. Commits."""
    sha256, file_name = hashlib.sha256(content).hexdigest(), storable(file_name)
    row = Row(number=0, raw={"head": content[:2000].decode("utf-8", "replace")}, waybill_no=None)
    for path, messages in (error.fields or {"file": [error.detail]}).items():
        for message in messages:
            row.refuse(path, "unreadable", message)
    _quarantine([row], file_name, sha256)
    db.session.commit()
    return {"file_name": file_name, "file_sha256": sha256, "counts": {"rows": 0, **dict.fromkeys(OUTCOMES, 0)},
            "rows": [], "error": {"code": error.code, "detail": error.detail, "reasons": row.reasons}}


def format_of(file_name: str) -> str | None:
    """csv or json by the file's extension; None for anything else."""
    extension = os.path.splitext(file_name)[1].lower().lstrip(".")
    return extension if extension in MANIFEST_FORMATS else None


def get_quarantine(*, resolved: bool | None = None, file_sha256: str | None = None, waybill_no: str | None = None,
                   cursor: int | None = None, limit: int = 50) -> dict:
    """Quarantined rows newest first, by resolution, file or waybill."""
    query = select(ManifestQuarantine)
    if resolved is not None:
        query = query.where(ManifestQuarantine.resolved_at.is_not(None) if resolved
                            else ManifestQuarantine.resolved_at.is_(None))
    if file_sha256:
        query = query.where(ManifestQuarantine.file_sha256 == file_sha256)
    if waybill_no:
        query = query.where(ManifestQuarantine.waybill_no == waybill_no)
    return newest_first(query, ManifestQuarantine.id, cursor=cursor, limit=limit)


def resolve(*, actor: Actor, entry_id: int, note: str) -> ManifestQuarantine:
    """Mark a quarantined row dealt with (once), saying how. Commits."""
    entry = db.session.get(ManifestQuarantine, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound(f"No quarantined manifest row {entry_id}.", code="quarantine_entry_not_found")
    if entry.resolved_at is not None:
        raise Conflict("The row is already resolved.", code="already_resolved")
    before = snapshot(entry)
    entry.resolved_at, entry.resolved_by, entry.resolution_note = utcnow(), actor.id, note
    audit(actor, "manifest_quarantine.resolve", entry, before)
    db.session.commit()
    return entry


def _free_name(folder: str, file_name: str, sha256: str) -> str:
    """Where a processed file goes in done/: its own name, or with its hash when that name is taken."""
    target = os.path.join(folder, file_name)
    if not os.path.exists(target):
        return target
    stem, extension = os.path.splitext(file_name)
    return os.path.join(folder, f"{stem}.{sha256[:12]}.{utcnow():%Y%m%dT%H%M%S}{extension}")


def _write_report(path: str, report: dict) -> None:
    """Write the report beside the processed file, whole or not at all."""
    partial = path + ".part"
    with open(partial, "wb") as out:
        out.write(jsonio.dumps_bytes(report))
    os.replace(partial, path)


def import_inbox(*, inbox: str | None, actor: Actor = SYSTEM) -> dict:
    """Import every complete manifest in the drop folder, oldest first; each goes to done/ with a report beside.

    Complete means named *.csv or *.json: the upstream writes any other name
    (`orders.csv.part`) and renames it when the file is whole, which is atomic
    within one folder. Hidden files and everything else are left alone. A file
    is moved only after its import committed; if the process dies in between,
    the next run imports it again, which changes nothing.
    """
    # rows_*: a job's counts are logged as record attributes, and `created` is one of logging's own.
    totals = {"files": 0, "unreadable_files": 0, "rows": 0, **{f"rows_{outcome}": 0 for outcome in OUTCOMES}}
    if not inbox:
        return totals
    done = os.path.join(inbox, "done")
    os.makedirs(done, exist_ok=True)
    entries = sorted((e for e in os.scandir(inbox) if e.is_file() and not e.name.startswith(".")
                      and format_of(e.name)), key=lambda e: (e.stat().st_mtime, e.name))
    for entry in entries:
        try:
            with open(entry.path, "rb") as source:
                content = source.read()
        except FileNotFoundError:  # another importer took it
            continue
        try:
            report = import_manifest(actor=actor, file_name=entry.name, content=content, fmt=format_of(entry.name))
        except ValidationFailed as exc:
            db.session.rollback()
            report = quarantine_file(file_name=entry.name, content=content, error=exc)
            totals["unreadable_files"] += 1
        except Conflict:
            db.session.rollback()
            log.warning("manifest left for the next run", extra={"file": entry.name}, exc_info=True)
            continue
        target = _free_name(done, entry.name, report["file_sha256"])
        _write_report(target + ".report.json", report)
        os.replace(entry.path, target)
        totals["files"] += 1
        totals["rows"] += report["counts"]["rows"]
        for outcome in OUTCOMES:
            totals[f"rows_{outcome}"] += report["counts"][outcome]
    return totals
