"""The console's board (/console) and task search (/console/tasks): the API's rules, shown to the office."""
import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from server.services import appointments
from tests.sync.conftest import SHANGHAI, courier, device  # noqa: F401 - fixtures
from tests.sync.test_appointment_dispatch import HERE, _confirm, _end, _window


@pytest.fixture
def day(client, make, courier, device, midday, server_clock):  # noqa: F811 - fixtures
    """A depot day with a task in each of the board's states, built through the API and the push path."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with server_clock.at(now - timedelta(hours=6, minutes=30)):
        missed, late = [make.task(courier=courier, window=_window(now - timedelta(hours=5))) for _ in range(2)]
        _confirm(client, make, late)
    soon = make.task(courier=courier, window=_window(now - timedelta(minutes=100)))  # ends in 20 minutes
    unconfirmed, confirmed = [make.task(courier=courier, window=_window(now + timedelta(minutes=60))) for _ in range(2)]
    for task in (soon, confirmed):
        _confirm(client, make, task)
    device.push([dict(device.op("appointment.confirm", missed["id"], {"window": missed["window"], "via": "phone"}),
                      device_time=(now - timedelta(hours=6)).astimezone(SHANGHAI).isoformat()),
                 dict(device.op("stop.arrive", late["id"], HERE),
                      device_time=(_end(late) + timedelta(minutes=5)).astimezone(SHANGHAI).isoformat())])
    assert appointments.sweep_missed()["missed"] == 1
    return {"unconfirmed": unconfirmed, "confirmed": confirmed, "at_risk": soon, "late": late, "missed": missed,
            "courier": courier}


def _column(html: str, state: str) -> set[str]:
    """The waybills listed in a board column."""
    match = re.search(rf'<section[^>]*id="column-{state}".*?</section>', html, re.S)
    assert match, state
    return set(re.findall(r">([A-Z0-9\-]{4,40})</a>", match.group(0)))


@pytest.mark.parametrize("role", ["dispatcher", "admin", "quality"])
def test_the_board_shows_each_state_as_the_api_does(client, make, console_as, day, role):
    """Each column holds exactly the tasks the API's board gives that state; the columns refresh alone."""
    api = client.get("/api/v1/dispatch/appointments", headers=make.headers("dispatcher")).json["items"]
    by_state = {}
    for item in api:
        by_state.setdefault(item["state"], set()).add(item["waybill_no"])
    console = console_as(role)
    page = console.get("/console/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for state in ("unconfirmed", "confirmed", "at_risk", "late", "missed"):
        assert _column(html, state) == by_state[state] == {day[state]["waybill_no"]}, state
    assert 'hx-get="/console/board/columns' in html and 'hx-trigger="every 30s"' in html
    assert 'id="board-refresh"' in html  # without JavaScript, a link does what htmx does
    part = console.get("/console/board/columns").get_data(as_text=True)
    assert "<html" not in part and _column(part, "missed") == {day["missed"]["waybill_no"]}
    assert f'/console/tasks/{day["late"]["id"]}' in html


def test_the_board_in_english_filtered_and_refusing_bad_input(console_as, day):
    """English by ?lang=en; a courier filter; a day with nothing; a bad date shown as a message, not a 500."""
    console = console_as("dispatcher")
    html = console.get("/console/?lang=en").get_data(as_text=True)
    assert "Today&#39;s board" in html and "At risk" in html and "今日看板" not in html
    other = console.get("/console/?courier_id=c-nobody").get_data(as_text=True)
    assert all(_column(other, state) == set() for state in ("unconfirmed", "missed"))
    empty = console.get("/console/?date=2020-01-01").get_data(as_text=True)
    assert _column(empty, "missed") == set() and "None" in empty  # English stays chosen (its cookie)
    bad = console.get("/console/?date=yesterday")
    assert bad.status_code == 200 and 'role="alert"' in bad.get_data(as_text=True)


def test_roles_without_the_board(console_as):
    """Maintenance signs in to the pages it may open, never the board; its columns are refused."""
    console = console_as("maintenance")
    assert console.get("/console/").status_code == 200
    assert 'id="board"' not in console.get("/console/").get_data(as_text=True)
    assert console.get("/console/board/columns").status_code == 403
    assert console.get("/console/tasks?q=x").status_code == 403


def test_signed_out_is_sent_to_sign_in(app):
    """No session: the sign-in form, for the board and the search alike."""
    anonymous = app.test_client()
    for path in ("/console/", "/console/tasks?q=x", "/console/board/columns"):
        response = anonymous.get(path)
        assert response.status_code in (302, 303) and "/console/login" in response.headers["Location"], path


def _rows(html: str) -> list[str]:
    """The waybills of the results table, in order."""
    table = re.search(r'<table id="results">.*?</table>', html, re.S)
    return re.findall(r">([A-Z0-9\-]{4,40})</a></td>", table.group(0)) if table else []


def test_search_finds_as_the_api_does(client, make, console_as):
    """Waybill prefix, surname, phone suffix, with filters; the same rows as the API for the same query."""
    from tests.api.test_task_search import _task
    rider = make.courier()
    _task(make, waybill="SF7001", name="王小明", phone="13800135678", courier=rider)
    _task(make, waybill="SF7002", name="欧阳娜娜", phone="13900001234")
    _task(make, waybill="YT7003", name="John Smith", phone="13700009999")
    console = console_as("dispatcher")
    for q, waybills in (("sf70", ["SF7001", "SF7002"]), ("王", ["SF7001"]), ("欧阳", ["SF7002"]),
                        ("smith", ["YT7003"]), ("5678", ["SF7001"]), ("nobody", [])):
        html = console.get("/console/tasks", query_string={"q": q}).get_data(as_text=True)
        api = client.get("/api/v1/dispatch/tasks", query_string={"q": q}, headers=make.headers("dispatcher")).json
        assert _rows(html) == [t["waybill_no"] for t in api["items"]] and sorted(_rows(html)) == waybills, q
    filtered = console.get("/console/tasks", query_string={"q": "sf70", "courier_id": rider["id"],
                                                            "status": "assigned"}).get_data(as_text=True)
    assert _rows(filtered) == ["SF7001"]
    assert "13800135678" in filtered and "王小明" in filtered  # as the API shows dispatch
    # No filter at all: today's tasks (the page says so), the date field left empty for the search that follows.
    today = console.get("/console/tasks").get_data(as_text=True)
    assert 'id="search-scope"' in today and 'name="date" value=""' in today
    bad = console.get("/console/tasks", query_string={"q": "x" * 41, "status": "lost"})
    assert bad.status_code == 200 and 'role="alert"' in bad.get_data(as_text=True) and not _rows(
        bad.get_data(as_text=True))
    english = console.get("/console/tasks?q=sf70&lang=en").get_data(as_text=True)
    assert "Task search" in english and "Download CSV" in english


def test_a_search_term_without_a_date_searches_every_date_and_a_chosen_date_is_kept(make, console_as, midday):
    """Nothing asked: today's tasks only. A phone's last four or an older waybill, no date chosen: found on any
    date; with a date chosen, that date only. The board keeps showing today."""
    from tests.api.test_task_search import _task
    current = _task(make, waybill="SF8001", name="王芳", phone="13800134321")
    older = _task(make, waybill="SF8002", name="王伟", phone="13900004321", day_offset=-3)
    console = console_as("dispatcher")
    shown = _rows(console.get("/console/tasks").get_data(as_text=True))
    assert "SF8001" in shown and "SF8002" not in shown
    for q in ("4321", "SF8002", "王"):
        assert "SF8002" in _rows(console.get("/console/tasks", query_string={"q": q}).get_data(as_text=True)), q
    day = older["service_date"]
    chosen = console.get("/console/tasks", query_string={"q": "4321", "date": day}).get_data(as_text=True)
    assert _rows(chosen) == ["SF8002"] and f'name="date" value="{day}"' in chosen
    board = console.get("/console/").get_data(as_text=True)
    assert current["service_date"] in board and day not in board


def test_search_csv_download_reads_back(client, make, console_as):
    """The page's CSV link: every matching row, UTF-8 with a BOM, the API's columns, formulas defused."""
    from tests.api.test_task_search import _task
    _task(make, waybill="SF8001", name="=cmd|' /C calc'!A0", phone="13800135678", address="@SUM(1)")
    _task(make, waybill="SF8002", name="李雷", phone="13800131111")
    console = console_as("dispatcher")
    html = console.get("/console/tasks", query_string={"q": "SF80"}).get_data(as_text=True)
    link = re.search(r'id="csv-link" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    response = console.get(link)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert sorted(r["waybill_no"] for r in rows) == ["SF8001", "SF8002"]
    hostile = next(r for r in rows if r["waybill_no"] == "SF8001")
    assert hostile["recipient.name"].startswith("'=") and hostile["recipient.address"] == "'@SUM(1)"
    assert next(r for r in rows if r["waybill_no"] == "SF8002")["recipient.name"] == "李雷"
