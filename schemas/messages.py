"""Messages to customers on the wire: a task's messages and their delivery (the phone masked)."""
from marshmallow import fields

from schemas.common import Schema
from schemas.vocab import MESSAGE_KINDS, MESSAGE_LANGUAGES, MESSAGE_STATUSES, MESSAGE_SUPPRESSIONS


class MessageOut(Schema):
    """One event told to the task's recipient, and how its delivery stands."""

    id = fields.Integer()
    task_id = fields.String()
    event_id = fields.String(metadata={"description": "The event the message tells of (one message per event)"})
    kind = fields.String(metadata={"enum": list(MESSAGE_KINDS)})
    language = fields.String(metadata={"enum": list(MESSAGE_LANGUAGES)})
    text = fields.String(metadata={"description": "The text as rendered from its template"})
    to_phone = fields.String(allow_none=True, metadata={
        "description": "The recipient's phone, masked (138****5678); null once the task was redacted"})
    status = fields.String(metadata={
        "enum": list(MESSAGE_STATUSES),
        "description": "queued, held_quiet (until the quiet hours end), sent, failed (retried at next_attempt_at), "
                       "dead (after the last attempt), recorded (no gateway configured: never sent), suppressed "
                       "(never sent: see reason)"})
    reason = fields.String(allow_none=True, metadata={"enum": list(MESSAGE_SUPPRESSIONS)})
    attempts = fields.Integer()
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    last_attempt_at = fields.AwareDateTime(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True, metadata={"description": "The gateway's id of the sent message"})
    sent_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class MessageList(Schema):
    """A task's messages, oldest first."""

    items = fields.List(fields.Nested(MessageOut))
