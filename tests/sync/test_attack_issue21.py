"""Issue 21's fixes attacked again from a handheld: bad input and wrong clocks through the push path."""
from datetime import datetime, timedelta, timezone

import pytest

from server.clock import local_date
from server.services import appointments
from tests.api.test_kpi_day import _counts, _report
from tests.sync.test_appointment_attempts import HERE, Clock, _op, _window
from tests.sync.test_appointment_attempts import _push as _push_ops
from tests.sync.test_handover import AT_DOOR
from tests.sync.test_op_time import _device_row, _dated, _logged, _old_device, _push


def test_a_huge_last_seq_does_not_switch_off_the_trusted_sync_floor(client, make, courier, server_clock):
    """A trusted sync five minutes ago claims last_seq 10^12 (no such ops): the ops the device sends next cannot
    be dated before that sync unflagged. The claim said they were numbered before it; dated after it they are
    suspect, dated before it they are held to it: either way the wait rule counts no twenty minutes."""
    now = server_clock.now()
    device = _old_device(client, make, courier, server_clock, timedelta(hours=3))
    with server_clock.at(now - timedelta(hours=3)):
        task = make.task(courier=courier)
    with server_clock.at(now - timedelta(minutes=5)):
        # The op it carries was made two hours before it (an offline morning): the floor is the sync's, not its op's.
        note = _dated(device.op("task.note", task["id"], {"text": "loaded"}), now - timedelta(hours=2))
        synced = _push(client, device, [note], device_now=server_clock.now(), last_seq=10**12)
    assert synced["clock_suspect"] is False
    backdated = now - timedelta(minutes=20)
    ops = [_dated(device.op("stop.arrive", task["id"], AT_DOOR), backdated),
           _dated(device.op("appointment.contact", task["id"], {"outcome": "no_answer"}), backdated + timedelta(minutes=1)),
           _dated(device.op("stop.customer_absent", task["id"], {"waited_minutes": 20}), datetime.now(timezone.utc))]
    body = _push(client, device, ops, device_now=datetime.now(timezone.utc), last_seq=10**12)
    arrive, contact, absent = body["results"]
    assert arrive["status"] == "applied"
    # Not credited as a clean twenty-minute wait: the absent report is refused, or goes to review on a flag.
    assert absent["code"] == "wait_too_short" or absent.get("clock_suspect") is True, absent
    assert any(r.clock_suspect for r in _logged(device.id)[1:]), [(r.seq, r.effective_time) for r in _logged(device.id)]


def test_two_ops_under_one_seq_in_a_batch_are_not_both_applied(client, make, courier, device):
    """Two different ops numbered 1 in one batch: one is taken; the other is not applied as a second op 1."""
    task = make.task(courier=courier)
    a = device.op("task.note", task["id"], {"text": "a"}, seq=1)
    b = device.op("task.note", task["id"], {"text": "b"}, seq=1)
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": [a, b]}, headers=device.headers)
    assert response.status_code in (200, 422), response.json
    if response.status_code == 200:
        applied = [r for r in response.json["results"] if r["status"] == "applied"]
        assert len(applied) <= 1, response.json
    assert len(_logged(device.id)) <= 1
    assert _device_row(device.id).last_seq <= 1


# ---- On-time: every agreed window decided, the replaced ones too; not_attempted counts against it.



@pytest.fixture
def clock(monkeypatch, midday) -> Clock:
    """The server's clock on a timeline (test_appointment_attempts' Clock), starting ten hours ago: the windows
    it agrees have ended by now (a Clock never runs ahead of the real one)."""
    timeline = Clock(monkeypatch)
    timeline.set(datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=10))
    return timeline


def test_a_missed_window_replaced_by_a_kept_one_still_counts_against_on_time(client, make, courier, device, clock):
    """Agreed, swept missed; a second window agreed by phone and kept: on-time counts both windows (1 of 2), not
    only the appointment's last status (1 of 1), as the issue says ("every agreed window decided, including those
    later replaced")."""
    start = clock.now() + timedelta(hours=1)
    task = make.task(courier=courier, window=_window(start))
    assert _push_ops(device, _op(device, clock, "appointment.confirm", task["id"],
                                 {"window": _window(start), "via": "phone"}))[0]["status"] == "applied"
    clock.set(start + timedelta(hours=2, minutes=1))
    assert appointments.sweep_missed()["missed"] == 1
    again = clock.now() + timedelta(minutes=30)
    assert _push_ops(device, _op(device, clock, "appointment.confirm", task["id"],
                                 {"window": _window(again, 1), "via": "phone"}))[0]["status"] == "applied"
    clock.advance(minutes=40)
    assert _push_ops(device, _op(device, clock, "stop.arrive", task["id"], HERE))[0]["status"] == "applied"
    day = local_date(clock.now())
    assert _counts(_report(client, make, day)["total"])["on_time_delivery"][:2] == (1, 2)


def test_a_promised_window_not_attempted_counts_against_on_time(client, make, courier, device, clock):
    """Never confirmed, never visited: not_attempted, and it counts against on-time (0 of 1), as the issue says."""
    start = clock.now() + timedelta(hours=1)
    make.task(courier=courier, window=_window(start))
    clock.set(start + timedelta(hours=2, minutes=1))
    assert appointments.sweep_missed()["not_attempted"] == 1
    day = local_date(start)
    assert _counts(_report(client, make, day)["total"])["on_time_delivery"][:2] == (0, 1)
