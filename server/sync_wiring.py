"""The sync engine's registry for this server: op types -> rules, entity types -> scope.

Every handler here is an adapter of a few lines: the rule itself is the same
service function the HTTP API calls.
"""
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from schemas.appointments import ConfirmIn, ContactIn, CustomerAbsentIn, LateNoticeIn, RescheduleIn
from schemas.checklists import (ChecklistSubmitIn, ShiftEndIn, ShiftStartIn, SubmissionOut, TemplateOut,
                                VehicleHandheldOut, submission_attachments)
from schemas.couriers import CourierSelfOut
from schemas.handheld import CourierTaskOut, FeeCodeOut
from schemas.handover import (CollectPaymentIn, DeliverAlternateIn, InspectIn, PickupCollectIn, RefuseIn, SignIn,
                              VerifyRecipientIn)
from schemas.render import read_by_attribute, renderer
from schemas.scans import ScanIn
from schemas.tasks import ArriveIn, NoteIn, NoteOut
from schemas.violations import AppealIn, AppealOut
from server.extensions import db
from server.errors import ValidationFailed
from server.models import (ChecklistSubmission, ChecklistTemplate, Courier, FeeCode, Parcel, Task, TaskFee, Vehicle,
                           ViolationAppeal)
from server.services import (appointments, attachments, checklists, duty, handover, privacy, receipts, scans, tasks,
                             violations)
from sync import docs
from sync.registry import AttachmentStore, EntityType, OpType, Registry

_task_out = CourierTaskOut()
_task_out_without_notes = CourierTaskOut(exclude=("notes",))
# The push renders every task it touched: the schemas' own fields, walked by plain functions (schemas.render).
_render_task = renderer(_task_out)
_render_task_without_notes = renderer(_task_out_without_notes)
_render_note = renderer(NoteOut())
_vehicle_out = VehicleHandheldOut()
_template_out = TemplateOut()
_fee_code_out = FeeCodeOut()
_submission_out = SubmissionOut()
_courier_out = CourierSelfOut()
_appeal_out = AppealOut()


def _task_note(*, ctx, obj: Task, payload: dict) -> None:
    """task.note {text, photos}."""
    tasks.add_note(actor=ctx.actor, task=obj, text=payload["text"], photos=payload["photos"],
                   device_time=ctx.device_time)


def _stop_arrive(*, ctx, obj: Task, payload: dict) -> None:
    """stop.arrive {lat, lon}: arrival time is the device's, when it happened."""
    appointments.arrive(actor=ctx.actor, task=obj, lat=payload["lat"], lon=payload["lon"],
                 at=ctx.device_time, op_id=ctx.op_id, clock_suspect=ctx.clock_suspect)
    duty.check_work(task=obj, action="stop.arrive", **_op_facts(ctx))


def _op_facts(ctx) -> dict:
    """What every appointment rule takes from the op itself."""
    return {"actor": ctx.actor, "device_time": ctx.device_time, "op_id": ctx.op_id,
            "clock_suspect": ctx.clock_suspect}


def _appointment_contact(*, ctx, obj: Task, payload: dict) -> None:
    """appointment.contact {outcome, note}."""
    appointments.contact(task=obj, outcome=payload["outcome"], note=payload["note"], **_op_facts(ctx))


def _appointment_confirm(*, ctx, obj: Task, payload: dict) -> None:
    """appointment.confirm {window, via}: agreed in the field."""
    appointments.confirm_task(task=obj, start=payload["window"]["start"], end=payload["window"]["end"],
                              via=payload["via"], **_op_facts(ctx))


def _appointment_reschedule(*, ctx, obj: Task, payload: dict) -> None:
    """appointment.reschedule {window, reason, customer_agreed, via}."""
    appointments.reschedule_task(task=obj, start=payload["window"]["start"], end=payload["window"]["end"],
                                 reason=payload["reason"], customer_agreed=payload["customer_agreed"],
                                 via=payload["via"], **_op_facts(ctx))


def _appointment_late_notice(*, ctx, obj: Task, payload: dict) -> None:
    """appointment.late_notice {eta, reason}."""
    appointments.late_notice(task=obj, eta=payload["eta"], reason=payload["reason"], **_op_facts(ctx))


def _stop_customer_absent(*, ctx, obj: Task, payload: dict) -> None:
    """stop.customer_absent {waited_minutes}."""
    appointments.customer_absent(task=obj, waited_minutes=payload["waited_minutes"], **_op_facts(ctx))


def _pod_verify_recipient(*, ctx, obj: Task, payload: dict) -> None:
    """pod.verify_recipient {method, name, relation, pin}."""
    handover.verify_recipient(task=obj, **payload, **_op_facts(ctx))


def _pod_inspect(*, ctx, obj: Task, payload: dict) -> None:
    """pod.inspect {items, customer_accepted, photos}."""
    handover.inspect(task=obj, **payload, **_op_facts(ctx))


def _pod_collect_payment(*, ctx, obj: Task, payload: dict) -> None:
    """pod.collect_payment {amount, method}."""
    handover.collect_payment(task=obj, **payload, **_op_facts(ctx))


def _pod_sign(*, ctx, obj: Task, payload: dict) -> None:
    """pod.sign {signature, signer_name, lat, lon, gift_disclosed}."""
    gift_seen = obj.gift_version is None or ctx.base_version is None or ctx.base_version >= obj.gift_version
    handover.sign(task=obj, **payload, gift_seen=gift_seen, **_op_facts(ctx))


def _pod_refuse(*, ctx, obj: Task, payload: dict) -> None:
    """pod.refuse {reason, note, photos}."""
    handover.refuse(task=obj, **payload, **_op_facts(ctx))


def _pod_deliver_alternate(*, ctx, obj: Task, payload: dict) -> None:
    """pod.deliver_alternate {place, authorization: {via, reference}, photos}."""
    authorization = payload["authorization"]
    handover.deliver_alternate(task=obj, via=authorization["via"], reference=authorization["reference"],
                               **{k: v for k, v in payload.items() if k != "authorization"}, **_op_facts(ctx))


def _pickup_collect(*, ctx, obj: Task, payload: dict) -> None:
    """pickup.collect {parcels, fees, payment, signature, signer_name}."""
    handover.pickup_collect(task=obj, **payload, **_op_facts(ctx))


def _parcel_scan(*, ctx, obj: Task, payload: dict) -> None:
    """parcel.scan {parcel_no, event, note?} on the parcel's task (the op's entity)."""
    scans.scan(actor=ctx.actor, task=obj, parcel_no=payload["parcel_no"], event=payload["event"],
               note=payload["note"], device_time=ctx.device_time, reported_time=ctx.reported_time,
               op_id=ctx.op_id, clock_suspect=ctx.clock_suspect)


def _checklist_submit(*, ctx, obj: None, payload: dict) -> ChecklistSubmission:
    """checklist.submit {template_id, template_version, vehicle_id?, task_id?, answers, lat, lon, signature?}."""
    return checklists.submit(actor=ctx.actor, submission_id=ctx.entity_id, device_time=ctx.device_time,
                             op_id=ctx.op_id, clock_suspect=ctx.clock_suspect, **payload)


def _violation_appeal(*, ctx, obj: None, payload: dict) -> ViolationAppeal:
    """violation.appeal {violation_id, reason, photos}: the appeal's id is the op's entity_id."""
    return violations.appeal(actor=ctx.actor, appeal_id=ctx.entity_id, device_time=ctx.device_time, op_id=ctx.op_id,
                             clock_suspect=ctx.clock_suspect, **payload)


def _shift_facts(ctx, obj: Vehicle, payload: dict) -> dict:
    """What shift.start and shift.end take from the op; a vehicle_id in the payload must be the op's entity."""
    if payload["vehicle_id"] not in (None, obj.id):
        raise ValidationFailed("vehicle_id differs from the op's entity_id.", code="invalid_payload",
                               fields={"payload.vehicle_id": ["Must be the op's entity_id."]})
    return {"actor": ctx.actor, "vehicle": obj, "odometer": payload["odometer"], "lat": payload["lat"],
            "lon": payload["lon"], "device_time": ctx.device_time, "op_id": ctx.op_id}


def _shift_start(*, ctx, obj: Vehicle, payload: dict) -> None:
    """shift.start {odometer, lat?, lon?} on the van (the op's entity)."""
    checklists.start_shift(**_shift_facts(ctx, obj, payload))


def _shift_end(*, ctx, obj: Vehicle, payload: dict) -> None:
    """shift.end {odometer, lat?, lon?} on the van (the op's entity)."""
    checklists.end_shift(**_shift_facts(ctx, obj, payload))


_LOCK_VEHICLES = (select(Vehicle).where(Vehicle.id.in_(bindparam("ids", expanding=True))).order_by(Vehicle.id)
                  .with_for_update())


def _vehicle_lock_many(ids: list[str]) -> dict[str, Vehicle]:
    """The vans shift ops name, locked until commit."""
    return {vehicle.id: vehicle for vehicle in db.session.scalars(_LOCK_VEHICLES, {"ids": ids})}


def _dump_vehicles(objs: list[Vehicle]) -> dict[str, dict]:
    """Vans as the handheld holds them: open defects and the last report to acknowledge."""
    return {v.id: _vehicle_out.dump(v) for v in checklists.with_reports(objs)}


def _task_load(ids: list[str]) -> list[Task]:
    """Tasks with what their handheld dump needs."""
    return list(db.session.scalars(select(Task).where(Task.id.in_(ids))
                                   .options(selectinload(Task.parcels), selectinload(Task.fees),
                                            selectinload(Task.handover))))


# Every push runs these; built once, since building costs about as much as running them.
_LOCK_TASKS = (select(Task).where(Task.id.in_(bindparam("ids", expanding=True))).order_by(Task.id)
               .with_for_update())
_ITEMS = {model: select(model).where(model.task_id.in_(bindparam("ids", expanding=True))).order_by(model.id)
          for model in (Parcel, TaskFee)}


def _load_items(task_list: list[Task]) -> None:
    """Give tasks loaded without them their parcels and fees: two queries, not a reload of the tasks.

    A collection already loaded (a handler may have changed it) is left as it is.
    """
    for model, key in ((Parcel, "parcels"), (TaskFee, "fees")):
        missing = {t.id: t for t in task_list if key not in t.__dict__}
        if not missing:
            continue
        by_task: dict[str, list] = {task_id: [] for task_id in missing}
        for item in db.session.scalars(_ITEMS[model], {"ids": list(missing)}):
            by_task[item.task_id].append(item)
        for task_id, items in by_task.items():
            set_committed_value(missing[task_id], key, items)


def _dump_tasks(task_list: list[Task]) -> dict[str, dict]:
    """Tasks as the handheld holds them, with their newest notes and the recipient data their courier may see.

    A task whose events in this transaction were all recorded through
    tasks.record_event, and whose stored doc shows the version it had before
    the first, takes its older notes from that doc: no history query, and no
    second dump of notes dumped before. The rest read their newest notes in
    one query.
    """
    _load_items(task_list)
    handover.with_receipts(task_list, stored=True)  # a stored doc holds the receipt's address sealed
    appointments.with_history(task_list)
    privacy.for_courier(task_list)
    added = tasks.notes_added([t.id for t in task_list])
    before = docs.at_versions(db.session, "task", {task_id: base for task_id, (base, _) in added.items()})
    out = {task.id: _render_task(task)
           for task in tasks.with_recent_notes([t for t in task_list if t.id not in before])}
    for task in task_list:
        if task.id in before:
            data = _render_task_without_notes(task)
            data["notes"] = ([_render_note(note) for note in added[task.id][1]]
                             + before[task.id]["notes"])[:tasks.HANDHELD_NOTES]
            out[task.id] = data
    return out


def _task_lock_many(ids: list[str]) -> dict[str, Task]:
    """The tasks, locked until commit, with their appointments, handovers, parcels and fees.

    Parcels and fees are loaded here, two queries for the batch, because the
    handover's rules read them (counts, amount due): loaded per op they were a
    query each; the dump then finds them loaded.
    """
    rows = list(db.session.scalars(_LOCK_TASKS, {"ids": ids}))
    appointments.load_for(rows)
    appointments.load_open_windows(rows)
    handover.load_for(rows)
    _load_items(rows)
    return {task.id: task for task in rows}


def _task_access(task: Task, courier_id: str) -> str | None:
    """Whether the courier holds the task now, held it before, or never did."""
    if task.courier_id == courier_id:
        return "owner"
    return "former" if tasks.was_assigned_to(task_id=task.id, courier_id=courier_id) else None


def _task_flag(task: Task) -> None:
    """A conflicting field fact was applied: dispatch must look."""
    task.needs_review = True


def _load(model):
    """load(ids) for a model whose dump needs nothing more than its row."""
    def load(ids: list[str]) -> list:
        return list(db.session.scalars(select(model).where(model.id.in_(ids))))
    return load


def _dump_couriers(couriers: list[Courier]) -> dict[str, dict]:
    """Couriers' own records with their grade, its reasons and their newest violations."""
    violations.attach_recent(couriers)
    return {c.id: _courier_out.dump(c) for c in couriers}


def build_registry() -> Registry:
    """All op and entity types this server speaks, and its attachment store."""
    registry = Registry()
    read_by_attribute(Row)  # the rows the task dump reads (notes, appointment history) are Rows
    registry.attachment_store(AttachmentStore(present=attachments.present, hold=attachments.hold))
    registry.entity(EntityType(
        name="task", model=Task, in_scope=tasks.in_courier_scope, dump=_dump_tasks, load=_task_load,
        lock_many=_task_lock_many,
        access=_task_access, dispatch_version=lambda task: task.dispatch_version, flag=_task_flag,
        reveal=receipts.reveal_docs, born=lambda task: task.created_at))
    registry.entity(EntityType(
        name="vehicle", model=Vehicle, in_scope=lambda courier_id, _day_start: Vehicle.courier_id == courier_id,
        dump=_dump_vehicles, load=_load(Vehicle), lock_many=_vehicle_lock_many,
        access=lambda vehicle, courier_id: "owner" if vehicle.courier_id == courier_id else None,
        dispatch_version=lambda _vehicle: 0))
    registry.entity(EntityType(
        name="courier", model=Courier, in_scope=lambda courier_id, _day_start: Courier.id == courier_id,
        dump=_dump_couriers, load=_load(Courier)))
    registry.entity(EntityType(
        name="checklist_template", model=ChecklistTemplate, in_scope=checklists.active_in_scope,
        dump=lambda objs: {t.id: _template_out.dump(t) for t in objs}, load=checklists.load_templates))
    registry.entity(EntityType(
        name="fee_code", model=FeeCode, in_scope=tasks.fee_codes_in_scope,
        dump=lambda objs: {f.code: _fee_code_out.dump(f) for f in objs}, load=tasks.load_fee_codes))
    registry.entity(EntityType(
        name="checklist_submission", model=ChecklistSubmission, in_scope=checklists.never_held,
        dump=lambda objs: {s.id: _submission_out.dump(s) for s in objs}, load=checklists.load_submissions,
        held=False))
    registry.entity(EntityType(
        name="violation_appeal", model=ViolationAppeal, in_scope=violations.never_held,
        dump=lambda objs: {a.id: _appeal_out.dump(a) for a in objs}, load=violations.load_appeals, held=False))
    registry.op(OpType(name="task.note", schema=NoteIn, handler=_task_note, kind="fact",
                       attachments=lambda payload: payload["photos"]))
    registry.op(OpType(name="stop.arrive", schema=ArriveIn, handler=_stop_arrive, kind="fact"))
    registry.op(OpType(name="stop.customer_absent", schema=CustomerAbsentIn, handler=_stop_customer_absent,
                       kind="fact"))
    registry.op(OpType(name="appointment.contact", schema=ContactIn, handler=_appointment_contact, kind="fact"))
    registry.op(OpType(name="appointment.confirm", schema=ConfirmIn, handler=_appointment_confirm, kind="fact"))
    registry.op(OpType(name="appointment.reschedule", schema=RescheduleIn, handler=_appointment_reschedule,
                       kind="wish"))
    registry.op(OpType(name="appointment.late_notice", schema=LateNoticeIn, handler=_appointment_late_notice,
                       kind="fact"))
    for name, schema, handler, files in (
            ("pod.verify_recipient", VerifyRecipientIn, _pod_verify_recipient, None),
            ("pod.inspect", InspectIn, _pod_inspect, lambda payload: payload["photos"]),
            ("pod.collect_payment", CollectPaymentIn, _pod_collect_payment, None),
            ("pod.sign", SignIn, _pod_sign, lambda payload: [payload["signature"]]),
            ("pod.refuse", RefuseIn, _pod_refuse, lambda payload: payload["photos"]),
            ("pod.deliver_alternate", DeliverAlternateIn, _pod_deliver_alternate, lambda payload: payload["photos"]),
            ("pickup.collect", PickupCollectIn, _pickup_collect, lambda payload: [payload["signature"]])):
        registry.op(OpType(name=name, schema=schema, handler=handler, kind="fact",
                           **({"attachments": files} if files else {}),
                           secret_fields=("pin",) if name == "pod.verify_recipient" else ()))
    registry.op(OpType(name="parcel.scan", schema=ScanIn, handler=_parcel_scan, kind="fact"))
    registry.op(OpType(name="checklist.submit", schema=ChecklistSubmitIn, handler=_checklist_submit, kind="fact",
                       entity="checklist_submission", create=True, attachments=submission_attachments))
    registry.op(OpType(name="shift.start", schema=ShiftStartIn, handler=_shift_start, kind="fact", entity="vehicle"))
    registry.op(OpType(name="shift.end", schema=ShiftEndIn, handler=_shift_end, kind="fact", entity="vehicle"))
    registry.op(OpType(name="violation.appeal", schema=AppealIn, handler=_violation_appeal, kind="fact",
                       entity="violation_appeal", create=True, attachments=lambda payload: payload["photos"]))
    return registry
