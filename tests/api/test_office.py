"""The office's API: the exceptions queue worked through, a courier's day, a depot's cash, and the CSV exports.

Every day here is built through the real push path (a handheld twin): payments at the door, contact attempts,
checks and a shift; the figures are computed by hand, to the fen.
"""
import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.clock import local_date, utcnow
from server.extensions import db
from server.models import AuditEntry, LeakExportNote
from server.services import appointments
from tests.sync.conftest import Device, start_shift
from tests.sync.test_handover import due, inspect_ok

HERE = {"lat": 31.23, "lon": 121.47}


@pytest.fixture
def courier(make):
    """A courier of depot SH01."""
    return make.courier(depot="SH01")


@pytest.fixture
def device(client, make, courier):
    """The courier's handheld."""
    return Device(client, make.device(courier))


def _pay(device: Device, make, courier, cod: int, method: str = "cash") -> dict:
    """A delivery paid at the door through the push path; the task."""
    task = make.task(courier=courier, cod_amount=cod)
    results = device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": method})])
    assert [r["status"] for r in results["results"]] == ["applied", "applied"], results
    return task


def _remit(client, make, courier, day: str, amount: int):
    """A remittance at the depot."""
    answer = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/remittances", json={"date": day, "amount": amount},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json


def _rows(answer) -> list[dict]:
    """A CSV answer read back (BOM and all) as dicts."""
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    text = answer.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


# ---- A courier's day, a depot's cash

def test_a_courier_day_in_one_call_reconciles_to_the_fen(client, make, courier, device):
    """Tasks, attempts, cash (hand-computed), violations, grade with reasons, the shift and its checks."""
    start_shift(make, courier, device)
    today = local_date(utcnow()).isoformat()
    # 4990 + 1200 and 1234 + 1200 in cash, 2000 + 1200 by QR (make.task's fee is 1200).
    paid = [_pay(device, make, courier, 4990), _pay(device, make, courier, 1234), _pay(device, make, courier, 2000, "qr")]
    called = make.task(courier=courier)
    device.push([device.op("appointment.contact", called["id"], {"outcome": "wrong_number", "note": "no such"})])
    _remit(client, make, courier, today, 8600)
    answer = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/day", query_string={"date": today},
                        headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    day = answer.json
    cash = day["cash"]
    assert (cash["collected"], cash["collected_qr"], cash["remitted"], cash["corrections"], cash["difference"]) == (
        6190 + 2434, 3200, 8600, 0, 24)
    service_days = {task["service_date"] for task in [*paid, called]}
    if service_days == {today}:  # a window an hour ahead may fall on tomorrow just before the depot's midnight
        assert sorted(t["id"] for t in day["tasks"]) == sorted(t["id"] for t in [*paid, called])
    assert [(a["task_id"], a["outcome"]) for a in day["attempts"]] == [(called["id"], "wrong_number")]
    assert [s["status"] for s in day["shifts"]] == ["open"]
    assert sorted(c["kind"] for c in day["checks"]) == ["conduct.pre_shift", "vehicle.pre_trip"]
    assert day["grade"]["courier_id"] == courier["id"] and "reasons" in day["grade"]
    assert day["courier"]["depot"] == "SH01" and day["violations"] == []
    # The same cash as the ledger's own answer: one rule.
    own = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/cash", query_string={"date": today},
                     headers=make.headers("quality")).json
    assert {k: own[k] for k in ("collected", "remitted", "difference")} == {
        k: cash[k] for k in ("collected", "remitted", "difference")}
    # Customer data handed out is noted for leak detection.
    assert db.session.scalar(select(LeakExportNote.what).where(LeakExportNote.what == "courier_day")) == "courier_day"


def test_violations_of_the_day_are_in_it(client, make, courier, device):
    """Work without a shift check is a violation of the day (and an exception in the queue)."""
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 100)
    day = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/day", query_string={"date": today},
                     headers=make.headers("dispatcher")).json
    assert [v["code"] for v in day["violations"]] == ["work_without_shift_check"]
    assert day["cash"]["difference"] == 1300 and day["shifts"] == []


def test_depot_cash_lists_every_courier_with_remittances_and_totals(client, make, courier, device):
    """Two couriers of SH01 and one of another depot: the depot's figures add up, to the fen."""
    other = make.courier(depot="SH01")
    elsewhere = make.courier(depot="BJ02")
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 4990)
    _pay(Device(client, make.device(other)), make, other, 1234)
    _pay(Device(client, make.device(elsewhere)), make, elsewhere, 50)
    _remit(client, make, courier, today, 6000)
    _remit(client, make, courier, today, 190)
    answer = client.get("/api/v1/dispatch/depots/SH01/cash", query_string={"date": today},
                        headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    depot = answer.json
    rows = {row["courier_id"]: row for row in depot["couriers"]}
    assert set(rows) == {courier["id"], other["id"]}
    assert [r["amount"] for r in rows[courier["id"]]["remittances"]] == [6000, 190]
    assert (rows[courier["id"]]["collected"], rows[courier["id"]]["difference"]) == (6190, 0)
    assert (rows[other["id"]]["collected"], rows[other["id"]]["remitted"], rows[other["id"]]["difference"]) == (
        2434, 0, 2434)
    assert depot["totals"] == {"collected": 8624, "collected_qr": 0, "remitted": 6190, "corrections": 0,
                               "difference": 2434}


@pytest.mark.parametrize("url", ["/api/v1/dispatch/couriers/{id}/day", "/api/v1/dispatch/depots/SH01/cash"])
@pytest.mark.parametrize("query", [{}, {"date": "tomorrow"}, {"date": "2026-02-30"}, {"date": "2026-01-01", "x": "1"}])
def test_bad_dates_are_422_naming_the_field(client, make, courier, url, query):
    """No date, or not a date: 422 naming date (an unknown parameter is refused or ignored, never a 500)."""
    answer = client.get(url.format(id=courier["id"]), query_string=query, headers=make.headers("dispatcher"))
    if "x" in query:
        assert answer.status_code in (200, 422)
        return
    assert answer.status_code == 422 and "date" in answer.json["fields"], answer.json


def test_unknown_courier_or_depot_is_404(client, make, courier):
    """A courier or depot that does not exist."""
    headers = make.headers("dispatcher")
    day = client.get("/api/v1/dispatch/couriers/c-nobody/day", query_string={"date": "2026-01-01"}, headers=headers)
    assert day.status_code == 404 and day.json["code"] == "courier_not_found"
    depot = client.get("/api/v1/dispatch/depots/NOWHERE/cash", query_string={"date": "2026-01-01"}, headers=headers)
    assert depot.status_code == 404 and depot.json["code"] == "depot_not_found"


def test_wrong_role_is_403(client, make, courier, device):
    """Maintenance and a handheld read neither view."""
    for headers in (make.headers("maintenance"), device.headers):
        for url in (f"/api/v1/dispatch/couriers/{courier['id']}/day", "/api/v1/dispatch/depots/SH01/cash"):
            answer = client.get(url, query_string={"date": "2026-01-01"}, headers=headers)
            assert answer.status_code == 403, (url, answer.json)


# ---- The exceptions queue

def _queue(client, make, **query) -> list[dict]:
    """The queue's items for the filters."""
    answer = client.get("/api/v1/dispatch/exceptions", query_string=query, headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    return answer.json["items"]


def _audits(action: str, exception_id: int) -> int:
    """How many audit rows of the action name the exception."""
    return len(db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == action, AuditEntry.entity == "handover_exceptions",
        AuditEntry.entity_id == str(exception_id))).all())


def test_acknowledge_and_resolve_are_audited_and_idempotent(client, make, courier, device, app):
    """A mismatch at the door and a wrong number join one queue; acknowledged, resolved with a note; retries change
    nothing; another note on a resolved one is 409."""
    task = make.task(courier=courier)
    device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                 device.op("pod.collect_payment", task["id"], {"amount": 1, "method": "cash"})])
    device.push([device.op("appointment.contact", task["id"], {"outcome": "wrong_number"})])
    opened = _queue(client, make, status="open", courier_id=courier["id"])
    assert sorted(e["kind"] for e in opened) == ["amount_mismatch", "work_without_shift_check", "wrong_number"]
    assert {e["status"] for e in opened} == {"open"}
    mismatch = next(e for e in opened if e["kind"] == "amount_mismatch")
    url = f"/api/v1/dispatch/exceptions/{mismatch['id']}"
    dispatcher = make.headers("dispatcher")
    first = client.post(url + "/acknowledge", headers=dispatcher)
    assert first.status_code == 200 and first.json["status"] == "acknowledged", first.json
    assert first.json["acknowledged_by"] and first.json["acknowledged_at"]
    again = client.post(url + "/acknowledge", headers=dispatcher)
    assert again.status_code == 200 and again.json["acknowledged_at"] == first.json["acknowledged_at"]
    assert _audits("exception.acknowledge", mismatch["id"]) == 1
    assert [e["id"] for e in _queue(client, make, status="acknowledged")] == [mismatch["id"]]
    note = "Customer paid the rest by bank transfer; ref 88."
    resolved = client.post(url + "/resolve", json={"note": note}, headers=dispatcher)
    assert resolved.status_code == 200 and resolved.json["status"] == "resolved", resolved.json
    assert (resolved.json["resolution_note"], resolved.json["resolved_by"]) == (note, first.json["acknowledged_by"])
    retried = client.post(url + "/resolve", json={"note": note}, headers=dispatcher)
    assert retried.status_code == 200 and retried.json["resolved_at"] == resolved.json["resolved_at"]
    other = client.post(url + "/resolve", json={"note": "something else"}, headers=dispatcher)
    assert other.status_code == 409 and other.json["code"] == "exception_already_resolved", other.json
    assert _audits("exception.resolve", mismatch["id"]) == 1
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "exception.resolve"))
    assert audit.before["resolved_at"] is None and audit.after["resolution_note"] == note
    assert [e["id"] for e in _queue(client, make, status="resolved")] == [mismatch["id"]]
    assert mismatch["id"] not in {e["id"] for e in _queue(client, make, status="open")}
    # Resolving an open one acknowledges it too, by the same hand.
    wrong = next(e for e in opened if e["kind"] == "wrong_number")
    direct = client.post(f"/api/v1/dispatch/exceptions/{wrong['id']}/resolve", json={"note": "new number on file"},
                         headers=dispatcher).json
    assert direct["acknowledged_at"] == direct["resolved_at"] and direct["acknowledged_by"] == direct["resolved_by"]


def test_queue_refusals(client, make, courier, device):
    """Unknown exception 404; quality reads but does not work the queue (403); an empty note 422."""
    task = make.task(courier=courier)
    device.push([device.op("appointment.contact", task["id"], {"outcome": "wrong_number"})])
    exception = _queue(client, make, kind="wrong_number")[0]
    dispatcher = make.headers("dispatcher")
    assert client.post("/api/v1/dispatch/exceptions/999999/acknowledge", headers=dispatcher).status_code == 404
    assert client.post("/api/v1/dispatch/exceptions/999999/resolve", json={"note": "x"},
                       headers=dispatcher).json["code"] == "exception_not_found"
    assert client.post(f"/api/v1/dispatch/exceptions/{exception['id']}/acknowledge",
                       headers=make.headers("quality")).status_code == 403
    assert client.post(f"/api/v1/dispatch/exceptions/{exception['id']}/acknowledge",
                       headers=device.headers).status_code == 403
    empty = client.post(f"/api/v1/dispatch/exceptions/{exception['id']}/resolve", json={"note": "  "},
                        headers=dispatcher)
    assert empty.status_code == 422 and "note" in empty.json["fields"]
    assert _queue(client, make, kind="wrong_number", status="open")[0]["id"] == exception["id"]


def test_a_promised_window_never_attempted_joins_the_queue(client, make, courier):
    """The sweep's not_attempted is in the queue, dated by the window's end."""
    task = make.task(courier=courier)
    assert appointments.sweep_missed(now=utcnow() + timedelta(hours=3, minutes=1))["not_attempted"] == 1
    found = [e for e in _queue(client, make, kind="not_attempted") if e["task_id"] == task["id"]]
    assert len(found) == 1 and found[0]["status"] == "open" and found[0]["detail"]["waybill_no"] == task["waybill_no"]


def test_a_window_under_review_is_resolved_by_deciding_it(client, make, courier, device):
    """A missed window whose arrival inside it synced late goes to review; the queue refuses to resolve it by hand,
    and deciding the review resolves it with the decision's note."""
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(hours=1)
    task = make.task(courier=courier, window={"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()})
    dispatcher = make.headers("dispatcher")
    confirmed = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm", json={"window": task["window"]},
                            headers=dispatcher)
    assert confirmed.status_code == 200, confirmed.json
    assert appointments.sweep_missed(now=now + timedelta(hours=1, minutes=1))["missed"] == 1
    device.push([device.op("stop.arrive", task["id"], HERE)])  # made inside the window, reaching a decided one
    reviews = _queue(client, make, kind="window_review")
    assert len(reviews) == 1, _queue(client, make, courier_id=courier["id"])
    review = reviews[0]
    refused = client.post(f"/api/v1/dispatch/exceptions/{review['id']}/resolve", json={"note": "kept"},
                          headers=dispatcher)
    assert refused.status_code == 409 and refused.json["code"] == "review_decides", refused.json
    decided = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/review",
                          json={"outcome": "kept", "note": "GPS shows the van there at 10:30"}, headers=dispatcher)
    assert decided.status_code == 200, decided.json
    after = _queue(client, make, kind="window_review")[0]
    assert (after["status"], after["resolution_note"]) == ("resolved", "GPS shows the van there at 10:30")
    assert _audits("exception.resolve", review["id"]) == 1


# ---- CSV exports

def test_exceptions_ledger_and_violations_as_csv_read_back(client, make, courier, device):
    """Each export is every matching row, the JSON's fields as columns, noted for leak detection."""
    today = local_date(utcnow()).isoformat()
    paid = _pay(device, make, courier, 4990)
    _remit(client, make, courier, today, 6190)
    dispatcher = make.headers("dispatcher")
    ledger = _rows(client.get("/api/v1/dispatch/ledger", query_string={"date": today, "format": "csv",
                                                                        "courier_id": courier["id"]}, headers=dispatcher))
    assert [(r["kind"], int(r["amount"]), r["method"]) for r in ledger] == [("payment", 6190, "cash"),
                                                                            ("remittance", 6190, "")]
    page = client.get("/api/v1/dispatch/ledger", query_string={"date": today, "depot": "SH01", "limit": 1},
                      headers=dispatcher).json
    assert len(page["items"]) == 1 and page["next_cursor"]
    exceptions = _rows(client.get("/api/v1/dispatch/exceptions", query_string={"format": "csv", "status": "open"},
                                  headers=dispatcher))
    assert [(r["kind"], r["task_id"], r["status"], r["detail.waybill_no"]) for r in exceptions] == [
        ("work_without_shift_check", paid["id"], "open", paid["waybill_no"])]
    violations = _rows(client.get("/api/v1/quality/violations", query_string={"format": "csv",
                                                                              "courier_id": courier["id"]},
                                  headers=make.headers("quality")))
    assert [(r["code"], r["courier_id"], r["status"]) for r in violations] == [
        ("work_without_shift_check", courier["id"], "open")]
    noted = set(db.session.scalars(select(LeakExportNote.what)))
    assert {"ledger", "exceptions", "violations"} <= noted
    bad = client.get("/api/v1/dispatch/ledger", query_string={"date": today, "format": "xlsx"}, headers=dispatcher)
    assert bad.status_code == 422 and "format" in bad.json["fields"]
    assert client.get("/api/v1/dispatch/ledger", query_string={"format": "csv"},
                      headers=dispatcher).json["fields"].keys() == {"date"}
