"""The reference handheld: full flow, lost answers, crashes, attachments, drift, backlog."""
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from server.errors import Conflict
from server.extensions import db
from server.models import OpLog, TaskEvent
from sync import push as push_engine
from sync.client import Handheld, SyncFailed
from tests.sync.transport import FlaskTransport
from tools.fleet import FlakyTransport

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _enroll(client, make, courier, path, transport, **kw) -> Handheld:
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    handheld = Handheld(str(path), transport, sleep=lambda s: None, rng=random.Random(1), **kw)
    handheld.enroll(code, "PDA")
    return handheld


def _events(kind: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(TaskEvent).where(
        TaskEvent.kind == kind, TaskEvent.actor_kind == "courier"))


def _in_sequence_seqs() -> list[int]:
    db.session.expire_all()
    return db.session.scalars(select(OpLog.seq).where(OpLog.in_sequence.is_(True)).order_by(OpLog.seq)).all()


def test_full_flow_enroll_pull_queue_sync(app, client, make, courier, tmp_path):
    """A day's basics: the tasks arrive, the courier's ops go up, the store matches the server."""
    tasks = [make.task(courier=courier) for _ in range(3)]
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.sync()
    assert {k[1] for k in handheld.entities() if k[0] == "task"} == {t["id"] for t in tasks}
    handheld.queue("stop.arrive", tasks[0]["id"], {"lat": 31.23, "lon": 121.47})
    photo = handheld.add_blob(PNG)
    handheld.queue("task.note", tasks[0]["id"], {"text": "left with guard", "photos": [photo]}, blobs=[photo])
    summary = handheld.sync()
    assert summary["pending"] == 0 and summary["last_seq"] == 2
    assert [r["status"] for r in handheld.results().values()] == ["applied", "applied"]
    local = handheld.entities()[("task", tasks[0]["id"])]
    assert local["data"]["status"] == "arrived" and local["data"]["notes"][0]["photos"] == [photo]
    assert handheld.checksum() == summary["scope"]


def test_lost_answers_and_dropped_requests_still_apply_once(app, client, make, courier, tmp_path):
    """Through a network that loses a third of the answers, every op lands exactly once."""
    task = make.task(courier=courier)
    flaky = FlakyTransport(FlaskTransport(app), random.Random(3), drop=0.3, lose=0.3)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app),
                       batch_size=7, max_attempts=50)
    handheld.transport = flaky
    handheld.sync()
    for i in range(60):
        handheld.queue("task.note", task["id"], {"text": f"n{i}"})
    handheld.sync()
    assert flaky.lost_answers > 0
    assert handheld.pending() == 0
    assert _in_sequence_seqs() == list(range(1, 61))
    assert _events("note") == 60


def test_crash_after_server_applied_resumes_without_doubling(app, client, make, courier, tmp_path):
    """The app dies after the server committed but before it recorded the answer; restart resends."""
    task = make.task(courier=courier)
    path = tmp_path / "hh.sqlite3"
    handheld = _enroll(client, make, courier, path, FlaskTransport(app), max_attempts=1)
    for i in range(5):
        handheld.queue("task.note", task["id"], {"text": f"n{i}"})
    handheld.transport = FlakyTransport(FlaskTransport(app), random.Random(0), drop=0, lose=1.0)
    with pytest.raises(ConnectionError):
        handheld.push()
    handheld.close()  # killed
    assert _events("note") == 5  # the server had applied them
    restarted = Handheld(str(path), FlaskTransport(app), sleep=lambda s: None)
    assert restarted.pending() == 5
    restarted.sync()
    assert restarted.pending() == 0 and _events("note") == 5
    assert all(r["duplicate"] for r in restarted.results().values())


def test_drift_is_detected_and_repaired(app, client, make, courier, tmp_path):
    """A local store that drifted (a restore, a bug) resyncs from no cursor."""
    make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    good = handheld.sync()["scope"]
    handheld.db.execute("UPDATE entities SET version = 99 WHERE entity = 'task'")
    handheld.db.execute("INSERT INTO entities VALUES ('task', 't-ghost', 1, '{}')")
    assert handheld.checksum() != good
    make.task(courier=courier)  # something new too, so the pull has a last page to check
    after = handheld.sync()["scope"]
    assert handheld.checksum() == after and after["count"] == good["count"] + 1
    assert ("task", "t-ghost") not in handheld.entities()


def test_server_restored_from_backup_gets_ops_again(app, client, make, courier, tmp_path):
    """If the server forgot ops (restore), the client resends them from expected_seq."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.pull()  # the device holds the task's version, so its notes are no conflicts
    for i in range(3):
        handheld.queue("task.note", task["id"], {"text": f"n{i}"})
    handheld.sync()
    from server.models import Device
    db.session.execute(db.delete(OpLog).where(OpLog.seq >= 2))
    db.session.get(Device, handheld.device_id).last_seq = 1
    db.session.commit()
    handheld.queue("task.note", task["id"], {"text": "n3"})
    handheld.sync()
    assert _in_sequence_seqs() == [1, 2, 3, 4]


def _push_failing_on(monkeypatch, calls: dict[int, Exception], applied_first: set[int]) -> list[int]:
    """Make the server's push raise on the given calls (after applying the batch on those in applied_first)."""
    real, seen = push_engine.push, []

    def push(**kwargs):
        seen.append(len(seen) + 1)
        if seen[-1] not in calls:
            return real(**kwargs)
        if seen[-1] in applied_first:
            real(**kwargs)
        raise calls[seen[-1]]
    monkeypatch.setattr(push_engine, "push", push)
    return seen


def test_concurrent_update_409_is_retried_with_backoff_and_applies_once(app, client, make, courier, tmp_path,
                                                                          monkeypatch):
    """A push answered 409 concurrent_update is retried like a 503, honouring Retry-After; ops land once."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app), batch_size=2)
    for i in range(5):
        handheld.queue("task.note", task["id"], {"text": f"n{i}"})
    sleeps: list[float] = []
    handheld.sleep = sleeps.append
    # Call 1 fails before anything is applied; call 3 fails after its batch was committed.
    stale = StaleDataError("row changed under us")
    seen = _push_failing_on(monkeypatch, {1: stale, 3: stale}, applied_first={3})
    assert handheld.push() == 5
    assert len(seen) == 5 and len(sleeps) == 2 and all(s >= 1 for s in sleeps)  # Retry-After: 1
    assert handheld.pending() == 0
    assert _in_sequence_seqs() == [1, 2, 3, 4, 5] and _events("note") == 5
    assert [r.get("duplicate", False) for r in handheld.results().values()] == [False, False, True, True, False]


def test_other_409s_are_not_retried(app, client, make, courier, tmp_path, monkeypatch):
    """Only concurrent_update is transient: any other 409 stops the push at once, ops stay queued."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.queue("task.note", task["id"], {"text": "n"})
    seen = _push_failing_on(monkeypatch, {1: Conflict("Already taken.", code="duplicate")}, applied_first=set())
    with pytest.raises(SyncFailed, match="409"):
        handheld.push()
    assert seen == [1] and handheld.pending() == 1 and _events("note") == 0


def test_an_upload_the_server_refuses_does_not_stall_the_queue(app, client, make, courier, tmp_path):
    """A signature refused for its content: the op still goes, is rejected, and later ops apply."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.sync()
    bad = handheld.add_blob(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    handheld.queue("task.note", task["id"], {"text": "signed", "photos": [bad]}, blobs=[bad])
    handheld.queue("task.note", task["id"], {"text": "after"})
    summary = handheld.sync()
    assert summary["pending"] == 0 and summary["last_seq"] == 2
    assert [(r["status"], r["code"]) for r in handheld.results().values()] == [
        ("rejected", "attachment_refused"), ("applied", None)]
    assert _events("note") == 1

