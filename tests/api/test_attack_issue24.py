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


class _RawGateway:
    """A TCP server on 127.0.0.1 that reads a request and answers it with fixed bytes, whatever they are."""

    def __init__(self, answer: bytes):
        """Start listening on a free port."""
        import socket
        import threading
        self.answer, self.hits = answer, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/sms/send"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        """Answer each connection with the bytes, then close it."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    self.hits += 1
                    conn.sendall(self.answer)
                except OSError:
                    pass


def _json_200(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize("answer, status", [
    (_json_200(b"\x00\xff not json at all"), "sent"),
    (_json_200(b'{"id": {"nested": [1, 2, 3]}}'), "sent"),
    (_json_200(b'{"message_id": "' + b"x" * 50_000 + b'"}'), "sent"),
    (_json_200(b"[" * 100_000), "sent"),
    (b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data\r\nContent-Length: 0\r\n\r\n", "failed"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "failed"),
    (b"", "failed"),
])
def test_a_gateway_answering_garbage_never_breaks_the_run(client, make, app, answer, status):
    """The gateway answers garbage, a huge body, a redirect into a forbidden network, or not HTTP at all: the run
    ends normally, the message is sent (a 2xx, whatever its body; the provider id is kept only if it is a short text)
    or failed to retry, and a redirect is never followed."""
    from sqlalchemy import select

    from server.config import DEFAULT_FORBIDDEN_NETWORKS, parse_networks
    from server.extensions import db
    from server.models import CustomerMessage
    from server.services import messages
    gateway = _RawGateway(answer)
    app.config.update(SMS_GATEWAY_URL=gateway.url, SMS_QUIET_HOURS=None, WEBHOOK_READ_TIMEOUT_SECONDS=1,
                      WEBHOOK_FORBIDDEN_NETWORKS=tuple(n for n in parse_networks(DEFAULT_FORBIDDEN_NETWORKS)
                                                       if str(n) not in ("127.0.0.0/8", "::1/128")))
    task = make.task()
    confirmed = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm",
                            json={"window": task["window"]}, headers=make.headers("dispatcher"))
    assert confirmed.status_code == 200, confirmed.json
    try:
        counts = messages.deliver_due()
    finally:
        gateway.sock.close()
    assert counts["made"] >= 1 and gateway.hits == 1, counts
    (message,) = db.session.scalars(select(CustomerMessage)).all()
    assert message.status == status, (message.status, message.last_error)
    assert message.provider_id is None or len(message.provider_id) <= 100
    if status == "failed":
        assert message.next_attempt_at is not None


PHONES = ("13800001111", "+8613800001111", "138-0000-1111", "138 0000 1111", "008613800001111")


def test_the_daily_cap_counts_one_phone_however_it_is_written(client, make, app):
    """Tasks to one customer whose phone is written 13800001111, +8613800001111, 138-0000-1111, 138 0000 1111: the
    cap per customer per day counts them as one phone (else spelling it otherwise sends one customer 4x the cap)."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import CustomerMessage
    from server.services import messages
    app.config.update(SMS_PER_CUSTOMER_DAY=1, SMS_QUIET_HOURS=None)
    made = []
    for phone in PHONES:
        answer = client.post("/api/v1/dispatch/tasks", json=make.task_spec(recipient={
            "name": "Wang Fang", "phone": phone, "address": "1 Renmin Rd", "lat": 31.23, "lon": 121.47}),
            headers=make.headers("dispatcher"))
        if answer.status_code == 201:
            made.append(answer.json)
    for task in made:
        confirmed = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm",
                                json={"window": task["window"]}, headers=make.headers("dispatcher"))
        assert confirmed.status_code == 200, confirmed.json
    messages.deliver_due()
    statuses = [m.status for m in db.session.scalars(select(CustomerMessage))]
    assert len(statuses) == len(made) and statuses.count("suppressed") == len(made) - 1, \
        ([t["recipient"]["phone"] for t in made], statuses)
