"""Ops found by the hostile-client review: each must be decided, never fail or stall the batch."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from server.extensions import db
from server.models import OpLog
from tests.sync.conftest import Device


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


def test_an_attachment_that_never_arrives_does_not_stall_the_queue_forever(client, make, courier, app, server_clock):
    """An op naming a photo the device lost (or one the server refused as unsafe_svg or hash_mismatch)
    stopped every retry with attachment_missing, for good. Past ATTACHMENT_WAIT after its device_time
    it is rejected, consumed and kept instead; a recent one still stops (the upload may be on its way)."""
    with server_clock.at(server_clock.now() - app.config["ATTACHMENT_WAIT"] - timedelta(hours=1)):
        device = Device(client, make.device(courier))
        task = make.task(courier=courier)
    lost = "ab" * 32
    recent = device.op("task.note", task["id"], {"text": "photo", "photos": [lost]})
    body = device.push([recent])
    assert body["stop_code"] == "attachment_missing" and body["stopped_at"] == 1 and body["last_seq"] == 0
    old = dict(recent, device_time=(datetime.now(timezone.utc) - app.config["ATTACHMENT_WAIT"]
                                    - timedelta(minutes=1)).isoformat())
    after = device.op("task.note", task["id"], {"text": "after"})
    body = device.push([old, after])
    assert [(r["seq"], r["status"], r["code"]) for r in body["results"]] == [
        (1, "rejected", "attachment_never_uploaded"), (2, "applied", None)]
    assert body["last_seq"] == 2 and "stopped_at" not in body
    assert set(body["results"][0]["fields"]) == {"payload.photos.0"}
    db.session.rollback()
    assert db.session.scalar(select(OpLog.payload).where(OpLog.seq == 1))["photos"] == [lost]


def test_a_protocol_header_that_is_not_plain_digits_is_426(client, device):
    """`isdigit()` let `²` (the header byte 0xB2) and 5,000 digits reach int(): a 500 on every
    handheld route, before the token was even looked at."""
    for value in ("9" * 5000, "\u00b2", "1\u00b2", " 1x"):
        for method, path in (("get", "/api/v1/sync/pull"), ("post", "/api/v1/sync/push"),
                             ("head", "/api/v1/attachments/" + "a" * 64)):
            headers = {**device.headers, "Fieldops-Protocol": value}
            response = getattr(client, method)(path, headers=headers)
            assert response.status_code == 426, (value[:5], path, response.status_code)
