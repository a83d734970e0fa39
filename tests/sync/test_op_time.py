"""What time an op happened (issue 21, "Time you can trust"): decided once by the push engine, never later than
the op arrived nor earlier than what the server knows came first; an op whose time cannot be right is kept,
applied at that time and marked clock_suspect, never refused."""
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.clock import local_date
from server.extensions import db
from server.models import Device as DeviceRow
from server.models import OpLog, Task
from sync.client import Handheld
from tests.sync.conftest import SHANGHAI, Device, begin_day
from tests.sync.test_client import PNG, _enroll
from tests.sync.test_handover import AT_DOOR, due, inspect_ok, verify
from tests.sync.transport import FlaskTransport

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _push(client, device: Device, ops: list[dict], *, device_now: datetime | str | None,
          last_seq: int | None = None) -> dict:
    """POST /sync/push with the device's clock (and how far it has numbered its ops, when given)."""
    body = {"device_id": device.id, "ops": ops, "device_now": getattr(device_now, "isoformat", lambda: device_now)()}
    if last_seq is not None:
        body["last_seq"] = last_seq
    response = client.post("/api/v1/sync/push", json=body, headers=device.headers)
    assert response.status_code == 200, response.json
    return response.json


def _dated(op: dict, when: datetime | str) -> dict:
    """The op as the device's clock dated it."""
    return dict(op, device_time=when if isinstance(when, str) else when.astimezone(SHANGHAI).isoformat())


def _logged(device_id: str) -> list[OpLog]:
    """The device's op-log rows in seq order, fresh."""
    db.session.expire_all()
    return list(db.session.scalars(select(OpLog).where(OpLog.device_id == device_id, OpLog.in_sequence.is_(True))
                                   .order_by(OpLog.seq)))


def _device_row(device_id: str) -> DeviceRow:
    """The device as stored, fresh."""
    db.session.expire_all()
    return db.session.get(DeviceRow, device_id)


def _cash(client, make, courier_id: str, day: str) -> dict:
    """The courier's cash on a depot-local day, as dispatch sees it."""
    response = client.get(f"/api/v1/dispatch/couriers/{courier_id}/cash", query_string={"date": day},
                          headers=make.headers("dispatcher"))
    assert response.status_code == 200, response.json
    return response.json


def _old_device(client, make, courier, server_clock, ago: timedelta) -> Device:
    """A handheld enrolled `ago` before now (the server's clock set back while enrolling)."""
    with server_clock.at(server_clock.now() - ago):
        return Device(client, make.device(courier))


def test_cash_dated_2099_under_a_true_clock_is_booked_today_and_flagged(client, make, courier, device, midday):
    """pod.collect_payment dated 2099 with a truthful device_now: applied at the time it arrived, clock_suspect in
    its result and its op-log row, on today's ledger with today's time; the retry answers the same."""
    task = make.task(courier=courier)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           _dated(device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}),
                  "2099-06-01T10:00:00+08:00")]
    before = datetime.now(timezone.utc)
    body = _push(client, device, ops, device_now=datetime.now(timezone.utc))
    after = datetime.now(timezone.utc)
    assert [r["status"] for r in body["results"]] == ["applied"] * 3 and body["clock_suspect"] is False
    assert [r.get("clock_suspect", False) for r in body["results"]] == [False, False, True]
    paid = _logged(device.id)[2]
    assert paid.device_time.year == 2099 and before <= paid.effective_time <= after and paid.clock_suspect
    [listed] = [o for o in client.get("/api/v1/dispatch/ops", headers=make.headers("dispatcher")).json["items"]
                if o["seq"] == 3]
    assert (listed["device_time"][:4], listed["clock_suspect"]) == ("2099", True)
    assert datetime.fromisoformat(listed["effective_time"]) == paid.effective_time
    today = local_date(after).isoformat()
    cash = _cash(client, make, courier["id"], today)
    assert (cash["collected"], cash["difference"]) == (due(task), due(task)), cash
    assert cash["entries"][0]["device_time"][:10] == paid.effective_time.isoformat()[:10]
    again = _push(client, device, ops, device_now=datetime.now(timezone.utc))
    assert [dict(r, duplicate=None) for r in again["results"]] == [dict(r, duplicate=None) for r in body["results"]]
    assert _cash(client, make, courier["id"], today)["collected"] == due(task)


def test_a_window_agreed_in_2099_is_judged_when_the_op_arrived(client, make, courier, device, midday):
    """appointment.confirm dated 2099 for a window in 2099: the window rule reads the op's effective time (now), so
    the window lies too far ahead and is refused; the task keeps today's window and stays on today's board."""
    task = make.task(courier=courier)
    window = {"start": "2099-06-01T10:00:00+08:00", "end": "2099-06-01T12:00:00+08:00"}
    confirm = _dated(device.op("appointment.confirm", task["id"], {"window": window, "via": "phone"}),
                     "2099-06-01T09:00:00+08:00")
    [result] = _push(client, device, [confirm], device_now=datetime.now(timezone.utc))["results"]
    assert (result["status"], result["code"], result["clock_suspect"]) == ("rejected", "validation_failed", True)
    assert "window.start" in result["fields"]
    board = client.get("/api/v1/dispatch/appointments", headers=make.headers("dispatcher")).json
    assert [(i["task_id"], i["state"]) for i in board["items"]] == [(task["id"], "unconfirmed")]
    store, _, _ = device.pull_all()
    assert store[("task", task["id"])]["data"]["window"] == task["window"]


@pytest.mark.parametrize("device_now, dated, before_receipt", [
    # A clock stuck at the epoch: every op and the push read 00:00:00.
    ("1970-01-01T00:00:00Z", ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"], [0, 0]),
    # A clock reset to the epoch that runs on: the ops 40 and 20 minutes before the push.
    ("1970-01-01T00:45:00Z", ["1970-01-01T00:05:00Z", "1970-01-01T00:25:00Z"], [40, 20]),
])
def test_a_push_from_a_clock_reset_to_1970_is_applied_within_the_real_span(client, make, courier, server_clock,
                                                                             device_now, dated, before_receipt):
    """device_now in 1970 and ops dated 1970: applied (not invalid_device_time), each clock_suspect, dated by the
    measured skew, between the device's enrollment and the receipt."""
    with server_clock.at(server_clock.now() - timedelta(hours=2)):
        device = Device(client, make.device(courier))
        task = make.task(courier=courier)
    ops = [_dated(device.op("stop.arrive", task["id"], AT_DOOR), dated[0]),
           _dated(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}), dated[1])]
    body = _push(client, device, ops, device_now=device_now)
    assert [(r["status"], r["code"], r["clock_suspect"]) for r in body["results"]] == [("applied", None, True)] * 2
    assert body["clock_suspect"] is True
    rows = _logged(device.id)
    created = db.session.get(Task, task["id"]).created_at
    for row, minutes in zip(rows, before_receipt, strict=True):
        assert row.device_time.year == 1970 and row.clock_suspect
        assert created <= row.effective_time <= row.received_at
        assert abs(row.effective_time - (row.received_at - timedelta(minutes=minutes))) < timedelta(seconds=5)


def test_ops_queued_under_a_reset_clock_reach_the_task_once_it_is_fixed(app, client, make, courier, server_clock,
                                                                        templates, tmp_path, midday):
    """The reference handheld syncs with a good clock; its clock resets to 1970; the courier verifies, inspects,
    takes the cash and the signature; the clock is fixed and the queue pushed with a truthful device_now: every op
    applied, clock_suspect, dated at the last trusted sync (no later op can precede it), never invalid_device_time;
    the task is delivered and the cash is on today's ledger."""
    task = make.task(courier=courier)
    reading = {"clock": None}
    handheld = Handheld(str(tmp_path / "hh.sqlite3"), FlaskTransport(app), sleep=lambda s: None,
                        rng=random.Random(1),
                        clock=lambda: reading["clock"] or datetime.now(timezone.utc).astimezone(SHANGHAI))
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    handheld.enroll(code, "PDA")
    handheld.pull()
    begin_day(handheld)  # seqs 1-3: the checks and shift.start
    handheld.queue("task.note", task["id"], {"text": "on my way", "photos": []})
    handheld.sync()
    anchor = _device_row(handheld.device_id).trusted_sync_at
    assert anchor is not None and _device_row(handheld.device_id).trusted_sync_seq == 4
    reading["clock"] = EPOCH + timedelta(minutes=3)
    handheld.verify_recipient(task["id"], method="id_check", name="Recipient")
    handheld.inspect(task["id"], items=inspect_ok(task)["items"], customer_accepted=True)
    handheld.collect_payment(task["id"], amount=due(task), method="cash")
    handheld.sign(task["id"], signature=PNG, signer_name="Recipient", **AT_DOOR)
    reading["clock"] = None
    handheld.sync()
    results = list(handheld.results().values())[4:]
    assert [(r["status"], r["code"], r.get("clock_suspect")) for r in results] == [("applied", None, True)] * 4
    rows = _logged(handheld.device_id)[4:]
    assert [r.device_time.year for r in rows] == [1970] * 4 and all(r.clock_suspect for r in rows)
    assert [r.effective_time for r in rows] == [anchor] * 4
    assert handheld.task(task["id"])["status"] == "delivered"
    cash = _cash(client, make, courier["id"], local_date(anchor).isoformat())
    assert cash["collected"] == due(task)


def test_the_handheld_pushes_with_its_clock_still_reset(app, client, make, courier, tmp_path):
    """The reference handheld whose clock reset to 1970 pushes as ever (its device_now, 1970, is measured, not
    refused): its ops are applied, flagged, and dated within the real span by the measured skew."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app),
                       clock=lambda: EPOCH + timedelta(minutes=3))
    handheld.pull()
    handheld.queue("task.note", task["id"], {"text": "battery died", "photos": []})
    handheld.queue("stop.arrive", task["id"], AT_DOOR)
    summary = handheld.sync()
    assert summary["pending"] == 0
    assert [(r["status"], r["clock_suspect"]) for r in handheld.results().values()] == [("applied", True)] * 2
    created = db.session.get(Task, task["id"]).created_at
    assert all(r.device_time == EPOCH + timedelta(minutes=3) and created <= r.effective_time <= r.received_at
               for r in _logged(handheld.device_id))
    assert _device_row(handheld.device_id).trusted_sync_at is None  # a clock 56 years off anchors nothing


def test_an_arrival_dated_before_its_task_existed_is_held_to_its_birth(client, make, courier, server_clock):
    """stop.arrive dated an hour before the task was created: applied at the task's creation, clock_suspect."""
    device = _old_device(client, make, courier, server_clock, timedelta(hours=3))
    task = make.task(courier=courier)
    [result] = device.push([_dated(device.op("stop.arrive", task["id"], AT_DOOR),
                                   datetime.now(timezone.utc) - timedelta(hours=1))])["results"]
    assert (result["status"], result["clock_suspect"]) == ("applied", True)
    [row] = _logged(device.id)
    created = db.session.get(Task, task["id"]).created_at
    assert row.effective_time == created and row.clock_suspect
    assert result["entity"]["data"]["arrived_at"] == created.isoformat()


def test_arrival_backdated_behind_a_trusted_sync_is_held_to_it(client, make, courier, server_clock):
    """A courier syncs (clock within the tolerance) five minutes ago; then arrival and contact are dated twenty
    minutes back: both are held to that sync and flagged, so the wait rule counts five minutes, not twenty."""
    now = server_clock.now()
    device = _old_device(client, make, courier, server_clock, timedelta(hours=3))
    with server_clock.at(now - timedelta(hours=3)):
        task = make.task(courier=courier)
    # The trusted sync carries an op made two hours before it: the floor it sets is the sync's, not its op's.
    with server_clock.at(now - timedelta(minutes=5)):
        note = _dated(device.op("task.note", task["id"], {"text": "loaded"}), now - timedelta(hours=2))
        synced = _push(client, device, [note], device_now=server_clock.now(), last_seq=1)
    assert synced["clock_suspect"] is False and "clock_suspect" not in synced["results"][0]
    anchor = _device_row(device.id).trusted_sync_at
    backdated = now - timedelta(minutes=20)
    ops = [_dated(device.op("stop.arrive", task["id"], AT_DOOR), backdated),
           _dated(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}), backdated + timedelta(minutes=1)),
           _dated(device.op("stop.customer_absent", task["id"], {"waited_minutes": 20}), datetime.now(timezone.utc))]
    body = _push(client, device, ops, device_now=datetime.now(timezone.utc), last_seq=4)
    arrive, contact, absent = body["results"]
    assert (arrive["status"], arrive["clock_suspect"], contact["clock_suspect"]) == ("applied", True, True)
    assert (absent["status"], absent["code"]) == ("rejected", "wait_too_short")
    rows = _logged(device.id)
    assert [r.effective_time for r in rows[1:3]] == [anchor, anchor]
    assert rows[0].effective_time == rows[0].device_time and not rows[0].clock_suspect


def test_an_offline_morning_with_a_true_clock_is_not_suspect(client, make, courier, server_clock, midday):
    """A courier offline all morning: ops made hours ago, pushed now with a correct clock, keep their times and are
    not flagged; the payment is booked at the time it was taken."""
    now = server_clock.now()
    with server_clock.at(now - timedelta(hours=6)):
        device = Device(client, make.device(courier))
        task = make.task(courier=courier)
        device.pull_all()
    made = [now - timedelta(hours=5, minutes=m) for m in (30, 20, 10, 0)]
    ops = [_dated(device.op("stop.arrive", task["id"], AT_DOOR), made[0]),
           _dated(device.op("pod.verify_recipient", task["id"], verify()), made[1]),
           _dated(device.op("pod.inspect", task["id"], inspect_ok(task)), made[2]),
           _dated(device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"}), made[3])]
    body = _push(client, device, ops, device_now=datetime.now(timezone.utc), last_seq=4)
    assert [(r["status"], r.get("clock_suspect", False)) for r in body["results"]] == [("applied", False)] * 4
    rows = _logged(device.id)
    assert [r.effective_time for r in rows] == [r.device_time for r in rows] == made
    entry = _cash(client, make, courier["id"], local_date(made[3]).isoformat())["entries"][0]
    assert datetime.fromisoformat(entry["device_time"]) == made[3]


def test_the_rest_of_a_long_queue_is_not_held_to_the_batch_before_it(app, client, make, courier, server_clock,
                                                                     tmp_path):
    """The reference handheld sends a long queue in batches: the first batch is a trusted sync that says how far
    the queue is numbered, so the second batch's ops, made before the first was sent, keep their times."""
    now = server_clock.now()
    with server_clock.at(now - timedelta(hours=4)):
        task = make.task(courier=courier)
        code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                           headers=make.headers("dispatcher")).json["code"]
        reading = {"clock": now - timedelta(hours=4)}
        handheld = Handheld(str(tmp_path / "hh.sqlite3"), FlaskTransport(app), sleep=lambda s: None,
                            rng=random.Random(1), batch_size=2,
                            clock=lambda: reading["clock"] or datetime.now(timezone.utc).astimezone(SHANGHAI))
        handheld.enroll(code, "PDA")
        handheld.pull()
    for minutes in (0, 10, 20, 30, 40):
        reading["clock"] = (now - timedelta(hours=3) + timedelta(minutes=minutes)).astimezone(SHANGHAI)
        handheld.queue("task.note", task["id"], {"text": f"stop note {minutes}", "photos": []})
    reading["clock"] = None  # the true time again, as the queue goes out
    assert handheld.push() == 5
    assert [r.get("clock_suspect", False) for r in handheld.results().values()] == [False] * 5
    rows = _logged(handheld.device_id)
    assert [r.effective_time for r in rows] == [r.device_time for r in rows] and not any(r.clock_suspect for r in rows)
    assert _device_row(handheld.device_id).trusted_sync_seq == 5


def test_a_resend_under_a_new_seq_answers_as_the_first(client, make, courier, device):
    """The same suspect op sent again under the next seq (a renumbered queue): the first one's result, flag and all;
    the resend is no op of its own and moves no floor."""
    task = make.task(courier=courier)
    note = _dated(device.op("task.note", task["id"], {"text": "x"}), "2099-01-01T00:00:00+08:00")
    [first] = device.push([note])["results"]
    [again] = device.push([dict(note, seq=2)])["results"]
    assert first["clock_suspect"] is True and again == dict(first, seq=2, duplicate=True)
    assert [r.status for r in _logged(device.id)] == ["applied", "duplicate"]


def test_only_what_is_not_a_time_is_invalid_device_time(client, make, courier, device):
    """A time without an offset, a string that is no time, one beyond what UTC can express: invalid_device_time;
    any year UTC can express is a time (held and flagged)."""
    task = make.task(courier=courier)
    ops = [_dated(device.op("task.note", task["id"], {"text": "x"}), when)
           for when in ("2026-11-22T09:00:00", "yesterday", "9999-12-31T23:00:00-12:00", "1999-12-31T23:59:59Z",
                        "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z")]
    results = device.push(ops)["results"]
    assert [(r["status"], r["code"]) for r in results] == [("rejected", "invalid_device_time")] * 3 + [
        ("applied", None)] * 3
    assert all(r["clock_suspect"] for r in results[3:])
