"""The sync engine's registry for this server: op types -> rules, entity types -> scope.

Every handler here is an adapter of a few lines: the rule itself is the same
service function the HTTP API calls.
"""
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from schemas.couriers import CourierSelfOut
from schemas.tasks import ArriveIn, CourierTaskOut, NoteIn
from schemas.vehicles import VehicleOut
from server.clock import utcnow
from server.extensions import db
from server.models import Courier, Task, Vehicle
from server.services import tasks
from sync.registry import EntityType, OpType, Registry

_task_out = CourierTaskOut()
_vehicle_out = VehicleOut()
_courier_out = CourierSelfOut()


def _task_note(*, ctx, obj: Task, payload: dict) -> None:
    """task.note {text, photos}."""
    tasks.add_note(actor=ctx.actor, task=obj, text=payload["text"], photos=payload["photos"],
                   device_time=ctx.device_time)


def _stop_arrive(*, ctx, obj: Task, payload: dict) -> None:
    """stop.arrive {lat, lon}: arrival time is the device's, when it happened."""
    tasks.arrive(actor=ctx.actor, task=obj, lat=payload["lat"], lon=payload["lon"],
                 at=ctx.device_time)


def _task_scope(courier_id: str) -> list[tuple[str, int]]:
    """Ids and versions of the courier's tasks in scope."""
    return list(db.session.execute(select(Task.id, Task.version)
                                   .where(tasks.in_courier_scope(courier_id, utcnow()))).all())


def _task_load(courier_id: str, ids: list[str]) -> dict[str, dict]:
    """The courier's in-scope tasks among ids, as the handheld holds them."""
    rows = db.session.scalars(
        select(Task).where(Task.id.in_(ids), tasks.in_courier_scope(courier_id, utcnow()))
        .options(selectinload(Task.parcels), selectinload(Task.fees)))
    return _dump_tasks(list(rows))


def _task_states(task_list: list[Task], courier_id: str) -> dict[str, dict]:
    """The tasks still in the courier's scope, as the handheld holds them (one query for all)."""
    in_scope = set(db.session.scalars(select(Task.id).where(
        Task.id.in_([t.id for t in task_list]), tasks.in_courier_scope(courier_id, utcnow()))))
    return _dump_tasks([t for t in task_list if t.id in in_scope])


def _dump_tasks(task_list: list[Task]) -> dict[str, dict]:
    """Tasks as the handheld holds them, with their newest notes (one query for all)."""
    return {task.id: _task_out.dump(task) for task in tasks.with_recent_notes(task_list)}


def _versions(model):
    """versions(ids) for a model with id and version."""
    def versions(ids: list[str]) -> dict[str, int]:
        return dict(db.session.execute(select(model.id, model.version).where(model.id.in_(ids))).all())
    return versions


def _task_lock_many(ids: list[str]) -> dict[str, Task]:
    """The tasks, locked until commit, with what their dump needs."""
    rows = db.session.scalars(select(Task).where(Task.id.in_(ids)).order_by(Task.id).with_for_update()
                              .options(selectinload(Task.parcels), selectinload(Task.fees)))
    return {task.id: task for task in rows}


def _task_access(task: Task, courier_id: str) -> str | None:
    """Whether the courier holds the task now, held it before, or never did."""
    if task.courier_id == courier_id:
        return "owner"
    return "former" if tasks.was_assigned_to(task_id=task.id, courier_id=courier_id) else None


def _task_flag(task: Task) -> None:
    """A conflicting field fact was applied: dispatch must look."""
    task.needs_review = True


def _vehicle_scope(courier_id: str) -> list[tuple[str, int]]:
    """The courier's vehicle."""
    return list(db.session.execute(select(Vehicle.id, Vehicle.version)
                                   .where(Vehicle.courier_id == courier_id)).all())


def _vehicle_load(courier_id: str, ids: list[str]) -> dict[str, dict]:
    """The courier's vehicle, if among ids."""
    rows = db.session.scalars(select(Vehicle).where(Vehicle.id.in_(ids), Vehicle.courier_id == courier_id))
    return {v.id: _vehicle_out.dump(v) for v in rows}


def _courier_scope(courier_id: str) -> list[tuple[str, int]]:
    """The courier's own record."""
    return list(db.session.execute(select(Courier.id, Courier.version)
                                   .where(Courier.id == courier_id)).all())


def _courier_load(courier_id: str, ids: list[str]) -> dict[str, dict]:
    """The courier's own record, if asked for."""
    courier = db.session.get(Courier, courier_id) if courier_id in ids else None
    return {courier.id: _courier_out.dump(courier)} if courier else {}


def build_registry() -> Registry:
    """All op and entity types this server speaks."""
    registry = Registry()
    registry.entity(EntityType(
        name="task", scope=_task_scope, load=_task_load, versions=_versions(Task), states=_task_states,
        lock_many=_task_lock_many,
        access=_task_access, dispatch_version=lambda task: task.dispatch_version, flag=_task_flag))
    registry.entity(EntityType(name="vehicle", scope=_vehicle_scope, load=_vehicle_load,
                               versions=_versions(Vehicle)))
    registry.entity(EntityType(name="courier", scope=_courier_scope, load=_courier_load,
                               versions=_versions(Courier)))
    registry.op(OpType(name="task.note", schema=NoteIn, handler=_task_note, kind="fact",
                       attachments=lambda payload: payload["photos"]))
    registry.op(OpType(name="stop.arrive", schema=ArriveIn, handler=_stop_arrive, kind="fact"))
    return registry
