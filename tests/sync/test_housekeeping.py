"""The housekeeping jobs do what they say, and a second run changes nothing."""
import hashlib
import os
from datetime import timedelta

from sqlalchemy import func, select, update

from server import jobs
from server.clock import utcnow
from server.extensions import db
from server.models import Attachment, Change, OpLog, Task
from tests.sync.test_push import PNG


def _count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_sync_maintain_tombstones_compacts_and_repairs_once(app, device, make, courier):
    """Yesterday's finished task is fed once, old changes go, a stale doc is rewritten; then nothing."""
    done, kept = make.task(courier=courier), make.task(courier=courier)
    from sync import docs
    docs.rebuild(db.session, app.extensions["fieldops_sync"])  # reference data kept between tests (the fee codes)
    db.session.commit()
    _, cursor, _ = device.pull_all()
    yesterday = utcnow() - timedelta(days=1)
    db.session.execute(update(Task).where(Task.id == done["id"]).values(status="delivered", finished_at=yesterday))
    db.session.execute(update(Change).where(Change.entity_id == done["id"]).values(at=yesterday))
    old = db.session.scalar(select(func.min(Change.position)))
    db.session.execute(update(Change).where(Change.position == old).values(at=utcnow() - timedelta(days=31)))
    # A write that bypassed the ORM raised the version but left the doc behind.
    db.session.execute(update(Task).where(Task.id == kept["id"]).values(version=Task.version + 1))
    db.session.commit()
    first = jobs.run("sync-maintain")
    assert first == {"tombstones": 1, "compacted": 1, "docs": 1}
    page = device.pull(cursor)
    assert [(c["id"], c["deleted"]) for c in page["changes"]] == [(done["id"], True)]
    changes = _count(Change)
    assert jobs.run("sync-maintain") == {"tombstones": 0, "compacted": 0, "docs": 0}
    assert _count(Change) == changes and device.pull(page["cursor"])["changes"] == []


def test_archived_results_still_answer_a_replay_once(app, device, make, courier):
    """Past the retention a result loses its entity; a replay is a duplicate and is not applied again."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": "ring twice"}),
           device.op("task.note", task["id"], {"text": "gate code 1234"})]
    applied = device.push(ops)["results"]
    assert applied[0]["entity"]["id"] == task["id"]
    fresh = device.op("task.note", task["id"], {"text": "still recent"})
    device.push([fresh])
    db.session.execute(update(OpLog).where(OpLog.seq <= 2).values(received_at=utcnow() - timedelta(days=31)))
    db.session.commit()
    assert jobs.run("op-results-archive") == {"archived": 2}
    assert jobs.run("op-results-archive") == {"archived": 0}
    db.session.rollback()
    stored = {row.seq: row for row in db.session.scalars(select(OpLog))}
    assert stored[1].result_archived_at is not None and stored[3].result_archived_at is None
    assert stored[3].result["entity"]["id"] == task["id"]
    assert stored[1].payload["text"] == "ring twice" and stored[1].status == "applied"  # the audit trail stays
    version = db.session.get(Task, task["id"]).version
    replay = device.push(ops)
    assert [(r["seq"], r["status"], r["duplicate"], r["archived"], r["entity"]) for r in replay["results"]] == [
        (1, "applied", True, True, None), (2, "applied", True, True, None)]
    assert replay["last_seq"] == 3
    db.session.rollback()
    assert db.session.get(Task, task["id"]).version == version
    notes = client_notes(make, task["id"])
    assert sorted(notes) == ["gate code 1234", "ring twice", "still recent"]
    reused = device.op("task.note", task["id"], {"text": "something else"}, seq=1)
    assert device.push([reused])["results"][0]["code"] == "seq_reused"


def client_notes(make, task_id: str) -> list[str]:
    """The task's notes as dispatch sees them."""
    response = make.client.get(f"/api/v1/dispatch/tasks/{task_id}", headers=make.headers("dispatcher"))
    return [e["text"] for e in response.json["history"] if e["kind"] == "note"]


def _upload(client, device, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/attachments/{sha}", data=data, headers=device.headers).status_code == 201
    return sha


def test_attachments_gc_deletes_only_old_unnamed_uploads(app, client, device, make, courier):
    """Old and unnamed: row and file go. Named by an op (even a rejected one), a note or young: kept."""
    task = make.task(courier=courier)
    other = make.task(courier=make.courier())
    named, orphan, rejected, young, by_staff = (
        _upload(client, device, PNG + bytes([i])) for i in range(5))
    device.push([device.op("task.note", task["id"], {"text": "photo", "photos": [named]}),
                 device.op("task.note", other["id"], {"text": "not mine", "photos": [rejected]})])
    note = client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "see", "photos": [by_staff]},
                       headers=make.headers("dispatcher"))
    assert note.status_code in (200, 201), note.json
    assert db.session.scalar(select(OpLog.status).where(OpLog.seq == 2)) == "rejected"
    db.session.execute(update(Attachment).where(Attachment.sha256 != young)
                       .values(created_at=utcnow() - timedelta(hours=49)))
    db.session.commit()
    folder = app.config["ATTACHMENTS_DIR"]
    assert os.path.exists(os.path.join(folder, orphan[:2], orphan))
    assert jobs.run("attachments-gc") == {"deleted": 1, "kept": 3}
    assert not os.path.exists(os.path.join(folder, orphan[:2], orphan))
    assert not os.path.exists(os.path.join(folder, orphan[:2], orphan + ".gc"))
    assert client.head(f"/api/v1/attachments/{orphan}", headers=device.headers).status_code == 404
    for sha in (named, rejected, young, by_staff):
        assert client.head(f"/api/v1/attachments/{sha}", headers=device.headers).status_code == 200
        assert os.path.exists(os.path.join(folder, sha[:2], sha))
    assert jobs.run("attachments-gc") == {"deleted": 0, "kept": 0}
    # The orphan's bytes come back as a fresh upload (content-addressed), and an op can name them again.
    assert _upload(client, device, PNG + bytes([1])) == orphan
    later = device.push([device.op("task.note", task["id"], {"text": "again", "photos": [orphan]})])
    assert later["results"][0]["status"] == "applied"
    db.session.execute(update(Attachment).where(Attachment.sha256.in_([young, orphan]))
                       .values(created_at=utcnow() - timedelta(hours=49)))
    db.session.commit()
    assert jobs.run("attachments-gc") == {"deleted": 1, "kept": 1}  # young was never named; the orphan now is
    assert _count(Attachment) == 4
