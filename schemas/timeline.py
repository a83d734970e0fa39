"""A task's timeline as dispatch reads it: the task, where it stands, and every entry in order."""
from marshmallow import fields

from schemas.appointments import AppointmentOut, AppointmentWindowOut
from schemas.common import Schema
from schemas.sync import ConflictOut
from schemas.tasks import TaskOut
from schemas.vocab import OP_LOG_STATUSES

ENTRY_KINDS = ("event", "op", "scan", "conflict", "review", "receipt")


class AttachmentLinkOut(Schema):
    """A photo or signature, and where the office downloads it."""

    sha256 = fields.String()
    role = fields.String(metadata={"enum": ["signature", "photo"]})
    url = fields.String(metadata={"description": "GET /api/v1/dispatch/attachments/{sha256}"})


class TimelineOpOut(Schema):
    """What the op log says of the op an entry came from."""

    id = fields.Integer(metadata={"description": "The op log row"})
    op_id = fields.String()
    seq = fields.Integer()
    device_id = fields.String()
    type = fields.String()
    status = fields.String(metadata={"enum": list(OP_LOG_STATUSES)})
    code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    device_time = fields.AwareDateTime(allow_none=True, metadata={"description": "As the device said"})
    effective_time = fields.AwareDateTime(allow_none=True, metadata={
        "description": "What the rules went by (the device's time corrected by its measured skew, held in bounds)"})
    received_at = fields.AwareDateTime()
    clock_suspect = fields.Boolean()
    clock_skew_s = fields.Integer(allow_none=True)


class TimelineEntryOut(Schema):
    """One thing that happened to the task."""

    id = fields.String(metadata={"description": "Stable within the task: <kind>-<row id>"})
    kind = fields.String(metadata={"enum": list(ENTRY_KINDS), "description": (
        "event: the task's history (created, assigned, note, appointment.*, arrived, handover.<step>, cancelled, "
        "appointment.reviewed, conflict_resolved, ...); op: an op named by no other entry (a rejection, a duplicate, "
        "a wish recorded in conflict); scan: a parcel scan; conflict: an op made on a version dispatch had changed; "
        "review: a window whose decision went to dispatch; receipt: the sealed receipt")})
    type = fields.String(metadata={"description": "The history kind, op type, scan event, conflict or review "
                                                  "reason, or receipt kind"})
    at = fields.AwareDateTime(metadata={"description": "When it happened: the time the rules went by"})
    device_time = fields.AwareDateTime(allow_none=True, metadata={"description": "The device's own time"})
    received_at = fields.AwareDateTime(allow_none=True, metadata={"description": "When the server heard it"})
    clock_suspect = fields.Boolean()
    actor_kind = fields.String(allow_none=True)
    actor_id = fields.String(allow_none=True)
    actor_name = fields.String(allow_none=True, metadata={"description": "The courier's name or the staff member's "
                                                                        "username"})
    op = fields.Nested(TimelineOpOut, allow_none=True)
    text = fields.String(allow_none=True)
    data = fields.Dict()
    attachments = fields.List(fields.Nested(AttachmentLinkOut))
    to_settle = fields.Boolean(metadata={"description": "An open conflict or a window under review"})
    ref = fields.Integer(allow_none=True, metadata={
        "description": "The conflict's id (POST /dispatch/conflicts/{id}/resolve) or the window's "
                       "(POST /dispatch/tasks/{task_id}/appointment/review)"})


class MaskedRecipientOut(Schema):
    """The recipient as a page over the shoulder may show them."""

    name = fields.String()
    phone = fields.String()


class ReceiptLinkOut(Schema):
    """The receipt's number and public page."""

    number = fields.String()
    url = fields.String(allow_none=True, metadata={"description": "null if its address cannot be recovered"})


class TimelineOut(Schema):
    """A task, where it stands, and everything that happened to it, oldest first."""

    task = fields.Nested(TaskOut)
    recipient_masked = fields.Nested(MaskedRecipientOut)
    appointment = fields.Nested(AppointmentOut, allow_none=True)
    appointment_state = fields.String(allow_none=True, metadata={"description": "The board's state"})
    receipt = fields.Nested(ReceiptLinkOut, allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentLinkOut))
    open_conflicts = fields.List(fields.Nested(ConflictOut))
    open_reviews = fields.List(fields.Nested(AppointmentWindowOut))
    entries = fields.List(fields.Nested(TimelineEntryOut))
    names = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Who the ids in the entries are (actors, couriers a task was assigned to)"})
