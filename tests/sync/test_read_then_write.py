"""SQLite's read-then-write push: decided in a read transaction, written under the write lock only if
every read still returns the same rows; otherwise decided again under the lock (server.database)."""
import threading
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

import sync.push
from server.database import begin_reading, begin_writing, end_reading, reads_unchanged
from server.extensions import db
from server.models import Appointment, OpLog, Violation
from tests.sync.conftest import SHANGHAI, morning_task
from tests.sync.test_handover import due, inspect_ok, sign, upload, verify

HERE = {"lat": 31.23, "lon": 121.47}


@pytest.fixture(autouse=True)
def _sqlite_only(app):
    """PostgreSQL locks rows, not the database: its push has no read phase."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("read-then-write is SQLite's (its one write lock); PostgreSQL locks rows")


def _phases(outcome: str) -> float:
    """The read-phase counter for an outcome."""
    return REGISTRY.get_sample_value("fieldops_sync_push_read_phases_total", {"outcome": outcome}) or 0.0


def _in_another_request(work) -> None:
    """Run work() as another request would: its own thread, context and connection."""
    failure = []

    def run():
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failure.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and not failure, failure


def _between_phases(monkeypatch, work) -> list:
    """Run work() once, after the next push has decided its batch and before it takes the write lock."""
    calls = []
    original = sync.push.begin_writing

    def hooked(session):
        if not calls:
            calls.append(1)
            _in_another_request(work)
        return original(session)
    monkeypatch.setattr(sync.push, "begin_writing", hooked)
    return calls


def test_a_plain_batch_is_decided_before_the_lock_and_stands(device, make, courier):
    """Nothing changed between reading and writing: the decisions are written as taken."""
    task = make.task(courier=courier)
    stood = _phases("stood")
    body = device.push([device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                        device.op("task.note", task["id"], {"text": "gate code 1234"})])
    assert [r["status"] for r in body["results"]] == ["applied", "applied"] and body["last_seq"] == 2
    assert _phases("stood") == stood + 1
    db.session.expire_all()
    assert db.session.scalar(select(Appointment.status).where(Appointment.task_id == task["id"])) == "confirmed"


def test_dispatch_cancelling_between_reading_and_writing_is_seen(monkeypatch, device, make, courier, client):
    """The read phase saw the task open and agreed the window; dispatch cancelled it before the write
    lock was taken. The reads no longer match: the batch is decided again under the lock, task_closed."""
    task = make.task(courier=courier)
    changed = _phases("read_changed")
    calls = _between_phases(monkeypatch, lambda: client.post(
        f"/api/v1/dispatch/tasks/{task['id']}/cancel", json={"reason": "customer cancelled"},
        headers=make.headers("dispatcher")).status_code == 200 or pytest.fail("cancel failed"))
    body = device.push([device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"})])
    assert calls == [1]
    [result] = body["results"]
    assert (result["status"], result["code"]) == ("rejected", "task_closed"), result
    assert _phases("read_changed") == changed + 1
    db.session.expire_all()
    assert db.session.scalar(select(Appointment.status).where(Appointment.task_id == task["id"])) == "unconfirmed"
    assert db.session.scalar(select(OpLog.status).where(OpLog.op_id == result["op_id"])) == "rejected"


def test_a_retry_racing_the_original_replays_it_after_the_read_phase(monkeypatch, device, make, courier):
    """The same batch is committed by another request while this one reads: last_seq moved, so this one is
    decided again under the lock and answers the stored results as duplicates, applying nothing twice."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": "first"}), device.op("task.note", task["id"], {"text": "2nd"})]
    other = type(device)(device.client, {"device_id": device.id, "token": device.headers["Authorization"][7:]})
    _between_phases(monkeypatch, lambda: other.push(ops))
    body = device.push(ops)
    assert [r.get("duplicate") for r in body["results"]] == [True, True] and body["last_seq"] == 2
    assert db.session.scalar(select(func.count()).select_from(OpLog).where(OpLog.device_id == device.id)) == 2


def test_a_rule_that_writes_at_once_is_decided_again_under_the_lock(device, make, courier, server_clock, on_shift):
    """A violation is inserted when the rule finds it (one per task, even from two hosts): query_only
    refuses it in the read phase, and the batch is decided under the lock, recording it once."""
    task = morning_task(make, courier, server_clock)
    early = _phases("wrote_early")
    start = datetime.fromisoformat(task["window"]["start"])
    confirm = dict(device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"}),
                   device_time=(start - timedelta(minutes=30)).astimezone(SHANGHAI).isoformat())
    contact = dict(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}),
                   device_time=(start + timedelta(minutes=30)).astimezone(SHANGHAI).isoformat())
    late = datetime.fromisoformat(task["window"]["end"]) + timedelta(minutes=40)
    arrive = dict(device.op("stop.arrive", task["id"], HERE), device_time=late.astimezone(SHANGHAI).isoformat())
    body = device.push([confirm, contact, arrive])
    assert [r["status"] for r in body["results"]] == ["applied"] * 3, body
    assert _phases("wrote_early") == early + 1, {o: _phases(o) for o in ("stood", "read_changed", "wrote_early")}
    db.session.expire_all()
    assert [v.code for v in db.session.scalars(select(Violation).where(Violation.task_id == task["id"]))] \
        == ["late_without_notice"]


def test_the_write_guard_never_outlives_its_read_phase(app, device, make, courier):
    """A read phase refuses writes; once its connection is back in the pool, writes work again."""
    make.task(courier=courier)  # the schema and a row to read
    token = begin_reading(db.session)
    dbapi_connection = db.session.connection().connection.dbapi_connection
    try:
        assert dbapi_connection.execute("PRAGMA query_only").fetchone()[0] == 1
        with pytest.raises(OperationalError, match="readonly"):
            db.session.execute(text("UPDATE couriers SET name = name"))
    finally:
        end_reading(token)
        db.session.rollback()
    assert dbapi_connection.execute("PRAGMA query_only").fetchone()[0] == 0
    db.session.execute(text("UPDATE couriers SET name = name"))
    db.session.commit()


def test_validation_sees_a_changed_row_and_a_new_one(app, make):
    """Every SELECT of the read phase is run again under the lock: a changed row, or a row that would now
    match (a phantom), is a difference; the same rows are none."""
    make.task()

    def read_then_check(change=None) -> bool:
        token = begin_reading(db.session)
        try:
            db.session.execute(text("SELECT code, name FROM fee_codes WHERE active = 1 ORDER BY code")).all()
        finally:
            reads = end_reading(token)
        assert len(reads) == 1
        if change:
            _in_another_request(change)
        begin_writing(db.session)
        try:
            return reads_unchanged(db.session, reads)
        finally:
            db.session.rollback()

    def write(sql):
        def run():
            with app.app_context(), db.engine.begin() as conn:
                conn.execute(text(sql))
        return run

    first = db.session.execute(text("SELECT code, name FROM fee_codes WHERE active = 1 ORDER BY code")).first()
    db.session.rollback()
    try:
        assert read_then_check() is True
        assert read_then_check(write(f"UPDATE fee_codes SET name = name || '!' WHERE code = '{first.code}'")) is False
        assert read_then_check(write("INSERT INTO fee_codes (code, name, active) VALUES ('rtw_test', 'x', 1)")) is False
        assert read_then_check(write("UPDATE fee_codes SET name = 'y' WHERE code = 'nobody'")) is True
    finally:  # fee_codes is kept between tests (tests/conftest.py): put it back
        write("DELETE FROM fee_codes WHERE code = 'rtw_test'")()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE fee_codes SET name = :name WHERE code = :code"), dict(first._mapping))


def test_without_read_then_write_the_batch_is_decided_under_the_lock(app, device, make, courier):
    """PUSH_READ_THEN_WRITE off (PostgreSQL's way on SQLite): no read phase, the same outcome."""
    app.config["PUSH_READ_THEN_WRITE"] = False  # the app fixture restores its config
    task = make.task(courier=courier)
    counts = {o: _phases(o) for o in ("stood", "read_changed", "wrote_early")}
    body = device.push([device.op("appointment.confirm", task["id"], {"window": task["window"], "via": "phone"})])
    assert body["results"][0]["status"] == "applied"
    assert {o: _phases(o) for o in counts} == counts


def test_a_courier_renamed_between_the_phases_is_seen_by_the_redo(monkeypatch, device, make, courier, client,
                                                                  on_shift):
    """The read phase found the signer someone other than the courier; dispatch renamed the courier to the
    signer's name before the lock. The redo must read the name again, not the one the read phase kept."""
    task, first = make.task(courier=courier), make.task(courier=courier)
    signature = upload(device)
    device.push([device.op("pod.verify_recipient", first["id"], verify()),  # publishes the receipt key: no
                 device.op("pod.inspect", first["id"], inspect_ok(first)),   # write in the read phase below
                 device.op("pod.collect_payment", first["id"], {"amount": due(first), "method": "cash"}),
                 device.op("pod.sign", first["id"], sign(signature))])
    calls = _between_phases(monkeypatch, lambda: client.patch(
        f"/api/v1/dispatch/couriers/{courier['id']}", json={"name": "Wang Fang"},
        headers=make.headers("dispatcher")).status_code == 200 or pytest.fail("rename failed"))
    changed = _phases("read_changed")
    body = device.push([device.op("pod.verify_recipient", task["id"], verify()),
                        device.op("pod.inspect", task["id"], inspect_ok(task)),
                        device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                        device.op("pod.sign", task["id"], sign(signature, signer_name="Wang Fang"))])
    assert calls == [1] and _phases("read_changed") == changed + 1
    assert [(r["status"], r["code"]) for r in body["results"]] == [("applied", None)] * 3 + [
        ("rejected", "courier_cannot_sign")]
