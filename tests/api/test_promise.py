"""The promise (issue 22): service products, the promise every entry path gives a task, at risk and breached, and
the figures promised_time_achievement and collect_to_signoff on a day built through dispatch and the handheld.

Everything goes through the HTTP API and the push path; every promised time and figure is worked out by hand.
Products created here get codes of their own (the seeded ones, kept across tests like the fee codes, are only read).
"""
import csv
import io
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server import jobs
from tests.sync.conftest import Device
from tests.sync.test_handover import AT_DOOR, codes, inspect_ok, sign, upload, verify

PRODUCTS = "/api/v1/admin/service-products"
TASKS = "/api/v1/dispatch/tasks"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _code() -> str:
    """A product code no other test uses."""
    return "p_" + uuid.uuid4().hex[:10]


def _product(client, make, **body) -> dict:
    """A product created by admin over HTTP."""
    answer = client.post(PRODUCTS, json={"code": _code(), "name_zh": "测试", "name_en": "Test", **body},
                         headers=make.headers("admin"))
    assert answer.status_code == 201, answer.json
    return answer.json


def _create(client, make, expect=201, **overrides) -> dict:
    """A task created by dispatch over HTTP; its body (or the problem)."""
    answer = client.post(TASKS, json=make.task_spec(**overrides), headers=make.headers("dispatcher"))
    assert answer.status_code == expect, answer.json
    return answer.json


def _at(text: str | None) -> datetime | None:
    """An ISO time from the API as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text)


@pytest.fixture
def shanghai(app):
    """The depot in Shanghai (UTC+8, no daylight saving): its midnight is 16:00 UTC."""
    app.config["TIMEZONE"] = "Asia/Shanghai"


def _days_ago(n: int, hour: int, minute: int = 0) -> datetime:
    """hour:minute Shanghai time n days before today there."""
    today = datetime.now(SHANGHAI).date()
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=SHANGHAI) - timedelta(days=n)


# --- service products (admin) ---

def test_seeded_products_and_admin_edits_audited(client, make):
    """The defaults are seeded; admin creates, renames, re-promises and deactivates, each change audited."""
    listed = client.get(PRODUCTS, headers=make.headers("dispatcher"))
    assert listed.status_code == 200
    seeded = {p["code"]: (p["name_zh"], p["end_of_day_after"], p["within_hours"]) for p in listed.json["items"]}
    assert {code: seeded[code] for code in ("same_day", "next_day", "day_after", "standard")} == {
        "same_day": ("当日达", 0, None), "next_day": ("次日达", 1, None), "day_after": ("隔日达", 2, None),
        "standard": ("标快", None, 72)}
    product = _product(client, make, within_hours=5)
    code = product["code"]
    assert (product["within_hours"], product["end_of_day_after"], product["active"]) == (5, None, True)
    again = client.post(PRODUCTS, json={"code": code, "name_zh": "x", "name_en": "x", "within_hours": 1},
                        headers=make.headers("admin"))
    assert again.status_code == 409 and "code" in again.json["fields"]
    changed = client.patch(f"{PRODUCTS}/{code}", json={"end_of_day_after": 1, "name_en": "Overnight"},
                           headers=make.headers("admin"))
    assert changed.status_code == 200, changed.json
    assert (changed.json["end_of_day_after"], changed.json["within_hours"], changed.json["name_en"]) == (
        1, None, "Overnight")  # one way of promising replaces the other
    off = client.patch(f"{PRODUCTS}/{code}", json={"active": False}, headers=make.headers("admin"))
    assert off.status_code == 200 and off.json["active"] is False
    audit = client.get("/api/v1/admin/audit", headers=make.headers("admin")).json["items"]
    mine = [(e["action"], e["entity_id"]) for e in audit if e["entity"] == "service_products" and e["entity_id"] == code]
    assert mine == [("service_product.update", code), ("service_product.update", code),
                    ("service_product.create", code)]
    missing = client.patch(f"{PRODUCTS}/no_such", json={"active": False}, headers=make.headers("admin"))
    assert missing.status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"within_hours": 5, "end_of_day_after": 1}, "within_hours"),
    ({}, "within_hours"),
    ({"within_hours": 0}, "within_hours"),
    ({"end_of_day_after": -1}, "end_of_day_after"),
    ({"within_hours": 5, "code": "Bad Code"}, "code"),
])
def test_a_product_needs_one_promise_and_a_code(client, make, body, field):
    """Exactly one way of promising, within bounds; a code of a-z, 0-9 and _."""
    answer = client.post(PRODUCTS, json={"code": _code(), "name_zh": "测试", "name_en": "Test", **body},
                         headers=make.headers("admin"))
    assert answer.status_code == 422 and field in answer.json["fields"], answer.json


def test_wrong_roles_on_product_routes(client, make):
    """Only admin edits products; the office reads them; a courier's handheld gets neither (403)."""
    code = _product(client, make, within_hours=5)["code"]
    courier = make.courier()
    handheld = {"Authorization": f"Bearer {make.device(courier)['token']}"}
    body = {"code": _code(), "name_zh": "x", "name_en": "x", "within_hours": 1}
    assert client.get(PRODUCTS, headers=handheld).status_code == 403
    assert client.post(PRODUCTS, json=body, headers=handheld).status_code == 403
    assert client.patch(f"{PRODUCTS}/{code}", json={"active": False}, headers=handheld).status_code == 403
    for role in ("dispatcher", "quality", "integration"):
        assert client.post(PRODUCTS, json=body, headers=make.headers(role)).status_code == 403, role
        assert client.patch(f"{PRODUCTS}/{code}", json={"active": False},
                            headers=make.headers(role)).status_code == 403, role
    assert client.get(PRODUCTS, headers=make.headers("integration")).status_code == 403
    assert client.get(PRODUCTS).status_code == 401


# --- the promise computed ---

def test_end_of_day_promises_count_depot_days_across_midnight(client, make, shanghai):
    """次日达 collected at 23:59 and 00:01 Shanghai time: a minute apart, a depot day apart (16:00 UTC is midnight).

    Collected D-3 23:59 (15:59 UTC of D-3): by the end of D-2 = D-1 00:00 Shanghai = D-2 16:00 UTC.
    Collected D-2 00:01 (16:01 UTC of D-3, the same UTC date): by the end of D-1 = D-1 16:00 UTC.
    当日达 collected D-3 23:30: by D-2 00:00 Shanghai, half an hour later.
    """
    before, after = _days_ago(3, 23, 59), _days_ago(2, 0, 1)
    assert before.astimezone(timezone.utc).date() == after.astimezone(timezone.utc).date()
    late = _create(client, make, service_product="next_day", collected_at=before.isoformat())
    early = _create(client, make, service_product="next_day", collected_at=after.isoformat())
    same = _create(client, make, service_product="same_day", collected_at=_days_ago(3, 23, 30).isoformat())
    assert _at(late["promise"]["promised_at"]) == _days_ago(1, 0) and late["promise"]["promise_date"] == str(
        _days_ago(2, 0).date())
    assert _at(early["promise"]["promised_at"]) == _days_ago(0, 0)
    assert early["promise"]["promise_date"] == str(_days_ago(1, 0).date())
    assert _at(same["promise"]["promised_at"]) == _days_ago(2, 0) == _days_ago(3, 23, 30) + timedelta(minutes=30)
    assert (late["promise"]["service_product"], late["promise"]["name_zh"], late["promise"]["collected_at"]) == (
        "next_day", "次日达", before.astimezone(timezone.utc).isoformat())
    assert _at(late["promise"]["collected_at"]) == before


def test_hours_promises_and_a_changed_product(client, make, shanghai):
    """标快 is 72 h after collection, whatever the day; a 5 h product too; a product changed later leaves the
    promise of tasks it already gave one, and gives the new one to tasks created after."""
    collected = _days_ago(4, 22, 15)
    standard = _create(client, make, service_product="standard", collected_at=collected.isoformat())
    assert _at(standard["promise"]["promised_at"]) == collected + timedelta(hours=72)
    assert standard["promise"]["promise_date"] == str((collected + timedelta(hours=72)).date())
    code = _product(client, make, within_hours=5)["code"]
    five = _create(client, make, service_product=code, collected_at=collected.isoformat())
    assert _at(five["promise"]["promised_at"]) == collected + timedelta(hours=5)  # 03:15 the next Shanghai day
    assert five["promise"]["promise_date"] == str((collected + timedelta(days=1)).date())
    client.patch(f"{PRODUCTS}/{code}", json={"within_hours": 7}, headers=make.headers("admin"))
    later = _create(client, make, service_product=code, collected_at=collected.isoformat())
    assert _at(later["promise"]["promised_at"]) == collected + timedelta(hours=7)
    kept = client.get(f"{TASKS}/{five['id']}", headers=make.headers("dispatcher")).json
    assert _at(kept["promise"]["promised_at"]) == collected + timedelta(hours=5)


# --- every entry path ---

def _specs(make, code: str, collected: datetime, n: int) -> list[dict]:
    """n task bodies with the product and collection."""
    return [make.task_spec(service_product=code, collected_at=collected.isoformat()) for _ in range(n)]


def _promises_of(client, make, waybills) -> dict:
    """{waybill: (product, collected_at, promised_at)} read back over HTTP."""
    out = {}
    for waybill in waybills:
        page = client.get(TASKS, query_string={"waybill_no": waybill}, headers=make.headers("dispatcher")).json
        (task,) = page["items"]
        promise = task["promise"] or {}
        out[waybill] = (promise.get("service_product"), _at(promise.get("collected_at")),
                        _at(promise.get("promised_at")))
    return out


def test_every_entry_path_carries_the_promise(app, client, make, shanghai, tmp_path):
    """Dispatch create, the JSON and CSV imports, the integration manifest (JSON and CSV) and the drop folder all
    give the task its product, collection and the promised time the product makes (隔日达: end of D+2)."""
    collected = _days_ago(1, 18, 30)
    promised = _days_ago(-2, 0)  # the end of the day two days after yesterday: tomorrow's midnight
    want = ("day_after", collected, promised)
    created = _create(client, make, service_product="day_after", collected_at=collected.isoformat())
    waybills = [created["waybill_no"]]
    specs = _specs(make, "day_after", collected, 1)
    answer = client.post(f"{TASKS}/import", json=specs, headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    waybills += [s["waybill_no"] for s in specs]
    header, line = _csv_of(make, collected)
    answer = client.post(f"{TASKS}/import", data="\n".join([header, line]).encode(), content_type="text/csv",
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 201, answer.json
    waybills.append(line.split(",")[0])
    specs = _specs(make, "day_after", collected, 1)
    answer = client.post("/api/v1/integrations/manifests", data=json.dumps(specs), content_type="application/json",
                         headers=make.headers("integration"))
    assert answer.status_code == 200 and answer.json["counts"]["created"] == 1, answer.json
    waybills += [s["waybill_no"] for s in specs]
    header, line = _csv_of(make, collected)
    answer = client.post("/api/v1/integrations/manifests", data="\n".join([header, line]).encode(),
                         content_type="text/csv", headers=make.headers("integration"))
    assert answer.status_code == 200 and answer.json["counts"]["created"] == 1, answer.json
    waybills.append(line.split(",")[0])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app.config["MANIFEST_INBOX"] = str(inbox)
    specs = _specs(make, "day_after", collected, 1)
    (inbox / "orders.json").write_text(json.dumps(specs))
    assert jobs.run("manifest-import")["rows_created"] == 1
    waybills += [s["waybill_no"] for s in specs]
    assert _promises_of(client, make, waybills) == {waybill: want for waybill in waybills}


def _csv_of(make, collected: datetime, product: str = "day_after", waybill: str | None = None) -> tuple[str, str]:
    """A CSV header with the promise columns and one line of a task with them."""
    spec = make.task_spec()
    header = ("waybill_no,kind,recipient_name,recipient_phone,address,lat,lon,window_start,window_end,cod_amount,"
              "fees,parcel_no,parcel_description,parcel_count,service_product,collected_at")
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([
        waybill or spec["waybill_no"], "delivery", "王小明", spec["recipient"]["phone"], "1 Renmin Rd", 31.23, 121.47,
        spec["window"]["start"], spec["window"]["end"], 0, "", "P1", "box", 1, product,
        collected.isoformat() if collected else ""])
    return header, out.getvalue()


def test_a_manifest_changes_the_promise_while_the_task_is_open(client, make, shanghai):
    """Upstream owns the product and collection: a manifest row sent again with another product recomputes the
    promise (updated); the same row again changes nothing."""
    collected = _days_ago(1, 18, 30)
    (spec,) = _specs(make, "day_after", collected, 1)
    post = lambda body: client.post("/api/v1/integrations/manifests", data=json.dumps([body]),  # noqa: E731
                                    content_type="application/json", headers=make.headers("integration")).json
    assert post(spec)["counts"]["created"] == 1
    spec["service_product"] = "next_day"
    assert post(spec)["counts"]["updated"] == 1
    assert post(spec)["counts"]["unchanged"] == 1
    assert _promises_of(client, make, [spec["waybill_no"]])[spec["waybill_no"]] == (
        "next_day", collected, _days_ago(-1, 0))


# --- bad input ---

def test_bad_promise_input_names_the_field(client, make, shanghai):
    """Unknown or inactive product, a collection in the future, without an offset, missing with a product, or on a
    pickup: 422 naming the field, nothing stored."""
    inactive = _product(client, make, within_hours=5)["code"]
    client.patch(f"{PRODUCTS}/{inactive}", json={"active": False}, headers=make.headers("admin"))
    past = _days_ago(1, 9).isoformat()
    soon = (datetime.now(timezone.utc) + timedelta(minutes=2)).isoformat()  # within the clock tolerance (5 min)
    future = (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat()
    cases = [
        ({"service_product": "teleport_day", "collected_at": past}, "service_product"),
        ({"service_product": inactive, "collected_at": past}, "service_product"),
        ({"service_product": "next_day", "collected_at": future}, "collected_at"),
        ({"service_product": "next_day", "collected_at": "2026-12-01T09:00:00"}, "collected_at"),
        ({"service_product": "next_day"}, "collected_at"),
        ({"service_product": "next_day", "collected_at": None}, "collected_at"),
        ({"service_product": "NEXT DAY!", "collected_at": past}, "service_product"),
        ({"kind": "pickup", "cod_amount": 0, "service_product": "next_day", "collected_at": past}, "service_product"),
        ({"promised_at": past}, "promised_at"),  # the promise is computed, never taken as given
    ]
    for overrides, field in cases:
        problem = _create(client, make, expect=422, **overrides)
        assert field in problem["fields"], (overrides, problem)
    assert _create(client, make, service_product="next_day", collected_at=soon)["promise"]["state"] == "on_track"
    assert client.get(TASKS, headers=make.headers("dispatcher")).json["items"].__len__() == 1


def test_bad_promise_rows_are_named_in_imports_and_quarantined_in_manifests(client, make, shanghai):
    """The all-or-nothing import names the row and column; the manifest quarantines the row with its reason."""
    header, line = _csv_of(make, _days_ago(1, 9), product="teleport_day")
    answer = client.post(f"{TASKS}/import", data="\n".join([header, line]).encode(), content_type="text/csv",
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and list(answer.json["fields"]) == ["rows.2.service_product"], answer.json
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    answer = client.post(f"{TASKS}/import", json=_specs(make, "next_day", future, 1),
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and list(answer.json["fields"]) == ["tasks.0.collected_at"], answer.json
    good, bad = _specs(make, "next_day", _days_ago(1, 9), 1)[0], _specs(make, "next_day", future, 1)[0]
    unknown = make.task_spec(service_product="teleport_day", collected_at=_days_ago(1, 9).isoformat())
    report = client.post("/api/v1/integrations/manifests", data=json.dumps([good, bad, unknown]),
                         content_type="application/json", headers=make.headers("integration")).json
    assert report["counts"] == {"rows": 3, "created": 1, "updated": 0, "unchanged": 0, "quarantined": 2}
    assert {r["row"]: [(x["field"], x["code"]) for x in r["reasons"]] for r in report["rows"] if r["reasons"]} == {
        2: [("collected_at", "collected_in_future")], 3: [("service_product", "service_product_not_offered")]}


# --- at risk and breached ---

def test_at_risk_and_breached_listed_and_shown(app, client, make, shanghai):
    """标快 promised in 60 min (at risk within the 120 min lead), 30 min ago (breached), in 10 h (on track); a task
    without product (unknown) and a delivered one past its promise are never at risk. The filter lists the first
    two; a shorter lead leaves only the breached one; the courier's handheld shows the same promise."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    courier = make.courier()
    standard = lambda due: {"service_product": "standard",  # noqa: E731
                            "collected_at": (due - timedelta(hours=72)).isoformat()}
    risky = make.task(courier=courier, **standard(now + timedelta(minutes=60)))
    breached = make.task(courier=courier, **standard(now - timedelta(minutes=30)))
    on_track = make.task(courier=courier, **standard(now + timedelta(hours=10)))
    legacy = make.task(courier=courier)
    cancelled = make.task(**standard(now - timedelta(minutes=30)))
    client.post(f"{TASKS}/{cancelled['id']}/cancel", json={"reason": "order withdrawn"},
                headers=make.headers("dispatcher"))
    states = {t["id"]: (t["promise"] or {}).get("state") for t in client.get(
        TASKS, headers=make.headers("dispatcher")).json["items"]}
    assert states == {risky["id"]: "at_risk", breached["id"]: "breached", on_track["id"]: "on_track",
                      legacy["id"]: None, cancelled["id"]: "closed"}
    listed = lambda **q: {t["id"] for t in client.get(  # noqa: E731
        TASKS, query_string=q, headers=make.headers("quality")).json["items"]}
    assert listed(at_risk="true") == {risky["id"], breached["id"]}
    assert listed(at_risk="false") == {on_track["id"], legacy["id"], cancelled["id"]}
    app.config["PROMISE_AT_RISK_MINUTES"] = 30
    assert listed(at_risk="true") == {breached["id"]}
    app.config["PROMISE_AT_RISK_MINUTES"] = 120
    handheld = {"Authorization": f"Bearer {make.device(courier)['token']}"}
    mine = {t["id"]: t["promise"] for t in client.get("/api/v1/me/tasks", headers=handheld).json["items"]}
    assert mine[risky["id"]]["state"] == "at_risk" and mine[risky["id"]]["at_risk"] is True
    assert _at(mine[breached["id"]]["promised_at"]) == now - timedelta(minutes=30)
    assert mine[legacy["id"]] is None
    bad = client.get(TASKS, query_string={"at_risk": "perhaps"}, headers=make.headers("dispatcher"))
    assert bad.status_code == 422 and "at_risk" in bad.json["fields"]


# --- the figures on a day ---

@pytest.fixture
def day(app, midday):
    """The depot-local day it is now (about noon there)."""
    return datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()


def _report(client, make, day: date) -> dict:
    """{figure: (numerator, denominator, unknown)} of the day's total, over HTTP."""
    answer = client.get("/api/v1/reports/kpis", query_string={"from": day.isoformat(), "to": day.isoformat()},
                        headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return {name: (f["numerator"], f["denominator"], f["unknown"], f["value"])
            for name, f in answer.json["total"]["figures"].items()}


def _behind(client, make, day: date, figure: str) -> dict:
    """{task id: (counted, unknown)} behind a figure on the day."""
    answer = client.get(f"/api/v1/reports/kpis/{figure}/tasks", query_string={
        "from": day.isoformat(), "to": day.isoformat()}, headers=make.headers("quality"))
    assert answer.status_code == 200, answer.json
    return {item["id"]: (item["counted"], item["unknown"]) for item in answer.json["items"]}


def _handover(device: Device, task: dict, signature: str, signed_at: datetime) -> None:
    """Check, inspect and sign at the door, the ops dated a few minutes up to signed_at (an offline queue's)."""
    ops = []
    for minutes, (kind, payload) in ((3, ("pod.verify_recipient", verify())), (2, ("pod.inspect", inspect_ok(task))),
                                     (0, ("pod.sign", sign(signature, signer_name="Recipient", **AT_DOOR)))):
        op = device.op(kind, task["id"], payload)
        op["device_time"] = (signed_at - timedelta(minutes=minutes)).isoformat()
        ops.append(op)
    assert codes(device.push(ops)["results"]) == [("applied", None)] * 3


def test_the_figures_on_a_day_hand_computed(client, make, day, server_clock):
    """A day of deliveries built through dispatch and the handheld's pushes (hours late, from its queue).

    now0 is about noon, depot time; dispatch creates and assigns the tasks at now0 - 3 h.
      t1 当日达 collected now0-4h, promised the end of today; 2 parcels; signed now0-60m: kept
      t2 标快 collected now0-74h, promised now0-2h (today); 1 parcel; signed now0-50m: late
      t3 标快 collected now0-73h, promised now0-1h (today); 3 parcels; never delivered: a failure
      t4 no product (a legacy manifest); 1 parcel; signed now0-40m: unknown, never a pass
      t5 当日达 collected now0-4h, promised the end of today; open: not yet decided, out
      t6 次日达 collected now0-4h, promised the end of tomorrow; signed now0-30m: another day's promise
    promised_time_achievement today, in parcels: kept t1 = 2, over t1 + t2 + t3 + t4 = 2 + 1 + 3 + 1 = 7; unknown 1
      (t4) -> 2/7 = 0.2857. Tomorrow: t6, 1/1.
    collect_to_signoff (deliveries with a collection, signed): t1 180 min = 10800 s, t2 74 h - 50 min = 263400 s,
      t6 210 min = 12600 s -> 286800 / 3 = 95600.0 s; t4 has no collection time, t3 and t5 are not signed.
    """
    now0 = server_clock.now().replace(microsecond=0)
    courier = make.courier()
    with server_clock.at(now0 - timedelta(days=1)):  # enrolled the day before: nothing today precedes it
        device = Device(client, make.device(courier))
    signature = upload(device)
    plain = {"cod_amount": 0, "fees": []}
    product = lambda code, collected: {"service_product": code, "collected_at": collected.isoformat()}  # noqa: E731
    with server_clock.at(now0 - timedelta(hours=3)):
        parcels = lambda n: [{"parcel_no": f"P{uuid.uuid4().hex[:8]}", "count": 1} for _ in range(n)]  # noqa: E731
        t1 = make.task(courier=courier, parcels=parcels(2), **plain, **product("same_day", now0 - timedelta(hours=4)))
        t2 = make.task(courier=courier, parcels=parcels(1), **plain, **product("standard", now0 - timedelta(hours=74)))
        t3 = make.task(courier=courier, parcels=parcels(3), **plain, **product("standard", now0 - timedelta(hours=73)))
        t4 = make.task(courier=courier, parcels=parcels(1), **plain)
        t5 = make.task(courier=courier, parcels=parcels(1), **plain, **product("same_day", now0 - timedelta(hours=4)))
        t6 = make.task(courier=courier, parcels=parcels(1), **plain, **product("next_day", now0 - timedelta(hours=4)))
    assert _at(t2["promise"]["promised_at"]) == now0 - timedelta(hours=2)
    assert {t["promise"]["promise_date"] for t in (t1, t2, t3, t5)} == {day.isoformat()}
    assert t6["promise"]["promise_date"] == (day + timedelta(days=1)).isoformat()
    for task, minutes in ((t1, 60), (t2, 50), (t4, 40), (t6, 30)):
        _handover(device, task, signature, now0 - timedelta(minutes=minutes))
    figures = _report(client, make, day)
    assert figures["promised_time_achievement"] == (2, 7, 1, 0.2857)
    assert figures["collect_to_signoff"] == (286800, 3, None, 95600.0)
    assert figures["assignment_to_signoff"][1] == 4  # the old figure keeps its name and its own tasks
    assert _behind(client, make, day, "promised_time_achievement") == {
        t1["id"]: (True, False), t2["id"]: (False, False), t3["id"]: (False, False), t4["id"]: (False, True)}
    assert set(_behind(client, make, day, "collect_to_signoff")) == {t1["id"], t2["id"], t6["id"]}
    assert _report(client, make, day + timedelta(days=1))["promised_time_achievement"] == (1, 1, 0, 1.0)
    states = {t["id"]: t["promise"] and t["promise"]["state"] for t in client.get(
        TASKS, headers=make.headers("dispatcher")).json["items"]}
    assert states == {t1["id"]: "kept", t2["id"]: "missed", t3["id"]: "breached", t4["id"]: None,
                      t5["id"]: states[t5["id"]], t6["id"]: "kept"}
    assert states[t5["id"]] in ("on_track", "at_risk")  # due at midnight: at risk only within 2 h of it
    by_day = client.get("/api/v1/reports/kpis", query_string={"from": day.isoformat(), "to": day.isoformat(),
                                                               "group_by": "day"}, headers=make.headers("quality"))
    assert by_day.json["groups"][0]["figures"]["promised_time_achievement"]["numerator"] == 2
    as_csv = client.get("/api/v1/reports/kpis", query_string={"from": day.isoformat(), "to": day.isoformat(),
                                                               "format": "csv"}, headers=make.headers("quality"))
    rows = {r["figure"]: r for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert (rows["promised_time_achievement"]["numerator"], rows["promised_time_achievement"]["denominator"],
            rows["promised_time_achievement"]["unknown"]) == ("2", "7", "1")
    assert rows["collect_to_signoff"]["value"] == "95600.0"


def test_the_demo_seeds_a_task_at_risk_and_one_breached(app, client, make):
    """The demo's third courier has one task at risk of its promise and one past it; the list shows both."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("promises of "))
    at_risk, breached = (part.split(" ", 2)[-1].split(", ") for part in line.split(": ", 1)[1].split("; "))
    assert len(at_risk) == 1 and len(breached) == 1, line
    listed = client.get(TASKS, query_string={"at_risk": "true"}, headers=make.headers("dispatcher")).json["items"]
    assert {t["waybill_no"]: t["promise"]["state"] for t in listed} == {
        at_risk[0]: "at_risk", breached[0]: "breached"}
