"""Couriers: create, read, update, deactivate."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, NotFound
from server.extensions import db
from server.models import Courier, Device
from server.services.common import audit, exists, get_or_404, paginate, snapshot


def create(*, actor: Actor, name: str, phone: str, employee_no: str, depot: str | None = None) -> Courier:
    """Add a courier (with the depot they work out of, if given); employee numbers are unique."""
    taken = Conflict(f"Employee number {employee_no} is taken.", code="duplicate_employee_no",
                     fields={"employee_no": ["Already used by another courier."]})
    if exists(select(Courier.id).where(Courier.employee_no == employee_no)):
        raise taken
    courier = Courier(name=name, phone=phone, employee_no=employee_no, depot=depot)
    db.session.add(courier)
    try:
        db.session.flush()
    except IntegrityError as exc:  # the same number raced in between the check and the insert
        db.session.rollback()
        raise taken from exc
    audit(actor, "courier.create", courier, None)
    db.session.commit()
    return courier


def get(*, courier_id: str) -> Courier:
    """One courier or 404."""
    return get_or_404(Courier, courier_id, what="courier")


def get_by_id_or_employee_no(*, key: str) -> Courier:
    """One courier by id or employee number (as people type them at a console), or 404."""
    courier = db.session.get(Courier, key) or db.session.scalar(select(Courier).where(Courier.employee_no == key))
    if courier is None:
        raise NotFound(f"No courier with id or employee number {key}.", code="courier_not_found")
    return courier


def get_all(*, active: bool | None, cursor: str | None, limit: int) -> dict:
    """A page of couriers, optionally only active or inactive ones."""
    query = select(Courier)
    if active is not None:
        query = query.where(Courier.active.is_(active))
    return paginate(query, Courier.id, cursor=cursor, limit=limit)


def update(*, actor: Actor, courier_id: str, changes: dict) -> Courier:
    """Change a courier's name, phone, depot or active flag."""
    courier = get(courier_id=courier_id)
    if "active" in changes and not changes["active"]:
        return deactivate(actor=actor, courier_id=courier_id, other_changes=changes)
    before = snapshot(courier)
    for key, value in changes.items():
        setattr(courier, key, value)
    audit(actor, "courier.update", courier, before)
    db.session.commit()
    return courier


def deactivate(*, actor: Actor, courier_id: str, other_changes: dict | None = None) -> Courier:
    """Stop a courier working: their devices are revoked at once."""
    courier = get(courier_id=courier_id)
    before = snapshot(courier)
    for key, value in (other_changes or {}).items():
        setattr(courier, key, value)
    courier.active = False
    now = utcnow()
    for device in db.session.scalars(select(Device).where(
            Device.courier_id == courier.id, Device.revoked_at.is_(None))):
        device.revoked_at = now
        device.revoked_by = actor.id
    audit(actor, "courier.deactivate", courier, before)
    db.session.commit()
    return courier
