"""Read, then write under real races (SQLite): several devices of several couriers push at once while
dispatch cancels, reassigns and renames; every op is decided exactly once and what was decided is what
was written (server.database: read, then write; sync.push: _attempt). The races without a read phase in
them run on PostgreSQL too, where its row locks and the spent-id insert decide them."""
import json
import random
import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy
from sqlalchemy import func, select

from server.extensions import db
from server.models import Device as DeviceRow
from server.models import ChecklistSubmission, CreatedEntity, OpLog, Task, TaskEvent
from server.process import ServerProcess
from sync.client import Handheld, HttpTransport
from tests.sync.conftest import Device, _current_version, at_once
from tests.sync.test_checklists import conduct_answers, submit
from tests.sync.test_read_then_write import _between_phases, _phases

BATCHES = 6
PER_BATCH = 5


@pytest.fixture
def sqlite_only(app):
    """PostgreSQL locks rows, not the database: its push has no read phase (races there are the row locks')."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("read-then-write is SQLite's (its one write lock); PostgreSQL locks rows")


def _push_until_taken(app, enrolled: dict, ops: list[dict]) -> list[dict]:
    """Push one batch from its own thread's context until every op of it is taken (a busy stop is resent)."""
    answers = []
    with app.app_context():
        device = Device(app.test_client(), enrolled)
        for _ in range(50):
            body = device.push(ops)
            answers.append(body)
            if body["last_seq"] >= ops[-1]["seq"]:
                return answers
            assert body.get("stop_code") == "busy", body
    pytest.fail(f"batch never taken: {answers[-1]}")


def test_devices_racing_dispatch_decide_every_op_once(app, make):
    """Two couriers, two handhelds each, pushing notes and arrivals on shared tasks in parallel, while
    dispatch cancels and reassigns those tasks and renames the couriers: each op has one op-log row, an
    applied note is in its task's history exactly once and a rejected one never, a replay changes nothing,
    and each stored task doc shows its task as it is."""
    couriers = [make.courier() for _ in range(2)]
    tasks = {c["id"]: [make.task(courier=c) for _ in range(3)] for c in couriers}
    devices = [(c, make.device(c, name=f"h{i}")) for c in couriers for i in range(2)]
    texts: dict[str, str] = {}
    batches: dict[str, list[list[dict]]] = {}
    for courier, enrolled in devices:
        seq = iter(range(1, BATCHES * PER_BATCH + 1))
        speaker = Device(make.client, enrolled)
        batches[enrolled["device_id"]] = []
        for _ in range(BATCHES):
            batch = []
            for _ in range(PER_BATCH):
                task = random.choice(tasks[courier["id"]])
                if random.random() < 0.7:
                    text = f"note {uuid.uuid4().hex}"
                    op = speaker.op("task.note", task["id"], {"text": text}, seq=next(seq), base_version=1)
                    texts[op["op_id"]] = text
                else:
                    op = speaker.op("stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47}, seq=next(seq),
                                    base_version=1)
                batch.append(op)
            batches[enrolled["device_id"]].append(batch)
    stop, dispatch_errors = threading.Event(), []
    dispatcher = make.headers("dispatcher")
    all_tasks = [t for ts in tasks.values() for t in ts]

    def dispatch():
        with app.app_context():
            client = app.test_client()
            n = 0
            while not stop.is_set():
                n += 1
                task = random.choice(all_tasks)
                roll = random.random()
                if roll < 0.2:
                    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/cancel",
                                           json={"reason": "race"}, headers=dispatcher)
                elif roll < 0.6:
                    response = client.post(f"/api/v1/dispatch/tasks/{task['id']}/assign",
                                           json={"courier_id": random.choice(couriers)["id"]}, headers=dispatcher)
                else:
                    response = client.patch(f"/api/v1/dispatch/couriers/{random.choice(couriers)['id']}",
                                            json={"name": f"Renamed {n}"}, headers=dispatcher)
                if response.status_code >= 500:
                    dispatch_errors.append((response.status_code, response.json))

    answers: dict[str, list] = {}

    def run_device(index: int):
        _, enrolled = devices[index]
        for batch in batches[enrolled["device_id"]]:
            answers.setdefault(enrolled["device_id"], []).extend(_push_until_taken(app, enrolled, batch))

    counter = iter(range(len(devices)))
    lock = threading.Lock()

    def next_device():
        with lock:
            index = next(counter)
        run_device(index)

    background = threading.Thread(target=dispatch)
    background.start()
    try:
        at_once(next_device, len(devices), timeout=120)
    finally:
        stop.set()
        background.join(30)
    assert not dispatch_errors, dispatch_errors
    _writer_slot_is_free()

    db.session.expire_all()
    results: dict[str, dict] = {}  # op_id: the result that took it (not a duplicate)
    for device_answers in answers.values():
        for body in device_answers:
            for result in body["results"]:
                if not result.get("duplicate"):
                    assert result["op_id"] not in results, ("an op decided twice", result)
                    results[result["op_id"]] = result
    every_op = [op for device_batches in batches.values() for batch in device_batches for op in batch]
    assert set(results) == {op["op_id"] for op in every_op}
    for _, enrolled in devices:
        rows = db.session.execute(select(OpLog.seq, OpLog.op_id, OpLog.status).where(
            OpLog.device_id == enrolled["device_id"], OpLog.in_sequence.is_(True))).all()
        assert sorted(r.seq for r in rows) == list(range(1, BATCHES * PER_BATCH + 1))
        assert {r.op_id: r.status for r in rows} == {
            op["op_id"]: results[op["op_id"]]["status"]
            for batch in batches[enrolled["device_id"]] for op in batch}
        assert db.session.scalar(select(DeviceRow.last_seq).where(DeviceRow.id == enrolled["device_id"])) \
            == BATCHES * PER_BATCH
    in_history = Counter(db.session.scalars(select(TaskEvent.text).where(TaskEvent.kind == "note")))
    for op_id, text in texts.items():
        expected = 1 if results[op_id]["status"] in ("applied", "conflict") else 0
        assert in_history[text] == expected, (results[op_id], in_history[text])

    db.session.rollback()  # the test's own reads hold the write lock (a write transaction): let the replay write
    again = [body for _, e in devices for b in batches[e["device_id"]] for body in _push_until_taken(app, e, b)]
    assert all(len(body["results"]) == PER_BATCH and all(r.get("duplicate") for r in body["results"])
               for body in again)
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == len(every_op)
    _docs_show_their_tasks(app, [t["id"] for t in all_tasks])


def _writer_slot_is_free() -> None:
    """No connection left behind holds the file's writer queue (a push's write phase always frees it)."""
    import fcntl
    import os
    db.session.remove()
    if db.engine.dialect.name != "sqlite":
        return
    path = f"{db.engine.url.database}.writelock"
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if a pooled connection still held it
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _docs_show_their_tasks(app, task_ids: list[str]) -> None:
    """Each task's stored doc, where it shows the task's version, is what a fresh dump gives now."""
    import orjson

    from server.models import SyncDoc
    from sync import docs
    registry = app.extensions["fieldops_sync"]
    db.session.rollback()
    stored = {row.entity_id: row for row in db.session.scalars(select(SyncDoc).where(
        SyncDoc.entity == "task", SyncDoc.entity_id.in_(task_ids)))}
    objs = list(db.session.scalars(select(Task).where(Task.id.in_(task_ids))))
    fresh = docs.dump(db.session, registry.entities["task"], objs)
    for task in objs:
        row = stored.get(task.id)
        assert row is not None and row.version == task.version, (task.id, row and row.version, task.version)
        assert orjson.loads(row.body) == orjson.loads(orjson.dumps(fresh[task.id])), task.id
    db.session.rollback()


def test_overlapping_batches_of_one_device_take_each_seq_once(app, make):
    """One handheld's queue sent as overlapping batches from several threads at once (a retry of part of
    it, a resend with more ops, a batch that reuses seqs for other ops): each seq is taken by one op, once;
    every other arrival of a seq is a duplicate of that op or seq_reused; the history holds each taken note
    once and no note that was not taken."""
    courier = make.courier()
    task = make.task(courier=courier)
    enrolled = make.device(courier)
    speaker = Device(make.client, enrolled)

    def note(seq: int, tag: str) -> dict:
        return speaker.op("task.note", task["id"], {"text": f"{tag}-{seq}-{uuid.uuid4().hex[:8]}"}, seq=seq,
                          base_version=1)

    queue = [note(seq, "q") for seq in range(1, 21)]
    impostors = [note(seq, "x") for seq in range(1, 21)]
    sends = [queue[:10], queue[:20], queue[5:15], impostors[:12], queue[:5] + impostors[5:10], queue[:20],
             impostors[:20], queue[:20]]
    random.shuffle(sends)

    def push(batch):
        with app.app_context():
            return Device(app.test_client(), enrolled).push(batch)

    lock, pending = threading.Lock(), list(sends)

    def one():
        with lock:
            batch = pending.pop()
        return push(batch)

    at_once(one, len(sends), timeout=120)
    _writer_slot_is_free()
    for _ in range(3):  # whatever the race left, the queue itself then goes through
        body = push(queue)
    db.session.rollback()
    rows = db.session.execute(select(OpLog.seq, OpLog.op_id, OpLog.status, OpLog.payload).where(
        OpLog.device_id == enrolled["device_id"], OpLog.in_sequence.is_(True))).all()
    assert sorted(r.seq for r in rows) == list(range(1, 21))
    taken = {r.seq: r for r in rows}
    assert body["last_seq"] == 20
    for result, op in zip(body["results"], queue, strict=True):
        assert result.get("duplicate") or result["code"] == "seq_reused", result
        assert (result["status"] != "rejected") == (taken[op["seq"]].op_id == op["op_id"]), result
    in_history = Counter(db.session.scalars(select(TaskEvent.text).where(TaskEvent.kind == "note")))
    texts_taken = {r.payload["text"] for r in rows}
    assert {t for t, n in in_history.items() if n} == texts_taken
    assert all(n == 1 for n in in_history.values())
    db.session.rollback()


def test_an_id_spent_between_the_phases_is_entity_exists(sqlite_only, monkeypatch, client, make, courier, device,
                                                          templates):
    """Another handheld's push spends a create op's id after this batch's read phase found it free and
    before this one takes the write lock: the read of the spent ids no longer holds, the batch is decided
    again under the lock, and the op is entity_exists (not applied twice, not a 500); the rest applied."""
    other = make.courier()
    other_device = Device(client, make.device(other))
    mine = submit(device, templates["conduct.pre_shift"], conduct_answers())
    theirs = submit(other_device, templates["conduct.pre_shift"], conduct_answers(), entity_id=mine["entity_id"])
    note = device.op("task.note", make.task(courier=courier)["id"], {"text": "gate 4"})
    raced = []
    changed = _phases("read_changed")
    calls = _between_phases(monkeypatch, lambda: raced.append(
        [(r["status"], r["code"]) for r in other_device.push([theirs])["results"]]))
    results = device.push([mine, note])["results"]
    assert calls == [1] and raced == [[("applied", None)]]
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "entity_exists"), ("applied", None)]
    assert _phases("read_changed") == changed + 1
    db.session.expire_all()
    assert db.session.scalar(select(ChecklistSubmission.courier_id).where(
        ChecklistSubmission.id == mine["entity_id"])) == other["id"]
    assert db.session.scalar(select(func.count()).select_from(ChecklistSubmission)) == 1


def test_one_id_created_from_many_devices_at_once_is_made_once(app, make, templates):
    """Several handhelds send a create op naming one id at the same moment: one applies it, every other
    is entity_exists; one submission, one spent id, no 500."""
    entity_id = str(uuid.uuid4())
    enrolled = [make.device(make.courier()) for _ in range(5)]
    ops = {e["device_id"]: submit(Device(make.client, e), templates["conduct.pre_shift"], conduct_answers(),
                                  entity_id=entity_id) for e in enrolled}
    lock, pending = threading.Lock(), list(enrolled)

    def one():
        with lock:
            mine = pending.pop()
        return _push_until_taken(app, mine, [ops[mine["device_id"]]])[-1]["results"][0]

    outcomes = Counter((r["status"], r["code"]) for r in at_once(one, len(enrolled)))
    assert outcomes == {("applied", None): 1, ("rejected", "entity_exists"): len(enrolled) - 1}, outcomes
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ChecklistSubmission)) == 1
    assert db.session.scalar(select(func.count()).select_from(CreatedEntity)) == 1


def test_handhelds_through_gunicorn_workers_with_dispatch_at_once(sqlite_only, app, client, make, database_url,
                                                                  tmp_path):
    """A real gunicorn (three worker processes, two threads each) on the SQLite file: six handhelds of three
    couriers push and pull their queues at once, in small batches, while dispatch reassigns and cancels
    their tasks through it. Every op is taken once, every acknowledged note is in the history once, and each
    handheld's store, pulled incrementally during the race, is what a full listing gives (no change missed
    by a cursor that moved past a push still writing)."""
    couriers = [make.courier() for _ in range(3)]
    tasks = {c["id"]: [make.task(courier=c)["id"] for _ in range(4)] for c in couriers}
    codes = [(c, client.post(f"/api/v1/dispatch/couriers/{c['id']}/enrollments",
                             headers=make.headers("dispatcher")).json["code"]) for c in couriers for _ in range(2)]
    dispatcher = make.headers("dispatcher")
    db.session.remove()  # the test's own reads would hold SQLite's write lock
    server = ServerProcess(database_url, workers=3, threads=2, attachments_dir=str(tmp_path / "att"),
                           log_path=str(tmp_path / "gunicorn.log")).start()
    handhelds = []
    try:
        for n, (courier, code) in enumerate(codes):
            handheld = Handheld(str(tmp_path / f"hh{n}.sqlite3"), HttpTransport(server.base_url, timeout=30),
                                batch_size=4, sleep=lambda s: time.sleep(min(s, 0.05)), rng=random.Random(n))
            handheld.enroll(code, f"PDA {n}")
            for i in range(30):
                task_id = random.choice(tasks[courier["id"]])
                if i % 3:
                    handheld.queue("task.note", task_id, {"text": f"hh{n}-{i}-{uuid.uuid4().hex[:6]}"})
                else:
                    handheld.queue("stop.arrive", task_id, {"lat": 31.23, "lon": 121.47})
            handheld.close()
            handhelds.append((courier, str(tmp_path / f"hh{n}.sqlite3"), n))
        stop = threading.Event()
        dispatch_failures = []

        def dispatch():
            transport = HttpTransport(server.base_url, timeout=30)
            every = [t for ts in tasks.values() for t in ts]
            while not stop.is_set():
                task_id = random.choice(every)
                if random.random() < 0.2:
                    path, body = f"/dispatch/tasks/{task_id}/cancel", {"reason": "race"}
                else:
                    path, body = f"/dispatch/tasks/{task_id}/assign", {"courier_id": random.choice(couriers)["id"]}
                reply = transport.request("POST", path, headers={**dispatcher, "Content-Type": "application/json"},
                                          body=json.dumps(body).encode())
                if reply.status >= 500:
                    dispatch_failures.append((reply.status, reply.body[:300]))

        lock, pending = threading.Lock(), list(handhelds)

        def run():
            with lock:
                _, path, n = pending.pop()
            handheld = Handheld(path, HttpTransport(server.base_url, timeout=30), batch_size=4,
                                sleep=lambda s: time.sleep(min(s, 0.05)), rng=random.Random(n))
            try:
                for _ in range(20):
                    handheld.push()
                    handheld._pull_pages()
                    if not handheld.pending():
                        break
                return handheld.pending()
            finally:
                handheld.close()

        background = threading.Thread(target=dispatch)
        background.start()
        try:
            left = at_once(run, len(handhelds), timeout=180)
        finally:
            stop.set()
            background.join(30)
        assert left == [0] * len(handhelds) and not dispatch_failures, (left, dispatch_failures)
        for _, path, n in handhelds:
            handheld = Handheld(path, HttpTransport(server.base_url, timeout=30), rng=random.Random(n))
            try:
                last = handheld._pull_pages()
                assert last["scope"] == handheld.checksum(), f"handheld {n} drifted"
                incremental = handheld.entities()
                handheld._set_meta("cursor", None)
                handheld._pull_pages()
                assert handheld.entities() == incremental, f"handheld {n}: incremental pulls missed a change"
                results = handheld.results()
            finally:
                handheld.close()
            assert sorted(results) == list(range(1, 31))
    finally:
        server.kill()
    db.session.expire_all()
    rows = db.session.execute(select(OpLog.device_id, OpLog.seq).where(OpLog.in_sequence.is_(True))).all()
    assert len(rows) == len(set(rows)) == 30 * len(handhelds)
    notes = Counter(db.session.scalars(select(TaskEvent.text).where(TaskEvent.kind == "note")))
    applied = {r.payload["text"] for r in db.session.scalars(select(OpLog).where(
        OpLog.type == "task.note", OpLog.status.in_(("applied", "conflict"))))}
    assert {t for t in notes if t and t.startswith("hh")} == applied
    assert all(notes[t] == 1 for t in applied)
    db.session.remove()


def test_two_devices_creating_the_same_ids_in_opposite_orders(app, make, templates):
    """Two handhelds each create the same two ids at once, in opposite orders (on PostgreSQL the spent-id
    inserts can then wait for each other): every push is answered (a busy stop at worst, resent), each id
    is made once, by one of them, and the other's op naming it is entity_exists."""
    for _ in range(5):
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        enrolled = [make.device(make.courier()) for _ in range(2)]
        batches = {}
        for e, order in zip(enrolled, ((first, second), (second, first)), strict=True):
            speaker = Device(make.client, e)
            batches[e["device_id"]] = [submit(speaker, templates["conduct.pre_shift"], conduct_answers(),
                                              entity_id=entity_id) for entity_id in order]
        lock, pending = threading.Lock(), list(enrolled)

        def one(lock=lock, pending=pending, batches=batches):
            with lock:
                mine = pending.pop()
            return mine["device_id"], _push_until_taken(app, mine, batches[mine["device_id"]])[-1]["results"]

        made: Counter = Counter()
        for device_id, results in at_once(one, 2):
            for op, result in zip(batches[device_id], results, strict=True):
                assert (result["status"], result["code"]) in (("applied", None), ("rejected", "entity_exists"))
                made[op["entity_id"]] += result["status"] == "applied"
        assert made == {first: 1, second: 1}
    db.session.rollback()


def test_a_batch_spends_its_created_ids_in_id_order(app, make, templates, engine_name):
    """A batch creating ids in descending order records them ascending (the order rows are locked in),
    so two pushes creating the same ids in opposite orders never wait on each other in a cycle."""
    ids = sorted((str(uuid.uuid4()) for _ in range(4)), reverse=True)
    device = Device(make.client, make.device(make.courier()))
    body = device.push([submit(device, templates["conduct.pre_shift"], conduct_answers(), entity_id=i) for i in ids])
    assert [r["status"] for r in body["results"]] == ["applied"] * 4
    physical = "ctid" if engine_name == "postgresql" else "rowid"
    stored = db.session.execute(sqlalchemy.text(f"SELECT entity_id FROM created_entities ORDER BY {physical}")).scalars()
    assert list(stored) == sorted(ids)


def test_a_push_decides_on_the_rows_not_on_objects_the_session_already_held(app, make, engine_name):
    """A caller that loaded the task before pushing (here the test, sharing the request's session) and a
    dispatch change on another connection in between: the push sees the change (a conflict), not the
    session's old copy, on both engines and in both of SQLite's modes."""
    courier = make.courier()
    task = make.task(courier=courier)
    device = Device(make.client, make.device(courier))
    version = _current_version(task["id"])
    db.session.rollback()
    held = db.session.get(Task, task["id"])  # the session now holds the task as it was ...
    db.session.commit()  # ... and keeps it past its transaction (expire_on_commit is off)
    assert held.status == "assigned"
    with db.engine.begin() as other:  # dispatch moves the task on another connection
        other.execute(sqlalchemy.update(Task).where(Task.id == task["id"])
                      .values(status="cancelled", version=Task.version + 1,
                              dispatch_version=Task.version + 1))
    body = device.push([device.op("stop.arrive", task["id"], {"lat": 31.2, "lon": 121.4}, base_version=version)])
    [result] = body["results"]
    assert result["status"] == "conflict", result
    db.session.rollback()
    assert db.session.get(Task, task["id"]).status == "cancelled"
