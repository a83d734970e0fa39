"""A poison op never stalls the queue: whatever is wrong with an op alone is rejected, consumed and kept."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from server.extensions import db
from server.models import OpLog, TaskEvent
from tests.sync.conftest import Device


def _log(seq: int) -> OpLog:
    db.session.rollback()
    return db.session.scalars(select(OpLog).where(OpLog.seq == seq, OpLog.in_sequence.is_(True))).one()


def _notes(task_id: str) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(TaskEvent).where(
        TaskEvent.task_id == task_id, TaskEvent.kind == "note"))


def test_poison_ops_are_rejected_with_codes_consumed_and_kept(device, make, courier):
    """Each way an op can be wrong by itself gets its code; the good ops around them are applied;
    every op is in the op log; a retry of the batch replays the same results as duplicates."""
    task = make.task(courier=courier)
    note = {"text": "ok"}
    ops = [device.op("task.note", task["id"], note),
           dict(device.op("task.note", task["id"], note), device_time="9999-12-31T23:00:00-12:00"),
           dict(device.op("task.note", task["id"], note), device_time="2026-11-22T09:00:00"),
           dict(device.op("task.note", task["id"], note), device_time="not a time"),
           dict(device.op("task.note", task["id"], note), op_id="\ud800"),
           device.op("task.note", task["id"], {"text": "lone \udc00 surrogate and \x00 NUL"}),
           dict(device.op("task.note", task["id"], note), base_version=2**64),
           dict(device.op("task.note", task["id"], note), base_version=-1),
           {k: v for k, v in device.op("task.note", task["id"], note).items() if k != "base_version"},
           device.op("task.note", task["id"], note, base_version=task["version"] + 1),
           device.op("task.note", task["id"], {"text": 5}),
           dict(device.op("task.note", task["id"], note), payload=["not", "an", "object"]),
           dict(device.op("task.note", task["id"], note), type=None, entity_id=7, surprise=True),
           device.op("task.note", task["id"], {"text": "last"})]
    body = device.push(ops)
    assert [(r["seq"], r["status"], r["code"]) for r in body["results"]] == [
        (1, "applied", None), (2, "rejected", "invalid_device_time"), (3, "rejected", "invalid_device_time"),
        (4, "rejected", "invalid_device_time"), (5, "rejected", "invalid_op"), (6, "rejected", "invalid_payload"),
        (7, "rejected", "invalid_base_version"), (8, "rejected", "invalid_base_version"),
        (9, "rejected", "invalid_base_version"), (10, "rejected", "invalid_base_version"),
        (11, "rejected", "invalid_payload"), (12, "rejected", "invalid_payload"), (13, "rejected", "invalid_op"),
        (14, "applied", None)]
    assert body["last_seq"] == 14 and "stopped_at" not in body
    results = {r["seq"]: r for r in body["results"]}
    assert results[11]["fields"] == {"payload.text": ["Not a valid string."]}
    assert "payload.text" in results[11]["detail"] and "{" not in results[11]["detail"]
    assert set(results[6]["fields"]) == {"payload.text"}
    assert set(results[13]["fields"]) == {"type", "entity_id", "surprise"}
    assert results[5]["op_id"] == "\\ud800" and set(results[5]["fields"]) == {"op_id"}
    assert _notes(task["id"]) == 2
    # Kept whole, escaped where it could not be stored as is.
    assert _log(6).payload == {"text": "lone \\udc00 surrogate and \\u0000 NUL"}
    assert _log(5).payload["_received"]["op_id"] == "\\ud800" and _log(5).op_id == "\\ud800"
    assert _log(7).payload["_received"]["base_version"] == str(2**64) and _log(7).base_version is None
    assert _log(2).payload["_received"]["device_time"] == "9999-12-31T23:00:00-12:00"
    assert _log(12).payload == {"_received": ops[11] | {"payload": ["not", "an", "object"]}}
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 14
    again = device.push(ops)
    assert all(r["duplicate"] for r in again["results"])
    assert [dict(r, duplicate=None) for r in again["results"]] == [dict(r, duplicate=None) for r in body["results"]]
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 14


def test_a_batch_whose_seqs_cannot_be_read_is_a_422_naming_them(device, make, courier):
    """Only what sequences the ops is checked for the whole batch."""
    task = make.task(courier=courier)
    for bad in ("1", None, 0, 2**63, 1.5):
        op = dict(device.op("task.note", task["id"], {"text": "x"}), seq=bad)
        body = device.push([device.op("task.note", task["id"], {"text": "y"}, seq=1), op], expect=422)
        assert "ops.1.seq" in body["fields"], body
    assert db.session.scalar(select(func.count()).select_from(OpLog)) == 0


_chars = st.sampled_from("a\ud800\udfff\x00\u00e9") | st.characters()  # lone surrogates and NUL too
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(_chars, max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(_chars, max_size=5), inner, max_size=3),
    max_leaves=8)


def _field(valid):
    """A field that is valid, missing, or any JSON value at all."""
    return st.one_of(st.just(valid), st.just(...), _json)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_ops_are_all_decided_and_the_queue_moves(client, make, data):
    """Arbitrary JSON as op fields and payloads, mixed with valid ops: every op gets a result, last_seq
    passes them all, the op log has a row for each, and a replay answers the same as duplicates."""
    courier = make.courier()
    task = make.task(courier=courier)
    device = Device(client, make.device(courier))
    count = data.draw(st.integers(1, 6), label="ops")
    ops = []
    for seq in range(1, count + 1):
        valid = device.op("task.note", task["id"], {"text": "fine"}, base_version=task["version"], seq=seq)
        if data.draw(st.booleans(), label="mangled"):
            fields = {name: data.draw(_field(value), label=name) for name, value in valid.items() if name != "seq"}
            op = {"seq": seq, **{name: value for name, value in fields.items() if value is not ...}}
            if data.draw(st.booleans(), label="payload keys"):
                op["payload"] = {"text": data.draw(_json, label="text")}
        else:
            op = valid
        ops.append(op)
    body = device.push(ops)
    assert [r["seq"] for r in body["results"]] == list(range(1, count + 1))
    assert body["last_seq"] == count and "stopped_at" not in body
    assert all(r["status"] in ("applied", "rejected", "conflict") for r in body["results"])
    db.session.rollback()
    logged = db.session.scalars(select(OpLog.seq).where(OpLog.device_id == device.id)).all()
    assert sorted(logged) == list(range(1, count + 1))
    again = device.push(ops)
    assert [dict(r, duplicate=None) for r in again["results"]] == [dict(r, duplicate=None) for r in body["results"]]
    assert all(r["duplicate"] for r in again["results"]) and again["last_seq"] == count
