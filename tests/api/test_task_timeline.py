"""GET /dispatch/tasks/{id}/timeline: a task's whole story in one call, built through the push path and the API.

Nothing here writes a row: dispatch creates, assigns, reassigns and settles over HTTP; the courier's handheld (the
raw protocol speaker of tests/sync) pushes what happened, from an offline queue and under a wrong clock too.
"""
import json
from datetime import datetime, timedelta

import pytest

from server.auth import Actor
from server.errors import NotFound
from server.services import timeline
from tests.sync.conftest import SHANGHAI, Device, morning_task, start_shift
from tests.sync.test_handover import AT_DOOR, codes, due, inspect_ok, sign, upload, verify

PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x31" * 64
APPLIED = ("applied", None)


def _timeline(client, make, task_id: str, role: str = "dispatcher", expect: int = 200) -> dict:
    """The timeline over HTTP."""
    answer = client.get(f"/api/v1/dispatch/tasks/{task_id}/timeline", headers=make.headers(role))
    assert answer.status_code == expect, answer.json
    return answer.json


def _at(text: str) -> datetime:
    """A time from the answer."""
    return datetime.fromisoformat(text)


def _queued(op: dict, at: datetime) -> dict:
    """The op as the handheld queued it at `at`."""
    return {**op, "device_time": at.astimezone(SHANGHAI).isoformat()}


def _kinds(answer: dict) -> list[tuple[str, str]]:
    """(kind, type) of each entry, in order."""
    return [(e["kind"], e["type"]) for e in answer["entries"]]


@pytest.fixture
def courier(make):
    """A courier."""
    return make.courier()


@pytest.fixture
def device(client, make, courier, server_clock):
    """The courier's handheld, enrolled yesterday, its shift open since seven hours ago."""
    with server_clock.at(server_clock.now() - timedelta(days=1)):
        device = Device(client, make.device(courier))
    with server_clock.at(server_clock.now() - timedelta(hours=7)):
        start_shift(make, courier, device, at=server_clock.now())
    return device


def test_a_cod_delivery_from_an_offline_queue_told_in_order(client, make, courier, device, server_clock):
    """A COD delivery whose first steps sat in the handheld's queue for half an hour: the queued contact and note
    come first by when they happened, though heard last but for the door; every op the device sent about the task
    is in the timeline (a refused one as its own entry, with its code); the receipt, the signature and the photo
    are there with links the office can open."""
    now = server_clock.now().replace(microsecond=0)
    task = morning_task(make, courier, server_clock)
    signature, photo = upload(device), upload(device, PHOTO)
    queued = [_queued(device.op("appointment.contact", task["id"], {"outcome": "no_answer", "note": "rang twice"}),
                      now - timedelta(minutes=40)),
              _queued(device.op("task.note", task["id"], {"text": "gate locked", "photos": [photo]}),
                      now - timedelta(minutes=35))]
    assert codes(device.push(queued)["results"]) == [APPLIED] * 2
    door = [device.op("stop.arrive", task["id"], AT_DOOR),
            device.op("pod.verify_recipient", task["id"], verify()),
            device.op("pod.sign", task["id"], sign(signature)),
            device.op("pod.inspect", task["id"], inspect_ok(task)),
            device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
            device.op("pod.sign", task["id"], sign(signature))]
    results = device.push(door)["results"]
    assert codes(results) == [APPLIED, APPLIED, ("rejected", "inspection_required"), APPLIED, APPLIED, APPLIED]

    again = {**queued[1], "seq": next(device._seq)}  # the queue sends the note again under a new seq
    assert device.push([again])["results"][0]["duplicate"] is True

    answer = _timeline(client, make, task["id"])
    assert answer["task"]["status"] == "delivered" and answer["task"]["cod_amount"] == task["cod_amount"]
    phone = task["recipient"]["phone"]
    assert answer["recipient_masked"] == {"name": "** " + task["recipient"]["name"].split()[-1],
                                          "phone": phone[:3] + "*" * (len(phone) - 7) + phone[-4:]}
    kinds = _kinds(answer)
    assert kinds[:3] == [("event", "created"), ("event", "assigned"), ("event", "appointment.contact")], kinds
    assert kinds[3] == ("event", "note")
    door_kinds = [(e["kind"], e["type"]) for e in answer["entries"][4:] if e["kind"] in ("event", "op")
                  and (e["op"] or {}).get("status") != "duplicate"]
    assert door_kinds == [("event", "arrived"), ("event", "handover.verify_recipient"), ("op", "pod.sign"),
                          ("event", "handover.inspect"), ("event", "handover.collect_payment"),
                          ("event", "handover.sign")], kinds
    [duplicate] = [e for e in answer["entries"] if e["op"] and e["op"]["status"] == "duplicate"]
    assert (duplicate["kind"], duplicate["op"]["op_id"], duplicate["op"]["seq"]) == ("op", again["op_id"],
                                                                                    again["seq"])
    assert ("scan", "handed_over") in kinds and kinds[-1] == ("receipt", "delivery")

    # Every op the device sent about the task, once, with what became of it.
    by_op = {e["op"]["op_id"]: e for e in answer["entries"] if e["op"] and e["op"]["status"] != "duplicate"}
    assert {op["op_id"] for op in queued + door} <= set(by_op)
    refused = by_op[door[2]["op_id"]]
    assert (refused["kind"], refused["op"]["status"], refused["op"]["code"]) == ("op", "rejected",
                                                                                "inspection_required")
    # The queued ops: told by the device's time, heard at the push; the door's, heard as they happened.
    contact = by_op[queued[0]["op_id"]]
    assert _at(contact["device_time"]) == now - timedelta(minutes=40) == _at(contact["at"])
    assert _at(contact["received_at"]) - _at(contact["device_time"]) >= timedelta(minutes=40)
    assert contact["clock_suspect"] is False and contact["text"] == "rang twice"
    assert all(e["clock_suspect"] is False for e in answer["entries"] if e is not duplicate)
    times = [_at(e["at"]) for e in answer["entries"]]
    assert times == sorted(times)

    # The receipt and its public page; the signature and the note's photo, downloadable by the office.
    receipt = answer["receipt"]
    assert receipt["number"] and "/r/" in receipt["url"]
    assert answer["entries"][-1]["data"]["number"] == receipt["number"]
    assert client.get(receipt["url"]).status_code == 200
    handover = client.get(f"/api/v1/dispatch/tasks/{task['id']}/handover", headers=make.headers("dispatcher")).json
    assert handover["state"]["receipt"] == receipt  # the issue found it null there: the same link now
    assert {(a["role"], a["sha256"]) for a in answer["attachments"]} == {("signature", signature), ("photo", photo)}
    for link in answer["attachments"]:
        assert client.get(link["url"], headers=make.headers("quality")).status_code == 200
    signed = next(e for e in answer["entries"] if e["type"] == "handover.sign")
    assert [a["role"] for a in signed["attachments"]] == ["signature"]
    assert answer["open_conflicts"] == [] and answer["open_reviews"] == []
    # The timeline is read by the same roles as the task itself.
    assert _timeline(client, make, task["id"], "quality")["entries"] == answer["entries"]


def test_a_refusal_a_suspect_clock_and_a_conflict_to_settle(client, make, courier, device, server_clock):
    """A refusal pushed under a clock far ahead is flagged on its entries (the device's time kept, the corrected one
    told); a second task reassigned while its old courier still reports an arrival on it shows both assignments and
    the conflict for dispatch to settle, until it is resolved."""
    task = make.task(courier=courier)
    ops = [device.op("pod.inspect", task["id"], inspect_ok(task, customer_accepted=False)),
           device.op("pod.refuse", task["id"], {"reason": "quality", "note": "scratched"})]
    wrong = "2099-12-31T23:00:00+08:00"
    for op in ops:
        op["device_time"] = wrong
    pushed = client.post("/api/v1/sync/push", data=json.dumps({"device_id": device.id, "ops": ops,
                                                                "device_now": wrong}),
                         content_type="application/json", headers=device.headers)
    assert pushed.json["clock_suspect"] is True and codes(pushed.json["results"]) == [APPLIED] * 2
    answer = _timeline(client, make, task["id"])
    assert answer["task"]["status"] == "refused"
    refusal = next(e for e in answer["entries"] if e["type"] == "handover.refuse")
    assert refusal["clock_suspect"] is True and refusal["op"]["clock_suspect"] is True
    assert refusal["device_time"].startswith("2099-12-31T15:00:00") and refusal["data"]["reason"] == "quality"
    assert _at(refusal["at"]).year < 2099  # the rules went by the corrected time
    assert answer["receipt"] is not None and _kinds(answer)[-1] == ("receipt", "refusal")

    second = make.task(courier=courier)
    other = make.courier()
    make.assign(second["id"], other["id"])
    stale = device.op("stop.arrive", second["id"], AT_DOOR, base_version=second["version"])
    assert codes(device.push([stale])["results"]) == [("conflict", "reassigned")]
    answer = _timeline(client, make, second["id"])
    assigned = [e["data"] for e in answer["entries"] if e["type"] == "assigned"]
    assert assigned == [{"courier_id": courier["id"], "previous": None},
                        {"courier_id": other["id"], "previous": courier["id"]}]
    [conflict] = answer["open_conflicts"]
    [entry] = [e for e in answer["entries"] if e["kind"] == "conflict"]
    assert (entry["ref"], entry["to_settle"], entry["op"]["op_id"]) == (conflict["id"], True, stale["op_id"])
    assert not [e for e in answer["entries"] if e["kind"] == "op"]  # the conflict entry tells its op
    resolved = client.post(f"/api/v1/dispatch/conflicts/{conflict['id']}/resolve",
                           json={"resolution": "dispatch_stands", "note": "reassigned on purpose"},
                           headers=make.headers("dispatcher"))
    assert resolved.status_code == 200, resolved.json
    answer = _timeline(client, make, second["id"])
    assert answer["open_conflicts"] == [] and answer["task"]["needs_review"] is False
    [entry] = [e for e in answer["entries"] if e["kind"] == "conflict"]
    assert entry["to_settle"] is False and entry["data"]["resolution"] == "dispatch_stands"
    assert _kinds(answer)[-1] == ("event", "conflict_resolved")


def test_unknown_tasks_and_roles(client, make, courier, device):
    """An unknown task is a 404 with its code; couriers (their device tokens) and maintenance staff are refused; a
    courier never reads another courier's task through the service (404, as for a task that does not exist)."""
    task = make.task(courier=courier)
    missing = _timeline(client, make, "t-nosuchtask", expect=404)
    assert missing["code"] == "task_not_found"
    for role in ("maintenance", device.headers["Authorization"].split()[1]):
        answer = client.get(f"/api/v1/dispatch/tasks/{task['id']}/timeline", headers=make.headers(role))
        assert answer.status_code == 403, answer.json
    assert client.get(f"/api/v1/dispatch/tasks/{task['id']}/timeline").status_code == 401
    assert _timeline(client, make, task["id"], "admin")["task"]["id"] == task["id"]
    other = make.courier()
    with pytest.raises(NotFound):
        timeline.task_timeline(task_id=task["id"], actor=Actor(kind="courier", id=other["id"], role="courier",
                                                               courier_id=other["id"]))
    own = timeline.task_timeline(task_id=task["id"], actor=Actor(kind="courier", id=courier["id"], role="courier",
                                                                 courier_id=courier["id"]))
    assert own["task"].id == task["id"]
