"""Load for benchmarks and the fleet simulator: throw-away databases, provisioning, raw protocol calls."""
import json
import os
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
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
    """One courier's device and tasks."""

    courier_id: str
    device_id: str
    token: str
    task_ids: list[str]
    # Each task's version when provisioned: what the device holds, sent as base_version
    # (versions only grow, and dispatch changes nothing during a run: never a conflict).
    task_versions: dict[str, int]


def provision(app, *, couriers: int, tasks_per_courier: int, tag: str = "") -> tuple[str, list[Provisioned]]:
    """Create couriers with an enrolled device and assigned tasks; returns (dispatcher token, devices)."""
    from sqlalchemy import select

    from server.auth import Actor
    from server.extensions import db
    from server.models import Task
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
            ids = [t.id for t in created]
            versions = dict(db.session.execute(select(Task.id, Task.version).where(Task.id.in_(ids))).all())
            db.session.rollback()
            out.append(Provisioned(courier.id, device.id, device_token, ids, versions))
        db.engine.dispose()
    return token, out


# One stop's worth of ops, in the order a courier makes them: a block of ten consecutive seqs acts on one
# task. Each pair is (op type, minutes before now on the device's clock): the arrival comes a quarter of an
# hour before the customer is reported absent, with a call in between, so every op of the mix applies.
_STOP = [("appointment.confirm", 40), ("appointment.contact", 39), ("task.note", 38), ("appointment.late_notice", 37),
         ("stop.arrive", 15), ("task.note", 14), ("appointment.contact", 12), ("task.note", 2),
         ("stop.customer_absent", 1), ("appointment.reschedule", 0)]


def _payload(op_type: str, seq: int, now: datetime) -> dict:
    """The payload of one op of the mix."""
    window = {"start": (now + timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=3)).isoformat()}
    return {"stop.arrive": {"lat": 31.2, "lon": 121.4},
            "task.note": {"text": f"note {seq}"},
            "appointment.confirm": {"window": window, "via": "phone"},
            "appointment.contact": {"outcome": "no_answer" if seq % 10 == 6 else "reached"},
            "appointment.late_notice": {"eta": window["start"], "reason": "traffic"},
            "stop.customer_absent": {"waited_minutes": 14},
            "appointment.reschedule": {"window": window, "reason": "customer asked", "customer_agreed": False},
            }[op_type]


def make_ops(device: Provisioned, first_seq: int, count: int) -> list[dict]:
    """count ops of the realistic mix (_STOP: notes, arrivals, appointment ops) over the device's tasks."""
    now = datetime.now(timezone(timedelta(hours=8)))
    ops = []
    for i in range(count):
        seq = first_seq + i
        task_id = device.task_ids[(seq // len(_STOP)) % len(device.task_ids)]
        op_type, minutes_ago = _STOP[seq % len(_STOP)]
        ops.append({"op_id": str(uuid.uuid4()), "seq": seq, "entity_id": task_id,
                    "base_version": device.task_versions[task_id],
                    "device_time": (now - timedelta(minutes=minutes_ago)).isoformat(), "type": op_type,
                    "payload": _payload(op_type, seq, now)})
    return ops


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
_KINTO_INI = """[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = {url}
kinto.permission_backend = kinto.core.permission.postgresql
kinto.permission_url = {url}
kinto.cache_backend = kinto.core.cache.memory
kinto.batch_max_requests = 500
kinto.userid_hmac_secret = fieldops-bench
multiauth.policies = basicauth
kinto.bucket_create_principals = system.Authenticated

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARNING
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""


class KintoServer:
    """Mozilla's Kinto, installed from PyPI into its own venv, on its own PostgreSQL database."""

    def __init__(self, venv: str, workdir: str, pg_url: str, workers: int = 2):
        """Configure; start() installs (once) and runs it under gunicorn."""
        from server.process import free_port
        self.venv, self.workdir, self.pg_url, self.workers = venv, workdir, pg_url, workers
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

    def start(self) -> "KintoServer":
        """Install, migrate, serve; wait until it answers."""
        import subprocess
        import time
        self._install()
        ini = os.path.join(self.workdir, "kinto.ini")
        url = self.pg_url.replace("postgresql+psycopg://", "postgresql://")
        with open(ini, "w") as fh:
            fh.write(_KINTO_INI.format(url=url))
        bin_dir = os.path.join(self.venv, "bin")
        subprocess.run([os.path.join(bin_dir, "kinto"), "migrate", "--ini", ini], check=True,
                       capture_output=True)
        with open(os.path.join(self.workdir, "kinto.log"), "ab") as log:
            self.proc = subprocess.Popen([os.path.join(bin_dir, "gunicorn"), "--paste", ini, "--workers",
                                          str(self.workers), "--bind", f"127.0.0.1:{self.port}"],
                                         stdout=log, stderr=log, start_new_session=True)
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/__heartbeat__", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("Kinto did not start; see kinto.log")

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
