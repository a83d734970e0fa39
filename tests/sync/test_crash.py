"""A real gunicorn (several workers) is SIGKILLed during pushes; the client resumes; nothing is lost or doubled."""
import os
import random
import threading
import time

from sqlalchemy import func, select

from server.extensions import db
from server.models import OpLog, TaskEvent
from server.process import ServerProcess
from sync.client import Handheld, HttpTransport
from tests.sync.conftest import at_once, fresh_pushes

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
        failure: list = []

        def pushing():
            pusher_client = Handheld(store, HttpTransport(server.base_url, timeout=10), batch_size=10,
                                     max_attempts=2, sleep=lambda s: None, rng=random.Random(5))
            try:
                pusher_client.push()
            except ConnectionError as exc:
                failure.append(exc)
            finally:
                pusher_client.close()

        pusher = threading.Thread(target=pushing)
        pusher.start()
        deadline = time.monotonic() + 60
        while handheld_done(store) < OPS // 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill()
        pusher.join(60)
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
