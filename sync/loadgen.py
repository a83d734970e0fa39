"""Load for benchmarks and the fleet simulator: throw-away databases, provisioning, raw protocol calls."""
import json
import os
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

PROTOCOL_HEADERS = {"Fieldops-Protocol": "1", "Content-Type": "application/json"}


@contextmanager
def throwaway_database(engine: str, workdir: str, pg_base: str = "postgresql://postgres@127.0.0.1:5432/test"):
    """Yield the URL of a new, migrated database; remove it afterwards."""
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
    """One courier's device and tasks."""

    courier_id: str
    device_id: str
    token: str
    task_ids: list[str]


def provision(app, *, couriers: int, tasks_per_courier: int, tag: str = "") -> tuple[str, list[Provisioned]]:
    """Create couriers with an enrolled device and assigned tasks; returns (dispatcher token, devices)."""
    from server.auth import Actor
    from server.extensions import db
    from server.services import couriers as courier_service
    from server.services import devices, staff, tasks
    tag = tag or uuid.uuid4().hex[:6]
    out = []
    with app.app_context():
        user, token = staff.create(username=f"bench-{tag}", role="dispatcher")
        actor = Actor(kind="staff", id=user.id, role="dispatcher")
        start = datetime.now(timezone.utc) + timedelta(hours=1)
        for c in range(couriers):
            courier = courier_service.create(actor=actor, name=f"Bench {c}", phone=f"1380000{c:04d}",
                                             employee_no=f"B{tag}{c:05d}")
            specs = [{"waybill_no": f"BN{tag}{c:04d}{k:06d}", "kind": "delivery",
                      "recipient": {"name": f"R{k}", "phone": f"139{k:08d}", "address": f"{k} Bench Rd",
                                    "lat": 31.2, "lon": 121.4},
                      "parcels": [{"parcel_no": f"P{k}", "description": "box", "count": 1}],
                      "cod_amount": 0, "fees": [{"code": "delivery", "amount": 1200}],
                      "window": {"start": start, "end": start + timedelta(hours=2)}}
                     for k in range(tasks_per_courier)]
            created = tasks.import_tasks(actor=actor, specs=specs, labels=[str(i) for i in range(len(specs))])
            for task in created:
                task.courier_id, task.status = courier.id, "assigned"
            db.session.commit()  # one bulk assignment; the feed records every task for the courier
            _, code = devices.create_enrollment(actor=actor, courier_id=courier.id)
            device, device_token = devices.enroll(code=code, device_name="bench", rate_key=f"bench:{tag}")
            out.append(Provisioned(courier.id, device.id, device_token, [t.id for t in created]))
        db.engine.dispose()
    return token, out


def make_ops(device: Provisioned, first_seq: int, count: int) -> list[dict]:
    """count ops (notes and arrivals over the device's tasks), seq from first_seq."""
    now = datetime.now(timezone(timedelta(hours=8))).isoformat()
    ops = []
    for i in range(count):
        seq = first_seq + i
        task_id = device.task_ids[seq % len(device.task_ids)]
        if seq % 4 == 0:
            op = {"type": "stop.arrive", "payload": {"lat": 31.2, "lon": 121.4}}
        else:
            op = {"type": "task.note", "payload": {"text": f"note {seq}"}}
        ops.append({"op_id": str(uuid.uuid4()), "seq": seq, "entity_id": task_id, "base_version": None,
                    "device_time": now, **op})
    return ops


def call(base_url: str, method: str, path: str, token: str, body=None, query: str = "") -> tuple[int, dict]:
    """One raw HTTP call; returns (status, json)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path + query, data=data, method=method,
                                 headers={**PROTOCOL_HEADERS, "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
