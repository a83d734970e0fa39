"""The cash ledger: payments from handovers, remittances, corrections; it reconciles to the fen."""
import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from server.clock import local_date, utcnow
from server.extensions import db
from server.models import AuditEntry, LedgerEntry
from tests.sync.conftest import Device
from tests.sync.test_handover import due, inspect_ok



def ago(days: int) -> str:
    """A recent depot-local day (the ledger takes no day older than a year, none to come)."""
    return (local_date(utcnow()) - timedelta(days=days)).isoformat()


@pytest.fixture
def courier(make):
    """A courier."""
    return make.courier()


@pytest.fixture
def device(client, make, courier):
    """An enrolled handheld of the courier."""
    return Device(client, make.device(courier))


def _cash(client, make, courier_id: str, day: str, role: str = "dispatcher"):
    """GET the day's cash."""
    return client.get(f"/api/v1/dispatch/couriers/{courier_id}/cash", query_string={"date": day},
                      headers=make.headers(role))


def _pay(device: Device, make, courier, amount_cod: int, method: str = "cash") -> int:
    """A delivery paid at the door; the amount taken."""
    task = make.task(courier=courier, cod_amount=amount_cod)
    results = device.push([device.op("pod.inspect", task["id"], inspect_ok(task)),
                           device.op("pod.collect_payment", task["id"], {"amount": due(task), "method": method})])
    assert [r["status"] for r in results["results"]] == ["applied", "applied"]
    return due(task)


def test_day_reconciles(client, make, courier, device):
    """collected (cash), QR beside it, remitted, corrections, difference; every entry listed."""
    today = local_date(utcnow()).isoformat()
    cash = _pay(device, make, courier, 4990) + _pay(device, make, courier, 100)
    qr = _pay(device, make, courier, 2000, "qr")
    headers = make.headers("dispatcher")
    remitted = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/remittances",
                           json={"date": today, "amount": cash - 300, "note": "evening"}, headers=headers)
    assert remitted.status_code == 201 and remitted.json["kind"] == "remittance"
    payment = db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payment")).first()
    corrected = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/cash-corrections",
                            json={"date": today, "amount": -300, "note": "counterfeit note", "corrects_id": payment.id},
                            headers=headers)
    assert corrected.status_code == 201 and corrected.json["corrects_id"] == payment.id
    day = _cash(client, make, courier["id"], today, "quality").json
    assert (day["collected"], day["collected_qr"], day["remitted"], day["corrections"], day["difference"]) == (
        cash, qr, cash - 300, -300, 0)
    assert [e["kind"] for e in day["entries"]] == ["payment"] * 3 + ["remittance", "correction"]
    # The payment itself is untouched; both staff entries are audited.
    db.session.expire_all()
    assert db.session.get(LedgerEntry, payment.id).amount == payment.amount
    assert sorted(db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("ledger.%")))) == [
        "ledger.correction", "ledger.remittance"]


def test_sums_reconcile_property(client, make, courier):
    """Random remittances and corrections: the difference is always collected + corrections - remitted."""
    rng = random.Random(10)
    today = local_date(utcnow()).isoformat()
    headers = make.headers("dispatcher")
    remitted = corrections = 0
    for _ in range(12):
        amount = rng.randint(1, 50_000)
        if rng.random() < 0.5:
            client.post(f"/api/v1/dispatch/couriers/{courier['id']}/remittances", json={"date": today, "amount": amount},
                        headers=headers)
            remitted += amount
        else:
            signed = amount * rng.choice((1, -1))
            client.post(f"/api/v1/dispatch/couriers/{courier['id']}/cash-corrections",
                        json={"date": today, "amount": signed, "note": "count"}, headers=headers)
            corrections += signed
        day = _cash(client, make, courier["id"], today).json
        assert (day["remitted"], day["corrections"]) == (remitted, corrections)
        assert day["difference"] == day["collected"] + corrections - remitted
        assert sum(e["amount"] for e in day["entries"] if e["kind"] == "remittance") == remitted


def test_days_are_separate(client, make, courier):
    """A remittance counts on its own day only."""
    headers = make.headers("dispatcher")
    client.post(f"/api/v1/dispatch/couriers/{courier['id']}/remittances", json={"date": ago(1), "amount": 500},
                headers=headers)
    assert _cash(client, make, courier["id"], ago(2)).json["remitted"] == 0
    assert _cash(client, make, courier["id"], ago(1)).json["difference"] == -500


@pytest.mark.parametrize("path, body, field", [
    ("remittances", {"amount": 100}, "date"),
    ("remittances", {"date": "2026-01-01", "amount": 0}, "amount"),
    ("remittances", {"date": "2026-01-01", "amount": 10.5}, "amount"),
    ("remittances", {"date": "2026-01-01", "amount": "100"}, "amount"),
    ("cash-corrections", {"date": "2026-01-01", "amount": 0, "note": "x"}, "amount"),
    ("cash-corrections", {"date": "2026-01-01", "amount": 5}, "note"),
])
def test_bad_input_names_the_field(client, make, courier, path, body, field):
    """422 naming the field; nothing written."""
    answer = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/{path}", json=body,
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and field in answer.json["fields"], answer.json
    assert db.session.scalars(select(LedgerEntry)).all() == []


def test_roles_and_unknown(client, make, courier, device):
    """Staff only: quality reads, only dispatch writes; a handheld gets nothing; an unknown courier or entry is 404."""
    body = {"date": ago(2), "amount": 100}
    url = f"/api/v1/dispatch/couriers/{courier['id']}"
    assert client.post(f"{url}/remittances", json=body, headers=make.headers("quality")).status_code == 403
    assert client.post(f"{url}/remittances", json=body, headers=device.headers).status_code in (401, 403)
    assert client.get(f"{url}/cash", query_string={"date": ago(2)},
                      headers=device.headers).status_code in (401, 403)
    assert _cash(client, make, "c_nope", ago(2)).status_code == 404
    assert client.post("/api/v1/dispatch/couriers/c_nope/remittances", json=body,
                       headers=make.headers("dispatcher")).status_code == 404
    answer = client.post(f"{url}/cash-corrections", json={**body, "note": "x", "corrects_id": 999},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 404 and answer.json["code"] == "ledger_entry_not_found"


@pytest.mark.parametrize("path, note", [("remittances", None), ("cash-corrections", "count")])
@pytest.mark.parametrize("offset, why", [(1, "A future day."), (367, "Older than 366 days.")])
def test_a_day_to_come_or_older_than_a_year_is_refused(client, make, courier, path, note, offset, why):
    """Books are kept for days that have begun and are at most a year old: 422 naming date, nothing written."""
    today = local_date(utcnow())
    day = today + timedelta(days=offset) if offset == 1 else today - timedelta(days=offset)
    body = {"date": day.isoformat(), "amount": 100, **({"note": note} if note else {})}
    answer = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/{path}", json=body,
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and answer.json["fields"]["date"] == [why], answer.json
    assert db.session.scalars(select(LedgerEntry)).all() == []


def test_a_correction_is_booked_on_the_day_it_corrects(client, make, courier):
    """Naming an entry of another day would balance the wrong day: 422 naming corrects_id; on its day it is taken."""
    url = f"/api/v1/dispatch/couriers/{courier['id']}"
    headers = make.headers("dispatcher")
    entry = client.post(f"{url}/remittances", json={"date": ago(2), "amount": 500}, headers=headers).json
    wrong = client.post(f"{url}/cash-corrections", json={"date": ago(1), "amount": -100, "note": "miscounted",
                                                         "corrects_id": entry["id"]}, headers=headers)
    assert wrong.status_code == 422 and "corrects_id" in wrong.json["fields"]
    right = client.post(f"{url}/cash-corrections", json={"date": ago(2), "amount": -100, "note": "miscounted",
                                                         "corrects_id": entry["id"]}, headers=headers)
    assert right.status_code == 201 and _cash(client, make, courier["id"], ago(2)).json["corrections"] == -100
    assert _cash(client, make, courier["id"], ago(1)).json["corrections"] == 0
