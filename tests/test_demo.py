"""The demo depot (`fieldops seed-demo`) shows only states the product can reach, seen through the API and pages."""
import re
from datetime import date, datetime, time, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from schemas.vocab import OPEN_STATUSES
from server import clock
from server.extensions import db
from server.models import Appointment
from tests.api.test_customer_page import csrf_of, issue, path_of


def _every(client, url: str, headers: dict, **query) -> list[dict]:
    """Every item of a paged list."""
    items, cursor = [], None
    while True:
        page = client.get(url, headers=headers, query_string={**query, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.json
        items += page.json["items"]
        cursor = page.json.get("next_cursor")
        if not cursor:
            return items


def test_the_demo_shows_only_states_the_product_can_reach(midday, app, client, make):
    """No pickup carries COD or the COD fee, no COD fee goes without COD; every customer page offers confirming
    only where a confirmation is taken (a missed appointment's page does not), and the ones offered are taken.
    At midday in the depot: near midnight the story's windows fall on two depot days and the board shows one."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    dispatcher = make.headers("dispatcher")
    tasks = _every(client, "/api/v1/dispatch/tasks", dispatcher)
    assert len(tasks) == 41
    fees = {t["id"]: {fee["code"] for fee in t["fees"]} for t in tasks}
    pickups = [t for t in tasks if t["kind"] == "pickup"]
    assert pickups and [(t["waybill_no"], t["cod_amount"], fees[t["id"]] & {"cod_service"}) for t in pickups] == [
        (t["waybill_no"], 0, set()) for t in pickups]
    assert all(t["cod_amount"] for t in tasks if "cod_service" in fees[t["id"]])
    assert any(t["cod_amount"] and t["kind"] == "delivery" for t in tasks)  # the demo still shows COD
    claims = _every(client, "/api/v1/dispatch/claims", make.headers("quality"))
    assert sorted(c["status"] for c in claims) == ["approved", "assessed", "opened", "paid", "rejected"]
    (leak,) = _every(client, "/api/v1/quality/leak-incidents", make.headers("quality"))
    assert leak["status"] == "confirmed" and leak["source"] == "customer_report"
    assert [n["audience"] for n in leak["notifications"]] == ["management", "customers"]
    today = clock.local_date(datetime.fromisoformat(leak["discovered_at"])).isoformat()
    report = client.get("/api/v1/reports/kpis", query_string={"from": today, "to": today},
                        headers=make.headers("quality")).json
    assert report["total"]["figures"]["leak_incidents"]["value"] == 1
    board = {item["task_id"]: item for item in _every(client, "/api/v1/dispatch/appointments", dispatcher)}
    assert [item["state"] for item in board.values()].count("missed") == 1
    for task in tasks:
        if task["status"] not in OPEN_STATUSES or task["id"] not in board:
            continue
        link = path_of(issue(client, make, task["id"]))
        page = client.get(link + "?lang=en")
        assert page.status_code == 200
        if board[task["id"]]["state"] == "missed":
            assert 'id="confirm"' not in page.text and "Your courier did not come at this time" in page.text
        if 'id="confirm"' in page.text:
            answer = client.post(link + "/confirm", data={"csrf": csrf_of(page)})
            assert answer.status_code == 303, (task["waybill_no"], board[task["id"]]["state"], answer.text)


class _Clock(datetime):
    """A datetime whose now() is the frozen instant the test seeds the demo at."""

    frozen: datetime

    @classmethod
    def now(cls, tz=None):
        """The frozen instant, in the zone asked for."""
        return cls.frozen.astimezone(tz)


# Instants that are rightly later than the facts: windows, forecasts, deadlines and expiries.
_AHEAD = {"window_start", "window_end", "start", "end", "notice_eta", "expires_at", "response_due_at", "due_at",
          "next_attempt_at", "claimed_until", "window_to", "promised_at", "resolution_due_at", "update_due_at",
          "valid_until"}


@pytest.mark.parametrize("local", ["00:20", "06:05", "09:00", "14:17", "23:40"])
def test_the_demo_dates_no_fact_after_it_was_seeded(app, client, make, monkeypatch, local):
    """Seeded at any time of day, no recorded instant is after the seed ran, every missed window ended before it,
    and the customer link it prints opens a page offering an action the product takes."""
    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.combine(date(2026, 11, 25), time.fromisoformat(local), zone).astimezone(timezone.utc)
    _Clock.frozen = now
    monkeypatch.setattr(clock, "datetime", _Clock)
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    later = []
    for mapper in db.Model.registry.mappers:
        for column in mapper.columns:
            if isinstance(column.type, clock.UTCDateTime) and column.key not in _AHEAD:
                attribute = getattr(mapper.class_, column.key)
                later += [(mapper.class_.__name__, column.key, at)
                          for at in db.session.scalars(select(attribute).where(attribute > now))]
    assert later == []
    missed = list(db.session.scalars(select(Appointment).where(Appointment.status == "missed")))
    assert len(missed) == 1 and all(a.window_end < now for a in missed)
    assert {a.status for a in db.session.scalars(select(Appointment))} == {
        "unconfirmed", "confirmed", "kept", "late", "missed", "not_attempted"}
    link = next(line for line in result.output.splitlines() if line.startswith("customer link for "))
    url = path_of({"url": link.rsplit(" ", 1)[1]})
    page = client.get(url + "?lang=en")
    assert page.status_code == 200 and 'id="confirm"' in page.text, page.text
    answer = client.post(url + "/confirm", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303, answer.text


def test_the_demo_seeds_journeys_and_lost_parcels(app, client, make):
    """Scans on the first courier's parcels (upstream and handheld), one parcel suspected lost, one confirmed lost;
    a journey dispatch reads over HTTP, and the customer page of a scanned parcel shows it."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    dispatcher = make.headers("dispatcher")
    lost = _every(client, "/api/v1/dispatch/parcels/lost", dispatcher)
    assert sorted(p["lost_state"] for p in lost) == ["lost", "suspected_lost"]
    tasks = _every(client, "/api/v1/dispatch/tasks", dispatcher)
    journeys = [client.get(f"/api/v1/dispatch/tasks/{t['id']}/journey", headers=dispatcher).json for t in tasks]
    events = [(item["event"], item["source"]) for j in journeys for item in j["journey"]]
    assert ("arrived_depot", "upstream") in events and ("out_for_delivery", "handheld") in events
    assert ("handed_over", "handover") in events  # the second courier's handovers wrote theirs
    scanned = next(j for j in journeys if any(i["event"] == "out_for_delivery" for i in j["journey"])
                   and next(t for t in tasks if t["id"] == j["task_id"])["status"] in OPEN_STATUSES)
    page = client.get(path_of(issue(client, make, scanned["task_id"])) + "?lang=en")
    assert page.status_code == 200 and "Out for delivery" in page.text



def test_the_demo_trains_every_courier_and_retrains_its_c_grade_before_the_shift(app, client, make):
    """Every demo courier holds the pre-job and the periodic pass; the C-grade courier was refused shift.start
    (training_required) until a refresher held after the grade, then started; the record says so over HTTP."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "refused shift.start (training_required: Before the shift: grade C requires retraining" in result.output
    dispatcher = make.headers("dispatcher")
    couriers = _every(client, "/api/v1/dispatch/couriers", dispatcher)
    assert len(couriers) == 5
    for courier in couriers:
        record = client.get(f"/api/v1/dispatch/couriers/{courier['id']}/training", headers=dispatcher).json
        assert record["may_start_shift"] is True, record
        assert {p["course_code"] for p in record["passes"] if p["valid"]} == {"PJ-SAFETY", "PR-SERVICE"}
    [c_grade] = [c for c in couriers if c["grade"] == "C"]
    became = client.get(f"/api/v1/dispatch/couriers/{c_grade['id']}/grade/history", headers=dispatcher).json
    since = datetime.fromisoformat(became["items"][0]["computed_at"])
    record = client.get(f"/api/v1/dispatch/couriers/{c_grade['id']}/training", headers=dispatcher).json
    refresher = next(p for p in record["passes"] if p["course_code"] == "PR-SERVICE")
    assert datetime.fromisoformat(refresher["held_at"]) >= since and len(record["attendance"]) == 3
    others = [c for c in couriers if c["id"] != c_grade["id"]]
    assert all(len(client.get(f"/api/v1/dispatch/couriers/{c['id']}/training", headers=dispatcher)
                   .json["attendance"]) == 2 for c in others)

def test_the_demo_prints_a_token_for_each_role_its_story_needs_and_pages_that_open(app, client, make):
    """Besides dispatcher and quality: an admin token (paying a claim), an integration token (upstream scans); the
    customer link is for an ordinary open delivery (none of its parcels suspected or confirmed lost) and offers the
    confirmation; the receipt page of a delivered task shows its paid claim and the claim form, which takes a new
    one. A second run prints fresh tokens that work too."""
    runner = app.test_cli_runner()
    for run in ("first", "again"):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
        printed = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
        token = {role: next(v for k, v in printed.items() if k.startswith(f"{role} token")).strip()
                 for role in ("dispatcher", "quality", "admin", "integration")}
        bearer = {role: {"Authorization": f"Bearer {value}"} for role, value in token.items()}
        assert client.get("/api/v1/admin/staff", headers=bearer["admin"]).status_code == 200, run
        assert client.get("/api/v1/admin/staff", headers=bearer["dispatcher"]).status_code == 403
        assert client.get("/api/v1/integrations/events", headers=bearer["integration"]).status_code == 200, run
        assert client.get("/api/v1/dispatch/tasks", headers=bearer["integration"]).status_code == 403
        claims = client.get("/api/v1/dispatch/claims?status=paid", headers=bearer["quality"]).json["items"]
        assert len(claims) == 1
        # The customer link: an ordinary open delivery of the enrolled courier's, its parcels out for delivery.
        link_line = next(line for line in result.output.splitlines() if line.startswith("customer link for "))
        waybill = link_line.split()[3]
        task = client.get("/api/v1/dispatch/tasks", query_string={"waybill_no": waybill},
                          headers=bearer["dispatcher"]).json["items"][0]
        assert (task["kind"], task["status"]) == ("delivery", "assigned")
        journey = client.get(f"/api/v1/dispatch/tasks/{task['id']}/journey", headers=bearer["dispatcher"]).json
        assert [p["lost_state"] for p in journey["parcels"]] == [None] * len(task["parcels"])
        page = client.get(path_of({"url": link_line.rsplit(" ", 1)[1]}) + "?lang=en")
        assert page.status_code == 200 and 'id="confirm"' in page.text and "Out for delivery" in page.text
        # The receipt page: the delivered damaged parcel's (its claim paid), with the form to claim.
        receipt_line = next(line for line in result.output.splitlines() if line.startswith("receipt page of "))
        assert receipt_line.split()[3] == next(t["waybill_no"] for t in _every(
            client, "/api/v1/dispatch/tasks", bearer["dispatcher"]) if t["id"] == claims[0]["task_id"])
        receipt_path = urlsplit(receipt_line.rsplit(" ", 1)[1]).path
        receipt = client.get(receipt_path + "?lang=en")
        assert receipt.status_code == 200 and 'id="send-claim"' in receipt.text and 'class="claim-paid"' in receipt.text
    # The form takes a claim (no other is open on the parcel), and the page then shows it.
    parcel_no = re.search(r'name="parcel_no" value="([^"]+)"|<option value="([^"]+)"', receipt.text).group(1, 2)
    sent = client.post(receipt_path + "/claim", data={
        "csrf": csrf_of(receipt), "lang": "en", "parcel_no": parcel_no[0] or parcel_no[1], "kind": "damage",
        "description": "The vase inside is cracked too.", "claimed_yuan": "45.00"})
    assert sent.status_code == 303, sent.text
    assert 'class="claim-status">received<' in client.get(receipt_path + "?lang=en").text


def test_the_demo_prints_the_console_and_passwords_that_sign_in(app, client):
    """The console's address and a random password for each office demo user (dispatcher, quality, admin; no
    integration: a machine's account); each signs in through the console's form with its role; a second run prints
    new passwords, and the first run's no longer work."""
    from tests.console.conftest import csrf_in
    runner, before = app.test_cli_runner(), {}
    for run in ("first", "again"):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
        console = next(line for line in result.output.splitlines() if line.startswith("console (sign in"))
        assert console.rsplit(" ", 1)[1] == "http://127.0.0.1:8000/console/"
        users = dict(re.fullmatch(r"console (\w+): username (\S+)  password (\S+)", line).group(1, 3)
                     for line in result.output.splitlines() if re.match(r"console \w+: ", line))
        assert set(users) == {"dispatcher", "quality", "admin"}, result.output
        names = {"dispatcher": "demo-dispatch", "quality": "demo-quality", "admin": "demo-admin"}
        for role, password in users.items():
            browser = app.test_client()
            token = csrf_in(browser.get("/console/login").get_data(as_text=True))
            signed_in = browser.post("/console/login", data={"csrf_token": token, "username": names[role],
                                                            "password": password})
            assert signed_in.status_code == 303, (run, role, signed_in.get_data(as_text=True))
            home = browser.get("/console/").get_data(as_text=True)
            assert names[role] in home and f"{password}" not in home
            if before:
                stale = app.test_client()
                token = csrf_in(stale.get("/console/login").get_data(as_text=True))
                assert before[role] != password
                assert stale.post("/console/login", data={"csrf_token": token, "username": names[role],
                                                          "password": before[role]}).status_code == 401
        before = users


def test_the_demo_seeds_an_owned_complaint_handed_over_and_one_in_the_unowned_queue(app, client, make):
    """首问负责制 in the demo: a dispatcher's complaint handed to the quality team with its reason (quality's token
    lists it as theirs), and a customer's complaint from their page in the unowned queue about no courier."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    printed = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    quality = {"Authorization": f"Bearer {printed['quality token'].strip()}"}
    mine = client.get("/api/v1/dispatch/complaints", query_string={"owner": "me"}, headers=quality).json["items"]
    [handed] = [c for c in mine if c["handovers"]]
    [handover] = handed["handovers"]
    assert handover["from_staff_id"] == handed["created_by"] != handed["owner_id"] == handover["to_staff_id"]
    assert handover["reason"] and handed["status"] == "responded"
    queue = client.get("/api/v1/dispatch/complaints", query_string={"owner": "none"}, headers=quality).json["items"]
    assert [(c["channel"], c["subject"], c["courier_id"]) for c in queue] == [("customer_page", "hotline", None)]
    assert f"complaint {queue[0]['reference']} filed by a customer" in result.output


def test_the_demo_seeds_an_inspection_and_an_appeal_voided_with_its_grade_history(app, client, make):
    """A spot check with one failed item (a violation, source inspection); an appeal voided by quality, the courier's
    grade history showing B and then A again because of it."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    quality = make.headers("quality")
    [inspection] = _every(client, "/api/v1/quality/inspections", quality)
    assert inspection["failed"] == ["polite_phrases"] and len(inspection["violation_ids"]) == 1
    [violation] = [v for v in _every(client, "/api/v1/quality/violations", quality) if v["source"] == "inspection"]
    assert (violation["courier_id"], violation["evidence"]["item"]) == (inspection["courier_id"], "polite_phrases")
    [voided] = _every(client, "/api/v1/quality/violations", quality, status="voided")
    assert (voided["code"], voided["appeal"]["status"]) == ("private_surcharge", "voided")
    history = _every(client, f"/api/v1/dispatch/couriers/{voided['courier_id']}/grade/history", quality)
    assert [(h["from_grade"], h["to_grade"]) for h in history] == [("B", "A"), ("A", "B")]
    assert history[0]["reasons"][0]["code"] == "violation_voided"
    assert history[0]["reasons"][0]["appeal_id"] == voided["appeal"]["id"] and "voided" in history[0]["why"]


def _signed_in(app, output: str, role: str):
    """A console client signed in as the demo user of the role, with the password the demo printed."""
    from tests.console.conftest import csrf_in
    username, password = next(re.fullmatch(r"console \w+: username (\S+)  password (\S+)", line).group(1, 2)
                              for line in output.splitlines() if line.startswith(f"console {role}: "))
    browser = app.test_client()
    token = csrf_in(browser.get("/console/login").get_data(as_text=True))
    signed_in = browser.post("/console/login", data={"csrf_token": token, "username": username, "password": password})
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)
    return browser


def test_the_demo_names_its_customers_so_a_surname_search_finds_them_and_its_depot_has_cash(
        midday, app, client, make):
    """The README's surname search (q=王) finds the demo's tasks, through the API and the console, on any date; every
    recipient has a Chinese name; the couriers work out of one depot whose cash page opens with it chosen. At midday
    the story is on today's board, and the demo says so."""
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("the story is on today's board") for line in result.output.splitlines())
    dispatcher = make.headers("dispatcher")
    tasks = _every(client, "/api/v1/dispatch/tasks", dispatcher)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", t["recipient"]["name"]) for t in tasks), [
        t["recipient"]["name"] for t in tasks]
    found = _every(client, "/api/v1/dispatch/tasks", dispatcher, q="王")
    assert len(found) >= 5 and all(t["recipient"]["name"].startswith("王") for t in found)
    assert _every(client, "/api/v1/dispatch/tasks", dispatcher, q="欧阳")
    console = _signed_in(app, result.output, "dispatcher")
    page = console.get("/console/tasks", query_string={"q": "王"}).get_data(as_text=True)
    assert sorted(re.findall(r">(SF\d+)</a>", page)) == sorted(t["waybill_no"] for t in found)
    couriers = _every(client, "/api/v1/dispatch/couriers", dispatcher)
    assert {c["depot"] for c in couriers} == {"SH01"}
    cash = console.get("/console/depots/cash").get_data(as_text=True)
    assert '<option value="SH01" selected>' in cash and 'id="depot-cash"' in cash
    assert all(c["name"] in cash for c in couriers)


def test_the_demo_seeded_before_dawn_says_which_board_holds_its_story(app, client, make, monkeypatch):
    """Seeded at 01:30 in the depot, past windows cannot lie on a day 90 minutes old: most fall on the day before,
    and the demo prints that day's board (its missed, late and kept appointments), not today's."""
    zone = ZoneInfo("Asia/Shanghai")
    _Clock.frozen = datetime.combine(date(2026, 11, 25), time(1, 30), zone).astimezone(timezone.utc)
    monkeypatch.setattr(clock, "datetime", _Clock)
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("the story is on ")]
    assert line.startswith("the story is on the board of 2026-11-24, not today's (2026-11-25)")
    assert line.endswith("/console/?date=2026-11-24")
    board = _every(client, "/api/v1/dispatch/appointments", make.headers("dispatcher"), date="2026-11-24")
    assert {"missed", "late", "kept"} <= {item["state"] for item in board}


def _qr_modules(block: list[str]) -> list[list[bool]]:
    """The light modules of a QR drawn in half blocks (one character: two rows; light modules drawn)."""
    halves = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}
    rows: list[list[bool]] = []
    for line in block:
        pairs = [halves[char] for char in line]
        rows += [[top for top, _ in pairs], [bottom for _, bottom in pairs]]
    return rows


def test_the_demo_prints_the_app_and_a_qr_that_opens_it_holding_a_fresh_code(app, client):
    """The app's address under FIELDOPS_PUBLIC_URL, the code, and a QR in the terminal whose content is the app
    link holding that code (the form the app's parseEnrollment reads); the code enrolls a device."""
    import qrcode

    app.config["PUBLIC_URL"] = "https://fieldops.example.com"
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "the courier's app: https://fieldops.example.com/app/  (a phone needs HTTPS" in result.output
    code = next(line.rsplit(": ", 1)[1] for line in lines if line.startswith("enrollment code for Wang Lei"))
    at = next(n for n, line in enumerate(lines) if line.startswith("enrollment QR for Wang Lei: "))
    link = lines[at].rsplit(": ", 1)[1]
    assert link == f"https://fieldops.example.com/app/#/enroll?code={code}"
    block = [line for line in lines[at + 1:at + 40] if line and set(line) <= set("█▀▄ ")]
    assert len(block) >= 10 and lines[at + 1] == block[0]
    drawn = _qr_modules(block)
    expected = qrcode.QRCode(border=2)
    expected.add_data(link)
    expected.make(fit=True)
    light = [[not module for module in row] for row in expected.get_matrix()]
    assert drawn[:len(light)] == light  # the last half row is the quiet zone's bottom edge
    enrolled = client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "phone"})
    assert enrolled.status_code == 201, enrolled.json
