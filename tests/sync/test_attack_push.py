"""Ops found by the hostile-client review: each must be decided, never fail or stall the batch."""
from sqlalchemy import select

from server.extensions import db
from server.models import OpLog


def test_unstorable_keys_in_a_payload_or_envelope_are_rejected_not_a_500(device, make, courier):
    """A lone surrogate or NUL as a payload key, or as an unknown envelope key, used to reach the
    result's detail raw: the op log insert failed (500) and every retry failed the same way."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"\ud800": 1}),
           device.op("task.note", task["id"], {"text": "x", "a\x00b": 1}),
           {**device.op("task.note", task["id"], {"text": "x"}), "\udc00": 1},
           {**device.op("task.note", task["id"], {"text": "x"}), "k\x00": 1},
           device.op("task.note", task["id"], {"text": "after"})]
    body = device.push(ops)
    assert [(r["seq"], r["status"], r["code"]) for r in body["results"]] == [
        (1, "rejected", "invalid_payload"), (2, "rejected", "invalid_payload"),
        (3, "rejected", "invalid_op"), (4, "rejected", "invalid_op"), (5, "applied", None)]
    assert body["last_seq"] == 5
    assert "\\ud800" in body["results"][0]["detail"]
    db.session.rollback()
    assert db.session.scalar(select(OpLog.detail).where(OpLog.seq == 3)).count("\\udc00") == 1
    again = device.push(ops)
    assert [r.get("duplicate") for r in again["results"]] == [True] * 5
