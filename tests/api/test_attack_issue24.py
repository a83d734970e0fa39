"""Attacks on the API of issue 24 from outside: odd query values, unknown ids, CSV cells a spreadsheet would run,
quiet hours written wrong at start-up."""
import pytest

from server.config import parse_quiet_hours

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "＝1+1"]


@pytest.mark.parametrize("query", [{"q": "a" * 10_000}, {"q": "\x00"}, {"q": "   "}, {"q": "\u202e"},
                                   {"limit": "-1"}, {"limit": "0"}, {"limit": "9" * 30}, {"bogus": "1"},
                                   {"format": "xml"}, {"format": "csv", "bogus": "1"}, {"cursor": "garbage"}])
def test_task_search_refuses_odd_query_values_naming_the_field(client, make, query):
    """Huge, blank, control or direction-override characters, negative or huge limits, unknown parameters: 422
    naming the parameter, never a 500 nor a silent list of everything."""
    answer = client.get("/api/v1/dispatch/tasks", query_string=query, headers=make.headers("dispatcher"))
    assert answer.status_code == 422, (query, answer.status_code)
    assert set(answer.json["fields"]) & set(query), answer.json


@pytest.mark.parametrize("path", ["/couriers/{courier}/day", "/depots/north/cash", "/ledger", "/exceptions"])
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "0000-00-00", "2026-02-30"])
def test_days_far_from_now_or_impossible_are_422(client, make, path, day):
    """A day the office may ask about lies in 2000-2099 and exists: else 422 naming date, never a 500."""
    url = "/api/v1/dispatch" + path.format(courier=make.courier()["id"])
    answer = client.get(url, query_string={"date": day}, headers=make.headers("dispatcher"))
    assert answer.status_code == 422 and "date" in answer.json["fields"], (url, day, answer.status_code)


@pytest.mark.parametrize("path", ["/tasks/t-nope/timeline", "/tasks/t-nope/messages", "/couriers/c-nope/day"])
def test_unknown_ids_are_404(client, make, path):
    """Ids that name nothing answer 404 (a day also needs its date)."""
    answer = client.get("/api/v1/dispatch" + path, query_string={"date": "2026-01-05"} if "day" in path else {},
                        headers=make.headers("dispatcher"))
    assert answer.status_code == 404, (path, answer.status_code)


@pytest.mark.parametrize("exception_id", ["999999", "9999999999", "2147483648", "-1"])
@pytest.mark.parametrize("verb", ["acknowledge", "resolve"])
def test_unknown_or_huge_exception_ids_are_404(client, make, exception_id, verb):
    """Deciding an exception that does not exist, or whose id overflows a database integer, is a 404."""
    answer = client.post(f"/api/v1/dispatch/exceptions/{exception_id}/{verb}", json={"note": "Done."},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 404, answer.status_code


def test_a_task_csv_never_hands_a_spreadsheet_a_formula(client, make):
    """Recipient names and addresses opening with = + - @ (or their full-width forms) are quoted in the CSV, so a
    spreadsheet shows them as text."""
    for text in FORMULAS:
        make.task(recipient={"name": text, "phone": "13912345678", "address": text, "lat": 31.2, "lon": 121.4})
    answer = client.get("/api/v1/dispatch/tasks", query_string={"format": "csv"}, headers=make.headers("dispatcher"))
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    for line in body.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "+", "-", "@", "＝")), line


@pytest.mark.parametrize("spec", ["25:00-08:00", "08:00-08:00", "21:00-24:00", "9:00-10:00", "21:00", "21:00-08:00-09:00",
                                  "", "never", "21:60-08:00"])
def test_quiet_hours_written_wrong_fail_at_start_up(spec):
    """FIELDOPS_SMS_QUIET_HOURS that is not two different HH:MM times (or off) stops the server at start-up rather
    than sending at night."""
    with pytest.raises(RuntimeError):
        parse_quiet_hours(spec)


def test_quiet_hours_across_midnight_and_off_are_read():
    """21:00-08:00 spans midnight; OFF in any case disables."""
    assert parse_quiet_hours(" OFF ") is None
    assert parse_quiet_hours("21:00-08:00") is not None
