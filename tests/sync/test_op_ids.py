"""One op id, one effect: an op resent under a new seq is answered from the first; another op under a taken
op_id is rejected op_id_reused; the unique index (device_id, op_id) holds it when the check is skipped."""
import re
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select

import sync.push
from schemas.vocab import PUSH_REJECTION_CODES
from server.database import MIGRATIONS_DIR
from server.extensions import db
from server.models import ContactAttempt, Handover, OpLog, TaskEvent
from tests.sync.test_handover import verify

HERE = {"lat": 31.23, "lon": 121.47}


def _fresh() -> None:
    db.session.rollback()
    db.session.expire_all()


def _notes(task_id: str) -> int:
    _fresh()
    return db.session.scalar(select(func.count()).select_from(TaskEvent).where(
        TaskEvent.task_id == task_id, TaskEvent.kind == "note"))


def _attempts() -> int:
    _fresh()
    return db.session.scalar(select(func.count()).select_from(ContactAttempt))


def _rows(device_id: str) -> list[tuple]:
    """The device's op log: (seq, status, code, in_sequence, holds_op_id), in order."""
    _fresh()
    return [(r.seq, r.status, r.code, r.in_sequence, r.holds_op_id) for r in db.session.scalars(
        select(OpLog).where(OpLog.device_id == device_id).order_by(OpLog.id))]


def renumbered(op: dict, seq: int) -> dict:
    """The same op under another seq: what a handheld that renumbered its queue after a crash sends."""
    return dict(op, seq=seq)


def test_ops_resent_under_the_next_seqs_after_a_crash_are_applied_once(device, make, courier):
    """A note and a contact attempt taken at seqs 1-2, resent as 3-4 by a handheld that lost its answers and
    renumbered its queue: each is answered with its first result, marked duplicate, and applied once. The
    queue moves on (last_seq 4); a retry of 3-4 is a plain duplicate; a new op after them is applied."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "gate code 1234"}, seq=1)
    contact = device.op("appointment.contact", task["id"], {"outcome": "no_answer"}, seq=2)
    first = device.push([note, contact])
    assert [r["status"] for r in first["results"]] == ["applied", "applied"]
    again = device.push([renumbered(note, 3), renumbered(contact, 4)])
    assert again["last_seq"] == 4
    assert [(r["seq"], r["op_id"], r.get("duplicate")) for r in again["results"]] == \
        [(3, note["op_id"], True), (4, contact["op_id"], True)]
    assert [dict(r, seq=None, duplicate=None) for r in again["results"]] == \
        [dict(r, seq=None, duplicate=None) for r in first["results"]]
    assert _notes(task["id"]) == 1 and _attempts() == 1
    assert device.push([renumbered(note, 3), renumbered(contact, 4)])["results"] == again["results"]
    later = device.op("task.note", task["id"], {"text": "left at the gate"}, seq=5)
    assert device.push([later])["results"][0]["status"] == "applied"
    assert _notes(task["id"]) == 2 and _attempts() == 1
    assert _rows(device.id) == [(1, "applied", None, True, True), (2, "applied", None, True, True),
                                (3, "duplicate", None, True, False), (4, "duplicate", None, True, False),
                                (5, "applied", None, True, True)]


def test_another_op_under_a_taken_op_id_is_rejected_op_id_reused_and_consumed(device, make, courier):
    """Same op_id, another payload, a new seq: rejected op_id_reused, its seq taken (the queue moves on),
    nothing applied; kept in the log holding no op_id. A retry of it is its own duplicate."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "first"}, seq=1)
    device.push([note])
    other = dict(note, seq=2, payload={"text": "something else"})
    body = device.push([other])
    [result] = body["results"]
    assert (result["status"], result["code"], result["seq"], body["last_seq"]) == ("rejected", "op_id_reused", 2, 2)
    assert "duplicate" not in result and result["entity"] is None
    assert _notes(task["id"]) == 1
    assert device.push([other])["results"] == [dict(result, duplicate=True)]
    assert device.push([device.op("task.note", task["id"], {"text": "next"}, seq=3)])["results"][0]["status"] \
        == "applied"
    assert _rows(device.id) == [(1, "applied", None, True, True), (2, "rejected", "op_id_reused", True, False),
                                (3, "applied", None, True, True)]


def test_a_pin_op_resent_is_told_apart_by_its_keyed_pin_digest(device, make, courier, client):
    """The fingerprint holds the PIN as a keyed digest: a wrong-PIN op resent under a new seq is a duplicate of
    its rejection (not a second wrong PIN counted against the limit); the same op_id with another PIN is
    op_id_reused."""
    task = make.task(courier=courier)
    pin = client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    wrong = device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=f"{(int(pin) + 1) % 10**6:06d}"),
                      seq=1)
    assert device.push([wrong])["results"][0]["code"] == "pin_mismatch"
    [again] = device.push([renumbered(wrong, 2)])["results"]
    assert (again["code"], again.get("duplicate")) == ("pin_mismatch", True)
    _fresh()
    assert db.session.scalar(select(Handover.pin_failures).where(Handover.task_id == task["id"])) == 1
    right = dict(wrong, seq=3, payload=verify(method="pin", pin=pin))
    assert device.push([right])["results"][0]["code"] == "op_id_reused"


def test_one_op_id_twice_in_one_batch(device, make, courier):
    """Decided in seq order as if pushed one by one: the same op again is the first's result (entity and all)
    as a duplicate; another op under it is op_id_reused. One note."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "once"}, seq=1)
    body = device.push([note, renumbered(note, 2), dict(note, seq=3, payload={"text": "twice"})])
    first, same, other = body["results"]
    assert first["status"] == "applied" and first["entity"]["data"]["notes"][0]["text"] == "once"
    assert same == dict(first, seq=2, duplicate=True)
    assert (other["status"], other["code"]) == ("rejected", "op_id_reused") and body["last_seq"] == 3
    assert _notes(task["id"]) == 1
    assert device.push([note, renumbered(note, 2), dict(note, seq=3, payload={"text": "twice"})])["results"] == \
        [dict(first, duplicate=True), same, dict(other, duplicate=True)]


def test_two_pushes_of_one_op_id_at_once_apply_it_once(monkeypatch, device, make, courier):
    """Push A takes the note at seq 1 and pauses before its commit; push B, sent meanwhile, carries another op at
    seq 1 and the same note at seq 2. B waits (PostgreSQL: the device row's lock; SQLite: the writer, then its
    read phase no longer stands), then finds seq 1 taken (seq_reused) and the note's op_id taken (duplicate)."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "at the door"}, seq=1)
    other = device.op("appointment.contact", task["id"], {"outcome": "reached"}, seq=1)
    a_wrote, a_go = threading.Event(), threading.Event()
    original = sync.push._write_log

    def paused(rows):
        original(rows)
        if threading.current_thread().name == "push-a":
            a_wrote.set()
            a_go.wait(20)
    monkeypatch.setattr(sync.push, "_write_log", paused)
    answers, errors = {}, []

    def push(name, ops):
        try:
            answers[name] = device.push(ops)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)
    a = threading.Thread(target=push, args=("a", [note]), name="push-a")
    b = threading.Thread(target=push, args=("b", [other, renumbered(note, 2)]), name="push-b")
    a.start()
    assert a_wrote.wait(20)
    b.start()
    b.join(1.0)
    assert b.is_alive(), "push B should wait for A"
    a_go.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert [(r["status"], r.get("duplicate")) for r in answers["a"]["results"]] == [("applied", None)]
    assert [(r["seq"], r["code"], r.get("duplicate")) for r in answers["b"]["results"]] == \
        [(1, "seq_reused", None), (2, None, True)]
    assert _notes(task["id"]) == 1 and _attempts() == 0


def test_the_unique_index_holds_when_the_check_is_skipped(monkeypatch, caplog, device, make, courier):
    """Without the engine's look-up the database refuses the second row for the op_id: the push decides the
    batch again, collides again and answers a busy stop (nothing taken, resend later), never a 500, and
    applies nothing twice. With the look-up back the resend is a duplicate."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "only once"}, seq=1)
    device.push([note])
    monkeypatch.setattr(sync.push, "_known_op_ids", lambda device, ops: {})
    body = device.push([renumbered(note, 2)])
    assert (body["results"], body["stop_code"], body["stopped_at"], body["last_seq"]) == ([], "busy", 2, 1)
    assert [r.slot for r in caplog.records if r.name == "sync.push" and "collided" in r.getMessage()] == \
        ["op_id", "op_id"]
    assert _notes(task["id"]) == 1
    monkeypatch.undo()
    assert device.push([renumbered(note, 2)])["results"][0]["duplicate"] is True


def test_every_engine_rejection_code_is_in_the_protocol():
    """The handheld's contract lists each code the engine itself rejects with (schemas.vocab)."""
    protocol = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", protocol, flags=re.MULTILINE))
    assert set(PUSH_REJECTION_CODES) <= listed, set(PUSH_REJECTION_CODES) - listed


def test_0023_gives_each_op_id_to_its_first_row(app, device, make, courier):
    """Upgrading past 0023: the first in-sequence row of an op_id holds it; a resend the old code applied again
    (a copy of the row under a later seq, as that code wrote it), a seq_reused row and ops without an op_id do
    not; each device's rejections so far are counted. A resend after the upgrade is a duplicate."""
    task = make.task(courier=courier)
    note = device.op("task.note", task["id"], {"text": "kept"}, seq=1)
    nameless = [{k: v for k, v in device.op("task.note", task["id"], {"text": "x"}, seq=seq).items() if k != "op_id"}
                for seq in (2, 3)]
    device.push([note, *nameless])
    assert device.push([dict(note, payload={"text": "changed"})])["results"][0]["code"] == "seq_reused"
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision=ScriptDirectory(MIGRATIONS_DIR).get_revision("0023_op_ids").down_revision)
    columns = ("device_id", "courier_id", "op_id", "type", "entity_id", "base_version", "payload", "payload_hash",
               "device_time", "device_utc_offset_min", "clock_skew_s", "clock_suspect", "received_at", "status",
               "code", "detail", "result", "in_sequence", "result_archived_at")
    with db.engine.begin() as conn:  # what the old code did with the note renumbered to seq 4: took it again
        conn.execute(sa.text(f"INSERT INTO op_log (seq, {', '.join(columns)}) SELECT 4, {', '.join(columns)} "
                             "FROM op_log WHERE seq = 1 AND in_sequence"))
        conn.execute(sa.text("UPDATE devices SET last_seq = 4"))
    upgrade(directory=MIGRATIONS_DIR)
    assert _rows(device.id) == [(1, "applied", None, True, True), (2, "rejected", "invalid_op", True, False),
                                (3, "rejected", "invalid_op", True, False), (1, "rejected", "seq_reused", False, False),
                                (4, "applied", None, True, False)]
    listing = make.client.get(f"/api/v1/dispatch/couriers/{courier['id']}/devices", headers=make.headers("dispatcher"))
    assert listing.json["items"][0]["rejected_ops"] == 3
    [result] = device.push([renumbered(note, 5)])["results"]
    assert result["duplicate"] is True and result["entity"]["data"]["notes"][0]["text"] == "kept"
