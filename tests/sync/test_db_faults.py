"""Database faults that heal by themselves: PostgreSQL connections dropped under a real gunicorn (a transient answer,
a retry that completes, a pool that recovers by itself, pool_pre_ping); a database that cannot write (reported as
such, not as busy; the next write after the fault goes through, no restart)."""
import contextlib
import threading
import time

import psycopg
import pytest
from sqlalchemy import event, func, select, text

from server.extensions import db
from server.models import OpLog, SyncState, TaskEvent
from server.process import ServerProcess
from sync.client import Handheld, HttpTransport
from tests.storage_faults import Unwritable


class _RecordingTransport(HttpTransport):
    """HTTP that keeps every answer's status and body, to see what the handheld was told."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replies: list[tuple[str, int, dict | None]] = []

    def request(self, method, path, **kwargs):
        """Send; remember (path, status, JSON body)."""
        reply = super().request(method, path, **kwargs)
        try:
            body = reply.json()
        except ValueError:
            body = None
        self.replies.append((path, reply.status, body))
        return reply


def _backend_waiting_on_a_lock(timeout: float = 20) -> int:
    """The pid of the server backend of this database that waits on a lock (the push in flight)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            pid = conn.scalar(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1"))
            conn.rollback()
            if pid:
                return pid
            time.sleep(0.02)
    raise AssertionError("no push ever waited on the lock")


def _terminate(where: str) -> int:
    """pg_terminate_backend for the server's backends matching where; how many were ended."""
    with db.engine.connect() as conn:
        ended = conn.execute(text("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}"))
        count = ended.scalar()
        conn.commit()
    return count


def test_a_connection_terminated_mid_push_is_a_stop_and_the_pool_recovers(app, client, make, courier, database_url,
                                                                          tmp_path, engine_name):
    """pg_terminate_backend on the backend a push waits in: the handheld hears a busy stop (never a 500), its
    retry applies the batch once; then every pooled connection is terminated and the next sync just works."""
    if engine_name != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's; SQLite's busy database: tests/sync/test_busy.py")
    task = make.task(courier=courier)
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    db.session.remove()
    server = ServerProcess(database_url, workers=1, attachments_dir=str(tmp_path / "att"),
                           log_path=str(tmp_path / "gunicorn.log")).start()
    naps: list[float] = []
    try:
        transport = _RecordingTransport(server.base_url, timeout=30)
        locker = db.engine.connect()  # holds the task: the push waits on it, in flight

        def nap(seconds: float) -> None:
            """The handheld backs off before resending: the lock goes now, so the retry gets through."""
            naps.append(seconds)
            if locker.in_transaction():
                locker.rollback()

        handheld = Handheld(str(tmp_path / "hh.sqlite3"), transport, sleep=nap)
        handheld.enroll(code, "PDA")
        handheld.pull()
        for n in range(3):
            handheld.queue("task.note", task["id"], {"text": f"note {n}"})
        locker.begin()
        locker.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task["id"]})
        ended: list = []

        def terminate_the_waiting_push():
            with app.app_context():
                ended.append(_terminate(f"pid = {int(_backend_waiting_on_a_lock())}"))

        terminating = threading.Thread(target=lambda: _guarded(terminate_the_waiting_push, ended))
        terminating.start()
        try:
            handheld.push()
        finally:
            terminating.join(30)
            if locker.in_transaction():
                locker.rollback()
            locker.close()
        assert ended == [1]
        pushes = [(status, body) for path, status, body in transport.replies if path == "/sync/push"]
        assert all(status == 200 for status, _ in pushes), pushes
        first, last = pushes[0][1], pushes[-1][1]
        assert (first["results"], first["stop_code"], first["stopped_at"]) == ([], "busy", 1)
        assert first["retry_after"] > 0 and naps
        assert [r["status"] for r in last["results"]] == ["applied"] * 3 and last["last_seq"] == 3
        assert handheld.pending() == 0

        # Every connection the worker's pool holds is dropped: it notices at checkout and reconnects.
        before = len(transport.replies)
        assert _terminate("application_name <> 'psql' AND backend_type = 'client backend'") >= 1
        handheld.queue("task.note", task["id"], {"text": "after"})
        handheld.sync()
        answered = transport.replies[before:]
        assert [status for _, status, _ in answered] == [200] * len(answered), answered
        assert handheld.pending() == 0
        handheld.close()
    finally:
        server.stop()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 4
    notes = db.session.scalar(select(func.count()).select_from(TaskEvent).where(TaskEvent.kind == "note"))
    assert notes == 4


def _guarded(work, errors: list) -> None:
    """Run work, keeping its exception for the test's thread."""
    try:
        work()
    except Exception as exc:  # re-raised by the test
        errors.append(exc)


@contextlib.contextmanager
def _database_unwritable(database_url: str):
    """The database refuses writes, for real, until the block ends.

    SQLite: its file is made unwritable (tests/storage_faults.py: `chattr +i` as root, whom permission
    bits do not stop). PostgreSQL: the database is frozen read-only, as managed services freeze one
    whose disk is full (`ALTER DATABASE ... SET default_transaction_read_only = on`): every session
    started meanwhile is read-only, and stays so after the database is thawed.
    """
    if db.engine.dialect.name == "sqlite":
        with Unwritable(db.engine.url.database):
            yield
        return
    with psycopg.connect(database_url, autocommit=True) as admin:  # a session begun writable: it thaws too
        name = admin.execute("SELECT current_database()").fetchone()[0]
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def test_a_database_that_cannot_write_says_so_and_heals_without_a_restart(app, client, make, courier, device,
                                                                         database_url):
    """While the database cannot write, a dispatch write answers 503 database_unavailable (not busy) with a longer
    Retry-After, a push stops with stop_code database_unavailable and applies nothing, reads are still served,
    and /readyz answers 503 naming the database; once the fault is gone the next write, push and /readyz succeed,
    with no restart and no pool reset.

    The pool is emptied when the fault begins, so its connections are opened during it, as a worker started
    or restarted then (gunicorn's max_requests, a pool growing under load) opens them. SQLite then opens the
    file read-only without a word; a PostgreSQL session takes the frozen default. Both used to stay so.
    """
    task = make.task(courier=courier)
    dispatcher = make.headers("dispatcher")
    assert device.push([device.op("task.note", task["id"], {"text": "before"})])["last_seq"] == 1
    ops = [device.op("task.note", task["id"], {"text": "during"})]
    try:
        with _database_unwritable(database_url):
            db.session.remove()
            db.engine.dispose()
            created = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
            stopped = device.push(ops)
            ready = client.get("/readyz")
            # Dispatch reads on: the pool keeps a connection opened during the fault after every failed write.
            listed = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=dispatcher)
        assert created.status_code == 503 and created.mimetype == "application/problem+json", created.json
        assert created.json["code"] == "database_unavailable" and created.headers["Retry-After"] == "30"
        assert (stopped["results"], stopped["stopped_at"], stopped["last_seq"]) == ([], 2, 1)
        assert stopped["stop_code"] == "database_unavailable" and stopped["retry_after"] == 30
        assert listed.status_code == 200 and listed.json["id"] == task["id"]
        assert ready.status_code == 503, ready.json
        assert (ready.json["database"], ready.json["migrations"], ready.json["storage"]) == ("unwritable", "head", "ok")
        assert ready.json["reasons"] == {"database": "its file cannot be written" if db.engine.dialect.name == "sqlite"
                                         else "it accepts reads only"}

        # The fault is over: the same process, the same pool (holding the connections opened during it).
        again = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
        assert again.status_code == 201, again.json
        pushed = device.push(ops)
        assert [r["status"] for r in pushed["results"]] == ["applied"] and pushed["last_seq"] == 2
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json["database"] == "ok", ready.json
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(OpLog)) == 2
        assert not db.session.scalar(select(func.count()).select_from(SyncState).where(SyncState.key.like("readyz%")))
    finally:  # a pool left unable to write fails this test alone, not the wipe of the tables after it
        db.session.remove()
        db.engine.dispose()


@contextlib.contextmanager
def _own_sqlite_app(path: str, attachments: str):
    """A new app on a new SQLite file at path, migrated, in its app context: (client, factory).

    No other connection of this process has ever opened that file. SQLite's unix VFS keeps a closed
    connection's descriptor for reuse while another connection of the process holds a lock on the same
    file, and a reused descriptor opened read-write before a fault bypasses it: on the session's shared
    file, what earlier tests left open decided whether the fault was seen.
    """
    from flask_migrate import upgrade

    from server import create_app
    from server.config import TestConfig
    from server.database import MIGRATIONS_DIR
    from tests.conftest import Factory

    app = create_app(TestConfig(f"sqlite:///{path}", attachments))
    with app.app_context():
        try:
            upgrade(directory=MIGRATIONS_DIR)
            client = app.test_client()
            yield client, Factory(client)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_a_connection_found_unable_to_write_only_at_its_first_write_is_discarded(engine_name, tmp_path):
    """The backstop: a connection that fails a write because it cannot write is closed, not pooled again.

    Staged: the file is unwritable when SQLite opens it (read-only, silently), and the fault ends just
    after, before the check that follows the open (a listener placed ahead of the app's own lifts it):
    the check finds the file writable, so only the failed write can tell. That write answers 503
    database_unavailable; the next one goes through on a fresh connection. On a file of its own (see
    _own_sqlite_app).
    """
    if engine_name != "sqlite":
        pytest.skip("PostgreSQL: a session's read-only default is read on the session itself (the test above)")
    with _own_sqlite_app(str(tmp_path / "fieldops.sqlite3"), str(tmp_path / "attachments")) as (client, make):
        dispatcher = make.headers("dispatcher")
        make.task()  # the token's use is stamped now: the staged request's first write is its own
        db.session.remove()
        db.engine.dispose()
        with Unwritable(db.engine.url.database) as fault:
            lift = lambda _dbapi_connection, _record: fault.end()  # noqa: E731 - a listener
            event.listen(db.engine, "connect", lift, insert=True)
            try:
                refused = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
            finally:
                event.remove(db.engine, "connect", lift)
        again = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
    assert refused.status_code == 503 and refused.json["code"] == "database_unavailable", refused.json
    assert again.status_code == 201, again.json


def test_a_writer_queue_that_cannot_be_opened_is_unavailable_not_a_500(app, client, make, engine_name):
    """SQLite: the writer queue's lock file beside the database unwritable too (a data folder whose permissions
    changed; made so as above): a new connection's first write answers 503 database_unavailable, where a
    PermissionError was a 500; once the file is writable again the next write goes through."""
    if engine_name != "sqlite":
        pytest.skip("the writer queue is SQLite's")
    dispatcher = make.headers("dispatcher")
    make.task()  # the token's use is stamped now: the request's first write is its own
    try:
        db.session.remove()
        db.engine.dispose()  # a new connection opens the lock file at its first write
        with Unwritable(db.engine.url.database + ".writelock"):
            refused = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
        again = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
    finally:
        db.session.remove()
        db.engine.dispose()
    assert refused.status_code == 503 and refused.json["code"] == "database_unavailable", refused.json
    assert refused.json["detail"].startswith("The database cannot take writes now (its file cannot be opened)")
    assert again.status_code == 201, again.json


def test_a_full_volume_is_unavailable_not_busy_and_heals(engine_name, tmp_path):
    """SQLite on a full volume (a 4 MiB tmpfs mounted for the test, the database migrated onto it, then every free
    byte taken): a write answers 503 database_unavailable naming the full volume, where it was database_busy; once
    space is given back the next write goes through, same app, same pool. The WAL is checkpointed and emptied
    before the volume fills, so the write needs new room (as it does whenever the WAL's reused space runs out)."""
    if engine_name != "sqlite":
        pytest.skip("PostgreSQL's disk is the server's; its frozen database: the test above")
    from tests.storage_faults import SmallVolume

    with SmallVolume(str(tmp_path / "volume"), size="4m") as volume, \
            _own_sqlite_app(f"{volume.path}/fieldops.sqlite3", str(tmp_path / "attachments")) as (client, make):
        dispatcher = make.headers("dispatcher")
        make.task()  # the token's use is stamped now: the request's first write is its own
        raw = db.engine.raw_connection()  # outside a transaction, as a checkpoint must be
        try:
            assert raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        finally:
            raw.close()
        volume.fill()
        refused = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
        volume.free()
        again = client.post("/api/v1/dispatch/tasks", json=make.task_spec(), headers=dispatcher)
    assert refused.status_code == 503 and refused.json["code"] == "database_unavailable", refused.json
    assert "its volume is full" in refused.json["detail"]
    assert again.status_code == 201, again.json
