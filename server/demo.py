"""A demo depot: staff, couriers, vans and a day of tasks with appointment windows."""
import random
from datetime import date, datetime, time, timedelta

from flask import current_app, url_for
from sqlalchemy import select

from schemas.vocab import OPEN_STATUSES
from server.auth import STAFF_TOKEN_PREFIX, Actor
from server.clock import local_zone, utcnow
from server.extensions import db
from server.ids import hash_secret, new_token
from server.models import ApiToken, Courier, StaffUser, Task, Vehicle
from server.services import customer_links, devices, staff, tasks

_COURIERS = [("Wang Lei", "13800000001", "E1001"), ("Li Na", "13800000002", "E1002"),
             ("Zhang Wei", "13800000003", "E1003"), ("Liu Yang", "13800000004", "E1004"),
             ("Chen Jing", "13800000005", "E1005")]
_STREETS = ["Renmin Rd", "Jiefang Ave", "Zhongshan Rd", "Huaihai Rd", "Nanjing Rd", "Beijing Rd"]
_DEPOT = (31.2304, 121.4737)


def _staff_token(username: str, role: str) -> str:
    """A fresh token for a demo staff user, creating the user the first time."""
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        return staff.create(username=username, role=role)[1]
    token = new_token(STAFF_TOKEN_PREFIX)
    db.session.add(ApiToken(staff_id=user.id, token_hash=hash_secret(token)))
    db.session.commit()
    return token


def _customer_link(actor: Actor, courier_id: str) -> str:
    """A line with a customer link for the courier's first open task not yet over (as `fieldops serve` serves it)."""
    task = db.session.scalar(select(Task).where(Task.courier_id == courier_id, Task.status.in_(OPEN_STATUSES))
                             .order_by(Task.window_end <= utcnow(), Task.window_start).limit(1))
    if task is None:
        return "customer link: no open task"
    link, token = customer_links.create(actor=actor, task_id=task.id)
    with current_app.test_request_context(base_url="http://127.0.0.1:8000"):
        url = url_for("customer_page.show", token=token, _external=True)
    return f"customer link for {task.waybill_no} (until {link.expires_at:%Y-%m-%d %H:%M} UTC): {url}"


def seed(*, day: str | None = None, tasks_per_courier: int = 8) -> list[str]:
    """Create the demo depot once; later runs only add fresh tokens. Returns lines to print."""
    rng = random.Random(7)
    service_day = date.fromisoformat(day) if day else utcnow().astimezone(local_zone()).date()
    dispatch_token = _staff_token("demo-dispatch", "dispatcher")
    actor = Actor(kind="staff", id=db.session.scalar(
        select(StaffUser.id).where(StaffUser.username == "demo-dispatch")), role="dispatcher")
    lines = [f"dispatcher token: {dispatch_token}"]
    if db.session.scalar(select(Courier.id).where(Courier.employee_no == "E1001")) is None:
        from server.services import couriers, vehicles
        zone = local_zone()
        for n, (name, phone, employee_no) in enumerate(_COURIERS):
            courier = couriers.create(actor=actor, name=name, phone=phone, employee_no=employee_no)
            van = vehicles.create(actor=actor, plate=f"沪A{10001 + n}", kind="van")
            vehicles.update(actor=actor, vehicle_id=van.id, changes={"courier_id": courier.id})
            specs = []
            for k in range(tasks_per_courier):
                start = datetime.combine(service_day, time(9 + (k % 8), 0), zone)
                cod = rng.choice([0, 0, 0, 4990, 12800])
                specs.append({
                    "waybill_no": f"SF{service_day:%y%m%d}{n}{k:03d}",
                    "kind": "pickup" if k % 5 == 4 else "delivery",
                    "recipient": {"name": f"Customer {n}-{k}", "phone": f"139{n:02d}{k:06d}",
                                  "address": f"{rng.randint(1, 999)} {rng.choice(_STREETS)}",
                                  "lat": _DEPOT[0] + rng.uniform(-0.05, 0.05),
                                  "lon": _DEPOT[1] + rng.uniform(-0.05, 0.05)},
                    "parcels": [{"parcel_no": f"P{n}{k:03d}-{i}", "description": "box",
                                 "count": rng.randint(1, 3)} for i in range(rng.randint(1, 2))],
                    "cod_amount": cod,
                    "fees": [{"code": "delivery", "amount": 1200}]
                            + ([{"code": "cod_service", "amount": 200}] if cod else []),
                    "window": {"start": start, "end": start + timedelta(hours=2)},
                })
            created = tasks.import_tasks(actor=actor, specs=specs,
                                         labels=[f"tasks.{i}" for i in range(len(specs))])
            for task in created:
                tasks.assign(actor=actor, task_id=task.id, courier_id=courier.id)
        lines.append(f"created {len(_COURIERS)} couriers with vans and "
                     f"{len(_COURIERS) * tasks_per_courier} tasks on {service_day}")
    else:
        lines.append("demo depot already present; issued fresh tokens only")
    first = db.session.scalar(select(Courier).where(Courier.employee_no == "E1001"))
    _, code = devices.create_enrollment(actor=actor, courier_id=first.id)
    lines.append(f"enrollment code for {first.name} (15 min): {code}")
    lines.append(_customer_link(actor, first.id))
    lines.append(f"tasks: {db.session.query(Task).count()}, vehicles: {db.session.query(Vehicle).count()}")
    return lines
