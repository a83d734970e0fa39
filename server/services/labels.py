"""What people and things are called, for pages that would otherwise show ids: couriers by name, tasks by waybill,
vehicles by plate. One query per kind for a whole set of ids (a list page asks once, not once a row)."""
from collections.abc import Iterable

from sqlalchemy import select

from server.extensions import db
from server.models import Courier, Task, Vehicle


def _by_id(column_id, column_label, ids: Iterable[str | None]) -> dict[str, str]:
    """Labels by id for the ids given (None and unknown ids left out)."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(db.session.execute(select(column_id, column_label).where(column_id.in_(wanted))).all())


def courier_names(ids: Iterable[str | None]) -> dict[str, str]:
    """Couriers' names by id."""
    return _by_id(Courier.id, Courier.name, ids)


def waybills(ids: Iterable[str | None]) -> dict[str, str]:
    """Tasks' waybill numbers by id."""
    return _by_id(Task.id, Task.waybill_no, ids)


def plates(ids: Iterable[str | None]) -> dict[str, str]:
    """Vehicles' plates by id."""
    return _by_id(Vehicle.id, Vehicle.plate, ids)
