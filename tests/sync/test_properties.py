"""Property: any interleaving of ops, flaky syncs, replays, crashes and dispatch changes converges.

Each example gets its own courier, tasks and device, so examples share the
database without seeing each other. At the end of an example a clean sync
must leave: every seq 1..N in the op log exactly once, every courier note and
arrival recorded exactly once (both are field facts, applied even in
conflict), and the device's store equal to the server's scope.
"""
import json
import os
import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.extensions import db
from server.models import OpLog, TaskEvent
from sync.client import Handheld
from tests.sync.conftest import PROTOCOL
from tests.sync.transport import FlaskTransport
from tools.fleet import FlakyTransport

EXAMPLES = 15 if os.environ.get("FIELDOPS_TEST_TIER") == "short" else 60

action = st.one_of(
    st.tuples(st.just("note"), st.integers(0, 2)),
    st.tuples(st.just("arrive"), st.integers(0, 2)),
    st.tuples(st.just("sync"), st.integers(0, 2**16)),
    st.tuples(st.just("replay"), st.integers(0, 2**16)),
    st.tuples(st.just("crash"), st.just(0)),
    st.tuples(st.just("reassign"), st.integers(0, 2)),
    st.tuples(st.just("give_back"), st.integers(0, 2)),
    st.tuples(st.just("cancel"), st.integers(0, 2)),
    st.tuples(st.just("dispatch_note"), st.integers(0, 2)),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=1, max_size=25))
def test_any_interleaving_converges_exactly_once(app, client, make, tmp_path, actions):
    """Exactly once, and the device equals the server, whatever happened on the way."""
    courier, other = make.courier(), make.courier()
    tasks = [make.task(courier=courier)["id"] for _ in range(3)]
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    path = str(tmp_path / f"{uuid.uuid4().hex}.sqlite3")
    handheld = Handheld(path, FlaskTransport(app), sleep=lambda s: None, rng=random.Random(0),
                        batch_size=4, page_size=3, max_attempts=3)
    handheld.enroll(code, "PDA")
    token = handheld._meta("token")
    raw_headers = {"Authorization": f"Bearer {token}", **PROTOCOL}
    queued = {"note": 0, "arrive": 0}
    dispatch = make.headers("dispatcher")
    for kind, arg in actions:
        if kind in ("note", "arrive"):
            op_type = "task.note" if kind == "note" else "stop.arrive"
            payload = {"text": f"n{arg}"} if kind == "note" else {"lat": 31.2, "lon": 121.4}
            handheld.queue(op_type, tasks[arg], payload)
            queued[kind] += 1
        elif kind == "sync":
            handheld.transport = FlakyTransport(FlaskTransport(app), random.Random(arg), drop=0.3, lose=0.3)
            try:
                handheld.sync()
            except ConnectionError:
                pass
        elif kind == "replay":  # a duplicated, reordered batch of anything already queued
            rng = random.Random(arg)
            rows = handheld.db.execute("SELECT seq, op_id, type, entity_id, base_version, device_time, payload "
                                       "FROM queue ORDER BY seq").fetchall()
            batch = [{"seq": r[0], "op_id": r[1], "type": r[2], "entity_id": r[3], "base_version": r[4],
                      "device_time": r[5], "payload": json.loads(r[6])}
                     for r in rng.sample(rows, k=min(len(rows), rng.randint(0, 5)))]
            rng.shuffle(batch)
            response = client.post("/api/v1/sync/push", json={"device_id": handheld.device_id, "ops": batch},
                                   headers=raw_headers)
            assert response.status_code == 200
        elif kind == "crash":
            handheld.close()
            handheld = Handheld(path, FlaskTransport(app), sleep=lambda s: None, rng=random.Random(1),
                                batch_size=4, page_size=3, max_attempts=3)
        elif kind == "reassign":
            client.post(f"/api/v1/dispatch/tasks/{tasks[arg]}/assign", json={"courier_id": other["id"]},
                        headers=dispatch)
        elif kind == "give_back":
            client.post(f"/api/v1/dispatch/tasks/{tasks[arg]}/assign", json={"courier_id": courier["id"]},
                        headers=dispatch)
        elif kind == "cancel":
            client.post(f"/api/v1/dispatch/tasks/{tasks[arg]}/cancel", json={"reason": "x"}, headers=dispatch)
        elif kind == "dispatch_note":
            client.post(f"/api/v1/dispatch/tasks/{tasks[arg]}/notes", json={"text": "d"}, headers=dispatch)

    handheld.transport = FlaskTransport(app)
    handheld.max_attempts = 8
    final = handheld.sync()
    assert handheld.pending() == 0
    db.session.expire_all()
    total = queued["note"] + queued["arrive"]
    seqs = db.session.scalars(select(OpLog.seq).where(OpLog.device_id == handheld.device_id,
                                                      OpLog.in_sequence.is_(True)).order_by(OpLog.seq)).all()
    assert seqs == list(range(1, total + 1))
    for kind, event_kind in (("note", "note"), ("arrive", "arrived")):
        recorded = db.session.scalar(select(func.count()).select_from(TaskEvent).where(
            TaskEvent.actor_id == courier["id"], TaskEvent.kind == event_kind))
        assert recorded == queued[kind]
    assert handheld.checksum() == final["scope"]
    fresh = Handheld(str(tmp_path / f"{uuid.uuid4().hex}.sqlite3"), FlaskTransport(app), sleep=lambda s: None)
    fresh.db.execute("INSERT INTO meta VALUES ('token', ?), ('device_id', ?)", (token, handheld.device_id))
    fresh.pull()
    assert {k: v["version"] for k, v in fresh.entities().items()} == \
           {k: v["version"] for k, v in handheld.entities().items()}
    # Not only the versions: what the device holds is what a fresh render of each
    # entity shows now (push results, stored docs and notes built on them included).
    registry = app.extensions["fieldops_sync"]
    db.session.remove()
    for (entity, entity_id), held in handheld.entities().items():
        entity_type = registry.entities[entity]
        (obj,) = entity_type.load([entity_id])
        assert held["data"] == entity_type.dump([obj])[entity_id], (entity, entity_id)
    handheld.close()
    fresh.close()
