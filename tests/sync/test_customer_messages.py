"""Messages to customers, end to end: events from dispatch and the handheld become SMS to a local gateway."""
import base64
import json
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import standardwebhooks
from sqlalchemy import select

from schemas.vocab import MESSAGE_KINDS
from server.clock import local_zone, utcnow
from server.config import DEFAULT_FORBIDDEN_NETWORKS, QuietHours, parse_networks, parse_quiet_hours
from server.extensions import db
from server.models import CustomerMessage
from server.services import messages
from tests.sync.test_handover import door_ops, upload

CJK = re.compile(r"[\u4e00-\u9fff]")
LATER = timedelta(days=1)


class Gateway:
    """A real HTTP server on 127.0.0.1 playing the SMS gateway: answers by a script, keeps every request."""

    def __init__(self):
        """Start listening on a free port."""
        self.script: list = []  # per request: a status, or ("sleep", seconds, status); then 200
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                with gateway.lock:
                    action = gateway.script.pop(0) if gateway.script else 200
                    gateway.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "path": self.path})
                try:
                    if isinstance(action, tuple):
                        time.sleep(action[1])
                        action = action[2]
                    answer = json.dumps({"message_id": f"gw-{len(gateway.requests)}"}).encode()
                    self.send_response(action)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the sender gave up (a timeout)
                    pass

            def log_message(self, *_args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/sms/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sent(self) -> list[dict]:
        """The JSON bodies received, in order."""
        return [json.loads(r["body"]) for r in self.requests]

    def stop(self):
        """Shut down."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    """A local gateway, stopped after the test."""
    server = Gateway()
    yield server
    server.stop()


@pytest.fixture
def sms(app, gateway):
    """The app sending to the local gateway: loopback allowed, a key and a signing secret, no quiet hours (each
    test that wants them sets them; the app fixture restores the config)."""
    app.config.update(
        SMS_GATEWAY_URL=gateway.url, SMS_GATEWAY_KEY="gw-key-123",
        SMS_GATEWAY_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(), SMS_QUIET_HOURS=None,
        WEBHOOK_READ_TIMEOUT_SECONDS=1, WEBHOOK_FORBIDDEN_NETWORKS=tuple(
            n for n in parse_networks(DEFAULT_FORBIDDEN_NETWORKS) if str(n) not in ("127.0.0.0/8", "::1/128")))
    return app


def listed(client, make, task_id: str, role: str = "dispatcher") -> list[dict]:
    """The task's messages through the API."""
    answer = client.get(f"/api/v1/dispatch/tasks/{task_id}/messages", headers=make.headers(role))
    assert answer.status_code == 200, answer.json
    return answer.json["items"]


def phone_of(task: dict) -> str:
    """The recipient's phone as the task was given it."""
    return task["recipient"]["phone"]


def confirm(client, make, task: dict, window: dict | None = None):
    """Dispatch agrees the task's window (or another)."""
    answer = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/confirm",
                         json={"window": window or task["window"]}, headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json


def later_window(task: dict, hours: int = 5) -> dict:
    """The task's window moved `hours` later."""
    start = datetime.fromisoformat(task["window"]["start"]) + timedelta(hours=hours)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}


def path_of(url: str) -> str:
    """The path and query of an absolute URL (the test client's request)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def next_local(hour: int) -> datetime:
    """The next depot-local time at `hour`:00 after now, in UTC."""
    local = utcnow().astimezone(local_zone())
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    return (at if at > local else at + timedelta(days=1)).astimezone(timezone.utc)


def test_a_day_through_dispatch_and_the_handheld_texts_the_customer_in_chinese(client, make, courier, device, sms,
                                                                               gateway):
    """Proposed (with a working customer link), confirmed, out for delivery (once a day, however many scans), running
    late, delivered (with a working receipt link): signed, sent, each once, visible on the task with the phone masked."""
    task = make.task(courier=courier)
    answer = client.post(f"/api/v1/dispatch/tasks/{task['id']}/appointment/reschedule",
                         json={"window": later_window(task), "reason": "depot closed", "customer_agreed": False},
                         headers=make.headers("dispatcher"))
    assert answer.status_code == 200, answer.json
    confirm(client, make, task)
    assert messages.deliver_due()["sent"] == 2  # the job runs every few seconds: the task is still open
    parcel = task["parcels"][0]["parcel_no"]
    eta = (datetime.fromisoformat(task["window"]["start"]) + timedelta(minutes=40)).astimezone(local_zone())
    results = device.push([device.op("parcel.scan", task["id"], {"parcel_no": parcel, "event": "out_for_delivery"}),
                           device.op("parcel.scan", task["id"], {"parcel_no": parcel, "event": "out_for_delivery"}),
                           device.op("appointment.late_notice", task["id"],
                                     {"eta": eta.isoformat(), "reason": "traffic"})])["results"]
    assert [r["status"] for r in results] == ["applied"] * 3
    results = device.push(door_ops(device, task, upload(device)))["results"]
    assert all(r["status"] == "applied" for r in results), results

    counts = messages.deliver_due()
    assert counts == {"made": 3, "suppressed": 1, "held_quiet": 0, "sent": 3, "failed": 0, "dead": 0}
    shown = listed(client, make, task["id"])
    assert [m["kind"] for m in shown] == ["appointment_proposed", "appointment_confirmed", "out_for_delivery",
                                          "out_for_delivery", "courier_late", "delivered"]
    assert [(m["status"], m["reason"]) for m in shown] == [("sent", None)] * 3 + [
        ("suppressed", "already_told_today")] + [("sent", None)] * 2
    masked = phone_of(task)[:3] + "****" + phone_of(task)[-4:]
    assert {m["to_phone"] for m in shown} == {masked} and {m["language"] for m in shown} == {"zh"}
    assert all(m["provider_id"].startswith("gw-") and m["attempts"] == 1 for m in shown if m["status"] == "sent")
    assert phone_of(task) not in json.dumps(shown)

    # What the gateway got: the phone, the text in Chinese, a bearer key, a signature over the body.
    sent = gateway.sent()
    assert [b["kind"] for b in sent] == [m["kind"] for m in shown if m["status"] == "sent"]
    assert {b["to"] for b in sent} == {phone_of(task)} and all(CJK.search(b["text"]) for b in sent)
    assert all(task["waybill_no"] in b["text"] for b in sent)
    verifier = standardwebhooks.Webhook(sms.config["SMS_GATEWAY_SECRET"])
    for request in gateway.requests:
        assert request["headers"]["authorization"] == "Bearer gw-key-123"
        assert verifier.verify(request["body"], request["headers"])["id"] == request["headers"]["webhook-id"]
    # The proposal's link opens the customer's page; the delivery's opens the sealed receipt.
    link = re.search(r"https?://\S+", sent[0]["text"])[0]
    assert client.get(path_of(link)).status_code == 200
    receipt = re.search(r"https?://\S+", sent[-1]["text"])[0]
    page = client.get(path_of(receipt))
    assert page.status_code == 200 and 'id="number">FO-' in page.get_data(as_text=True)

    # The same events never make a second message; nothing is sent again.
    assert messages.deliver_due(now=utcnow() + LATER)["sent"] == 0
    assert len(listed(client, make, task["id"])) == 6 and len(gateway.requests) == 5


def test_the_customer_who_chose_english_on_their_page_is_texted_in_english(client, make, sms, gateway):
    """Choosing English on the customer page (the switch) makes later messages English; others stay Chinese."""
    task, other = make.task(), make.task()
    link = client.post(f"/api/v1/dispatch/tasks/{task['id']}/customer-link", json={},
                       headers=make.headers("dispatcher"))
    assert link.status_code == 201, link.json
    assert client.get(path_of(link.json["url"]) + "?lang=en").status_code == 200
    confirm(client, make, task)
    confirm(client, make, other)
    messages.deliver_due()
    english, chinese = gateway.sent()
    assert (english["language"], chinese["language"]) == ("en", "zh")
    assert not CJK.search(english["text"]) and "delivered on" in english["text"]
    assert CJK.search(chinese["text"])
    [shown] = listed(client, make, task["id"])
    assert shown["language"] == "en"


def test_a_failing_gateway_is_retried_with_backoff_and_a_slow_one_times_out(client, make, sms, gateway):
    """A 500 and an answer slower than the timeout are retried later with the same id; then both are sent."""
    first, second = make.task(), make.task()
    confirm(client, make, first)
    confirm(client, make, second)
    gateway.script = [500, ("sleep", 2.5, 200)]
    now = utcnow()
    assert messages.deliver_due(now=now) == {"made": 2, "suppressed": 0, "held_quiet": 0, "sent": 0, "failed": 2,
                                             "dead": 0}
    failed, slow = listed(client, make, first["id"])[0], listed(client, make, second["id"])[0]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 500)
    assert slow["status"] == "failed" and "timed out" in slow["last_error"]
    for retry in (failed, slow):  # full jitter under BASE * 2^0
        wait = datetime.fromisoformat(retry["next_attempt_at"]) - datetime.fromisoformat(retry["last_attempt_at"])
        assert timedelta(0) <= wait <= timedelta(seconds=sms.config["SMS_BACKOFF_BASE_SECONDS"])
    assert messages.deliver_due(now=now - timedelta(seconds=1))["sent"] == 0  # not due yet
    assert messages.deliver_due(now=now + LATER)["sent"] == 2
    assert {m["status"] for t in (first, second) for m in listed(client, make, t["id"])} == {"sent"}
    ids = [r["headers"]["webhook-id"] for r in gateway.requests]
    assert len(ids) == 4 and sorted(set(ids)) == sorted(ids[:2])


def test_a_message_is_dead_after_the_last_attempt(client, make, sms, gateway):
    """Always 500: dead after FIELDOPS_SMS_MAX_ATTEMPTS, never tried again."""
    sms.config["SMS_MAX_ATTEMPTS"] = 3
    task = make.task()
    confirm(client, make, task)
    gateway.script = [500] * 5
    now = utcnow()
    counts = [messages.deliver_due(now=now + k * LATER) for k in range(4)]
    assert [c["failed"] for c in counts] == [1, 1, 0, 0] and [c["dead"] for c in counts] == [0, 0, 1, 0]
    [dead] = listed(client, make, task["id"])
    assert (dead["status"], dead["attempts"], dead["next_attempt_at"]) == ("dead", 3, None)
    assert len(gateway.requests) == 3


def test_quiet_hours_hold_messages_until_the_morning(client, make, sms, gateway):
    """At 22:00 depot time a message waits until 08:00 (held_quiet); a retry never lands in the night; off: sent."""
    sms.config["SMS_QUIET_HOURS"] = parse_quiet_hours("21:00-08:00")
    task = make.task()
    confirm(client, make, task)
    night = next_local(22)
    assert messages.deliver_due(now=night)["sent"] == 0
    [held] = listed(client, make, task["id"])
    morning = (night.astimezone(local_zone()) + timedelta(hours=10)).replace(hour=8)
    assert held["status"] == "held_quiet" and datetime.fromisoformat(held["next_attempt_at"]) == morning
    assert messages.deliver_due(now=night + timedelta(hours=3))["sent"] == 0 and gateway.requests == []
    assert messages.deliver_due(now=morning.astimezone(timezone.utc))["sent"] == 1
    assert listed(client, make, task["id"])[0]["status"] == "sent"

    # A message queued by day whose send comes due in the night is held too, not sent.
    other = make.task()
    confirm(client, make, other)
    messages.make_due(now=night - timedelta(hours=2))
    assert listed(client, make, other["id"])[0]["status"] == "queued"
    counts = messages.deliver_due(now=night)
    assert (counts["held_quiet"], counts["sent"]) == (1, 0)
    assert listed(client, make, other["id"])[0]["status"] == "held_quiet"
    sms.config["SMS_QUIET_HOURS"] = parse_quiet_hours("off")
    assert messages.deliver_due(now=night)["sent"] == 1


def test_quiet_hours_are_read_in_the_depots_zone():
    """21:00-08:00 crosses midnight; 12:00-14:00 does not; malformed settings stop start-up."""
    assert parse_quiet_hours("21:00-08:00") == QuietHours(*(datetime.strptime(t, "%H:%M").time()
                                                            for t in ("21:00", "08:00")))
    assert parse_quiet_hours("OFF") is None
    for bad in ("21-08", "21:00", "08:00-08:00", "25:00-08:00"):
        with pytest.raises(RuntimeError, match="FIELDOPS_SMS_QUIET_HOURS"):
            parse_quiet_hours(bad)


def test_at_most_n_messages_per_phone_per_day_the_rest_suppressed(client, make, sms, gateway, server_clock):
    """Three tasks to one phone and a cap of 2: the third message is kept as suppressed (daily_cap), never sent."""
    sms.config["SMS_PER_CUSTOMER_DAY"] = 2
    spec = {"name": "Wang Fang", "phone": "13800001111", "address": "1 Renmin Rd", "lat": 31.23, "lon": 121.47}
    same = [make.task(recipient=spec) for _ in range(3)]
    elsewhere = make.task()
    for task in (*same, elsewhere):
        confirm(client, make, task)
    counts = messages.deliver_due()
    assert (counts["made"], counts["suppressed"], counts["sent"]) == (3, 1, 3)
    [third] = listed(client, make, same[2]["id"])
    assert (third["status"], third["reason"], third["attempts"]) == ("suppressed", "daily_cap", 0)
    assert [b["to"] for b in gateway.sent()].count("13800001111") == 2
    # The next depot day counts afresh.
    with server_clock.at(utcnow() + LATER):
        start = utcnow().replace(microsecond=0) + timedelta(hours=1)
        again = make.task(recipient=spec, window={"start": start.isoformat(),
                                                  "end": (start + timedelta(hours=2)).isoformat()})
        confirm(client, make, again)
        messages.deliver_due()
    assert listed(client, make, again["id"])[0]["status"] == "sent"


def test_without_a_gateway_messages_are_recorded_not_sent(client, make, app, gateway):
    """FIELDOPS_SMS_GATEWAY_URL unset (the default): every message is recorded with its text, nothing is sent."""
    assert app.config["SMS_GATEWAY_URL"] is None
    task = make.task()
    confirm(client, make, task)
    assert messages.deliver_due() == {"made": 1, "suppressed": 0, "held_quiet": 0, "sent": 0, "failed": 0,
                                      "dead": 0}
    [recorded] = listed(client, make, task["id"])
    assert recorded["status"] == "recorded" and task["waybill_no"] in recorded["text"]
    assert gateway.requests == []


def test_a_gateway_in_a_forbidden_network_gets_no_request(client, make, sms, gateway):
    """The webhooks' forbidden networks hold for the gateway too: loopback refused, nothing reaches it."""
    sms.config["WEBHOOK_FORBIDDEN_NETWORKS"] = parse_networks(DEFAULT_FORBIDDEN_NETWORKS)
    sms.config["SMS_GATEWAY_URL"] = f"http://localhost:{gateway.port}/sms/send"
    task = make.task()
    confirm(client, make, task)
    assert messages.deliver_due()["failed"] == 1
    [refused] = listed(client, make, task["id"])
    assert refused["status"] == "failed" and "forbidden network" in refused["last_error"]
    assert gateway.requests == []


def test_claim_decisions_tell_the_customer(client, make, sms, gateway):
    """An approval (with the amount) and a rejection are told; an assessment is not."""
    task = make.task(parcels=[{"parcel_no": "CL-1", "count": 1}, {"parcel_no": "CL-2", "count": 1}])
    claims = []
    for parcel in ("CL-1", "CL-2"):
        answer = client.post("/api/v1/dispatch/claims", json={
            "origin": "dispatch", "task_id": task["id"], "parcel_no": parcel, "kind": "other", "description": "?",
            "claimed_amount": 1000}, headers=make.headers("dispatcher"))
        assert answer.status_code == 201, answer.json
        claims.append(answer.json)
    steps = [(claims[0], "assess", {"loss_amount": 1000}), (claims[0], "approve", {}),
             (claims[1], "reject", {"reason": "No damage on the photos."})]
    for claim, action, body in steps:
        answer = client.post(f"/api/v1/dispatch/claims/{claim['id']}/{action}", json=body,
                             headers=make.headers("quality"))
        assert answer.status_code == 200, answer.json
    messages.deliver_due()
    shown = listed(client, make, task["id"])
    assert [m["kind"] for m in shown] == ["claim_approved", "claim_rejected"]
    approved = shown[0]["text"]
    assert "¥" in approved and str(shown[0]["text"]).count(task["waybill_no"]) == 1
    assert "No damage" not in shown[1]["text"]  # reasons are words the office keeps


def test_events_older_than_a_day_are_history_not_texted(client, make, sms, gateway):
    """A scheduler back after more than a day sends nothing about yesterday; the feed moves on."""
    confirm(client, make, make.task())
    assert messages.deliver_due(now=utcnow() + timedelta(hours=25))["made"] == 0
    assert gateway.requests == [] and db.session.scalar(select(CustomerMessage.id)) is None


def test_every_template_renders_in_both_languages(app):
    """Each kind has a Chinese and an English template file; both render with what the job gives them."""
    context = {"waybill_no": "WB0001", "eta": "10:40", "link_url": "https://fo.example/c/foc_x",
               "receipt_url": "https://fo.example/r/x", "amount": "36.00"}
    for kind in MESSAGE_KINDS:
        zh = messages.render(kind=kind, language="zh", window="12月8日 09:00-11:00", **context)
        en = messages.render(kind=kind, language="en", window="Tue 08 Dec 09:00-11:00", **context)
        assert "WB0001" in zh and "WB0001" in en and "{" not in zh + en
        assert CJK.search(zh) and not CJK.search(en)
    assert "foc_x" in messages.render(kind="appointment_proposed", language="en", window="", **context)
    assert "r/x" in messages.render(kind="delivered", language="zh", **context)
    with pytest.raises(ValueError):
        messages.render(kind="nonsense", language="zh")


def test_a_customers_phone_is_never_logged(client, make, courier, device, sms, gateway, lines):
    """Making, sending, failing and listing messages log ids and outcomes, never the phone."""
    task = make.task(courier=courier)
    confirm(client, make, task)
    gateway.script = [500]
    messages.deliver_due()
    messages.deliver_due(now=utcnow() + LATER)
    listed(client, make, task["id"])
    from server import jobs
    jobs.run("customer-messages")
    text = "\n".join(lines)
    assert "message attempt failed" in text
    assert phone_of(task) not in text and phone_of(task)[-8:] not in text


def test_the_messages_route_checks_role_and_task(client, make, courier, device):
    """Office roles read a task's messages; a handheld's token is refused (403), an unknown task is a 404."""
    task = make.task(courier=courier)
    for role in ("dispatcher", "quality", "admin"):
        assert listed(client, make, task["id"], role) == []
    refused = client.get(f"/api/v1/dispatch/tasks/{task['id']}/messages", headers=device.headers)
    assert refused.status_code == 403
    missing = client.get("/api/v1/dispatch/tasks/t_nope/messages", headers=make.headers("dispatcher"))
    assert missing.status_code == 404 and missing.json["code"] == "task_not_found"
