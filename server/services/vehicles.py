"""Vehicles: create, read, update (including who drives it)."""
from sqlalchemy import select

from server.auth import Actor
from server.clock import utcnow
from server.errors import Conflict, RuleViolation
from server.extensions import db
from server.models import Courier, Vehicle
from server.services import checklists, duty, events
from server.services.common import audit, exists, get_or_404, paginate, snapshot


def _check_plate_free(plate: str, vehicle_id: str | None = None) -> None:
    """Plates are unique."""
    query = select(Vehicle.id).where(Vehicle.plate == plate)
    if vehicle_id:
        query = query.where(Vehicle.id != vehicle_id)
    if exists(query):
        raise Conflict(f"Plate {plate} is already registered.", code="duplicate_plate",
                       fields={"plate": ["Already registered."]})


def create(*, actor: Actor, plate: str, kind: str) -> Vehicle:
    """Register a vehicle."""
    _check_plate_free(plate)
    vehicle = Vehicle(plate=plate, kind=kind)
    db.session.add(vehicle)
    audit(actor, "vehicle.create", vehicle, None)
    db.session.commit()
    return vehicle


def get(*, vehicle_id: str) -> Vehicle:
    """One vehicle or 404."""
    return get_or_404(Vehicle, vehicle_id, what="vehicle")


def get_all(*, status: str | None, cursor: str | None, limit: int) -> dict:
    """A page of vehicles."""
    query = select(Vehicle)
    if status:
        query = query.where(Vehicle.status == status)
    return paginate(query, Vehicle.id, cursor=cursor, limit=limit)


def update(*, actor: Actor, vehicle_id: str, changes: dict) -> Vehicle:
    """Change plate, kind, status or driver; one vehicle per courier."""
    vehicle = get(vehicle_id=vehicle_id)
    before = snapshot(vehicle)
    if "plate" in changes:
        _check_plate_free(changes["plate"], vehicle.id)
    courier_id = changes.get("courier_id")
    if courier_id:
        courier = get_or_404(Courier, courier_id, what="courier")
        if not courier.active:
            raise RuleViolation("An inactive courier cannot be given a vehicle.",
                                code="courier_inactive", fields={"courier_id": ["Inactive."]})
        if exists(select(Vehicle.id).where(Vehicle.courier_id == courier_id,
                                           Vehicle.id != vehicle.id)):
            raise Conflict("That courier already has a vehicle.", code="courier_has_vehicle",
                           fields={"courier_id": ["Already drives another vehicle."]})
    if "status" in changes:
        checklists.check_status_change(vehicle, changes["status"])
    grounded = changes.get("status") == "out_of_service" and vehicle.status != "out_of_service"
    # Off the road or back on it (out of service and retired are both off): the span rules read by time.
    was_on_road = vehicle.status == "in_service"
    for key, value in changes.items():
        setattr(vehicle, key, value)
    if was_on_road != (vehicle.status == "in_service"):
        if was_on_road:
            duty.went_off_road(vehicle, at=utcnow(), reason="dispatch")
        else:
            duty.back_on_road(vehicle, at=utcnow())
    if grounded:
        events.emit("vehicle.out_of_service", vehicle.id, events.vehicle_facts(vehicle, reason="dispatch"))
    audit(actor, "vehicle.update", vehicle, before)
    db.session.commit()
    return vehicle
