"""The parcel's journey (issue 22): scans from the handheld's push, from upstream over HTTP, and from the handover's
own steps; the journey dispatch reads; parcels suspected lost, then lost or found."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server import jobs
from sync.client import UnknownParcel
from tests.sync.conftest import SHANGHAI
from tests.sync.transport import FlaskTransport
from tests.sync.test_client import _enroll
from tests.sync.test_handover import codes, door_ops, inspect_ok, one, upload, verify

UPSTREAM = "/api/v1/integrations/scans"


def journey(make, task_id: str, role: str = "dispatcher"):
    """GET the task's journey over HTTP."""
    answer = make.client.get(f"/api/v1/dispatch/tasks/{task_id}/journey", headers=make.headers(role))
    assert answer.status_code == 200, answer.json
    return answer.json


def events(make, task_id: str) -> list[tuple]:
    """(parcel_no, event, source) of the journey, in its order."""
    return [(i["parcel_no"], i["event"], i["source"]) for i in journey(make, task_id)["journey"]]


def scan(parcel_no: str, event: str = "out_for_delivery", **more) -> dict:
    """A parcel.scan payload."""
    return {"parcel_no": parcel_no, "event": event, **more}


def upstream(make, *scans, role: str = "integration", expect: int = 200):
    """POST a batch of upstream scans; the answer's JSON."""
    answer = make.client.post(UPSTREAM, json={"scans": list(scans)}, headers=make.headers(role))
    assert answer.status_code == expect, answer.json
    return answer.json


def up(event_id: str, parcel_no: str, event: str = "arrived_depot", at: datetime | None = None, **more) -> dict:
    """One upstream scan."""
    return {"event_id": event_id, "parcel_no": parcel_no, "event": event,
            "occurred_at": (at or datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(), **more}


def parse(text: str) -> datetime:
    """An ISO time from the API."""
    return datetime.fromisoformat(text)


def test_a_handheld_scan_is_in_the_journey_once_whatever_the_retries(device, make, courier):
    """parcel.scan applied; its device and receipt times kept; the same op pushed again is a duplicate, one scan."""
    task = make.task(courier=courier)
    parcel_no = task["parcels"][0]["parcel_no"]
    op = device.op("parcel.scan", task["id"], scan(parcel_no, note="on the van"))
    assert codes(device.push([op])["results"]) == [("applied", None)]
    again = device.push([op])["results"][0]
    assert again["status"] == "applied" and again.get("duplicate"), again
    items = journey(make, task["id"])["journey"]
    assert [(i["event"], i["source"], i["note"], i["courier_id"], i["clock_suspect"]) for i in items] == [
        ("out_for_delivery", "handheld", "on the van", courier["id"], False)]
    reported = datetime.fromisoformat(op["device_time"])
    assert abs((parse(items[0]["reported_time"]) - reported).total_seconds()) < 1
    assert parse(items[0]["effective_time"]) <= parse(items[0]["received_at"])


def test_bad_scans_are_rejected_naming_the_field(device, make, courier):
    """An unknown parcel is unknown_parcel; a bad event or a missing parcel_no is invalid_payload naming the field;
    another courier's task is not_assigned (as for any op on it); nothing is recorded."""
    task = make.task(courier=courier)
    other = make.task(courier=make.courier())
    unknown = one(device, "parcel.scan", task["id"], scan("NOT-THIS-ONE"))
    assert (unknown["status"], unknown["code"]) == ("rejected", "unknown_parcel")
    assert "payload.parcel_no" in unknown["fields"]
    bad_event = one(device, "parcel.scan", task["id"], scan(task["parcels"][0]["parcel_no"], "teleported"))
    assert bad_event["code"] == "invalid_payload" and "payload.event" in bad_event["fields"]
    missing = one(device, "parcel.scan", task["id"], {"event": "arrived_depot"})
    assert missing["code"] == "invalid_payload" and "payload.parcel_no" in missing["fields"]
    theirs = one(device, "parcel.scan", other["id"], scan(other["parcels"][0]["parcel_no"]))
    assert (theirs["status"], theirs["code"]) == ("rejected", "not_assigned")
    assert journey(make, task["id"])["journey"] == [] and journey(make, other["id"])["journey"] == []


def test_wrong_clocks_are_kept_and_flagged(device, make, courier, server_clock):
    """A scan dated 2099 and one dated 1970 are applied, flagged, their reported time kept and an effective time
    the server could know (never after the receipt, never before the task) used."""
    with server_clock.at(server_clock.now() - timedelta(hours=2)):
        task = make.task(courier=courier)
    parcel_no = task["parcels"][0]["parcel_no"]
    future = device.op("parcel.scan", task["id"], scan(parcel_no, "arrived_depot"))
    future["device_time"] = "2099-06-01T09:00:00+08:00"
    past = device.op("parcel.scan", task["id"], scan(parcel_no, "exception"))
    past["device_time"] = "1970-01-01T08:00:00+08:00"
    results = device.push([future, past])["results"]
    assert codes(results) == [("applied", None)] * 2 and all(r["clock_suspect"] for r in results)
    items = {i["event"]: i for i in journey(make, task["id"])["journey"]}
    assert parse(items["arrived_depot"]["reported_time"]).year == 2099
    assert parse(items["exception"]["reported_time"]).year == 1970
    for item in items.values():
        assert item["clock_suspect"]
        assert parse(task["created_at"]) <= parse(item["effective_time"]) <= parse(item["received_at"])


def test_an_offline_queue_hours_late_is_ordered_by_when_it_happened(device, make, courier, server_clock):
    """Scans queued five hours ago and pushed now sit before an upstream scan of two hours ago in the journey, though
    they arrived after it: device time orders the journey, receipt time is kept beside it."""
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        task = make.task(courier=courier)
    parcel_no = task["parcels"][0]["parcel_no"]
    upstream(make, up("U-1", parcel_no, "exception", at=datetime.now(timezone.utc) - timedelta(hours=2)))
    then = datetime.now(timezone.utc) - timedelta(hours=5)
    ops = [device.op("parcel.scan", task["id"], scan(parcel_no, "arrived_depot")),
           device.op("parcel.scan", task["id"], scan(parcel_no, "out_for_delivery"))]
    for i, op in enumerate(ops):
        op["device_time"] = (then + timedelta(minutes=i)).astimezone(SHANGHAI).isoformat()
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 2
    items = journey(make, task["id"])["journey"]
    assert [(i["event"], i["source"]) for i in items] == [
        ("arrived_depot", "handheld"), ("out_for_delivery", "handheld"), ("exception", "upstream")]
    late = items[0]
    assert parse(late["received_at"]) - parse(late["effective_time"]) > timedelta(hours=4)
    assert parse(items[2]["received_at"]) < parse(late["received_at"])


def test_upstream_scans_are_idempotent_by_event_id(make):
    """A batch is recorded; the same batch again answers the same; another body under a used id is a conflict;
    an unknown parcel is rejected; the same event twice in one batch is one scan."""
    task = make.task()
    parcel_no = task["parcels"][0]["parcel_no"]
    at = datetime.now(timezone.utc) - timedelta(minutes=30)
    batch = [up("E-1", parcel_no, at=at), up("E-2", parcel_no, "out_for_delivery", at=at + timedelta(minutes=5)),
             up("E-3", "NO-SUCH-PARCEL")]
    first = upstream(make, *batch)["results"]
    assert [(r["event_id"], r["status"], r["code"]) for r in first] == [
        ("E-1", "recorded", None), ("E-2", "recorded", None), ("E-3", "rejected", "unknown_parcel")]
    assert upstream(make, *batch)["results"] == first
    changed = upstream(make, up("E-1", parcel_no, "exception", at=at), batch[1])["results"]
    assert [(r["status"], r["code"], r["scan_id"]) for r in changed] == [
        ("conflict", "event_id_reused", None), ("recorded", None, first[1]["scan_id"])]
    again = up("E-4", parcel_no, "returned")
    twice = upstream(make, again, again)["results"]
    assert twice[0] == twice[1] and twice[0]["status"] == "recorded"
    assert events(make, task["id"]) == [(parcel_no, "arrived_depot", "upstream"),
                                        (parcel_no, "out_for_delivery", "upstream"),
                                        (parcel_no, "returned", "upstream")]


def test_upstream_bad_input_wrong_role_and_wrong_clocks(make):
    """A bad event is a 422 naming the field; dispatchers and couriers cannot post; a 1970 or 2099 time is kept and
    flagged, the receipt used."""
    task = make.task()
    parcel_no = task["parcels"][0]["parcel_no"]
    bad = upstream(make, up("B-1", parcel_no, "lost_in_space"), expect=422)
    assert "scans.0.event" in str(bad["fields"]) or "event" in str(bad["fields"]["scans"]), bad
    naive = upstream(make, dict(up("B-2", parcel_no), occurred_at="2026-01-01T10:00:00"), expect=422)
    assert "occurred_at" in str(naive["fields"])
    upstream(make, up("B-3", parcel_no), role="dispatcher", expect=403)
    upstream(make, up("B-3", parcel_no), role="quality", expect=403)
    results = upstream(make, up("C-1", parcel_no, at=datetime(1970, 1, 1, tzinfo=timezone.utc)),
                       up("C-2", parcel_no, "out_for_delivery", at=datetime(2099, 1, 1, tzinfo=timezone.utc)))
    assert [r["status"] for r in results["results"]] == ["recorded", "recorded"]
    items = journey(make, task["id"])["journey"]
    assert all(i["clock_suspect"] and i["effective_time"] == i["received_at"] for i in items)
    assert sorted(parse(i["reported_time"]).year for i in items) == [1970, 2099]
    # Year 1 east of Greenwich has no UTC time: recorded, flagged, at its receipt, with no reported time.
    edge = upstream(make, dict(up("C-3", parcel_no, "exception"), occurred_at="0001-01-01T00:00:00+08:00"))["results"][0]
    assert edge["status"] == "recorded"
    item = next(i for i in journey(make, task["id"])["journey"] if i["id"] == edge["scan_id"])
    assert item["clock_suspect"] and item["reported_time"] is None


def test_the_handover_writes_its_scans_and_a_courier_scan_counts_once(device, make, courier):
    """A delivery at the door writes handed_over for each parcel (source handover, the sign op's id); the courier's
    own handed_over scan minutes before is folded into it (the same event within the dedup window)."""
    task = make.task(courier=courier, parcels=[{"parcel_no": "PX-1", "count": 1}, {"parcel_no": "PX-2", "count": 1}])
    signature = upload(device)
    ops = [device.op("parcel.scan", task["id"], scan("PX-1", "out_for_delivery")),
           device.op("parcel.scan", task["id"], scan("PX-1", "handed_over")), *door_ops(device, task, signature)]
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 7
    items = journey(make, task["id"])["journey"]
    assert [(i["parcel_no"], i["event"], i["source"], i["also_from"]) for i in items] == [
        ("PX-1", "out_for_delivery", "handheld", []), ("PX-1", "handed_over", "handheld", ["handover"]),
        ("PX-2", "handed_over", "handover", [])]


def test_refusal_and_damage_write_returned_and_exception(device, make, courier):
    """An inspection finding a parcel damaged writes an exception scan for it; the refusal writes returned for each
    parcel; the return task's journey is the same parcels'."""
    task = make.task(courier=courier, parcels=[{"parcel_no": "PR-1", "count": 1}, {"parcel_no": "PR-2", "count": 1}])
    photo = upload(device)
    inspection = inspect_ok(task, customer_accepted=False, photos=[photo])
    inspection["items"][1]["condition"] = "damaged"
    ops = [device.op("pod.verify_recipient", task["id"], verify()),
           device.op("pod.inspect", task["id"], inspection),
           device.op("pod.refuse", task["id"], {"reason": "damaged", "note": None, "photos": [photo]})]
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 3
    assert events(make, task["id"]) == [("PR-2", "exception", "handover"), ("PR-1", "returned", "handover"),
                                        ("PR-2", "returned", "handover")]


def test_unscanned_parcels_become_suspected_lost_and_dispatch_settles_them(make, courier, server_clock, client):
    """A parcel of an open task unscanned past FIELDOPS_LOST_AFTER_HOURS (48) is suspected by the job (a recorded
    run); one scanned recently or on a finished task is not. Dispatch lists it and confirms it lost (audited, an
    event), then found; quality and couriers cannot; a parcel not suspected cannot be marked lost."""
    with server_clock.at(server_clock.now() - timedelta(hours=60)):
        stale = make.task(courier=courier)
        fresh = make.task(courier=courier)
    stale_no, fresh_no = stale["parcels"][0]["parcel_no"], fresh["parcels"][0]["parcel_no"]
    upstream(make, up("L-1", stale_no, at=datetime.now(timezone.utc) - timedelta(hours=49)),
             up("L-2", fresh_no, at=datetime.now(timezone.utc) - timedelta(hours=47)))
    assert jobs.run("lost-parcels") == {"suspected": 1}
    assert jobs.run("lost-parcels") == {"suspected": 0}  # already suspected
    runs = client.get("/api/v1/admin/jobs/lost-parcels/runs", headers=make.headers("admin")).json["items"]
    assert [r["counts"] for r in runs] == [{"suspected": 0}, {"suspected": 1}]
    listed = client.get("/api/v1/dispatch/parcels/lost?state=suspected_lost", headers=make.headers("dispatcher"))
    assert [(p["parcel_no"], p["lost_state"], p["lost_state_by"]) for p in listed.json["items"]] == [
        (stale_no, "suspected_lost", "system")]
    parcel_id = listed.json["items"][0]["id"]
    url = f"/api/v1/dispatch/parcels/{parcel_id}/lost-state"
    for role in ("quality", "courier_token"):
        headers = make.headers("quality") if role == "quality" else {"Authorization": "Bearer x"}
        assert client.post(url, json={"state": "lost"}, headers=headers).status_code in (401, 403)
    bad = client.post(url, json={"state": "vanished"}, headers=make.headers("dispatcher"))
    assert bad.status_code == 422 and "state" in bad.json["fields"]
    fresh_parcel = client.get(f"/api/v1/dispatch/tasks/{fresh['id']}/journey",
                              headers=make.headers("dispatcher")).json["parcels"][0]
    not_suspected = client.post(f"/api/v1/dispatch/parcels/{fresh_parcel['id']}/lost-state", json={"state": "lost"},
                                headers=make.headers("dispatcher"))
    assert not_suspected.status_code == 422 and not_suspected.json["code"] == "lost_state_not_suspected"
    assert not_suspected.json["fields"] == {"state": [
        "Only a parcel suspected lost can be confirmed lost; this one is not suspected."]}
    not_found = client.post(f"/api/v1/dispatch/parcels/{fresh_parcel['id']}/lost-state", json={"state": "found"},
                            headers=make.headers("dispatcher"))
    assert not_found.status_code == 422 and not_found.json["fields"] == {"state": [
        "Only a parcel suspected lost or confirmed lost can be found; this one is not suspected."]}
    assert client.post("/api/v1/dispatch/parcels/999999/lost-state", json={"state": "lost"},
                       headers=make.headers("dispatcher")).status_code == 404
    lost = client.post(url, json={"state": "lost"}, headers=make.headers("dispatcher"))
    assert lost.status_code == 200 and lost.json["lost_state"] == "lost"
    again = client.post(url, json={"state": "lost"}, headers=make.headers("dispatcher"))
    assert again.status_code == 422 and again.json["fields"] == {"state": [
        "Only a parcel suspected lost can be confirmed lost; this one is already lost."]}
    # Found: the parcel turns up at the depot and is scanned (a confirmed loss is undone only on that evidence).
    upstream(make, up("L-3", stale_no, at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    found = client.post(url, json={"state": "found"}, headers=make.headers("dispatcher"))
    assert found.status_code == 200 and found.json["lost_state"] == "found"
    twice = client.post(url, json={"state": "found"}, headers=make.headers("dispatcher"))
    assert twice.status_code == 422 and twice.json["fields"] == {"state": [
        "Only a parcel suspected lost or confirmed lost can be found; this one was found and is not suspected again."]}
    audit = client.get(f"/api/v1/admin/audit?entity=parcels&entity_id={parcel_id}", headers=make.headers("admin"))
    assert sorted(e["action"] for e in audit.json["items"]) == ["parcel.found", "parcel.lost"]
    feed = client.get("/api/v1/integrations/events?types=parcel.lost,parcel.found",
                      headers=make.headers("integration")).json["items"]
    assert [(e["type"], e["data"]["parcel_no"]) for e in feed] == [("parcel.lost", stale_no),
                                                                   ("parcel.found", stale_no)]
    # Found now: suspected again only 48 h after it was found.
    assert jobs.run("lost-parcels") == {"suspected": 0}


def test_a_new_scan_clears_a_suspicion(device, make, courier, server_clock, client):
    """A suspected parcel scanned by its courier is no longer suspected."""
    with server_clock.at(server_clock.now() - timedelta(hours=60)):
        task = make.task(courier=courier)
    parcel_no = task["parcels"][0]["parcel_no"]
    upstream(make, up("S-1", parcel_no, at=datetime.now(timezone.utc) - timedelta(hours=50)))
    assert jobs.run("lost-parcels") == {"suspected": 1}
    assert codes([one(device, "parcel.scan", task["id"], scan(parcel_no))]) == [("applied", None)]
    listed = client.get("/api/v1/dispatch/parcels/lost", headers=make.headers("dispatcher")).json["items"]
    assert listed == []
    assert journey(make, task["id"])["parcels"][0]["lost_state"] is None


def test_the_journey_is_for_the_office_only(make, device, courier, client):
    """Couriers cannot read dispatch's journey; an unknown task is a 404 with its code."""
    task = make.task(courier=courier)
    assert client.get(f"/api/v1/dispatch/tasks/{task['id']}/journey", headers=device.headers).status_code == 403
    missing = client.get("/api/v1/dispatch/tasks/t-nope/journey", headers=make.headers("quality"))
    assert missing.status_code == 404 and missing.json["code"] == "task_not_found"


def test_the_reference_handheld_scans_offline_and_refuses_a_parcel_it_does_not_hold(app, client, make, courier,
                                                                                   tmp_path):
    """Handheld.scan queues parcel.scan; a parcel the pulled task does not hold is refused before anything is
    queued; after sync the scan is in the journey, once however often the queue is pushed."""
    task = make.task(courier=courier)
    handheld = _enroll(client, make, courier, tmp_path / "hh.sqlite3", FlaskTransport(app))
    handheld.sync()
    with pytest.raises(UnknownParcel):
        handheld.scan(task["id"], parcel_no="NOT-MINE", event="out_for_delivery")
    handheld.scan(task["id"], parcel_no=task["parcels"][0]["parcel_no"], event="out_for_delivery")
    assert handheld.sync()["pending"] == 0 and handheld.sync()["pending"] == 0
    assert [r["status"] for r in handheld.results().values()] == ["applied"]
    assert events(make, task["id"]) == [(task["parcels"][0]["parcel_no"], "out_for_delivery", "handheld")]


def test_loss_and_tracking_figures_hand_computed(app, midday, device, make, courier, server_clock, client):
    """A day through the push path and the HTTP API, its figures by hand (docs/kpis.md):

    T1 (A1, A2), T2 (B1), T3 (C1), the courier's, made 8 h ago. The handheld's queue of two scans made 5 h ago
    (A1, A2 arrived_depot) is pushed now: late. Then A1 out_for_delivery now: timely; a scan of a parcel T1 does not
    hold: rejected, timely. Upstream: B1 arrived_depot 2 h ago (late), A2 out_for_delivery 10 min ago (timely).
    tracking_timeliness 3/6 (the on-time scan, the rejected one, the upstream one of 10 min), of which the courier's
    2/4 and the upstream group's (no courier) 1/2; tracking_accuracy 5/6 (all but the rejected op).
    With FIELDOPS_LOST_AFTER_HOURS at 1, B1 (last scanned 2 h ago) is suspected and dispatch confirms it lost:
    loss_rate 1/3 (A1, A2 and B1 scanned; C1 never handled), T1 and T2 behind it, T2 counted.
    """
    app.config["LOST_AFTER_HOURS"] = 1
    with server_clock.at(server_clock.now() - timedelta(hours=8)):
        t1 = make.task(courier=courier, parcels=[{"parcel_no": "A1"}, {"parcel_no": "A2"}])
        t2 = make.task(courier=courier, parcels=[{"parcel_no": "B1"}])
        make.task(courier=courier, parcels=[{"parcel_no": "C1"}])
    now = datetime.now(timezone.utc)
    queued = [device.op("parcel.scan", t1["id"], scan("A1", "arrived_depot")),
              device.op("parcel.scan", t1["id"], scan("A2", "arrived_depot"))]
    for i, op in enumerate(queued):
        op["device_time"] = (now - timedelta(hours=5, minutes=-i)).astimezone(SHANGHAI).isoformat()
    assert codes(device.push(queued)["results"]) == [("applied", None)] * 2
    assert codes(device.push([device.op("parcel.scan", t1["id"], scan("A1")),
                              device.op("parcel.scan", t1["id"], scan("B1"))])["results"]) == [
        ("applied", None), ("rejected", "unknown_parcel")]
    upstream(make, up("K-1", "B1", at=now - timedelta(hours=2)),
             up("K-2", "A2", "out_for_delivery", at=now - timedelta(minutes=10)))
    assert jobs.run("lost-parcels") == {"suspected": 1}
    b1 = journey(make, t2["id"])["parcels"][0]
    assert client.post(f"/api/v1/dispatch/parcels/{b1['id']}/lost-state", json={"state": "lost"},
                       headers=make.headers("dispatcher")).status_code == 200
    day = datetime.now(ZoneInfo(app.config["TIMEZONE"])).date().isoformat()
    query = {"from": day, "to": day}
    report = client.get("/api/v1/reports/kpis", query_string=query, headers=make.headers("quality")).json
    figures = report["total"]["figures"]
    counts = {name: (figures[name]["numerator"], figures[name]["denominator"])
              for name in ("loss_rate", "tracking_timeliness", "tracking_accuracy")}
    assert counts == {"loss_rate": (1, 3), "tracking_timeliness": (3, 6), "tracking_accuracy": (5, 6)}
    by_courier = client.get("/api/v1/reports/kpis", query_string={**query, "group_by": "courier"},
                            headers=make.headers("quality")).json["groups"]
    assert {g["group"]: (g["figures"]["tracking_timeliness"]["numerator"],
                         g["figures"]["tracking_timeliness"]["denominator"]) for g in by_courier
            if g["figures"]["tracking_timeliness"]["denominator"]} == {courier["id"]: (2, 4), "-": (1, 2)}
    behind = client.get("/api/v1/reports/kpis/loss_rate/tasks", query_string=query,
                        headers=make.headers("quality")).json["items"]
    assert {i["id"]: i["counted"] for i in behind} == {t1["id"]: False, t2["id"]: True}
    events_behind = client.get("/api/v1/reports/kpis/tracking_timeliness/tasks",
                               query_string={**query, "limit": 4}, headers=make.headers("quality")).json
    assert events_behind["subject"] == "field_event" and len(events_behind["items"]) == 4
    rest = client.get("/api/v1/reports/kpis/tracking_timeliness/tasks",
                      query_string={**query, "cursor": events_behind["next_cursor"]},
                      headers=make.headers("quality")).json["items"]
    items = events_behind["items"] + rest
    assert len({i["id"] for i in items}) == 6 and sum(i["counted"] for i in items) == 3
