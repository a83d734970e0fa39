"""Dispatch: tasks (create, import, list, read, assign, cancel, gift, note)."""
from functools import partial

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.imports import _REQUIRED_COLUMNS, CSV_COLUMNS, load_import
from schemas.tasks import (AssignIn, CancelIn, GiftIn, NoteIn, TaskDetailOut, TaskImportIn, TaskImportOut,
                           TASK_CSV_COLUMNS, TaskIn, TaskOut, TaskPage, TaskQuery)
from schemas.timeline import TimelineOut
from server import csvout
from server.exports import noted_export
from server.auth import DISPATCH, OFFICE, current_actor, require
from server.requests import body_limit
from server.services import handheld, handover, tasks, timeline

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/dispatch/tasks", description="Tasks (dispatch)")
_CSV_IMPORT = (
    "A UTF-8 CSV file (a byte-order mark is allowed) with a header row, one row per parcel; rows "
    "sharing a waybill_no form one task, whose task columns are read from its first row. "
    f"Columns: {', '.join(CSV_COLUMNS)}. Required: {', '.join(_REQUIRED_COLUMNS)}. "
    "Formats: waybill_no 4-40 letters, digits or dashes; kind delivery or pickup; recipient_phone "
    "digits, spaces or dashes, optionally after a +; lat and lon decimal degrees; window_start and "
    "window_end ISO 8601 date-times with a time zone (2026-01-05T09:00:00+08:00), the end after the "
    "start; cod_amount whole fen (default 0); fees code:amount pairs in fen joined by ; "
    "(delivery:1200;insurance:300); parcel_count a whole number from 1 (default 1); service_product a "
    "service product's code and collected_at its collection time (ISO 8601 with a time zone, required with "
    "service_product; both empty: the promise is unknown). All rows are "
    "imported or none; each bad cell is named in the problem's fields as rows.<line>.<column>.")


@blp.route("")
class Tasks(MethodView):
    """The task book."""

    @require(*DISPATCH)
    @blp.arguments(TaskIn)
    @blp.response(201, TaskOut)
    def post(self, spec):
        """Create a task; a duplicate waybill is a 409."""
        return tasks.create(actor=current_actor(), spec=spec)

    @require(*OFFICE)
    @blp.arguments(TaskQuery, location="query")
    @blp.doc(responses=csvout.documented(TaskPage))
    @blp.response(200, TaskPage)
    def get(self, query):
        """List or search tasks by status, courier, service date, waybill or q, a page at a time, or all as CSV
        with ?format=csv (customer data: noted for leak detection)."""
        query["service_date"] = query.pop("date")
        if query.pop("format") == "csv":
            filters = {k: v for k, v in query.items() if k not in ("cursor", "limit")}
            rows = csvout.every_row(partial(tasks.get_all, **filters), cursor=query["cursor"])
            return csvout.respond(rows, schema=TaskOut(), columns=TASK_CSV_COLUMNS, filename="tasks.csv",
                                  what="dispatch_tasks")
        page = tasks.get_all(**query)
        noted_export("dispatch_tasks", len(page["items"]))
        return page


@blp.route("/import")
class TaskImport(MethodView):
    """Bulk creation."""

    @require(*DISPATCH)
    @body_limit("IMPORT_BODY_LIMIT")
    @blp.doc(requestBody={"required": True, "content": {
        "application/json": {"schema": {"oneOf": [
            {"type": "array", "items": TaskIn, "minItems": 1, "maxItems": 5000}, TaskImportIn]}},
        "text/csv": {"schema": {"type": "string", "description": _CSV_IMPORT}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary", "description": _CSV_IMPORT}}}}}})
    @blp.response(201, TaskImportOut)
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    def post(self):
        """Import tasks from a JSON list or a CSV file; all or nothing, every bad row named."""
        specs, labels = load_import(request)
        created = tasks.import_tasks(actor=current_actor(), specs=specs, labels=labels)
        return {"created": len(created), "ids": [t.id for t in created]}


@blp.route("/<task_id>")
class TaskById(MethodView):
    """One task."""

    @require(*OFFICE)
    @blp.response(200, TaskDetailOut)
    def get(self, task_id):
        """A task with its history and its receipt (customer data: noted for leak detection)."""
        task = handover.with_receipt(task_id=task_id)
        noted_export("dispatch_task", 1)
        return task


@blp.route("/<task_id>/timeline")
class TaskTimeline(MethodView):
    """A task's whole story."""

    @require(*OFFICE)
    @blp.response(200, TimelineOut)
    def get(self, task_id):
        """Every op, history entry, handover step, scan, conflict, review and the receipt, in the order they
        happened, each with its device time, server receipt time and clock_suspect (customer data: noted)."""
        answer = timeline.task_timeline(task_id=task_id)
        noted_export("dispatch_task", 1)
        return answer


@blp.route("/<task_id>/assign")
class TaskAssignment(MethodView):
    """Giving a task to a courier."""

    @require(*DISPATCH)
    @blp.arguments(AssignIn)
    @blp.response(200, TaskOut)
    def post(self, data, task_id):
        """Assign (or reassign) an open task."""
        return tasks.assign(actor=current_actor(), task_id=task_id, courier_id=data["courier_id"])


@blp.route("/<task_id>/cancel")
class TaskCancellation(MethodView):
    """Cancelling a task."""

    @require(*DISPATCH)
    @blp.arguments(CancelIn)
    @blp.response(200, TaskOut)
    def post(self, data, task_id):
        """Cancel an open task, with a reason."""
        return tasks.cancel(actor=current_actor(), task_id=task_id, reason=data["reason"])


@blp.route("/<task_id>/gift")
class TaskGift(MethodView):
    """The gift enclosed with a task's parcels."""

    @require(*DISPATCH)
    @blp.arguments(GiftIn)
    @blp.response(200, TaskOut)
    def put(self, data, task_id):
        """Set, change or clear an open task's gift (a dispatch change: older device ops conflict)."""
        return tasks.set_gift(actor=current_actor(), task_id=task_id, description=data["gift_description"])


@blp.route("/<task_id>/notes")
class TaskNotes(MethodView):
    """Dispatch notes on a task (the same rule as a courier's task.note op)."""

    @require(*DISPATCH)
    @blp.arguments(NoteIn)
    @blp.response(201, TaskDetailOut)
    def post(self, data, task_id):
        """Add a note."""
        return handheld.note(actor=current_actor(), task_id=task_id, **data)
