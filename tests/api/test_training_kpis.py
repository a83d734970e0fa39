"""The training figures (岗前培训合格率, 定期培训覆盖率) on a hand-computed fixture built through the API."""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from tests.api.test_training import attend, course, session


def _at(zone: str, day: date, hour: int) -> datetime:
    """A depot-local hour of a day."""
    return datetime.combine(day, time(hour), ZoneInfo(zone))


def _report(client, make, start: date, end: date, **query) -> dict:
    """The KPI report for the dates."""
    response = client.get("/api/v1/reports/kpis", query_string={"from": start.isoformat(), "to": end.isoformat(),
                                                               **query}, headers=make.headers("quality"))
    assert response.status_code == 200, response.json
    return response.json


def _pair(figures: dict, name: str) -> tuple:
    """(numerator, denominator, value) of a figure."""
    return figures[name]["numerator"], figures[name]["denominator"], figures[name]["value"]


def test_training_figures_on_a_hand_computed_fixture(app, client, make, midday):
    """Pre-job: couriers who attended a pre-job session in the period, passed at any of them; periodic coverage:
    active couriers holding at the period's end a valid pass of an active periodic course.

    Today is day 0 (about noon, depot time). Couriers a-e are active, f is deactivated.
    Pre-job: day -3 a passed, b failed, c absent, e failed, f passed; day -1 b passed; day -20 d passed.
    Periodic: PR (6 months) day -30: a, b passed, c failed; PR-SHORT (1 month) day -40: d passed (lapsed);
    PR-RETIRED (12 months) day -30: e passed, then the course is retired; PR day -30: f passed (inactive).

    From day -10 to day 0: pre-job a, b, e, f attended, a, b, f passed: 3/4. Coverage: a, b of a-e: 2/5.
    From day -10 to day -2: b's pass is after it: a, f of a, b, e, f: 2/4; no courier existed by its end: 0/0.
    """
    zone = midday
    today = datetime.now(timezone.utc).astimezone(ZoneInfo(zone)).date()
    day = lambda n: today + timedelta(days=n)  # noqa: E731 - a day relative to today
    a, b, c, d, e, f = (make.courier() for _ in range(6))
    pj = course(make)
    pr, short = course(make, "PR", "periodic", 6), course(make, "PR-SHORT", "periodic", 1)
    retired = course(make, "PR-RETIRED", "periodic", 12)

    def row(courier, attended=True, ok=True):
        return {"courier_id": courier["id"], "attended": attended, "passed": ok and attended}

    attend(make, session(make, pj["id"], _at(zone, day(-3), 9))["id"],
           row(a), row(b, ok=False), row(c, attended=False), row(e, ok=False), row(f))
    attend(make, session(make, pj["id"], _at(zone, day(-1), 9))["id"], row(b))
    attend(make, session(make, pj["id"], _at(zone, day(-20), 9))["id"], row(d))
    attend(make, session(make, pr["id"], _at(zone, day(-30), 9))["id"], row(a), row(b), row(c, ok=False), row(f))
    attend(make, session(make, short["id"], _at(zone, day(-40), 9))["id"], row(d))
    attend(make, session(make, retired["id"], _at(zone, day(-30), 9))["id"], row(e))
    assert client.patch(f"/api/v1/quality/training/courses/{retired['id']}", json={"active": False},
                        headers=make.headers("quality")).status_code == 200
    assert client.post(f"/api/v1/dispatch/couriers/{f['id']}/deactivate",
                       headers=make.headers("dispatcher")).status_code == 200

    total = _report(client, make, day(-10), day(0))["total"]["figures"]
    assert _pair(total, "pre_job_training_pass_rate") == (3, 4, 0.75)
    assert _pair(total, "periodic_training_coverage") == (2, 5, 0.4)
    earlier = _report(client, make, day(-10), day(-2))["total"]["figures"]
    assert _pair(earlier, "pre_job_training_pass_rate") == (2, 4, 0.5)
    assert _pair(earlier, "periodic_training_coverage") == (0, 0, None)

    by_courier = {g["group"]: g["figures"] for g in _report(client, make, day(-10), day(0), group_by="courier")["groups"]}
    assert {key: (_pair(fig, "pre_job_training_pass_rate")[:2], _pair(fig, "periodic_training_coverage")[:2])
            for key, fig in by_courier.items()} == {
        a["id"]: ((1, 1), (1, 1)), b["id"]: ((1, 1), (1, 1)), c["id"]: ((0, 0), (0, 1)), d["id"]: ((0, 0), (0, 1)),
        e["id"]: ((0, 1), (0, 1)), f["id"]: ((1, 1), (0, 0))}
    by_day = {g["group"]: g["figures"] for g in _report(client, make, day(-10), day(0), group_by="day")["groups"]}
    assert _pair(by_day[day(-3).isoformat()], "pre_job_training_pass_rate") == (3, 4, 0.75)
    assert _pair(by_day[day(0).isoformat()], "periodic_training_coverage") == (2, 5, 0.4), list(by_day)
    assert _pair(by_day[day(0).isoformat()], "pre_job_training_pass_rate") == (0, 0, None)

    behind = client.get("/api/v1/reports/kpis/periodic_training_coverage/tasks",
                        query_string={"from": day(-10).isoformat(), "to": day(0).isoformat()},
                        headers=make.headers("dispatcher")).json
    assert behind["subject"] == "courier"
    assert sorted((i["id"], i["counted"]) for i in behind["items"]) == sorted(
        [(a["id"], True), (b["id"], True), (c["id"], False), (d["id"], False), (e["id"], False)])
    paged = client.get("/api/v1/reports/kpis/pre_job_training_pass_rate/tasks",
                       query_string={"from": day(-10).isoformat(), "to": day(0).isoformat(), "limit": 3},
                       headers=make.headers("dispatcher")).json
    rest = client.get("/api/v1/reports/kpis/pre_job_training_pass_rate/tasks",
                      query_string={"from": day(-10).isoformat(), "to": day(0).isoformat(),
                                    "cursor": paged["next_cursor"]}, headers=make.headers("dispatcher")).json
    assert sorted(i["id"] for i in paged["items"] + rest["items"]) == sorted([a["id"], b["id"], e["id"], f["id"]])
