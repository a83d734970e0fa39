"""Load for benchmarks and the fleet simulator: throw-away databases, provisioning, raw protocol calls."""
import hashlib
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson

PROTOCOL_HEADERS = {"Fieldops-Protocol": "1", "Content-Type": "application/json"}


@contextmanager
def throwaway_database(engine: str, workdir: str, pg_base: str = "postgresql://postgres@127.0.0.1:5432/test",
                       migrate: bool = True):
    """Yield the URL of a new (by default migrated) database; remove it afterwards."""
    if engine == "sqlite":
        path = os.path.join(workdir, f"bench-{uuid.uuid4().hex[:8]}.sqlite3")
        url = f"sqlite:///{path}"
        _migrate(url, workdir)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        return
    import psycopg
    name = f"fieldops_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_base.rpartition("/")[0] + "/" + name
    try:
        if migrate:
            _migrate(url, workdir)
        yield url
    finally:
        with psycopg.connect(pg_base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_for(url: str, workdir: str):
    """An in-process app on the database (for provisioning and direct inserts)."""
    from server import create_app
    from server.config import Config
    config = Config()
    config.SQLALCHEMY_DATABASE_URI = url
    config.ATTACHMENTS_DIR = os.path.join(workdir, "attachments")
    config.LOG_LEVEL = "WARNING"
    return create_app(config)


def _migrate(url: str, workdir: str) -> None:
    """Bring a new database to head."""
    from flask_migrate import upgrade

    from server.database import MIGRATIONS_DIR
    app = app_for(url, workdir)
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        from server.extensions import db
        db.engine.dispose()


@dataclass
class Provisioned:
    """One courier's device, van and tasks, and the op stream of the days it works."""

    courier_id: str
    device_id: str
    token: str
    task_ids: list[str]
    # Each task's version when provisioned: what the device holds, sent as base_version
    # (versions only grow, and dispatch changes nothing during a run: never a conflict).
    task_versions: dict[str, int]
    vehicle_id: str = ""
    vehicle_version: int = 1
    # The checklist templates a day needs: kind -> (template id, current version).
    templates: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Device time of the stream's minute 0: the stream ends a few minutes before provisioning.
    start: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # The ops made so far (seq n is ops[n - 1]) and the files they name, by seq.
    ops: list[dict] = field(default_factory=list, repr=False)
    files: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict, repr=False)
    _stream: Iterator | None = field(default=None, repr=False)
    # A violation recorded the evening before each day of the stream: the day ends with its appeal (rare: one op
    # of a day's ~900).
    violation_ids: list[int] = field(default_factory=list)


# A courier's day: the conduct and van checks, shift.start, DAY_STOPS stops (each task once), the van's
# post-trip check, shift.end; the next day starts 24 hours after the last. Stops come in a cycle of 50
# that mixes them as a day does: 38 handovers at the door (a third cash on delivery, a fifth announced
# late), 4 customers absent, 2 refusals at inspection, 2 deliveries to a locker, 4 pickups. After shift.start
# every parcel to deliver that day is scanned out_for_delivery (parcel.scan); one doorstep stop in 50 scans its
# parcel as an exception on the way.
# A stop announced late was phoned LATE_CALL minutes ahead: agreed, then told of the lateness, more than the
# notice lead (FIELDOPS_NOTICE_LEAD_MINUTES, 30) before its window starts, so the notice is in time.
LATE_CALL = 35
DAY_STOPS = 120
_CYCLE = 50
_PICKUP, _ABSENT, _REFUSED, _ALTERNATE = {7, 19, 31, 43}, {11, 24, 37, 49}, {16, 41}, {28, 45}
_SCAN_EXCEPTION = 20  # a doorstep stop
_PNG = b"\x89PNG\r\n\x1a\n"
_AT = {"lat": 31.2, "lon": 121.4}  # every bench task's address; signatures are taken there


def stop_kind(k: int) -> str:
    """What happens at the courier's k-th stop: door, absent, refused, alternate or pickup."""
    i = k % _CYCLE
    return ("pickup" if i in _PICKUP else "absent" if i in _ABSENT else "refused" if i in _REFUSED
            else "alternate" if i in _ALTERNATE else "door")


def _cod(k: int) -> int:
    """The COD amount (fen) of the k-th stop's task: a third of the doorstep handovers, and the refusals."""
    kind = stop_kind(k)
    return 4990 + (k % 7) * 1000 if kind == "refused" or (kind == "door" and k % 3 == 0) else 0


def _late(k: int) -> bool:
    """Whether the k-th stop is reached after its window (with a late notice given in time)."""
    return stop_kind(k) == "door" and k % 5 == 1


def _parcels(k: int) -> list[dict]:
    """The k-th task's parcels: one box, two on every fourth task."""
    return [{"parcel_no": f"P{k}-1", "description": "box", "count": 2 if k % 4 == 0 else 1}]


def _fees(k: int) -> list[dict]:
    """The k-th task's published fees: delivery, and the COD service fee on COD tasks."""
    if stop_kind(k) == "pickup":
        return []
    return [{"code": "delivery", "amount": 1200}] + ([{"code": "cod_service", "amount": 300}] if _cod(k) else [])


def _task_spec(tag: str, c: int, k: int, window_start: datetime) -> dict:
    """The task behind the courier's k-th stop."""
    return {"waybill_no": f"BN{tag}{c:04d}{k:06d}", "kind": "pickup" if stop_kind(k) == "pickup" else "delivery",
            "recipient": {"name": f"R{k}", "phone": f"139{k:08d}", "address": f"{k} Bench Rd", **_AT},
            "parcels": _parcels(k), "cod_amount": _cod(k), "fees": _fees(k),
            "window": {"start": window_start, "end": window_start + timedelta(hours=2)},
            # A delivery's promise (issue 22): 次日达, collected the evening before, so dumps carry it.
            **({} if stop_kind(k) == "pickup" else {"service_product": "next_day",
                                                     "collected_at": window_start - timedelta(hours=20)})}


def _stop_steps(k: int) -> tuple[list[tuple[str, float]], float]:
    """(op type, minutes after the stop began) of the k-th stop, and the stop's length in minutes."""
    kind = stop_kind(k)
    if kind == "absent":  # wait at the door past the minimum (10 min), call, report, propose another day
        return [("stop.arrive", 0), ("task.note", 0.5), ("appointment.contact", 6), ("stop.customer_absent", 11),
                ("appointment.reschedule", 12)], 13
    if kind == "alternate":  # reached by phone, the customer agrees to the locker
        return [("appointment.contact", 0), ("stop.arrive", 2), ("task.note", 2.5), ("pod.deliver_alternate", 3)], 4
    if kind == "pickup":
        return [("appointment.contact", 0), ("appointment.confirm", 0.25), ("stop.arrive", 2),
                ("pickup.collect", 3)], 4
    if kind == "refused":  # damage found at inspection, photographed; refused
        return [("appointment.contact", 0), ("appointment.confirm", 0.25), ("stop.arrive", 2),
                ("pod.verify_recipient", 2.5), ("pod.inspect", 3), ("task.note", 3.5), ("pod.refuse", 4)], 5
    if _late(k):  # phoned ahead (while working earlier stops): agreed a window, then told it will be late
        steps = [("appointment.contact", -LATE_CALL), ("appointment.confirm", 0.25 - LATE_CALL),
                 ("appointment.late_notice", 0.5 - LATE_CALL)]
    else:
        steps = [("appointment.contact", 0), ("appointment.confirm", 0.25)]
    if k % _CYCLE == _SCAN_EXCEPTION:  # rarely, a parcel found wet on the way: scanned as an exception
        steps += [("parcel.scan:exception", 1)]
    steps += [("stop.arrive", 2), ("task.note", 2.25), ("pod.verify_recipient", 2.5), ("pod.inspect", 3)]
    steps += [("pod.collect_payment", 3.5)] if _cod(k) else []
    return steps + [("pod.sign", 4)], 5


def _steps() -> Iterator[tuple[str, int | None, float, int]]:
    """The op stream's skeleton, day after day, in time order: (op type, stop index or None, minute, day)."""
    day = 0
    while True:
        t = day * 1440.0
        ops = [("checklist.submit:conduct.pre_shift", None, t, day),
               ("checklist.submit:vehicle.pre_trip", None, t + 1, day), ("shift.start", None, t + 2, day)]
        # Loading the van: each parcel to be delivered today scanned out for delivery, a few seconds apart.
        ops += [("parcel.scan", k, t + 3 + i * 0.05, day) for i, k in enumerate(
            k for k in range(day * DAY_STOPS, (day + 1) * DAY_STOPS) if stop_kind(k) != "pickup")]
        t += 10
        for k in range(day * DAY_STOPS, (day + 1) * DAY_STOPS):
            steps, length = _stop_steps(k)
            ops += [(op_type, k, t + minute, day) for op_type, minute in steps]
            t += length
        ops += [("checklist.submit:vehicle.post_trip", None, t + 5, day), ("shift.end", None, t + 6, day),
                ("violation.appeal", None, t + 8, day)]
        yield from sorted(ops, key=lambda op: op[2])  # a call ahead falls among the stops before (stable sort)
        day += 1


def plan(ops: int) -> tuple[int, float]:
    """How many tasks (stops) a stream of `ops` ops works, and the minute of its last op (minute 0 is the first
    day's pre-shift check; a call ahead before it is at a negative minute)."""
    stops, last = 0, 0.0
    for _, (_, k, minute, _) in zip(range(ops), _steps(), strict=False):
        stops, last = (max(stops, k + 1) if k is not None else stops), minute
    return stops, last


def day_minutes() -> tuple[list[float], float]:
    """The minute of each op of a courier's working day, from its first op (ascending), and the day's length.

    What the real-pace load (scripts/loadtest.py --pace real) accrues ops by: about 1,000 ops over ten hours,
    a burst of scans while the van is loaded, then a stop every few minutes.
    """
    minutes = []
    for _, _, minute, day in _steps():
        if day > 0:
            break
        minutes.append(minute)
    first = min(minutes)
    minutes = sorted(m - first for m in minutes)
    return minutes, minutes[-1] + 5.0


def _file(device: Provisioned, k: int, role: str) -> tuple[str, bytes]:
    """A signature or photo of the k-th stop: bytes of its own (a PNG), named by their sha256."""
    data = _PNG + f"{device.device_id}/{k}/{role}".encode()
    return hashlib.sha256(data).hexdigest(), data


def _checklist(device: Provisioned, kind: str, day: int) -> tuple[str, int, dict, list]:
    """A checklist.submit of the kind, every item passing: (entity_id, base_version, payload, files)."""
    template_id, version = device.templates[kind]
    if kind == "conduct.pre_shift":
        answers = [{"item": code, "value": True} for code in ("uniform", "tidy", "shoe_covers", "water_cup", "id_badge")]
        answers.append({"item": "hair", "value": "tied"})
        extra = {}
    else:
        odometer = 10_000 + day * 150 + (120 if kind == "vehicle.post_trip" else 0)
        answers = [{"item": code, "value": True} for code in (
            "body_clean", "lettering_intact", "hood_decal", "interior_clean", "technical_condition", "safety_equipment")]
        answers += [{"item": "paint_loss_cm2", "value": 0}, {"item": "odometer", "value": odometer}]
        extra = {"vehicle_id": device.vehicle_id}
    return (str(uuid.uuid4()), 0, {"template_id": template_id, "template_version": version, "answers": answers,
                                   **_AT, **extra}, [])


def _stop_op(device: Provisioned, op_type: str, k: int, at: datetime) -> tuple[str, int, dict, list]:
    """One op of the k-th stop: (entity_id, base_version, payload, files it names)."""
    task_id = device.task_ids[k]
    files: list[tuple[str, bytes]] = []
    window = {"start": (at - timedelta(hours=1)).isoformat(), "end": (at + timedelta(hours=1)).isoformat()}
    if _late(k):  # agreed on the call ahead: a window starting before the arrival and ending a minute before it
        arrival = at + timedelta(minutes=LATE_CALL + 1.75)
        window = {"start": (arrival - timedelta(minutes=6)).isoformat(),
                  "end": (arrival - timedelta(minutes=1)).isoformat()}
    parcels, due = _parcels(k), _cod(k) + sum(fee["amount"] for fee in _fees(k))
    if op_type in ("pod.sign", "pickup.collect"):
        files.append(_file(device, k, "signature"))
    if op_type in ("pod.inspect", "pod.refuse", "pod.deliver_alternate") and stop_kind(k) in ("refused", "alternate"):
        files.append(_file(device, k, "photo"))
    shas = [sha for sha, _ in files]
    payload = {
        "appointment.contact": lambda: {"outcome": "no_answer" if stop_kind(k) == "absent" else "reached"},
        "appointment.confirm": lambda: {"window": window, "via": "phone"},
        "appointment.late_notice": lambda: {"eta": (at + timedelta(minutes=LATE_CALL + 2)).isoformat(),
                                            "reason": "traffic"},
        "stop.arrive": lambda: dict(_AT),
        "task.note": lambda: {"text": f"stop {k}: {stop_kind(k)}"},
        "stop.customer_absent": lambda: {"waited_minutes": 11},
        "appointment.reschedule": lambda: {"window": {"start": (at + timedelta(days=1)).isoformat(),
                                                      "end": (at + timedelta(days=1, hours=2)).isoformat()},
                                           "reason": "customer not at home", "customer_agreed": False},
        "pod.verify_recipient": lambda: {"method": "id_check", "name": f"R{k}", **_AT},
        "pod.inspect": lambda: {"items": [{"parcel_no": p["parcel_no"], "counted": p["count"],
                                           "condition": "damaged" if shas else "ok"} for p in parcels],
                                "customer_accepted": not shas, "photos": shas, **_AT},
        "pod.collect_payment": lambda: {"amount": due, "method": "cash" if k % 2 else "qr", **_AT},
        "pod.sign": lambda: {"signature": shas[0], "signer_name": f"R{k}", "gift_disclosed": False, **_AT},
        "pod.refuse": lambda: {"reason": "damaged", "note": "box crushed", "photos": shas, **_AT},
        "pod.deliver_alternate": lambda: {"place": "locker", "photos": shas, **_AT,
                                          "authorization": {"via": "contact", "reference": f"call before stop {k}"}},
        "pickup.collect": lambda: {"parcels": parcels, "fees": [{"code": "delivery", "amount": 1500}],
                                   "payment": {"amount": 1500, "method": "qr"}, "signature": shas[0],
                                   "signer_name": f"R{k}", **_AT},
    }[op_type]()
    return task_id, device.task_versions[task_id], payload, files


def _stream(device: Provisioned) -> Iterator[tuple[dict, list]]:
    """The device's ops in seq order, with the files each names (uploaded before the op is pushed)."""
    zone = timezone(timedelta(hours=8))
    for seq, (step, k, minute, day) in enumerate(_steps(), start=1):
        at = (device.start + timedelta(minutes=minute)).astimezone(zone)
        op_type, _, kind = step.partition(":")
        if op_type == "parcel.scan":
            entity_id, base = device.task_ids[k], device.task_versions[device.task_ids[k]]
            payload, files = {"parcel_no": _parcels(k)[0]["parcel_no"], "event": kind or "out_for_delivery"}, []
        elif op_type == "violation.appeal":  # a create op: the appeal's id is the device's
            entity_id, base, files = str(uuid.uuid4()), 0, []
            payload = {"violation_id": device.violation_ids[day], "reason": "I wore the badge; ask the station"}
        elif kind:
            entity_id, base, payload, files = _checklist(device, kind, day)
        elif op_type.startswith("shift."):
            entity_id, base, files = device.vehicle_id, device.vehicle_version, []
            payload = {"odometer": 10_000 + day * 150 + (120 if op_type == "shift.end" else 0), **_AT}
        else:
            if k >= len(device.task_ids):
                raise RuntimeError(f"device {device.device_id} has {len(device.task_ids)} tasks; op {seq} "
                                   f"needs stop {k}: provision it for more ops")
            entity_id, base, payload, files = _stop_op(device, op_type, k, at)
        yield ({"op_id": str(uuid.uuid4()), "seq": seq, "entity_id": entity_id, "base_version": base,
                "device_time": at.isoformat(), "type": op_type, "payload": payload}, files)


def make_ops(device: Provisioned, first_seq: int, count: int) -> list[dict]:
    """Ops first_seq..first_seq+count-1 of the device's days (the same ops every time they are asked for)."""
    if device._stream is None:
        device._stream = _stream(device)
    while len(device.ops) < first_seq + count - 1:
        op, files = next(device._stream)
        device.ops.append(op)
        if files:
            device.files[op["seq"]] = files
    return device.ops[first_seq - 1:first_seq - 1 + count]


def files_for(device: Provisioned, first_seq: int, count: int) -> dict[str, bytes]:
    """The signatures and photos ops first_seq..first_seq+count-1 name, by sha256."""
    make_ops(device, first_seq, count)
    return {sha: data for seq in range(first_seq, first_seq + count) for sha, data in device.files.get(seq, ())}


def upload(base_url: str, device: Provisioned, files: dict[str, bytes]) -> None:
    """PUT each file to /attachments/{sha256} as the handheld does before pushing the ops that name it."""
    headers = {"Fieldops-Protocol": "1", "Content-Type": "application/octet-stream",
               "Authorization": f"Bearer {device.token}"}
    for sha, data in files.items():
        req = urllib.request.Request(f"{base_url}/attachments/{sha}", data=data, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=120) as resp:
            if resp.status not in (200, 201):
                raise RuntimeError(f"upload {sha}: {resp.status}")


def _stream_start(ops: int) -> datetime:
    """Minute 0 of a stream of `ops` ops that ends five minutes ago.

    Moved earlier when a day's checks and shift.start would straddle the
    depot's midnight (shift.start needs that day's checks).
    """
    _, minutes = plan(ops)
    start = datetime.now(timezone.utc) - timedelta(minutes=minutes + 5)
    local = start.astimezone(timezone(timedelta(hours=8)))
    if local.hour == 23 and local.minute >= 50:
        start -= timedelta(minutes=15)
    return start


def provision(app, *, couriers: int, tasks_per_courier: int = 0, ops_per_courier: int | list[int] = 0,
              tag: str = "", first: int = 0, batch: int = 50) -> tuple[str, list[Provisioned]]:
    """Couriers with an enrolled device, a van and assigned tasks; returns (dispatcher token, devices).

    Each gets at least tasks_per_courier tasks, and as many as its first
    ops_per_courier ops work through (a task is worked once; a list gives each
    courier its own count), with their COD amounts, fees and parcels. Couriers are
    numbered from `first` (several provisioning processes share a database).
    The tasks of `batch` couriers go through one bulk import and are assigned in one
    commit: the same services as one courier at a time, with fewer transactions.
    """
    from server.auth import Actor
    from server.extensions import db
    from server.services import checklists, devices, staff, tasks, vehicles, violations
    from server.services import couriers as courier_service
    tag = tag or uuid.uuid4().hex[:6]
    ops_each = ops_per_courier if isinstance(ops_per_courier, list) else [ops_per_courier] * couriers
    out = []
    with app.app_context():
        user, token = staff.create(username=f"bench-{tag}", role="dispatcher")
        actor = Actor(kind="staff", id=user.id, role="dispatcher")
        templates = {t.kind: (t.id, t.current) for t in checklists.list_templates(
            kind=None, status="active", cursor=None, limit=200)["items"]}
        window = datetime.now(timezone.utc) + timedelta(hours=1)
        for low in range(0, couriers, batch):
            group = range(low, min(low + batch, couriers))
            plans = {i: plan(ops_each[i]) for i in group}
            starts = {i: _stream_start(ops_each[i]) for i in group}
            people = {}
            specs, owner = [], []
            for i in group:
                c = first + i
                courier = courier_service.create(actor=actor, name=f"Bench {c}", phone=f"138{c:08d}",
                                                 employee_no=f"B{tag}{c:05d}")
                van = vehicles.create(actor=actor, plate=f"B{tag}{c:04d}", kind="van")
                vehicles.update(actor=actor, vehicle_id=van.id, changes={"courier_id": courier.id})
                people[i] = (courier, van)
                count = max(tasks_per_courier, plans[i][0])
                specs += [_task_spec(tag, c, k, window) for k in range(count)]
                owner += [i] * count
            created = tasks.import_tasks(actor=actor, specs=specs, labels=[str(n) for n in range(len(specs))])
            by_courier: dict[int, list] = {i: [] for i in group}
            for i, task in zip(owner, created, strict=True):
                # The ops' day begins before now: the tasks existed before it, as they would have (the push
                # engine holds an op dated before its task to that time).
                task.courier_id, task.status = people[i][0].id, "assigned"
                task.created_at = starts[i] - timedelta(minutes=30)
                by_courier[i].append(task)
            db.session.commit()  # one bulk assignment; the feed records every task for its courier
            for i in group:
                c, (courier, van), start = first + i, people[i], starts[i]
                days = max(0, int(plans[i][1] // 1440)) + 1
                _, code = devices.create_enrollment(actor=actor, courier_id=courier.id)
                device, device_token = devices.enroll(code=code, device_name="bench", rate_key=f"bench:{tag}")
                device.enrolled_at = start - timedelta(minutes=30)  # as the tasks: before the day's first op
                # The violations the days' appeals name, recorded the evening before each (as a failed check would).
                for day in range(days):
                    violations.record_auto(courier_id=courier.id, code="conduct_item_failed", source="checklist",
                                           key=f"bench:{tag}:{c}:{day}",
                                           occurred_at=start + timedelta(days=day - 1, hours=10),
                                           evidence={"item": "id_badge", "bench": tag}, severity="minor")
                db.session.commit()
                appealed = violations.for_courier(courier_id=courier.id, limit=days)["items"][::-1]
                # The versions as stored: each UPDATE set its object's (the session keeps objects after commit).
                versions = {t.id: t.version for t in by_courier[i]}
                out.append(Provisioned(courier.id, device.id, device_token, list(versions), versions,
                                       vehicle_id=van.id, vehicle_version=van.version, templates=templates,
                                       start=start, violation_ids=[v.id for v in appealed]))
            db.session.expunge_all()  # a batch's objects are not needed again: keep the session small
        db.engine.dispose()
    return token, out


def _provision_part(url: str, workdir: str, kwargs: dict) -> tuple[str, list[dict]]:
    """One provisioning process's share (a fresh app of its own): the devices as plain dicts."""
    from dataclasses import asdict
    token, devices = provision(app_for(url, workdir), **kwargs)
    return token, [{k: v for k, v in asdict(d).items() if k not in ("ops", "files", "_stream")} for d in devices]


def provision_fleet(url: str, workdir: str, *, couriers: int, ops_per_courier: int | list[int],
                    processes: int = 1, tag: str = "") -> tuple[str, list[Provisioned]]:
    """provision() split over `processes` processes, each a slice of the couriers (PostgreSQL: SQLite has one writer).

    Returns the first process's dispatcher token and every device, in courier order.
    """
    if processes <= 1 or couriers < 2 * processes:
        return provision(app_for(url, workdir), couriers=couriers, ops_per_courier=ops_per_courier, tag=tag)
    import multiprocessing
    tag = tag or uuid.uuid4().hex[:6]
    ops_each = ops_per_courier if isinstance(ops_per_courier, list) else [ops_per_courier] * couriers
    bounds = [couriers * p // processes for p in range(processes + 1)]
    parts = [(url, workdir, {"couriers": bounds[p + 1] - bounds[p], "ops_per_courier": ops_each[bounds[p]:bounds[p + 1]],
                             "tag": f"{tag}{p}", "first": bounds[p]}) for p in range(processes)]
    # spawn: a child must not inherit the parent's engine and its open connections
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(_provision_part, parts)
    devices = [Provisioned(**{**d, "templates": {k: tuple(v) for k, v in d["templates"].items()}})
               for _, part in results for d in part]
    return results[0][0], devices


def call(base_url: str, method: str, path: str, token: str, body=None, query: str = "") -> tuple[int, dict]:
    """One raw HTTP call; returns (status, json). Decoded with orjson: the load generator
    shares the machine's cores with the server, so it should cost as little as it can."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path + query, data=data, method=method,
                                 headers={**PROTOCOL_HEADERS, "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, orjson.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


KINTO_VERSION = "26.5.0"
# Made on first use and reused; outside the package (a fresh clone makes it again).
KINTO_VENV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache", "kinto-venv")
# What the benchmarks change in the configuration `kinto init --backend postgresql` writes: our database for
# storage and permissions, batches as large as ours, basic auth (the accounts policy `init` picks checks a
# bcrypt hash on each request; Fieldops checks a hashed token), quiet logs (Fieldops logs at WARNING too).
_KINTO_SETTINGS = {
    "app:main": {"kinto.storage_url": "{url}", "kinto.permission_url": "{url}",
                 "kinto.batch_max_requests": "500", "multiauth.policies": "basicauth",
                 "kinto.bucket_create_principals": "system.Authenticated"},
    "logger_root": {"level": "WARNING"},
    "logger_kinto": {"level": "WARNING"},
}


class KintoServer:
    """Mozilla's Kinto, installed from PyPI into its own venv, on its own PostgreSQL database."""

    def __init__(self, venv: str | None, workdir: str, pg_url: str, workers: int = 2):
        """Configure (venv None: KINTO_VENV); start() installs (once) and runs it under gunicorn."""
        from server.process import free_port
        self.venv, self.workdir, self.pg_url, self.workers = venv or KINTO_VENV, workdir, pg_url, workers
        self.port = free_port()
        self.proc = None

    def _install(self) -> None:
        """A venv with Kinto and gunicorn, made once and reused."""
        import subprocess
        import sys
        python = os.path.join(self.venv, "bin", "python")
        if not os.path.exists(python):
            subprocess.run([sys.executable, "-m", "venv", self.venv], check=True)
        stamp = os.path.join(self.venv, f".kinto-{KINTO_VERSION}")
        if not os.path.exists(stamp):
            subprocess.run([python, "-m", "pip", "install", "--quiet", f"kinto[postgresql]=={KINTO_VERSION}",
                            "gunicorn", "psycopg2-binary"], check=True)
            open(stamp, "w").close()

    def _configure(self) -> str:
        """`kinto init` with the PostgreSQL backends, then _KINTO_SETTINGS; returns the ini's path."""
        import configparser
        import subprocess
        ini = os.path.join(self.workdir, "kinto.ini")
        if os.path.exists(ini):
            os.remove(ini)
        subprocess.run([os.path.join(self.venv, "bin", "kinto"), "init", "--ini", ini, "--backend", "postgresql",
                        "--cache-backend", "memory"], check=True, capture_output=True)
        config = configparser.RawConfigParser()
        config.optionxform = str  # keys as written
        config.read(ini)
        url = self.pg_url.replace("postgresql+psycopg://", "postgresql://")
        for section, values in _KINTO_SETTINGS.items():
            for key, value in values.items():
                config.set(section, key, value.format(url=url))
        with open(ini, "w") as fh:
            config.write(fh)
        return ini

    def start(self) -> "KintoServer":
        """Install, configure, migrate, serve; wait until it answers."""
        import subprocess
        import time
        self._install()
        ini = self._configure()
        bin_dir = os.path.join(self.venv, "bin")
        subprocess.run([os.path.join(bin_dir, "kinto"), "migrate", "--ini", ini], check=True,
                       capture_output=True)
        with open(os.path.join(self.workdir, "kinto.log"), "ab") as log:
            self.proc = subprocess.Popen([os.path.join(bin_dir, "gunicorn"), "--paste", ini, "--workers",
                                          str(self.workers), "--bind", f"127.0.0.1:{self.port}"],
                                         stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/__heartbeat__", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Kinto did not start; see {self.workdir}/kinto.log")

    def stop(self) -> None:
        """Stop the server."""
        import signal
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)

    def call(self, method: str, path: str, body=None, user: str = "bench") -> tuple[int, dict]:
        """One request with basic auth."""
        import base64
        auth = base64.b64encode(f"{user}:secret".encode()).decode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def push_batch(self, collection: str, ops: list[dict]) -> None:
        """The same records, as one /v1/batch of record creations."""
        status, body = self.call("POST", "/batch", {
            "defaults": {"method": "POST", "path": f"/buckets/bench/collections/{collection}/records"},
            "requests": [{"body": {"data": {"seq": op["seq"], "op_id": op["op_id"], "type": op["type"],
                                            "entity_id": op["entity_id"], "device_time": op["device_time"],
                                            "payload": op["payload"]}}} for op in ops]})
        if status != 200 or any(r["status"] >= 400 for r in body["responses"]):
            raise RuntimeError(f"kinto batch failed: {status} {str(body)[:300]}")

    def prepare(self, collections: list[str]) -> None:
        """The bucket and one collection per device."""
        self.call("PUT", "/buckets/bench", {"data": {}})
        for name in collections:
            status, body = self.call("PUT", f"/buckets/bench/collections/{name}", {"data": {}})
            if status not in (200, 201):
                raise RuntimeError(f"kinto collection: {status} {body}")

    def pull_records(self, collection: str, page: int) -> int:
        """Every record of the collection, a page at a time (following Next-Page); returns how many."""
        import base64
        auth = base64.b64encode(b"bench:secret").decode()
        url, count = f"http://127.0.0.1:{self.port}/v1/buckets/bench/collections/{collection}/records?_limit={page}", 0
        while url:
            req = urllib.request.Request(url, headers={"Authorization": f"Basic {auth}"})
            with urllib.request.urlopen(req, timeout=120) as resp:
                count += len(orjson.loads(resp.read())["data"])
                url = resp.headers.get("Next-Page")
        return count
