"""The sync engine's registry for this server: op types -> rules, entity types -> scope.

Every handler here is an adapter of a few lines: the rule itself is the same
service function the HTTP API calls.
"""
from sqlalchemy import bindparam, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from schemas.appointments import ConfirmIn, ContactIn, CustomerAbsentIn, LateNoticeIn, RescheduleIn
from schemas.couriers import CourierSelfOut
from schemas.tasks import ArriveIn, CourierTaskOut, NoteIn, NoteOut
from schemas.vehicles import VehicleOut
from server.extensions import db
from server.models import Courier, Parcel, Task, TaskFee, Vehicle
from server.services import appointments, privacy, tasks
from sync import docs
from sync.registry import EntityType, OpType, Registry

_task_out = CourierTaskOut()
_task_out_without_notes = CourierTaskOut(exclude=("notes",))
_notes_out = NoteOut(many=True)
_vehicle_out = VehicleOut()
_courier_out = CourierSelfOut()


def _task_note(*, ctx, obj: Task, payload: dict) -> None:
    """task.note {text, photos}."""
    tasks.add_note(actor=ctx.actor, task=obj, text=payload["text"], photos=payload["photos"],
                   device_time=ctx.device_time)


def _stop_arrive(*, ctx, obj: Task, payload: dict) -> None:
    """stop.arrive {lat, lon}: arrival time is the device's, when it happened."""
    tasks.arrive(actor=ctx.actor, task=obj, lat=payload["lat"], lon=payload["lon"],
                 at=ctx.device_time, op_id=ctx.op_id, clock_suspect=ctx.clock_suspect)


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


def _task_load(ids: list[str]) -> list[Task]:
    """Tasks with what their handheld dump needs."""
    return list(db.session.scalars(select(Task).where(Task.id.in_(ids))
                                   .options(selectinload(Task.parcels), selectinload(Task.fees))))


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
    appointments.with_history(task_list)
    privacy.for_courier(task_list)
    added = tasks.notes_added([t.id for t in task_list])
    before = docs.at_versions(db.session, "task", {task_id: base for task_id, (base, _) in added.items()})
    out = {task.id: _task_out.dump(task)
           for task in tasks.with_recent_notes([t for t in task_list if t.id not in before])}
    for task in task_list:
        if task.id in before:
            data = _task_out_without_notes.dump(task)
            data["notes"] = (_notes_out.dump(added[task.id][1]) + before[task.id]["notes"])[:tasks.HANDHELD_NOTES]
            out[task.id] = data
    return out


def _task_lock_many(ids: list[str]) -> dict[str, Task]:
    """The tasks, locked until commit, with their appointments (parcels and fees wait for the dump)."""
    rows = list(db.session.scalars(_LOCK_TASKS, {"ids": ids}))
    appointments.load_for(rows)
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


def build_registry() -> Registry:
    """All op and entity types this server speaks."""
    registry = Registry()
    registry.entity(EntityType(
        name="task", model=Task, in_scope=tasks.in_courier_scope, dump=_dump_tasks, load=_task_load,
        lock_many=_task_lock_many,
        access=_task_access, dispatch_version=lambda task: task.dispatch_version, flag=_task_flag))
    registry.entity(EntityType(
        name="vehicle", model=Vehicle, in_scope=lambda courier_id, _day_start: Vehicle.courier_id == courier_id,
        dump=lambda objs: {v.id: _vehicle_out.dump(v) for v in objs}, load=_load(Vehicle)))
    registry.entity(EntityType(
        name="courier", model=Courier, in_scope=lambda courier_id, _day_start: Courier.id == courier_id,
        dump=lambda objs: {c.id: _courier_out.dump(c) for c in objs}, load=_load(Courier)))
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
    return registry
