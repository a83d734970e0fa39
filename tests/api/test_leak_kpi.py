"""leak_incidents (信息泄露事件数) on a hand-computed fixture built through the API and the pages: incidents the
office reported and quality decided, and ones the service opened itself from real page views and task lists.

Depot-local (Asia/Shanghai) days 2026-10-05 (D1) and 2026-10-06 (D2):

| incident | how | discovered | status | counted | unknown |
|---|---|---|---|---|---|
| i1 | staff report, courier A responsible | D1 10:00 | confirmed | yes | |
| i2 | customer report | D1 23:30 | dismissed | | |
| i3 | audit | D1 09:00 | confirmed, resolved | yes | |
| i4 | staff report | D2 00:15 (D1 16:15 UTC: D2 by the depot's day) | open | | yes |
| a1 | a customer link seen from 3 addresses (limit 2) | D2 11:00 | confirmed | yes | |
| a2 | a receipt page seen from 3 addresses | D2 12:00 | review | | yes |
| e1 | a dispatcher handed 5 rows (limit 4) | D2 14:00 | dismissed | | |
| i5 | staff report | 2026-10-08 | confirmed | out of the period | |

Total: 3 counted of 7 recorded, 2 unknown; value 3 (a count). D1: 2 of 3; D2: 1 of 4, 2 unknown.
By courier: A 1 of 1; no courier ("-") 2 of 6, 2 unknown.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

from server.extensions import db
from server.services import receipts
from tests.api.test_customer_page import issue, path_of
from tests.services.test_receipts import evidence

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = "/api/v1/quality/leak-incidents"
RANGE = {"from": "2026-10-05", "to": "2026-10-06"}


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A depot-local time in October 2026."""
    return datetime(2026, 10, day, hour, minute, tzinfo=SHANGHAI)


def _report(client, make, discovered: datetime, source: str = "staff", **body) -> int:
    """An incident the office reports; its id."""
    answer = client.post(BASE, json={"source": source, "discovered_at": discovered.isoformat(),
                                     "data_kinds": ["name", "phone"], "people_affected": 2,
                                     "description": "Customer data seen where it should not be.", **body},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    return answer.json["id"]


def _step(client, make, incident: int, step: str, **body) -> None:
    """Quality takes a step on an incident."""
    answer = client.post(f"{BASE}/{incident}/{step}", json=body, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json


def _auto(client, make) -> list[int]:
    """The ids of the incidents the service opened, oldest first."""
    items = client.get(BASE, query_string={"source": "auto"}, headers=make.headers("quality")).json["items"]
    return sorted(item["id"] for item in items)


def _build(client, app, make, server_clock) -> dict:
    """The fixture of the module docstring."""
    app.config["LEAK_LINK_MAX_ADDRESSES"] = 2
    app.config["LEAK_EXPORT_MAX_ROWS"] = 4
    courier = make.courier()
    ids = {"i1": _report(client, make, _at(5, 10), responsible_courier_id=courier["id"]),
           "i2": _report(client, make, _at(5, 23, 30), source="customer_report"),
           "i3": _report(client, make, _at(5, 9), source="audit"),
           "i4": _report(client, make, _at(6, 0, 15)),
           "i5": _report(client, make, _at(8, 10))}
    _step(client, make, ids["i1"], "confirm")
    _step(client, make, ids["i2"], "dismiss", note="The customer saw their own order.")
    _step(client, make, ids["i3"], "confirm")
    _step(client, make, ids["i3"], "resolve", resolution="Access removed.", resolved_at=_at(5, 18).isoformat())
    _step(client, make, ids["i5"], "confirm")

    link = path_of(issue(client, make, make.task(courier=courier)["id"]))
    receipt = receipts.issue(task_id=make.task(courier=courier)["id"], kind="delivery", evidence=evidence())
    db.session.commit()
    receipt_page = f"/r/{receipts.page_token(receipt)}"
    with server_clock.at(_at(6, 11)):
        for n in range(3):
            assert client.get(link, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code == 200
    (ids["a1"],) = _auto(client, make)
    _step(client, make, ids["a1"], "confirm", note="The link was posted in a public group.")
    with server_clock.at(_at(6, 12)):
        for n in range(3):
            assert client.get(receipt_page, environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}).status_code == 200
    ids["a2"] = _auto(client, make)[-1]
    make.task()  # a third task to list
    with server_clock.at(_at(6, 14)):
        for limit in (3, 2):  # 5 rows of customer data, 4 allowed
            page = client.get("/api/v1/dispatch/tasks", query_string={"limit": limit},
                              headers=make.headers("dispatcher"))
            assert page.status_code == 200 and len(page.json["items"]) == limit
    ids["e1"] = _auto(client, make)[-1]
    assert len({ids["a1"], ids["a2"], ids["e1"]}) == 3
    _step(client, make, ids["e1"], "dismiss", note="Planning the day's routes.")
    return {"ids": ids, "courier": courier}


def _figure(client, make, **query) -> dict:
    """The report's leak_incidents, total or by group: {group: (numerator, denominator, value, unknown)}."""
    answer = client.get("/api/v1/reports/kpis", query_string={**RANGE, **query}, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    groups = [*answer.json["groups"], answer.json["total"]]
    return {g["group"]: tuple(g["figures"]["leak_incidents"][k] for k in ("numerator", "denominator", "value",
                                                                          "unknown")) for g in groups}


def test_leak_incidents_counts_confirmed_leaks_by_the_day_they_were_discovered(client, app, make, server_clock):
    """Totals, by day and by courier as the docstring computes them; the rows behind it; the CSV line."""
    built = _build(client, app, make, server_clock)
    ids = built["ids"]
    assert _figure(client, make) == {"total": (3, 7, 3, 2)}
    assert _figure(client, make, group_by="day") == {"2026-10-05": (2, 3, 2, 0), "2026-10-06": (1, 4, 1, 2),
                                                     "total": (3, 7, 3, 2)}
    assert _figure(client, make, group_by="courier") == {built["courier"]["id"]: (1, 1, 1, 0), "-": (2, 6, 2, 2),
                                                         "total": (3, 7, 3, 2)}
    assert _figure(client, make, **{"from": "2026-10-07", "to": "2026-10-07"}) == {"total": (0, 0, 0, 0)}

    rows = client.get("/api/v1/reports/kpis/leak_incidents/tasks", query_string={**RANGE, "limit": 4},
                      headers=make.headers("quality"))
    assert rows.status_code == 200 and rows.json["subject"] == "leak_incident"
    items = rows.json["items"]
    more = client.get("/api/v1/reports/kpis/leak_incidents/tasks",
                      query_string={**RANGE, "cursor": rows.json["next_cursor"]}, headers=make.headers("quality"))
    assert more.status_code == 200, more.json
    items += more.json["items"]
    name = {str(v): k for k, v in ids.items()}
    assert {name[i["id"]]: (i["counted"], i["unknown"]) for i in items} == {
        "i1": (True, False), "i2": (False, False), "i3": (True, False), "i4": (False, True),
        "a1": (True, False), "a2": (False, True), "e1": (False, False)}

    csv = client.get("/api/v1/reports/kpis", query_string={**RANGE, "format": "csv"},
                     headers=make.headers("quality")).text
    assert "total,total,leak_incidents,3,7,3,count,2" in csv.splitlines()
