"""A busy database is transient: 503 with Retry-After over HTTP, a stop to retry in a push; never a 500."""
import contextlib
import itertools
import threading
import time

from sqlalchemy import func, select, text

from server.extensions import db
from server.models import AuditEntry, OpLog

WAIT_MS = 300  # how long a writer waits for a lock in these tests


@contextlib.contextmanager
def _short_waits(app):
    """Writers give up after WAIT_MS: SQLite's writer queue, PostgreSQL's lock_timeout (restored after)."""
    if db.engine.dialect.name == "sqlite":
        app.config["SQLITE_BUSY_TIMEOUT_MS"] = WAIT_MS  # the app fixture restores its config
        yield
        return
    with db.engine.connect() as conn:
        name = conn.scalar(text("SELECT current_database()"))
        conn.execute(text(f'ALTER DATABASE "{name}" SET lock_timeout = {WAIT_MS}'))
        conn.commit()
    db.engine.dispose()  # new connections take the setting
    try:
        yield
    finally:
        with db.engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET lock_timeout'))
            conn.commit()
        db.engine.dispose()


@contextlib.contextmanager
def _writer_held(device_id: str):
    """Another connection holds what writers need: SQLite's write lock; on PostgreSQL the device row
    (every push locks it first) and the tasks table against writes."""
    conn = db.engine.connect()
    try:
        conn.begin()
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT id FROM devices WHERE id = :id FOR UPDATE"), {"id": device_id})
            conn.execute(text("LOCK TABLE tasks IN SHARE MODE"))
        yield
    finally:
        conn.rollback()
        conn.close()


def test_busy_database_is_a_503_and_a_push_stop_then_the_retry_completes(app, make, courier, device):
    """While another connection holds the writer longer than a writer waits, a push answers a transient
    stop (busy, nothing applied) and a dispatch write 503 with Retry-After; once it lets go, both go through."""
    task = make.task(courier=courier)
    first = device.push([device.op("task.note", task["id"], {"text": "before"})])
    assert first["last_seq"] == 1
    ops = [device.op("task.note", task["id"], {"text": "during"}),
           device.op("stop.arrive", task["id"], {"lat": 31.2, "lon": 121.4})]
    with _short_waits(app):
        with _writer_held(device.id):
            started = time.monotonic()
            body = device.push(ops)
            created = make.client.post("/api/v1/dispatch/tasks", json=make.task_spec(),
                                       headers=make.headers("dispatcher"))
            waited = time.monotonic() - started
        assert body["results"] == [] and body["stopped_at"] == 2 and body["last_seq"] == 1
        assert body["stop_code"] == "busy" and body["retry_after"] > 0
        assert created.status_code == 503, created.json
        assert created.json["code"] == "database_busy" and int(created.headers["Retry-After"]) > 0
        assert created.mimetype == "application/problem+json"
        assert waited < 10  # each gave up after the short wait, not the default 10 s
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(OpLog)) == 1
        again = device.push(ops)
        assert [r["status"] for r in again["results"]] == ["applied", "applied"] and again["last_seq"] == 3
        retried = make.client.post("/api/v1/dispatch/tasks", json=make.task_spec(),
                                   headers=make.headers("dispatcher"))
        assert retried.status_code == 201



def test_a_large_import_and_pushes_at_once_both_go_through(app, make, courier, device):
    """An all-or-nothing import holds the writer only while it writes: pushes made meanwhile wait
    (or stop, busy) and never fail; every imported task is audited."""
    task = make.task(courier=courier)
    specs = [make.task_spec() for _ in range(800)]
    headers = make.headers("dispatcher")

    def run_import():
        with app.app_context():
            return app.test_client().post("/api/v1/dispatch/tasks/import", json=specs, headers=headers)

    importing = threading.Thread(target=lambda: answers.append(run_import()))
    answers: list = []
    importing.start()
    pushed = []
    while importing.is_alive() or not pushed:
        pushed.append(device.push([device.op("task.note", task["id"], {"text": f"n{len(pushed)}"})]))
        if pushed[-1].get("stopped_at"):
            device._seq = itertools.count(pushed[-1]["stopped_at"])
    importing.join()
    assert answers[0].status_code == 201, answers[0].json
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "task.import")) == 800
    applied = [r for body in pushed for r in body["results"] if r["status"] == "applied"]
    assert len(applied) == pushed[-1]["last_seq"] > 0


def test_the_reference_client_rides_out_a_busy_database(app, make, courier, tmp_path):
    """The handheld's own loop: a busy stop, a back-off (the writer lets go meanwhile), a resend that applies
    every op once; the queue ends empty."""
    from tests.sync.test_client import _enroll
    from tests.sync.transport import FlaskTransport

    task = make.task(courier=courier)
    naps: list[float] = []
    with _short_waits(app), contextlib.ExitStack() as holding:
        def nap(seconds: float) -> None:
            naps.append(seconds)
            holding.close()  # the other writer finishes while the handheld waits

        handheld = _enroll(make.client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
        handheld.sleep = nap
        handheld.pull()
        for n in range(3):
            handheld.queue("task.note", task["id"], {"text": f"busy {n}"})
        db.session.remove()
        holding.enter_context(_writer_held(handheld.device_id))
        assert handheld.push() == 3
        assert len(naps) == 1 and naps[0] > 0  # one stop, waited out, then through
        assert handheld.pending() == 0
        assert [r["status"] for r in handheld.results().values()] == ["applied"] * 3
        handheld.close()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 3
