"""Handhelds with wrong clocks (far ahead, years behind): what they collect and report still lands where dispatch
balances and reviews it."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from schemas.limits import MAX_INT32
from server.clock import local_date
from server.extensions import db
from server.models import OpLog
from tests.sync.test_handover import due, inspect_ok, upload, verify


def _today() -> str:
    """The depot-local day now."""
    return local_date(datetime.now(timezone.utc)).isoformat()


@pytest.mark.parametrize("clock", ["2099-12-31T23:00:00+08:00", "2000-01-02T09:00:00+08:00"])
def test_cash_taken_under_a_wrong_clock_is_booked_on_a_day_a_remittance_balances(client, make, courier, device,
                                                                                   on_shift, clock):
    """A clock at the end of the century booked the payment on 2099-12-31 (a day no remittance may name), one in
    2000 on a day the books had closed: today's cash said 0 owed. Now both count today, at the time the ops were
    made by the measured skew (device_now is the same wrong clock); the amount_mismatch the clock ahead reported
    is among today's exceptions, not 2099's; the op log keeps what the device said."""
    task = make.task(courier=courier)
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.collect_payment", task["id"], {"amount": due(task) - 1, "method": "cash"}),
           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": "cash"})]
    upload(device)
    for op in ops:
        op["device_time"] = clock
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": ops, "device_now": clock},
                           headers=device.headers)
    assert [r["code"] for r in response.json["results"]] == [None, None, "amount_mismatch", None]
    assert response.json["clock_suspect"] is True
    headers, cash_url = make.headers("dispatcher"), f"/api/v1/dispatch/couriers/{courier['id']}/cash"
    cash = client.get(cash_url, query_string={"date": _today()}, headers=headers).json
    assert (cash["collected"], cash["difference"]) == (due(task), due(task)), cash
    assert cash["entries"][0]["device_time"][:10] == datetime.now(timezone.utc).date().isoformat()
    db.session.expire_all()
    sent = {op["op_id"] for op in ops}  # the shift's ops (on_shift) were made under a right clock
    rows = [r for r in db.session.scalars(select(OpLog).order_by(OpLog.seq)) if r.op_id in sent]
    assert len(rows) == 4
    assert {r.device_time.year for r in rows} == {int(clock[:4])} and all(r.clock_suspect for r in rows)
    remitted = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/remittances",
                           json={"date": _today(), "amount": due(task)}, headers=headers)
    assert remitted.status_code == 201, remitted.json
    assert client.get(cash_url, query_string={"date": _today()}, headers=headers).json["difference"] == 0
    # An exception is dated by when it happened: today.
    listed = client.get("/api/v1/dispatch/exceptions", query_string={"date": _today()}, headers=headers).json
    assert [(e["kind"], e["task_id"]) for e in listed["items"]] == [("amount_mismatch", task["id"])], listed


@pytest.mark.parametrize("device_now", ["1970-01-01T00:00:07+00:00", "2150-06-01T12:00:00+08:00"])
def test_a_clock_reset_after_the_ops_were_made_does_not_block_the_queue(client, make, courier, device, device_now):
    """A handheld whose clock reset to 1970 (a flat battery) after it queued its ops, or jumped past 2100, sent a
    device_now outside the range of times: the whole batch was 422 and the queue never moved. The clock is flagged
    like any other wrong clock (its skew held within 32 bits) and the ops, made under a good clock, are applied."""
    task = make.task(courier=courier)
    ops = [device.op("stop.arrive", task["id"], {"lat": 31.23, "lon": 121.47})]
    response = client.post("/api/v1/sync/push", json={"device_id": device.id, "ops": ops, "device_now": device_now},
                           headers=device.headers)
    assert response.status_code == 200, response.json
    assert [r["status"] for r in response.json["results"]] == ["applied"]
    assert response.json["clock_suspect"] is True and 365 * 86400 < abs(response.json["clock_skew_s"]) <= MAX_INT32
    assert response.json["last_seq"] == 1
