"""A task as its courier's handheld holds it: with its appointment, handover state and newest notes.

The view of the task schemas together, above each of them (schemas.appointments
and schemas.handover build on schemas.tasks, never on this).
"""
from marshmallow import fields

from schemas.appointments import AppointmentOut
from schemas.common import Schema
from schemas.handover import HandoverStateOut
from schemas.render import renderer
from schemas.tasks import CourierRecipientOut, FeeOut, NoteOut, ParcelOut, PromiseOut, WindowOut
from schemas.vocab import ATTEMPT_FAILURES

# A push renders every task it touched: the nested parts through schemas.render (their schemas' dumps, faster).
_appointment_out = renderer(AppointmentOut())
_handover_out = renderer(HandoverStateOut())
_courier_recipient_out = renderer(CourierRecipientOut())
_window_out = renderer(WindowOut())

_NO_HANDOVER = {"recipient_verified": False, "verify_method": None, "inspection": None, "items": None,
                "discrepancy": False, "paid": False, "paid_amount": None, "paid_method": None, "signed": False,
                "outcome": None, "alternate_place": None, "not_at_address": False, "consent_place": None,
                "consent_note": None, "pin": None}


def _handover_state(handover) -> dict:
    """A task's handover state as the handheld holds it (nothing done yet when there is none)."""
    return _handover_out(handover) if handover is not None else dict(_NO_HANDOVER)


class CourierTaskOut(Schema):
    """A task as its courier's handheld holds it (online and in sync pulls)."""

    id = fields.String()
    waybill_no = fields.String()
    kind = fields.String()
    status = fields.String()
    version = fields.Integer()
    recipient = fields.Function(_courier_recipient_out)
    parcels = fields.List(fields.Nested(ParcelOut))
    cod_amount = fields.Integer()
    fees = fields.List(fields.Nested(FeeOut))
    window = fields.Function(_window_out)
    arrived_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    failure_reason = fields.String(allow_none=True, metadata={
        "enum": list(ATTEMPT_FAILURES), "description": "Why the day's attempt failed, while the task is failed"})
    appointment = fields.Function(lambda task: _appointment_out(task.appointment) if task.appointment else None)
    gift_description = fields.String(allow_none=True)
    pin_required = fields.Boolean()
    promise = fields.Nested(PromiseOut, allow_none=True, attribute="promise_view", metadata={
        "description": "The service product's promise (null: unknown); its state as of the dump"})
    amount_due = fields.Function(lambda task: task.cod_amount + sum(fee.amount for fee in task.fees),
                                 metadata={"description": "COD plus published fees, in fen: what pod.collect_payment takes"})
    handover = fields.Function(lambda task: _handover_state(task.handover))
    notes = fields.List(fields.Nested(NoteOut), attribute="handheld_notes", metadata={
        "description": "The most recent notes (20), newest first; the full history is dispatch's"})


class CourierTaskList(Schema):
    """A courier's own tasks."""

    items = fields.List(fields.Nested(CourierTaskOut))


class FeeCodeOut(Schema):
    """A published fee code as every handheld holds it (pull entity `fee_code`): a pickup charges only these."""

    id = fields.String(dump_only=True)
    code = fields.String()
    name = fields.String()
    version = fields.Integer()
