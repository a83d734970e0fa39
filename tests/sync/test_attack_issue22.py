"""Attacks on issue 22 from outside (the journey, lost parcels, the promise, claims, their figures): each test
plays a courier, a dispatcher, an upstream system or a customer trying to break a rule or flatter a figure,
through the push path and the HTTP API, on both engines."""
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


from server import jobs
from tests.api.test_customer_page import issue, path_of
from tests.sync.conftest import Device
from tests.sync.test_handover import AT_DOOR, codes, inspect_ok, sign, upload, verify
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


def test_a_late_signoff_under_a_broken_clock_is_not_kept_by_its_promise(app, midday, client, make, server_clock):
    """promised_time_achievement gamed by the device clock: the parcel was promised an hour ago and signed for
    now, but the courier's clock says 1970. The server cannot know when it was signed, so it holds the sign-off
    to the device's previous op (a scan three hours ago, before the promise): the handover's completion lands
    before the promise and counted as kept. A suspect clock earns no credit: unknown, never a pass (1 unknown,
    0/1), and collect_to_signoff leaves the guessed duration out.
    """
    now0 = server_clock.now().replace(microsecond=0)
    courier = make.courier()
    with server_clock.at(now0 - timedelta(days=1)):
        device = Device(client, make.device(courier))
    signature = upload(device)
    with server_clock.at(now0 - timedelta(hours=4)):
        task = make.task(courier=courier, cod_amount=0, fees=[], parcels=[{"parcel_no": "PROM-1", "count": 1}],
                         service_product="standard", collected_at=(now0 - timedelta(hours=73)).isoformat())
    assert datetime.fromisoformat(task["promise"]["promised_at"]) == now0 - timedelta(hours=1)
    early = device.op("parcel.scan", task["id"], scan("PROM-1", "out_for_delivery"))
    early["device_time"] = (now0 - timedelta(hours=3)).isoformat()
    ops = [early, device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspect_ok(task)),
           device.op("pod.sign", task["id"], sign(signature, signer_name="Recipient", **AT_DOOR))]
    for op in ops[1:]:
        op["device_time"] = "1970-01-01T08:00:00+08:00"
    results = device.push(ops)["results"]
    assert codes(results) == [("applied", None)] * 4 and results[-1]["clock_suspect"]
    shown = figures(app, client, make)
    assert shown["promised_time_achievement"] == (0, 1, 1)
    assert shown["collect_to_signoff"][:2] == (0, 0)  # a guessed sign-off time is no duration either


def test_cancelling_a_parcel_after_its_promise_passed_does_not_take_the_failure_away(app, midday, client, make,
                                                                                    server_clock):
    """promised_time_achievement gamed by dispatch: a parcel promised an hour ago is still undelivered (a failure,
    0/1); cancelling it now took it out of the figure (cancelled parcels are out), leaving nothing failed. A task
    cancelled after its promise passed had already failed it: still 0/1. One cancelled before its promise (the
    sender called it off) stays out: a second such task adds nothing."""
    now0 = server_clock.now().replace(microsecond=0)
    with server_clock.at(now0 - timedelta(hours=4)):
        late = make.task(parcels=[{"parcel_no": "CX-1"}], service_product="standard",
                         collected_at=(now0 - timedelta(hours=73)).isoformat())
        early = make.task(parcels=[{"parcel_no": "CX-2"}], service_product="standard",
                          collected_at=(now0 - timedelta(hours=73)).isoformat())
    with server_clock.at(now0 - timedelta(hours=2)):  # before its promise (now0 - 1 h)
        assert client.post(f"/api/v1/dispatch/tasks/{early['id']}/cancel", json={"reason": "sender cancelled"},
                           headers=make.headers("dispatcher")).status_code == 200
    assert figures(app, client, make)["promised_time_achievement"][:2] == (0, 1)
    assert client.post(f"/api/v1/dispatch/tasks/{late['id']}/cancel", json={"reason": "cannot find it"},
                       headers=make.headers("dispatcher")).status_code == 200
    assert figures(app, client, make)["promised_time_achievement"][:2] == (0, 1)


def test_a_confirmed_loss_is_not_undone_without_the_parcel_being_seen(app, midday, client, make, courier, device,
                                                                     server_clock):
    """loss_rate gamed by dispatch: a parcel confirmed lost (1/1) marked found with nothing to show for it left the
    numerator (0/1). A confirmed loss is undone only by a scan of the parcel that reached the server after the
    loss was confirmed: without one, 422 naming state (found_without_scan) and nothing changes; after the courier's
    scan, found (0/1). (The lost-parcels job also suspected another task's never-scanned parcel of the same number:
    it read the last scan by number alone.)"""
    app.config["LOST_AFTER_HOURS"] = 1
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        other = make.task(courier=courier, parcels=[{"parcel_no": "F1"}])  # another customer's F1, never scanned
        task = make.task(courier=courier, parcels=[{"parcel_no": "F1"}])  # the newest holder: upstream's scan is its
    upstream(make, up("F-1", "F1", at=datetime.now(timezone.utc) - timedelta(hours=2)))
    # The other F1 has no journey to lose: only this task's is suspected.
    assert jobs.run("lost-parcels") == {"suspected": 1}
    assert journey(make, other["id"])["parcels"][0]["lost_state"] is None
    parcel = journey(make, task["id"])["parcels"][0]
    settle = lambda state: client.post(f"/api/v1/dispatch/parcels/{parcel['id']}/lost-state",  # noqa: E731
                                       json={"state": state}, headers=make.headers("dispatcher"))
    assert settle("lost").status_code == 200
    assert figures(app, client, make)["loss_rate"][:2] == (1, 1)
    refused = settle("found")
    assert refused.status_code == 422 and refused.json["code"] == "found_without_scan", refused.json
    assert "state" in refused.json["fields"]
    assert journey(make, task["id"])["parcels"][0]["lost_state"] == "lost"
    assert figures(app, client, make)["loss_rate"][:2] == (1, 1)
    scanned = device.push([device.op("parcel.scan", task["id"], scan("F1", "arrived_depot"))])["results"]
    assert codes(scanned) == [("applied", None)]
    assert journey(make, task["id"])["parcels"][0]["lost_state"] == "lost"  # a scan alone does not undo it
    assert settle("found").status_code == 200
    assert figures(app, client, make)["loss_rate"][:2] == (0, 1)


CLAIMS = "/api/v1/dispatch/claims"


def _claim_step(client, headers: dict, claim_id: int, action: str, body: dict):
    """One claim step over HTTP from a fresh client (safe in a thread): (status, json)."""
    answer = client.application.test_client().post(f"{CLAIMS}/{claim_id}/{action}", json=body, headers=headers)
    return answer.status_code, answer.json


def test_two_claims_and_two_payments_at_once(client, make):
    """A double click and a retry racing the first: four opens of the same parcel's claim at once are one claim
    (the rest 409 naming it); four payments of it at once are one payment (the rest 409 claim_wrong_status): one
    paid entry, the amount paid once."""
    from tests.sync.conftest import at_once

    task = make.task(parcels=[{"parcel_no": "RACE-1"}], fees=[{"code": "delivery", "amount": 1000}])
    body = {"origin": "dispatch", "task_id": task["id"], "kind": "loss", "description": "never arrived",
            "claimed_amount": 2000}

    dispatcher, quality, admin = (make.headers(role) for role in ("dispatcher", "quality", "admin"))

    def open_one():
        answer = client.application.test_client().post(CLAIMS, json=body, headers=dispatcher)
        return answer.status_code, answer.json

    opened = at_once(open_one, 4)
    assert sorted(status for status, _ in opened) == [201, 409, 409, 409], opened
    claim_id = next(answer["id"] for status, answer in opened if status == 201)
    assert {answer["claim_id"] for status, answer in opened if status == 409} == {claim_id}
    assert _claim_step(client, quality, claim_id, "assess", {"loss_amount": 2000})[0] == 200
    assert _claim_step(client, quality, claim_id, "approve", {})[0] == 200
    paid = at_once(lambda: _claim_step(client, admin, claim_id, "pay", {"reference": "BANK-1"}), 4)
    assert sorted(status for status, _ in paid) == [200, 409, 409, 409], paid
    claim = client.get(f"{CLAIMS}/{claim_id}", headers=admin).json
    assert [e["kind"] for e in claim["entries"]].count("paid") == 1
    assert (claim["status"], claim["paid_amount"]) == ("paid", 2000)


def test_a_clock_set_ahead_without_device_now_does_not_make_a_late_op_timely(app, midday, client, make, courier,
                                                                             device, server_clock):
    """tracking_timeliness gamed by a clock set ahead: the courier scanned 40 minutes ago with the handheld's clock
    36 minutes fast, so the op says 4 minutes ago; pushed now without device_now, it counted as timely (received 4
    minutes after its device time). The server cannot know when it happened: unknown, not timely (0/1). Sent
    with device_now, the clock's 36 minutes are measured: a skew beyond the tolerance makes the op suspect
    (docs/protocol.md), unknown too (0/2, 2 unknown), never timely."""
    device.sends_device_now = False
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier, parcels=[{"parcel_no": "AHEAD-1"}])
    op = device.op("parcel.scan", task["id"], scan("AHEAD-1", "arrived_depot"))
    op["device_time"] = (datetime.now(timezone.utc) - timedelta(minutes=4)).isoformat()
    assert codes(device.push([op])["results"]) == [("applied", None)]
    assert figures(app, client, make)["tracking_timeliness"] == (0, 1, 1)
    device.sends_device_now = True
    fast = device.op("parcel.scan", task["id"], scan("AHEAD-1", "out_for_delivery"))
    fast["device_time"] = (datetime.now(timezone.utc) + timedelta(minutes=36) - timedelta(minutes=40)).isoformat()
    pushed = client.post("/api/v1/sync/push", headers=device.headers, json={
        "device_id": device.id, "ops": [fast],
        "device_now": (datetime.now(timezone.utc) + timedelta(minutes=36)).isoformat()}).json
    assert pushed["clock_skew_s"] >= 36 * 60 - 5 and pushed["clock_suspect"] is True
    assert codes(pushed["results"]) == [("applied", None)]
    assert figures(app, client, make)["tracking_timeliness"] == (0, 2, 2)


def test_a_wrong_assessment_rejected_and_reopened_is_not_an_accurate_claim(app, midday, client, make):
    """claim_accuracy gamed by quality: the first assessment was wrong (500 of a 2,000 loss); instead of a
    correction (which would count against accuracy) the claim is rejected and opened again for the same parcel,
    assessed 2,000 and paid. The parcel's claim was not paid as first assessed: 0/1, not 1/1."""
    task = make.task(parcels=[{"parcel_no": "ACC-1"}], fees=[{"code": "delivery", "amount": 1000}])
    body = {"origin": "dispatch", "task_id": task["id"], "kind": "loss", "description": "never arrived",
            "claimed_amount": 2000}
    quality, admin = make.headers("quality"), make.headers("admin")
    first = client.post(CLAIMS, json=body, headers=make.headers("dispatcher")).json
    assert _claim_step(client, quality, first["id"], "assess", {"loss_amount": 500})[0] == 200
    assert _claim_step(client, quality, first["id"], "reject", {"reason": "reassess"})[0] == 200
    second = client.post(CLAIMS, json=body, headers=make.headers("dispatcher")).json
    assert _claim_step(client, quality, second["id"], "assess", {"loss_amount": 2000})[0] == 200
    assert _claim_step(client, quality, second["id"], "approve", {})[0] == 200
    assert _claim_step(client, admin, second["id"], "pay", {"reference": "BANK-2"})[0] == 200
    assert figures(app, client, make)["claim_accuracy"][:2] == (0, 1)


def test_a_manifest_cannot_move_a_promise_that_has_already_passed(app, midday, client, make, server_clock):
    """promised_time_achievement gamed upstream: a parcel promised an hour ago, undelivered, is a failure (0/1).
    The manifest sent again with a later collection time moved the promise into tomorrow and the failure vanished
    (0/0). A promise already passed is a fact: the row is held back (promise_passed, naming the fields) and the
    figure stays 0/1. A promise still ahead may still be changed (a correction before it counts)."""
    now0 = server_clock.now().replace(microsecond=0)
    spec = make.task_spec(waybill_no="PROMISE-WB-1", parcels=[{"parcel_no": "PW-1"}], service_product="standard",
                          collected_at=(now0 - timedelta(hours=73)).isoformat())
    with server_clock.at(now0 - timedelta(hours=4)):
        assert client.post("/api/v1/dispatch/tasks", json=spec, headers=make.headers("dispatcher")).status_code == 201
    assert figures(app, client, make)["promised_time_achievement"][:2] == (0, 1)
    moved = dict(spec, collected_at=(now0 - timedelta(hours=1)).isoformat())
    report = client.post("/api/v1/integrations/manifests", data=json.dumps([moved]), content_type="application/json",
                         headers=make.headers("integration")).json
    assert report["counts"]["quarantined"] == 1, report
    assert {(r["field"], r["code"]) for r in report["rows"][0]["reasons"]} == {("collected_at", "promise_passed")}
    assert figures(app, client, make)["promised_time_achievement"][:2] == (0, 1)
    ahead = make.task_spec(waybill_no="PROMISE-WB-2", parcels=[{"parcel_no": "PW-2"}], service_product="standard",
                           collected_at=(now0 - timedelta(hours=2)).isoformat())
    assert client.post("/api/v1/dispatch/tasks", json=ahead, headers=make.headers("dispatcher")).status_code == 201
    ahead["collected_at"] = (now0 - timedelta(hours=1)).isoformat()
    report = client.post("/api/v1/integrations/manifests", data=json.dumps([ahead]), content_type="application/json",
                         headers=make.headers("integration")).json
    assert report["counts"]["updated"] == 1, report


def test_scanning_the_same_parcel_over_and_over_does_not_dilute_a_late_queue(app, midday, client, make, courier,
                                                                             device, server_clock):
    """tracking_timeliness gamed by padding: two scans pushed five hours late (0/2 timely); the courier then scans
    one parcel out_for_delivery eight times in a minute. The journey shows that once; the figure counted eight
    timely events (8/10). One tracking update, once: 1/3."""
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier, parcels=[{"parcel_no": "PAD-1"}, {"parcel_no": "PAD-2"}])
    then = datetime.now(timezone.utc) - timedelta(hours=5)
    late = [device.op("parcel.scan", task["id"], scan(no, "arrived_depot")) for no in ("PAD-1", "PAD-2")]
    for i, op in enumerate(late):
        op["device_time"] = (then + timedelta(minutes=i)).isoformat()
    assert codes(device.push(late)["results"]) == [("applied", None)] * 2
    padding = [device.op("parcel.scan", task["id"], scan("PAD-1", "out_for_delivery")) for _ in range(8)]
    assert codes(device.push(padding)["results"]) == [("applied", None)] * 8
    assert [i["event"] for i in journey(make, task["id"])["journey"]].count("out_for_delivery") == 1
    assert figures(app, client, make)["tracking_timeliness"][:2] == (1, 3)
