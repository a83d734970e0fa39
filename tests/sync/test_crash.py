"""A real gunicorn (several workers) is SIGKILLed during pushes, during a day of handovers, and between a push's
commit and its answer; the clients resume; nothing is lost or doubled (docs/reliability.md, Faults)."""
import json
import os
import random
import threading
import time

from sqlalchemy import func, select

from server.extensions import db
from server.models import HandoverStep, LedgerEntry, OpLog, Task, TaskEvent, Violation
from server.process import ServerProcess
from server.services import ledger
from sync.client import Handheld, HttpTransport
from tests.sync.conftest import at_once, begin_day, fresh_pushes

OPS = 120 if os.environ.get("FIELDOPS_TEST_TIER") == "short" else 600


def test_sigkill_during_pushes_loses_and_doubles_nothing(app, client, make, courier, database_url, tmp_path):
    """Every op acknowledged before the kill is there exactly once; the rest arrive after restart."""
    task = make.task(courier=courier)
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    server = ServerProcess(database_url, workers=3, attachments_dir=str(tmp_path / "att"),
                           log_path=str(tmp_path / "gunicorn.log")).start()
    store = str(tmp_path / "hh.sqlite3")
    try:
        handheld = Handheld(store, HttpTransport(server.base_url, timeout=10), batch_size=10,
                            max_attempts=2, sleep=lambda s: None, rng=random.Random(5))
        handheld.enroll(code, "PDA")
        for i in range(OPS):
            handheld.queue("task.note", task["id"], {"text": f"n{i}"})
        handheld.close()
        failure = push_until_killed(store, server.base_url, batch_size=10, seed=5, done_at=OPS // 3,
                                    kill=server.kill)
        assert failure, "the kill should have interrupted the push"
        acknowledged = done_seqs(store)
        assert 0 < len(acknowledged) < OPS
        db.session.expire_all()
        on_server = set(db.session.scalars(select(OpLog.seq).where(OpLog.in_sequence.is_(True))))
        assert set(acknowledged) <= on_server  # acknowledged means committed
        db.session.remove()  # end our read: on SQLite it would hold the write lock

        server.start()
        resumed = Handheld(store, HttpTransport(server.base_url, timeout=10), sleep=lambda s: None)
        resumed.sync()
        assert resumed.pending() == 0
        resumed.close()
    finally:
        server.kill()
    db.session.expire_all()
    seqs = db.session.scalars(select(OpLog.seq).where(OpLog.in_sequence.is_(True)).order_by(OpLog.seq)).all()
    assert seqs == list(range(1, OPS + 1))
    notes = db.session.scalar(select(func.count()).select_from(TaskEvent).where(TaskEvent.kind == "note"))
    assert notes == OPS


def done_seqs(store: str) -> list[int]:
    """Seqs the client holds as acknowledged."""
    import sqlite3
    with sqlite3.connect(store) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM queue WHERE state = 'done'")]


def handheld_done(store: str) -> int:
    """How many ops the client holds as acknowledged."""
    return len(done_seqs(store))


def push_until_killed(store: str, base_url: str, *, batch_size: int, seed: int, done_at: int, kill) -> list:
    """Push the handheld's queue from a thread; once done_at ops are acknowledged, kill() the server.

    Returns the connection errors the push met (the kill should cause one).
    """
    failure: list = []

    def pushing():
        pusher = Handheld(store, HttpTransport(base_url, timeout=10), batch_size=batch_size, max_attempts=2,
                          sleep=lambda s: None, rng=random.Random(seed))
        try:
            pusher.push()
        except ConnectionError as exc:
            failure.append(exc)
        finally:
            pusher.close()

    thread = threading.Thread(target=pushing)
    thread.start()
    deadline = time.monotonic() + 60
    while handheld_done(store) < done_at and time.monotonic() < deadline:
        time.sleep(0.005)
    kill()
    thread.join(60)
    return failure


def test_racing_pushes_through_several_gunicorn_workers_apply_once(app, make, courier, database_url, tmp_path):
    """Four identical pushes at once, spread over three worker processes: one effect per op."""
    import json
    import urllib.request
    task = make.task(courier=courier)
    enrolled = make.device(courier)
    ops = [{"op_id": f"op-{i}", "seq": i, "type": "task.note", "entity_id": task["id"], "base_version": task["version"],
            "device_time": "2026-11-22T09:00:00+08:00", "payload": {"text": f"n{i}"}} for i in range(1, 101)]
    body = json.dumps({"device_id": enrolled["device_id"], "ops": ops}).encode()
    with ServerProcess(database_url, workers=3, attachments_dir=str(tmp_path / "att"),
                       log_path=str(tmp_path / "gunicorn.log")) as server:
        def push():
            req = urllib.request.Request(server.base_url + "/sync/push", data=body, method="POST", headers={
                "Authorization": f"Bearer {enrolled['token']}", "Fieldops-Protocol": "1",
                "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())

        answers = at_once(push, 4)
    assert len(answers) == 4 and all(a["last_seq"] == 100 for a in answers)
    assert fresh_pushes(answers) == 1
    db.session.expire_all()
    notes = db.session.scalar(select(func.count()).select_from(TaskEvent).where(TaskEvent.kind == "note"))
    assert notes == 100
    db.session.remove()


# -- a day of handovers while the server's process group is SIGKILLed -------------------------------------
SHORT = os.environ.get("FIELDOPS_TEST_TIER") == "short"
DAY_KILLS = 3 if SHORT else 50
DAY_COURIERS = 3 if SHORT else 4
DAY_TASKS = 4 if SHORT else 25  # per courier
DOOR = {"lat": 31.23, "lon": 121.47}
PNG = b"\x89PNG\r\n\x1a\n"


def _enrolled_courier(client, make) -> tuple[dict, str]:
    """A courier with a van and a one-time enrollment code."""
    courier = make.courier()
    van = make.vehicle()
    client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                 headers=make.headers("dispatcher"))
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    return courier, code


def _plan(tasks: list[dict], rng: random.Random) -> list[tuple]:
    """The day's handovers as (method name, task id, kwargs): mostly COD deliveries, some refusals."""
    steps = []
    for task in tasks:
        items = [{"parcel_no": p["parcel_no"], "counted": p["count"], "condition": "ok"} for p in task["parcels"]]
        name = task["recipient"]["name"]
        steps.append(("verify_recipient", task["id"], {"method": "id_check", "name": name}))
        if rng.random() < 0.2:
            damaged = [dict(item, condition="damaged") for item in items]
            photo = PNG + b"damaged " + task["id"].encode()
            steps.append(("inspect", task["id"], {"items": damaged, "customer_accepted": False, "photos": [photo]}))
            steps.append(("refuse", task["id"], {"reason": "damaged", "note": "box crushed", "photos": [photo]}))
            continue
        steps.append(("inspect", task["id"], {"items": items, "customer_accepted": True}))
        due = task["cod_amount"] + sum(fee["amount"] for fee in task["fees"])
        steps.append(("collect_payment", task["id"], {"amount": due, "method": rng.choice(["cash", "cash", "qr"])}))
        steps.append(("sign", task["id"], {"signature": PNG + task["id"].encode(), "signer_name": name, **DOOR}))
    return steps


class _CountingTransport(HttpTransport):
    """HTTP that counts the requests the kills cut off (no answer at all)."""

    cut = 0

    def request(self, method, path, **kwargs):
        """Send; count a connection failure."""
        try:
            return super().request(method, path, **kwargs)
        except ConnectionError:
            _CountingTransport.cut += 1
            raise


class _Killer:
    """SIGKILLs the server's process group at random moments and restarts it, `times` times."""

    def __init__(self, server: ServerProcess, times: int, rng: random.Random):
        self.server, self.times, self.rng = server, times, rng
        self.kills = 0
        self.done, self.halt = threading.Event(), threading.Event()
        self.error: list = []

    def run(self) -> None:
        """Up for 0.2-1.5 s, killed, restarted; until `times` kills (or halted: the test gave up)."""
        try:
            while self.kills < self.times and not self.halt.wait(self.rng.uniform(0.2, 1.5)):
                self.server.kill()
                self.kills += 1
                self.server.start(timeout=60)
        except Exception as exc:  # surfaced by the test
            self.error.append(exc)
        finally:
            self.done.set()


def _work_the_day(store: str, base_url: str, steps: list[tuple], killer: _Killer, seed: int,
                  errors: list) -> None:
    """One courier's enrolled handheld: each handover step queued and synced, riding out the kills."""
    rng = random.Random(seed)

    def nap(seconds: float) -> None:
        time.sleep(min(seconds, 0.3))

    handheld = Handheld(store, _CountingTransport(base_url, timeout=15), batch_size=3, max_attempts=4, sleep=nap,
                        rng=rng)
    try:
        while True:  # the day starts with the tasks on the handheld
            try:
                handheld.pull()
                break
            except ConnectionError:
                time.sleep(0.2)
        begin_day(handheld)  # the checks and the shift, then the handovers
        for method, task_id, kwargs in steps:
            getattr(handheld, method)(task_id, **kwargs)
            try:
                handheld.sync()
            except ConnectionError:
                time.sleep(0.1)  # the server is down: the op waits in the queue
            if not killer.done.is_set():
                time.sleep(rng.uniform(0.0, 0.2))
        while True:
            try:
                handheld.sync()
                if killer.done.is_set() and handheld.pending() == 0:
                    return
            except ConnectionError:
                pass
            time.sleep(0.2)
    except Exception as exc:  # re-raised in the test's thread
        errors.append((seed, exc))
    finally:
        handheld.close()


def test_a_day_of_handovers_survives_sigkills_of_the_server(app, client, make, database_url, templates, tmp_path):
    """Several handhelds work a day of handovers while gunicorn's process group is SIGKILLed and restarted:
    every acknowledged op is there once, applied once, the COD ledger matches the payments to the fen, every
    device converges, and the database passes its integrity check."""
    rng = random.Random(13)
    _CountingTransport.cut = 0
    couriers, plans, stores = [], [], []
    for n in range(DAY_COURIERS):
        courier, code = _enrolled_courier(client, make)
        tasks = [make.task(courier=courier, cod_amount=rng.randrange(0, 50_000)) for _ in range(DAY_TASKS)]
        couriers.append((courier, code))
        plans.append(_plan(tasks, rng))
        stores.append(str(tmp_path / f"hh{n}.sqlite3"))
    db.session.remove()  # SQLite: the test holds no transaction while the server writes
    server = ServerProcess(database_url, workers=2, attachments_dir=str(tmp_path / "att"),
                           log_path=str(tmp_path / "gunicorn.log")).start()
    killer = _Killer(server, DAY_KILLS, random.Random(7))
    killing = threading.Thread(target=killer.run, daemon=True)
    errors: list = []
    try:
        for (_, code), store in zip(couriers, stores, strict=True):
            enrolling = Handheld(store, HttpTransport(server.base_url, timeout=15))
            enrolling.enroll(code, "PDA")
            enrolling.close()
        # Daemons: a handheld stuck for good fails the test below instead of hanging pytest at exit.
        workers = [threading.Thread(target=_work_the_day, args=(store, server.base_url, plan, killer, n, errors),
                                    daemon=True) for n, (store, plan) in enumerate(zip(stores, plans, strict=True))]
        killing.start()
        for worker in workers:
            worker.start()
        killing.join(60 + DAY_KILLS * 30)
        for worker in workers:
            worker.join(300)
        assert not killer.error, killer.error
        assert not errors, errors
        assert killer.kills == DAY_KILLS and not any(w.is_alive() for w in workers)
        handhelds = [Handheld(store, HttpTransport(server.base_url, timeout=15), sleep=lambda s: None)
                     for store in stores]
        for handheld in handhelds:
            handheld.sync()  # after the last kill: pushes nothing, pull verifies the scope checksum
            assert handheld.pending() == 0
    finally:
        killer.halt.set()
        if killing.is_alive():
            killing.join(90)
        server.stop()
    ops, paid = _check_the_day(couriers, plans, handhelds)
    _check_integrity()
    print(f"\n{db.engine.dialect.name}: {killer.kills} SIGKILLs, {_CountingTransport.cut} requests cut off, "
          f"{ops} ops, {paid[0]} payments ({paid[1]} fen), {len(handhelds)} handhelds converged")
    for handheld in handhelds:
        handheld.close()


def _check_the_day(couriers: list, plans: list, handhelds: list[Handheld]) -> tuple[int, tuple[int, int]]:
    """Every acknowledged op once in the op log and applied once; the ledger; converged devices.

    Returns how many ops, and (payments, fen).
    """
    db.session.expire_all()
    paid_total = payment_count = op_count = 0
    for (courier, _), plan, handheld in zip(couriers, plans, handhelds, strict=True):
        queued = handheld.db.execute("SELECT seq, op_id, type, payload, state FROM queue ORDER BY seq").fetchall()
        assert [row[2] for row in queued[:3]] == ["checklist.submit", "checklist.submit", "shift.start"]
        assert len(queued) == 3 + len(plan) and {row[4] for row in queued} == {"done"}
        logged = {row.seq: row for row in db.session.scalars(select(OpLog).where(
            OpLog.device_id == handheld.device_id, OpLog.in_sequence.is_(True)))}
        assert sorted(logged) == [row[0] for row in queued]  # each acknowledged op once, none more
        for seq, op_id, op_type, _, _ in queued:
            assert (logged[seq].op_id, logged[seq].type, logged[seq].status) == (op_id, op_type, "applied"), \
                (seq, logged[seq].result)
        for result in handheld.results().values():
            assert result is None or result["status"] == "applied", result
        # Applied once: one handover step and at most one ledger entry per op; all of it in the shift.
        op_ids = [row[1] for row in queued[3:]]
        assert db.session.scalars(select(Violation.code).where(Violation.courier_id == courier["id"])).all() == []
        steps = dict(db.session.execute(select(HandoverStep.op_id, func.count()).where(
            HandoverStep.op_id.in_(op_ids)).group_by(HandoverStep.op_id)).all())
        assert steps == dict.fromkeys(op_ids, 1)
        payments = {row[1]: json.loads(row[3])["amount"] for row in queued if row[2] == "pod.collect_payment"}
        entries = db.session.execute(select(LedgerEntry.op_id, LedgerEntry.amount).where(
            LedgerEntry.courier_id == courier["id"], LedgerEntry.kind == "payment")).all()
        assert sorted(entries) == sorted(payments.items())
        paid = sum(payments.values())
        days = {entry.day for entry in db.session.scalars(select(LedgerEntry).where(
            LedgerEntry.courier_id == courier["id"]))}
        booked = sum(ledger.cash(courier_id=courier["id"], day=day)["collected"]
                     + ledger.cash(courier_id=courier["id"], day=day)["collected_qr"] for day in days)
        assert booked == paid  # to the fen
        paid_total += paid
        payment_count += len(payments)
        op_count += len(queued)
        # Converged: the handheld holds each of its tasks as the server has it, finished.
        for task_id in {step[1] for step in plan}:
            held, task = handheld.task(task_id), db.session.get(Task, task_id)
            assert (held["version"], held["status"]) == (task.version, task.status)
            assert task.status in ("delivered", "refused")
        refused = [step[1] for step in plan if step[0] == "refuse"]
        returns = db.session.scalar(select(func.count()).select_from(Task).where(Task.return_of_id.in_(refused)))
        assert returns == len(refused)
    assert db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == "payment")) == paid_total
    db.session.remove()
    return op_count, (payment_count, paid_total)


def _check_integrity() -> None:
    """SQLite's integrity and foreign-key checks; PostgreSQL's amcheck over every B-tree index, and the op log
    consistent with each device's last_seq."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        else:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
            indexes = conn.exec_driver_sql(
                "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE a.amname = 'btree' AND n.nspname = 'public' AND i.indisvalid").scalars().all()
            assert indexes
            for oid in indexes:
                conn.exec_driver_sql(f"SELECT bt_index_check({int(oid)}, true)")
            conn.commit()
        gaps = conn.exec_driver_sql(
            "SELECT d.id FROM devices d LEFT JOIN op_log o ON o.device_id = d.id AND o.in_sequence "
            "GROUP BY d.id, d.last_seq HAVING d.last_seq != count(o.id) OR d.last_seq != coalesce(max(o.seq), 0)"
        ).all()
        assert gaps == []


def test_a_worker_dying_between_commit_and_answer_gets_the_stored_results_on_retry(app, client, make, courier,
                                                                                database_url, templates, tmp_path):
    """The push commits, its worker dies before answering (the fault hook): the handheld's retry is answered
    with the stored results, marked duplicate, and nothing happens a second time (one payment, one step each)."""
    task = make.task(courier=courier, cod_amount=4990)
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    db.session.remove()
    trigger = tmp_path / "exit-after-push-commit"
    server = ServerProcess(database_url, workers=2, attachments_dir=str(tmp_path / "att"),
                           log_path=str(tmp_path / "gunicorn.log"),
                           env={"FIELDOPS_FAULT_EXIT_AFTER_PUSH_COMMIT": str(trigger)}).start()
    try:
        transport = _CountingTransport(server.base_url, timeout=15)
        _CountingTransport.cut = 0
        handheld = Handheld(str(tmp_path / "hh.sqlite3"), transport, sleep=lambda s: time.sleep(min(s, 0.5)))
        handheld.enroll(code, "PDA")
        handheld.pull()
        begin_day(handheld)  # seqs 1-3: the checks and shift.start, pushed with the handover
        due = handheld.task(task["id"])["amount_due"]
        steps = _plan([task], random.Random(2))  # seed 2 draws a delivery, not a refusal
        assert [step[0] for step in steps] == ["verify_recipient", "inspect", "collect_payment", "sign"]
        assert steps[2][2]["amount"] == due
        for method, task_id, kwargs in steps:
            getattr(handheld, method)(task_id, **kwargs)
        trigger.touch()
        handheld.push()
        assert not trigger.exists() and _CountingTransport.cut == 1  # one push was cut off after its commit
        results = handheld.results()
        assert [(r["status"], r.get("duplicate")) for r in results.values()] == [("applied", True)] * 7, results
        handheld.pull()
        assert handheld.task(task["id"])["status"] == "delivered"
        handheld.close()
    finally:
        server.stop()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 7
    assert db.session.scalar(select(func.count()).select_from(HandoverStep)) == 4
    assert db.session.execute(select(LedgerEntry.kind, LedgerEntry.amount)).all() == [("payment", due)]


def test_an_answer_cut_off_half_way_is_a_network_failure_for_the_handheld():
    """A server that dies while sending its answer (fewer bytes than Content-Length) leaves the client a
    ConnectionError it retries, not an IncompleteRead that ends its sync (found by the day-of-handovers test)."""
    import socket


    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def serve_half_answers():
        for status in (200, 503):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                             '{"results": ['.encode())

    serving = threading.Thread(target=serve_half_answers, daemon=True)
    serving.start()
    transport = HttpTransport(f"http://127.0.0.1:{port}/api/v1", timeout=10)
    try:
        for _ in range(2):
            try:
                transport.request("POST", "/sync/push", headers={}, body=b"{}")
            except ConnectionError:
                continue
            raise AssertionError("a cut-off answer was taken for a reply")
    finally:
        serving.join(10)
        listener.close()
