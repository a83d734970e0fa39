"""Bounded growth: a rejected op's payload is kept up to a bound (with its size and full hash); applied ops keep
theirs whole; rejections are counted per device and a device beyond the alert is shown to dispatch."""
import hashlib
import json

from sqlalchemy import select

from server.extensions import db
from server.models import OpLog
from tests.sync.conftest import Device
from tests.sync.test_handover import upload, verify
from tests.test_metrics import scrape, value

JUNK = "j" * 200_000


def _payloads(device_id: str) -> list[tuple[int, str, dict]]:
    """(seq, status, stored payload) of the device's op log, in order, and the stored JSON read back."""
    db.session.rollback()
    db.session.expire_all()
    return [(r.seq, r.status, r.payload) for r in db.session.scalars(
        select(OpLog).where(OpLog.device_id == device_id).order_by(OpLog.id))]


def _canonical(payload: dict) -> bytes:
    """Sorted keys, no spaces, UTF-8: the form whose size and SHA-256 the marker states."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _device_listing(make, courier_id: str) -> dict:
    """The courier's devices as dispatch lists them, by id."""
    response = make.client.get(f"/api/v1/dispatch/couriers/{courier_id}/devices", headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return {d["id"]: d for d in response.json["items"]}


def test_rejected_ops_with_a_200_kb_field_are_kept_bounded_and_counted(app, device, make, courier):
    """Three ops each carrying a 200 KB unknown field are rejected (invalid_payload); each log row keeps a
    marker of a few KiB (size, SHA-256 and first 4 KiB of the payload), not the 200 KB. The device's
    rejection count rises by three. Dispatch reads the marker on the op log."""
    task = make.task(courier=courier)
    ops = [device.op("task.note", task["id"], {"text": f"note {i}", "junk": JUNK}) for i in range(3)]
    body = device.push(ops)
    assert [(r["status"], r["code"]) for r in body["results"]] == [("rejected", "invalid_payload")] * 3
    limit = app.config["REJECTED_PAYLOAD_MAX_BYTES"]
    for (_, status, stored), op in zip(_payloads(device.id), ops, strict=True):
        whole = _canonical(op["payload"])
        assert status == "rejected"
        assert stored["truncated"] is True and stored["bytes"] == len(whole) > 200_000
        assert stored["sha256"] == hashlib.sha256(whole).hexdigest()
        assert whole.decode().startswith(stored["prefix"]) and len(stored["prefix"]) == limit
        assert len(json.dumps(stored)) < 2 * limit
    assert _device_listing(make, courier["id"])[device.id]["rejected_ops"] == 3
    page = make.client.get("/api/v1/dispatch/ops", query_string={"device_id": device.id, "status": "rejected"},
                           headers=make.headers("dispatcher")).json
    assert [item["payload"]["truncated"] for item in page["items"]] == [True] * 3


def test_applied_ops_keep_their_payload_whole_and_a_rejected_one_keeps_its_files(app, device, make, courier):
    """With a bound of 64 bytes: an applied note of 300 characters is kept whole (it is the field record); the
    same note on a task that is not the courier's (not_assigned) is kept as a marker naming its photo, so
    attachments-gc never takes a rejected op's photo; a handover op's PIN stays out of the marker."""
    app.config["REJECTED_PAYLOAD_MAX_BYTES"] = 64
    task = make.task(courier=courier)
    stranger = make.task(courier=make.courier())
    photo = upload(device)
    text = "the parcel was left with the neighbour at number 12, " * 6
    pin = make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                           headers=make.headers("dispatcher")).json["pin"]
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    body = device.push([device.op("task.note", task["id"], {"text": text, "photos": [photo]}),
                        device.op("task.note", stranger["id"], {"text": text, "photos": [photo]}),
                        device.op("pod.verify_recipient", task["id"], verify(method="pin", pin=wrong, name="N" * 90))])
    assert [(r["status"], r["code"]) for r in body["results"]] == \
        [("applied", None), ("rejected", "not_assigned"), ("rejected", "pin_mismatch")]
    (_, _, applied), (_, _, refused), (_, _, guessed) = _payloads(device.id)
    assert applied == {"text": text, "photos": [photo]}
    assert refused["truncated"] is True and refused["attachments"] == [photo]
    assert guessed["truncated"] is True and pin not in json.dumps(guessed) and wrong not in json.dumps(guessed)


def test_dispatch_sees_a_device_beyond_the_rejection_alert(app, client, make):
    """FIELDOPS_DEVICE_REJECTIONS_ALERT = 2: a device with three rejections (a rejected op, a seq_reused one and
    an op_id_reused one; a replayed duplicate not counted) is flagged noisy on the listings, found by
    ?noisy=true, and counted on /metrics; a quiet device is not."""
    app.config["DEVICE_REJECTIONS_ALERT"] = 2
    courier = make.courier()
    task = make.task(courier=courier)
    noisy, quiet = Device(client, make.device(courier)), Device(client, make.device(courier))
    note = noisy.op("task.note", task["id"], {"text": "fine"}, seq=1)
    bad = noisy.op("task.note", task["id"], {"text": ""}, seq=2)
    noisy.push([note, bad])
    noisy.push([note, bad])  # a retry: duplicates, not rejections
    noisy.push([dict(note, payload={"text": "other"})])  # seq 1 again, another op: seq_reused
    assert _device_listing(make, courier["id"])[noisy.id]["rejected_ops"] == 2
    assert not _device_listing(make, courier["id"])[noisy.id]["noisy"]
    before = value(scrape(client), "fieldops_sync_noisy_devices")
    noisy.push([dict(note, seq=3, payload={"text": "again"})])  # the note's op_id for another op: op_id_reused
    quiet.push([quiet.op("task.note", task["id"], {"text": "all good"})])
    listed = _device_listing(make, courier["id"])
    assert (listed[noisy.id]["rejected_ops"], listed[noisy.id]["noisy"]) == (3, True)
    assert (listed[quiet.id]["rejected_ops"], listed[quiet.id]["noisy"]) == (0, False)
    headers = make.headers("dispatcher")
    flagged = client.get("/api/v1/dispatch/devices", query_string={"noisy": "true"}, headers=headers).json
    assert [d["id"] for d in flagged["items"]] == [noisy.id]
    calm = client.get("/api/v1/dispatch/devices", query_string={"noisy": "false"}, headers=headers).json
    assert [d["id"] for d in calm["items"]] == [quiet.id]
    everyone = client.get("/api/v1/dispatch/devices", query_string={"courier_id": courier["id"]}, headers=headers)
    assert sorted(d["id"] for d in everyone.json["items"]) == sorted([noisy.id, quiet.id])
    assert value(scrape(client), "fieldops_sync_noisy_devices") == before + 1
    assert client.get("/api/v1/dispatch/devices", headers=noisy.headers).status_code == 403
