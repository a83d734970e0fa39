"""PostgreSQL connections dropped under a real gunicorn: a transient answer, a retry that completes, a pool that
recovers by itself (pool_pre_ping)."""
import threading
import time

import pytest
from sqlalchemy import func, select, text

from server.extensions import db
from server.models import OpLog, TaskEvent
from server.process import ServerProcess
from sync.client import Handheld, HttpTransport


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
