"""Attacks on issue 22 from outside (the journey, lost parcels, the promise, claims, their figures): each test
plays a courier, a dispatcher, an upstream system or a customer trying to break a rule or flatter a figure,
through the push path and the HTTP API, on both engines."""
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from server import jobs
from tests.api.test_customer_page import issue, path_of
from tests.sync.test_handover import codes
from tests.sync.test_scans import journey, scan, up, upstream

KPIS = "/api/v1/reports/kpis"


def figures(app, client, make) -> dict:
    """Today's (depot-local) figures as (numerator, denominator, unknown)."""
    day = datetime.now(ZoneInfo(app.config["TIMEZONE"])).date().isoformat()
    report = client.get(KPIS, query_string={"from": day, "to": day}, headers=make.headers("quality")).json
    return {name: (f["numerator"], f["denominator"], f.get("unknown"))
            for name, f in report["total"]["figures"].items()}


def test_a_scan_whose_time_the_server_had_to_guess_is_not_timely(app, midday, device, make, courier, client,
                                                                 server_clock):
    """tracking_timeliness true by construction: an event whose clock cannot be trusted (an upstream scan dated
    2099 or 1970, a handheld's op dated 2099) is put at its receipt, so received minus effective is 0 and it
    counted as timely whenever it really happened. Its timeliness is unknown: never a pass.

    Two events told in time (an upstream scan 5 min old, a courier's scan now) and three at guessed times:
    timely 2/5, unknown 3.
    """
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier, parcels=[{"parcel_no": "T1"}])
    now = datetime.now(timezone.utc)
    upstream(make, up("G-1", "T1", at=now - timedelta(minutes=5)),
             up("G-2", "T1", "out_for_delivery", at=datetime(2099, 1, 1, tzinfo=timezone.utc)),
             up("G-3", "T1", "exception", at=datetime(1970, 1, 1, tzinfo=timezone.utc)))
    good = device.op("parcel.scan", task["id"], scan("T1", "arrived_depot"))
    future = device.op("parcel.scan", task["id"], scan("T1", "exception"))
    future["device_time"] = "2099-06-01T09:00:00+08:00"
    results = device.push([good, future])["results"]
    assert codes(results) == [("applied", None)] * 2 and results[1]["clock_suspect"]
    timely = figures(app, client, make)["tracking_timeliness"]
    assert timely == (2, 5, 3)


def test_a_parcel_number_shared_by_two_tasks_does_not_put_one_customers_journey_on_the_others_page(
        client, make, courier, device):
    """Parcel numbers are unique within a task only: two customers' tasks may both hold "SHARED-1". The courier
    scans the second customer's parcel; the first customer's page (and dispatch's journey of the first task)
    must not show it."""
    mine = make.task(parcels=[{"parcel_no": "SHARED-1"}])
    theirs = make.task(courier=courier, parcels=[{"parcel_no": "SHARED-1"}])
    assert codes(device.push([device.op("parcel.scan", theirs["id"], scan("SHARED-1", "out_for_delivery"))])[
        "results"]) == [("applied", None)]
    assert [i["task_id"] for i in journey(make, theirs["id"])["journey"]] == [theirs["id"]]
    assert journey(make, mine["id"])["journey"] == []
    page = client.get(path_of(issue(client, make, mine["id"])) + "?lang=en")
    assert page.status_code == 200
    assert "No tracking events yet." in page.text and "Out for delivery" not in page.text


def test_a_manifest_update_does_not_wipe_a_parcel_confirmed_lost(app, midday, client, make, courier, server_clock):
    """A parcel dispatch confirmed lost stays lost when upstream sends the task's manifest again with its parcels
    touched (a description changed): the manifest replaced the task's parcel rows, so the lost state went, and
    loss_rate's numerator with it — a depot could clear its losses by re-importing."""
    app.config["LOST_AFTER_HOURS"] = 1
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier, waybill_no="LOST-WB-1",
                         parcels=[{"parcel_no": "L1", "description": "box"}])
    upstream(make, up("L-1", "L1", at=datetime.now(timezone.utc) - timedelta(hours=2)))
    assert jobs.run("lost-parcels") == {"suspected": 1}
    parcel = journey(make, task["id"])["parcels"][0]
    assert client.post(f"/api/v1/dispatch/parcels/{parcel['id']}/lost-state", json={"state": "lost"},
                       headers=make.headers("dispatcher")).status_code == 200
    assert figures(app, client, make)["loss_rate"][:2] == (1, 1)
    spec = make.task_spec(waybill_no="LOST-WB-1", parcels=[{"parcel_no": "L1", "description": "carton"}])
    answer = client.post("/api/v1/integrations/manifests", data=json.dumps([spec]), content_type="application/json",
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    after = journey(make, task["id"])["parcels"]
    assert [(p["parcel_no"], p["lost_state"]) for p in after] == [("L1", "lost")]
    assert figures(app, client, make)["loss_rate"][:2] == (1, 1)
    # Dropping the lost parcel from the task is no way out either: the row is held back, naming why.
    spec = make.task_spec(waybill_no="LOST-WB-1", parcels=[{"parcel_no": "L2", "description": "carton"}])
    report = client.post("/api/v1/integrations/manifests", data=json.dumps([spec]), content_type="application/json",
                         headers=make.headers("dispatcher")).json
    assert report["counts"]["quarantined"] == 1
    assert {(r["field"], r["code"]) for r in report["rows"][0]["reasons"]} == {("parcels", "parcel_in_lost_state")}
    assert [(p["parcel_no"], p["lost_state"]) for p in journey(make, task["id"])["parcels"]] == [("L1", "lost")]
    assert figures(app, client, make)["loss_rate"][:2] == (1, 1)
