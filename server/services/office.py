"""The office's views that bring several domains together: a courier's day in one answer.

A view, high above the domains it reads (tasks, appointments, the ledger,
violations, grades, checklists): it holds no rule of its own, each figure is the
owning service's.
"""
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.clock import local_day_bounds
from server.extensions import db
from server.models import Courier, Device, HandoverException, Task, Vehicle
from server.services import appointments, checklists, couriers, devices, exception_queue, grades, ledger, violations
from server.services.common import get_or_404

# A courier's day holds at most this many tasks in one answer (a day is a few dozen stops).
DAY_MAX_TASKS = 500


def courier_day(*, courier_id: str, day: date) -> dict:
    """A courier's depot-local day: tasks, contact attempts, cash (to the fen), violations, grade with its
    reasons, shifts and checks."""
    courier = get_or_404(Courier, courier_id, what="courier")
    start, end = local_day_bounds(day)
    day_tasks = list(db.session.scalars(
        select(Task).options(selectinload(Task.parcels), selectinload(Task.fees))
        .where(Task.courier_id == courier_id, Task.service_date == day).order_by(Task.window_start, Task.id)
        .limit(DAY_MAX_TASKS)))
    checks = checklists.shifts_and_checks(courier_id=courier_id, start=start, end=end)
    entries = ledger.entries(day=day, courier_id=courier_id, limit=DAY_MAX_TASKS)["items"]
    vehicle_ids = {row.vehicle_id for row in (*checks["shifts"], *checks["checks"]) if row.vehicle_id}
    return {"courier": courier, "date": day, "tasks": day_tasks, "entries": entries,
            "vehicles": _by_id(Vehicle, vehicle_ids),
            "attempts": appointments.attempts_between(courier_id=courier_id, start=start, end=end),
            "cash": ledger.cash(courier_id=courier_id, day=day),
            "violations": violations.between(courier_id=courier_id, start=start, end=end),
            "grade": grades.evaluate(courier_id=courier_id),
            **checks}


def roster(*, active: bool | None, cursor: str | None, limit: int) -> dict:
    """A page of couriers (couriers.get_all), each with their handhelds (devices, newest first) and their van."""
    found = couriers.get_all(active=active, cursor=cursor, limit=limit)
    ids = [c.id for c in found["items"]]
    held: dict[str, list[Device]] = {i: [] for i in ids}
    vans: dict[str, Vehicle] = {}
    if ids:
        for device in db.session.scalars(select(Device).where(Device.courier_id.in_(ids))
                                         .order_by(Device.enrolled_at.desc())):
            held[device.courier_id].append(device)
        for van in db.session.scalars(select(Vehicle).where(Vehicle.courier_id.in_(ids)).order_by(Vehicle.id)):
            vans.setdefault(van.courier_id, van)
    for courier in found["items"]:
        courier.device_list, courier.van = held[courier.id], vans.get(courier.id)
    return found


def courier_card(*, courier_id: str) -> dict:
    """A courier for dispatch: the record, their handhelds (devices.get_all) and their van."""
    courier = couriers.get(courier_id=courier_id)
    return {"courier": courier, "devices": devices.get_all(courier_id=courier.id),
            "van": db.session.scalar(select(Vehicle).where(Vehicle.courier_id == courier.id)
                                     .order_by(Vehicle.id).limit(1))}


def exceptions(**filters) -> dict:
    """A page of the exceptions queue (exception_queue.get_all's filters) with its couriers by id (couriers)."""
    queue = exception_queue.get_all(**filters)
    return {**queue, "couriers": couriers_of(queue["items"])}


def couriers_of(rows: list[HandoverException]) -> dict[str, Courier]:
    """The couriers the exceptions name, by id."""
    return _by_id(Courier, {row.courier_id for row in rows if row.courier_id})


def _by_id(model, ids: set[str]) -> dict:
    """Rows of a model by id (one query)."""
    return {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}
