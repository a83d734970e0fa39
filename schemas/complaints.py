"""Complaints on the wire: recording one, taking and handing it over, answering, contacting, resolving, reopening,
rating; the dispatch list; the customer's form on their pages."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import NewestFirstQuery, PageOut, Schema, Time, text
from schemas.customer_links import PageForm
from schemas.vocab import (COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_CONTACT_CHANNELS,
                           COMPLAINT_CONTACT_KINDS, COMPLAINT_OFFICE_CHANNELS, COMPLAINT_OUTCOMES,
                           COMPLAINT_OVERDUE_REASONS, COMPLAINT_STATUSES, COMPLAINT_SUBJECTS, SATISFACTION)


class ComplaintIn(Schema):
    """A complaint as the office records it: about a task's courier or a courier named, or about a depot, the
    hotline or the product (a courier optional)."""

    task_id = text(32, required=False, load_default=None,
                   metadata={"description": "The task complained about (it names its courier)"})
    courier_id = text(32, required=False, load_default=None,
                      metadata={"description": "Required without a task_id, or when the task has no courier, for "
                                               "a complaint about a courier (optional otherwise)"})
    subject = text(16, required=False, load_default="courier", validate=validate.OneOf(COMPLAINT_SUBJECTS),
                   metadata={"description": "What it is about (default courier); only a complaint about a courier "
                                            "upheld is a courier's violation"})
    channel = text(16, validate=validate.OneOf(COMPLAINT_OFFICE_CHANNELS))
    category = text(16, validate=validate.OneOf(COMPLAINT_CATEGORIES))
    text = text(2000, multiline=True)
    received_at = Time(load_default=None, metadata={
        "description": "When the customer complained (default now; not in the future): the response time runs from it"})

    @validates_schema
    def _names_someone(self, data, **_kw):
        """A complaint about a courier names one, or the task they served."""
        if data.get("subject", "courier") == "courier" and not data.get("task_id") and not data.get("courier_id"):
            raise ValidationError("Give task_id or courier_id (or both).", field_name="courier_id")


class ComplaintHandoverIn(Schema):
    """Hand a complaint to another staff member: who, and why."""

    to_staff_id = text(32, metadata={"description": "An active dispatcher, quality staff member or admin"})
    reason = text(2000, multiline=True)


class ComplaintRespondIn(Schema):
    """The first response to the customer."""

    text = text(2000, multiline=True)


class ComplaintResolveIn(Schema):
    """A complaint's outcome."""

    outcome = text(16, validate=validate.OneOf(COMPLAINT_OUTCOMES))
    note = text(2000, multiline=True)
    resolved_at_first_contact = fields.Boolean(load_default=None, allow_none=True, metadata={
        "deprecated": True,
        "description": "Deprecated: accepted and kept as the office's note, but first-contact resolution is derived "
                       "from the complaint's contacts and reopenings (docs/kpis.md), never from this box"})


class ComplaintContactIn(Schema):
    """A contact with the customer about the complaint (a call, a message, a visit)."""

    channel = text(16, validate=validate.OneOf(COMPLAINT_CONTACT_CHANNELS))
    note = text(2000, multiline=True, metadata={"description": "What was said or done"})


class ComplaintReopenIn(Schema):
    """Why the customer brought a resolved complaint back."""

    reason = text(2000, multiline=True)


class ComplaintSatisfactionIn(Schema):
    """The customer's satisfaction with the outcome."""

    satisfaction = text(16, validate=validate.OneOf(SATISFACTION))


class ComplaintQuery(NewestFirstQuery):
    """Filters for the complaint list, newest first."""

    status = text(16, required=False, load_default=None, validate=validate.OneOf(COMPLAINT_STATUSES))
    courier_id = text(32, required=False, load_default=None)
    category = text(16, required=False, load_default=None, validate=validate.OneOf(COMPLAINT_CATEGORIES))
    subject = text(16, required=False, load_default=None, validate=validate.OneOf(COMPLAINT_SUBJECTS))
    channel = text(16, required=False, load_default=None, validate=validate.OneOf(COMPLAINT_CHANNELS))
    owner = text(32, required=False, load_default=None, metadata={
        "description": "A staff id, `me` (the caller), or `none`: the unowned queue"})
    overdue = fields.Boolean(load_default=None, metadata={
        "description": "true: overdue for any reason (first response, resolution, update: see overdue_reasons); "
                       "false: the others"})


class ComplaintContactOut(Schema):
    """A contact with the customer about a complaint, dated when it was recorded."""

    id = fields.Integer()
    complaint_id = fields.Integer()
    kind = fields.String(metadata={"enum": list(COMPLAINT_CONTACT_KINDS), "description": (
        "first_response: the first response (by /respond, or the first contact recorded); contact: a later one; "
        "legacy: stands for the contacts of a complaint resolved before contacts were recorded, whose office "
        "said it was not resolved at first contact")})
    channel = fields.String(allow_none=True, metadata={"enum": [*COMPLAINT_CONTACT_CHANNELS, None]})
    note = fields.String(allow_none=True)
    contacted_at = fields.AwareDateTime()
    recorded_by = fields.String(allow_none=True)


class ComplaintReopeningOut(Schema):
    """A reopening: why, when, by whom, and the resolution it set aside."""

    id = fields.Integer()
    reason = fields.String()
    reopened_at = fields.AwareDateTime()
    reopened_by = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime()
    resolved_by = fields.String(allow_none=True)
    outcome = fields.String(metadata={"enum": list(COMPLAINT_OUTCOMES)})
    resolution_note = fields.String(allow_none=True)
    resolved_at_first_contact = fields.Boolean(allow_none=True, metadata={"deprecated": True})
    satisfaction = fields.String(allow_none=True, metadata={"enum": [*SATISFACTION, None]})
    satisfaction_at = fields.AwareDateTime(allow_none=True)


class ComplaintHandoverOut(Schema):
    """A complaint handed from one staff member (none: unowned) to another, why, when, by whom."""

    id = fields.Integer()
    from_staff_id = fields.String(allow_none=True)
    to_staff_id = fields.String()
    reason = fields.String()
    handed_over_at = fields.AwareDateTime()
    handed_over_by = fields.String()


class ComplaintOut(Schema):
    """A complaint with its owner and times, its contacts with the customer, handovers and reopenings."""

    id = fields.Integer()
    reference = fields.String(metadata={"description": "The number the customer is given"})
    subject = fields.String(metadata={"enum": list(COMPLAINT_SUBJECTS)})
    courier_id = fields.String(allow_none=True, metadata={"description": "None unless about a courier"})
    task_id = fields.String(allow_none=True)
    channel = fields.String(metadata={"enum": list(COMPLAINT_CHANNELS)})
    category = fields.String(metadata={"enum": list(COMPLAINT_CATEGORIES)})
    text = fields.String()
    status = fields.String(metadata={"enum": list(COMPLAINT_STATUSES)})
    received_at = fields.AwareDateTime()
    response_due_at = fields.AwareDateTime()
    resolution_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "Fixed when received (anew when reopened), by category; none if received before it was set"})
    update_due_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "The next update to the customer is due by then (set at each contact), until resolved"})
    overdue = fields.Boolean(metadata={"description": "Overdue for any reason (overdue_reasons)"})
    overdue_reasons = fields.List(fields.String(metadata={"enum": list(COMPLAINT_OVERDUE_REASONS)}), metadata={
        "description": "response: no first response by its due time; resolution: not resolved by its due time; "
                       "update: the customer not updated by update_due_at"})
    owner_id = fields.String(allow_none=True, metadata={"description": "Who answers for it (none: in the queue)"})
    owned_since = fields.AwareDateTime(allow_none=True)
    photo_sha256 = fields.String(allow_none=True, metadata={"description": "The customer's photo (an attachment)"})
    rating_id = fields.Integer(allow_none=True, metadata={"description": "The low rating this follows up"})
    responded_in_time = fields.Boolean(allow_none=True, metadata={
        "description": "Whether the first response came by its due time (null until there is one)"})
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    first_response_at = fields.AwareDateTime(allow_none=True)
    first_response_by = fields.String(allow_none=True)
    first_response_text = fields.String(allow_none=True)
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True, metadata={"enum": [*COMPLAINT_OUTCOMES, None]})
    resolution_note = fields.String(allow_none=True)
    resolved_at_first_contact = fields.Boolean(allow_none=True, metadata={
        "deprecated": True, "description": "Deprecated: what the office ticked, if anything; not what the "
                                           "first_contact_resolution figure reads"})
    satisfaction = fields.String(allow_none=True, metadata={"enum": [*SATISFACTION, None]})
    satisfaction_at = fields.AwareDateTime(allow_none=True)
    violation_id = fields.Integer(allow_none=True)
    contacts = fields.List(fields.Nested(ComplaintContactOut), metadata={
        "description": "Every contact with the customer, oldest first; the first response is the first"})
    reopenings = fields.List(fields.Nested(ComplaintReopeningOut), metadata={"description": "Oldest first"})
    handovers = fields.List(fields.Nested(ComplaintHandoverOut), metadata={"description": "Oldest first"})


class ComplaintPage(PageOut):
    """A page of complaints, newest first."""

    items = fields.List(fields.Nested(ComplaintOut))



class ComplaintForm(PageForm):
    """The customer's complaint from their customer or receipt page (the photo comes as a file beside it)."""

    category = text(16, validate=validate.OneOf(COMPLAINT_CATEGORIES))
    subject = text(16, required=False, load_default="courier", validate=validate.OneOf(COMPLAINT_SUBJECTS))
    text = text(1000, multiline=True)
