"""The office's console pages: the exceptions queue worked through a browser's forms, a courier's day and a depot's
cash reconciling to the fen, and the CSV downloads on the session cookie."""
import csv
import io

from sqlalchemy import select

from server.clock import local_date, utcnow
from server.extensions import db
from server.models import AuditEntry
from tests.api.test_office import _pay, _remit
from tests.sync.conftest import Device


def test_queue_acknowledge_and_resolve_through_the_forms(client, make, console_as, csrf_of):
    """A dispatcher acknowledges and resolves with a note; both audited; quality sees no buttons and is refused."""
    courier = make.courier(depot="SH01")
    device = Device(client, make.device(courier))
    task = make.task(courier=courier)
    device.push([device.op("appointment.contact", task["id"], {"outcome": "wrong_number"})])
    exception_id = client.get("/api/v1/dispatch/exceptions", query_string={"kind": "wrong_number"},
                              headers=make.headers("dispatcher")).json["items"][0]["id"]
    browser = console_as("dispatcher")
    page = browser.get("/console/exceptions").get_data(as_text=True)
    assert f'id="ack-{exception_id}"' in page and task["waybill_no"] in page
    token = csrf_of(browser, "/console/exceptions")
    acked = browser.post(f"/console/exceptions/{exception_id}/acknowledge", data={"csrf_token": token})
    assert acked.status_code == 303
    assert browser.post(f"/console/exceptions/{exception_id}/acknowledge", data={}).status_code == 400  # no CSRF
    resolved = browser.post(f"/console/exceptions/{exception_id}/resolve",
                            data={"csrf_token": token, "note": "New number from the sender"})
    assert resolved.status_code == 303
    done = browser.get("/console/exceptions?status=resolved&lang=en").get_data(as_text=True)
    assert "New number from the sender" in done and "Resolved" in done
    assert sorted(db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "handover_exceptions"))) == [
        "exception.acknowledge", "exception.resolve"]
    again = browser.post(f"/console/exceptions/{exception_id}/resolve", data={"csrf_token": token, "note": "other"})
    assert again.status_code == 200 and "alert" in again.get_data(as_text=True)
    quality = console_as("quality")
    assert 'id="ack-' not in quality.get("/console/exceptions?status=all").get_data(as_text=True)
    token = csrf_of(quality, "/console/exceptions")
    assert quality.post(f"/console/exceptions/{exception_id}/acknowledge", data={"csrf_token": token}).status_code == 403
    rows = list(csv.DictReader(io.StringIO(browser.get("/console/exceptions.csv?status=all").get_data(as_text=True)[1:])))
    assert [(r["id"], r["status"]) for r in rows] == [(str(exception_id), "resolved")]


def test_a_courier_day_and_depot_cash_to_the_fen(client, make, console_as):
    """Cash collected at the door, a remittance: the page shows the hand-computed difference; the ledger CSV."""
    courier = make.courier(depot="SH01")
    device = Device(client, make.device(courier))
    today = local_date(utcnow()).isoformat()
    _pay(device, make, courier, 4990)
    _pay(device, make, courier, 1234)
    _remit(client, make, courier, today, 8600)
    browser = console_as("dispatcher")
    day = browser.get(f"/console/couriers/{courier['id']}/day?date={today}").get_data(as_text=True)
    assert 'id="collected">¥86.24<' in day and 'id="remitted">¥86.00<' in day and 'id="difference">¥0.24<' in day
    depot = browser.get(f"/console/depots/SH01/cash?date={today}").get_data(as_text=True)
    assert "¥86.24" in depot and "¥0.24" in depot
    ledger = browser.get(f"/console/ledger.csv?depot=SH01&date={today}")
    assert ledger.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(ledger.get_data(as_text=True)[1:])))
    assert sorted(int(r["amount"]) for r in rows) == [2434, 6190, 8600]
    assert browser.get("/console/couriers/c-nobody/day").status_code == 404
    assert console_as("maintenance").get("/console/depots/SH01/cash").status_code == 403
