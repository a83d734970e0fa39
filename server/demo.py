"""A demo depot: staff, couriers, vans and a day of tasks with appointment windows."""
import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from server.auth import STAFF_TOKEN_PREFIX, Actor
from server.clock import local_zone, utcnow
from server.extensions import db
from server.ids import hash_secret, new_token
from server.models import ApiToken, Courier, StaffUser, Task, Vehicle
from server.services import appointments, customer_links, devices, staff, tasks

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
    """A line with a customer link for the courier's first task not yet reached, preferably not yet over."""
    task = db.session.scalar(select(Task).where(Task.courier_id == courier_id, Task.status == "assigned")
                             .order_by(Task.window_end <= utcnow(), Task.window_start).limit(1))
    if task is None:
        return "customer link: no open task"
    link, token = customer_links.create(actor=actor, task_id=task.id)
    url = customer_links.page_url(token=token)
    return f"customer link for {task.waybill_no} (until {link.expires_at:%Y-%m-%d %H:%M} UTC): {url}"


def _appointment_day(courier: Courier, task_ids: list[str]) -> str:
    """Give the first courier's day every appointment state, and a late_without_notice violation.

    The field facts carry device times around each window (an agreement an hour
    before it, arrivals inside or after it), so the states are the same on
    whatever day the demo is seeded.
    """
    field = Actor(kind="courier", id=courier.id, role="courier", courier_id=courier.id)
    by_window = sorted((db.session.get(Task, task_id) for task_id in task_ids), key=lambda t: t.window_start)
    unconfirmed, kept, late, late_noticed, missed, wrong_number, *_, confirmed = by_window
    for task in (kept, late, late_noticed, missed, confirmed):
        appointments.confirm_task(actor=field, task=task, start=task.window_start, end=task.window_end,
                                  via="phone", device_time=task.window_start - timedelta(hours=1))
    appointments.contact(actor=field, task=wrong_number, outcome="wrong_number", note="number not in service",
                         device_time=wrong_number.window_start - timedelta(hours=1))
    appointments.contact(actor=field, task=late, outcome="no_answer", note=None,
                         device_time=late.window_end - timedelta(minutes=30))
    tasks.arrive(actor=field, task=kept, lat=kept.lat, lon=kept.lon, at=kept.window_start + timedelta(minutes=25))
    tasks.arrive(actor=field, task=late, lat=late.lat, lon=late.lon, at=late.window_end + timedelta(minutes=35))
    appointments.late_notice(actor=field, task=late_noticed, eta=late_noticed.window_end + timedelta(minutes=30),
                             reason="traffic on the ring road", device_time=late_noticed.window_end - timedelta(minutes=20))
    tasks.arrive(actor=field, task=late_noticed, lat=late_noticed.lat, lon=late_noticed.lon,
                 at=late_noticed.window_end + timedelta(minutes=25))
    db.session.commit()
    appointments.sweep_missed(now=missed.window_end + timedelta(minutes=1))
    return (f"appointments of {courier.name}: unconfirmed {unconfirmed.waybill_no}, confirmed {confirmed.waybill_no}, "
            f"kept {kept.waybill_no}, late {late.waybill_no} (violation) and {late_noticed.waybill_no} (with notice), "
            f"missed {missed.waybill_no} (violation), wrong number {wrong_number.waybill_no}")


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
            if n == 0:
                lines.append(_appointment_day(courier, [t.id for t in created]))
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
