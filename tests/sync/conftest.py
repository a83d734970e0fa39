"""Sync test helpers: a raw protocol speaker for a device."""
import itertools
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server import clock as server_clock
from server.database import mark_read_only, reset_read_only
from server.extensions import db
from server.models import Task

PROTOCOL = {"Fieldops-Protocol": "1"}
SHANGHAI = timezone(timedelta(hours=8))


class Device:
    """Speaks the raw protocol through the test client; counts seqs like a handheld."""

    def __init__(self, client, enrolled: dict):
        """Bind to an enrolled device ({device_id, token})."""
        self.client = client
        self.id = enrolled["device_id"]
        self.headers = {"Authorization": f"Bearer {enrolled['token']}", **PROTOCOL}
        self._seq = itertools.count(1)
        # Send device_now with every push, as the reference client does: a device whose clock is right (the
        # server's, set back or not by server_clock), so the server measures a skew of 0. A test of a device
        # that leaves it out (the protocol allows it) turns it off.
        self.sends_device_now = True

    def op(self, type_: str, entity_id: str | None, payload: dict, *, base_version: int | None = None,
           seq: int | None = None) -> dict:
        """A new op with the next seq (or the one given), based on the version given or the task's current one."""
        if base_version is None:
            base_version = _current_version(entity_id)
        return {"op_id": str(uuid.uuid4()), "seq": seq if seq is not None else next(self._seq),
                "type": type_, "entity_id": entity_id, "base_version": base_version,
                "device_time": datetime.now(SHANGHAI).isoformat(), "payload": payload}

    def push(self, ops: list[dict], *, expect: int = 200):
        """POST /sync/push; returns the JSON body."""
        # The standard library's encoder, which (unlike orjson) can send any string, lone surrogates too.
        body = {"device_id": self.id, "ops": ops}
        if self.sends_device_now:
            body["device_now"] = server_clock.utcnow().astimezone(SHANGHAI).isoformat()
        response = self.client.post("/api/v1/sync/push", data=json.dumps(body),
                                    content_type="application/json", headers=self.headers)
        assert response.status_code == expect, response.json
        return response.json

    def pull(self, cursor: str | None = None, limit: int = 500, *, expect: int = 200):
        """GET /sync/pull; returns the JSON body."""
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = self.client.get("/api/v1/sync/pull", query_string=query, headers=self.headers)
        assert response.status_code == expect, response.json
        return response.json

    def pull_all(self, cursor: str | None = None, limit: int = 500) -> tuple[dict, str, dict]:
        """Pull until has_more is false: ({(entity, id): change}, cursor, last page)."""
        store: dict = {}
        while True:
            page = self.pull(cursor, limit)
            if page.get("reset"):
                store.clear()
                cursor = None
                continue
            for change in page["changes"]:
                key = (change["entity"], change["id"])
                if change["deleted"]:
                    store.pop(key, None)
                else:
                    store[key] = change
            cursor = page["cursor"]
            if not page["has_more"]:
                return store, cursor, page


def morning_task(make, courier: dict, server_clock, **overrides) -> dict:
    """A task of the courier created six hours ago (the server's clock set back), its window from five hours ago
    to three: whatever a test dates around that window has happened by now, after the task existed (the push
    engine dates no op later than it arrived, nor earlier than its task, sync.timing)."""
    now = server_clock.now().replace(microsecond=0)
    window = {"start": (now - timedelta(hours=5)).isoformat(), "end": (now - timedelta(hours=3)).isoformat()}
    with server_clock.at(now - timedelta(hours=6)):
        return make.task(courier=courier, **{"window": window, **overrides})


def _current_version(task_id: str | None) -> int:
    """The task's version now (0 for no such task): what an up-to-date device holds."""
    token = mark_read_only(True)  # a reader never waits for the test's own open write transaction
    try:
        with db.engine.connect() as conn:
            return conn.scalar(select(Task.version).where(Task.id == task_id)) or 0
    finally:
        reset_read_only(token)


def at_once(work, times: int, timeout: float = 90) -> list:
    """Call work() from `times` threads at once; returns the answers, raising the first error."""
    answers, errors = [], []

    def run():
        try:
            answers.append(work())
        except Exception as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    return answers


def fresh_pushes(answers: list[dict]) -> int:
    """How many push answers applied something (the rest only replayed duplicates)."""
    return sum(1 for a in answers if not any(r.get("duplicate") for r in a["results"]))


@pytest.fixture
def courier(make):
    """A courier with a van."""
    courier = make.courier()
    van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                      headers=make.headers("dispatcher"))
    return courier


@pytest.fixture
def device(client, make, courier, server_clock):
    """An enrolled handheld of the courier, enrolled the day before: nothing it did today precedes its enrollment
    (the push engine holds no op earlier than that, sync.timing)."""
    with server_clock.at(server_clock.now() - timedelta(days=1)):
        return Device(client, make.device(courier))


def race(writer, reader, *, writers: int = 4) -> None:
    """Run writer(n) in `writers` threads while reader(stop) polls in another, commits jittered; re-raise failures.

    Each writer commit waits a random 0-4 ms just before committing, so commits
    land in every order; the reader runs until the writers are done and `stop`
    is set, then should read to the end. Any exception in a thread fails the test.
    """
    import random

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    stop, errors = threading.Event(), []

    def jitter(_session):
        if threading.current_thread().name.startswith("writer"):
            threading.Event().wait(random.random() * 0.004)

    def guarded(target, *args):
        try:
            target(*args)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    event.listen(Session, "before_commit", jitter)
    try:
        threads = [threading.Thread(target=guarded, args=(writer, n), name=f"writer-{n}") for n in range(writers)]
        polling = threading.Thread(target=guarded, args=(reader, stop), name="reader")
        polling.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        stop.set()
        polling.join(120)
    finally:
        event.remove(Session, "before_commit", jitter)
    assert not errors, errors


def interleave(write_a, write_b, read_between):
    """A writes and pauses just before COMMIT (its feed row inserted, its position taken); B commits; then
    read_between() reads; then A commits. Returns what read_between returned.

    The pause is a before_commit listener registered after the app's own, so A's row
    is in when A stops. With the feed lock B waits for A; without it B commits at once.
    """
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    a_inserted, a_go = threading.Event(), threading.Event()

    def pause_writer_a(_session):
        if threading.current_thread().name == "writer-a":
            a_inserted.set()
            a_go.wait(20)

    event.listen(Session, "before_commit", pause_writer_a)
    try:
        a = threading.Thread(target=write_a, name="writer-a")
        a.start()
        assert a_inserted.wait(20)
        b = threading.Thread(target=write_b, name="writer-b")
        b.start()
        b.join(1.0)  # with the lock B waits for A; without it B commits now
        middle = read_between()
        a_go.set()
        a.join(20)
        b.join(20)
    finally:
        event.remove(Session, "before_commit", pause_writer_a)
        a_go.set()
    return middle


@pytest.fixture
def templates(app, make) -> dict[str, dict]:
    """The default checklist templates, by kind, as the office reads them."""
    from server.services import checklists
    checklists.seed_defaults()
    page = make.client.get("/api/v1/dispatch/checklist-templates", headers=make.headers("quality")).json
    return {t["kind"]: t for t in page["items"]}


DEPOT = {"lat": 31.2300, "lon": 121.4700}


def passing_answers(template: dict, odometer: int = 1000) -> list[dict]:
    """Every item of the template's current version answered as passing (the odometer as read)."""
    passing = {"pass_fail": True, "number": 0, "choice": "tied", "text": "ok"}
    return [{"item": item["code"], "value": odometer if item["code"] == "odometer" else passing[item["type"]]}
            for item in template["items"]]


def day_start_ops(device: Device, templates: dict, van: str, at: datetime | None = None) -> list[dict]:
    """A courier's day begun as the rules say: the conduct check, the van's pre-trip check, shift.start (at `at`)."""
    from server.models import Vehicle

    db.session.expire_all()
    version = db.session.get(Vehicle, van).version
    when = {"device_time": at.astimezone(SHANGHAI).isoformat()} if at else {}
    checks = [dict(device.op("checklist.submit", str(uuid.uuid4()),
                             {"template_id": templates[kind]["id"], "template_version": templates[kind]["current"],
                              "answers": passing_answers(templates[kind]), **DEPOT,
                              **({"vehicle_id": van} if kind.startswith("vehicle.") else {})}, base_version=0),
                   **when) for kind in ("conduct.pre_shift", "vehicle.pre_trip")]
    return [*checks, dict(device.op("shift.start", van, {"odometer": 1000}, base_version=version), **when)]


@pytest.fixture
def van(courier) -> str:
    """The courier's van id."""
    from server.models import Vehicle

    return db.session.scalar(select(Vehicle.id).where(Vehicle.courier_id == courier["id"]))


@pytest.fixture
def on_shift(make, courier, device) -> str:
    """The courier's shift is open since seven hours ago (checks done, shift.start applied on their van), so it
    covers a morning task's window (morning_task) as well as now; the van's id."""
    return start_shift(make, courier, device, at=datetime.now(timezone.utc) - timedelta(hours=7))


def start_shift(make, courier: dict, device: Device, at: datetime | None = None) -> str:
    """Open the courier's shift through the push path (at `at`, by the device's clock: after its enrollment),
    giving them a van if they have none: the van's id."""
    from server.models import Vehicle
    from server.services import checklists

    checklists.seed_defaults()
    van = db.session.scalar(select(Vehicle.id).where(Vehicle.courier_id == courier["id"]))
    if van is None:
        van = make.vehicle()["id"]
        assert make.client.patch(f"/api/v1/dispatch/vehicles/{van}", json={"courier_id": courier["id"]},
                                 headers=make.headers("dispatcher")).status_code == 200
    templates = {t["kind"]: t for t in make.client.get("/api/v1/dispatch/checklist-templates",
                                                       headers=make.headers("quality")).json["items"]}
    results = device.push(day_start_ops(device, templates, van, at=at))["results"]
    assert [r["status"] for r in results] == ["applied"] * 3 and not any(r.get("clock_suspect") for r in results), \
        results
    return van


def begin_day(handheld) -> None:
    """Queue a day's start on a reference handheld (sync.client) as a courier does it, from what it holds: the conduct
    check, the van's pre-trip check, shift.start."""
    held = handheld.entities()
    templates = {e["data"]["kind"]: e["data"] for (entity, _), e in held.items() if entity == "checklist_template"}
    van = next(entity_id for entity, entity_id in held if entity == "vehicle")
    for kind in ("conduct.pre_shift", "vehicle.pre_trip"):
        handheld.submit_checklist(templates[kind], passing_answers(templates[kind]), **DEPOT,
                                  vehicle_id=van if kind.startswith("vehicle.") else None)
    handheld.shift("start", van, 1000)
