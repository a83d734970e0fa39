"""Webhook subscriptions (admin) and the outbox: signed deliveries to a real local receiver, retries, dead letters."""
import base64
import ssl
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks
from sqlalchemy import select, update

from server import jobs
from server.clock import utcnow
from server.config import DEFAULT_FORBIDDEN_NETWORKS, parse_networks
from server.extensions import db
from server.models import AuditEntry, Event, WebhookDelivery, WebhookSubscription
from server.services import webhooks

URL = "/api/v1/admin/webhooks"
LATER = timedelta(days=1)  # past any backoff the tests configure


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread: answers by a script, keeps every request it got."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        """Start listening on a free port (HTTPS with the context given)."""
        self.script: list = []  # per request, in order: a status, or ("sleep", seconds, status); then 200
        self.requests: list[dict] = []
        self.in_flight: Counter = Counter()
        self.most_in_flight: Counter = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                webhook_id = self.headers.get("webhook-id")
                with receiver.lock:
                    action = receiver.script.pop(0) if receiver.script else 200
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                    receiver.in_flight[webhook_id] += 1
                    receiver.most_in_flight[webhook_id] = max(receiver.most_in_flight[webhook_id],
                                                              receiver.in_flight[webhook_id])
                try:
                    if isinstance(action, tuple):
                        time.sleep(action[1])
                        action = action[2]
                    self.send_response(action)
                    if 300 <= action < 400:
                        self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up (a timeout): nothing to answer
                    pass
                finally:
                    with receiver.lock:
                        receiver.in_flight[webhook_id] -= 1

            def log_message(self, *_args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/fieldops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        """The webhook-id of every request, in arrival order."""
        return [r["headers"]["webhook-id"] for r in self.requests]

    def stop(self):
        """Shut down."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """A local receiver, stopped after the test."""
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def loopback_allowed(app):
    """Tests send to 127.0.0.1: the forbidden networks without loopback (the app fixture restores the config)."""
    app.config["WEBHOOK_FORBIDDEN_NETWORKS"] = tuple(
        n for n in parse_networks(DEFAULT_FORBIDDEN_NETWORKS) if str(n) not in ("127.0.0.0/8", "::1/128"))
    app.config["WEBHOOK_READ_TIMEOUT_SECONDS"] = 1
    return app


def subscribe(client, make, url: str, types=("*",), **more) -> dict:
    """Create a subscription through the API; the answer with its secret."""
    response = client.post(URL, json={"url": url, "event_types": list(types), **more}, headers=make.headers("admin"))
    assert response.status_code == 201, response.json
    return response.json


def log_of(client, make, subscription_id: str, **query) -> list[dict]:
    """The subscription's delivery log, newest first."""
    response = client.get(f"{URL}/{subscription_id}/deliveries", query_string=query, headers=make.headers("admin"))
    assert response.status_code == 200, response.json
    return response.json["items"]


def event_ids(type_: str | None = None) -> list[str]:
    """Committed event ids, in position order."""
    db.session.expire_all()
    query = select(Event.id).order_by(Event.position)
    return list(db.session.scalars(query.where(Event.type == type_) if type_ else query))


def test_admin_manages_subscriptions_and_the_secret_is_shown_once(client, make):
    """Create (secret once, whsec_ + base64 of 32 bytes), list, read, change, rotate, delete; secrets never listed."""
    made = subscribe(client, make, "https://upstream.example.com/hooks", ["task.delivered", "task.refused"],
                     description="order system")
    secret, hook = made["secret"], made["webhook"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert hook["event_types"] == ["task.delivered", "task.refused"] and hook["active"] is True
    admin = make.headers("admin")
    listed = client.get(URL, headers=admin)
    one = client.get(f"{URL}/{hook['id']}", headers=admin)
    assert [h["id"] for h in listed.json["items"]] == [hook["id"]] and one.json == hook
    for answer in (listed, one):
        assert secret not in answer.get_data(as_text=True) and "\"secret\"" not in answer.get_data(as_text=True)
    stored = db.session.get(WebhookSubscription, hook["id"])
    assert secret not in stored.secret_sealed and webhooks.unseal(stored.secret_sealed, hook["id"]) == secret
    assert all(secret not in str(e.after) and "secret_sealed" not in (e.after or {})
               for e in db.session.scalars(select(AuditEntry)))
    changed = client.patch(f"{URL}/{hook['id']}", json={"event_types": ["*"], "active": False}, headers=admin)
    assert changed.status_code == 200 and (changed.json["event_types"], changed.json["active"]) == (["*"], False)
    rotated = client.post(f"{URL}/{hook['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json["secret"] != secret
    assert rotated.json["webhook"]["secret_rotated_at"] is not None
    assert client.delete(f"{URL}/{hook['id']}", headers=admin).status_code == 204
    assert client.get(f"{URL}/{hook['id']}", headers=admin).json["code"] == "webhook_not_found"
    assert client.delete(f"{URL}/{hook['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"url": "ftp://upstream.example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "https://a.example.com/x\nHost: evil", "event_types": ["*"]}, "url"),
    ({"url": "https://a.example.com/x", "event_types": []}, "event_types"),
    ({"url": "https://a.example.com/x", "event_types": ["task.teleported"]}, "event_types.0"),
    ({"url": "https://a.example.com/x", "event_types": ["*", "task.delivered"]}, "event_types"),
    ({"url": "https://a.example.com/x", "event_types": ["*"], "secret": "whsec_mine"}, "secret"),
    ({"url": "https://user:pass@a.example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "https://token@a.example.com/x", "event_types": ["*"]}, "url"),
    ({"url": "https://a.example.com@evil.example.net/x", "event_types": ["*"]}, "url"),
    ({"url": "https://a.example.com:99999/x", "event_types": ["*"]}, "url"),
    ({"url": "https://a.example.com:0/x", "event_types": ["*"]}, "url"),
    ({"url": "http://[::1/x", "event_types": ["*"]}, "url"),
    ({"url": "http://[not-an-address]/x", "event_types": ["*"]}, "url"),
    ({"event_types": ["*"]}, "url"),
])
def test_bad_subscriptions_name_the_field_and_write_nothing(client, make, body, field):
    """A 422 names the field; no subscription is made."""
    response = client.post(URL, json=body, headers=make.headers("admin"))
    assert response.status_code == 422 and field in response.json["fields"], response.json
    assert db.session.scalars(select(WebhookSubscription)).all() == []


def test_bad_changes_are_refused(client, make):
    """An empty PATCH, a bad URL, an unknown id: 422, 422, 404; the subscription stays as it was."""
    hook = subscribe(client, make, "https://a.example.com/x")["webhook"]
    admin = make.headers("admin")
    assert client.patch(f"{URL}/{hook['id']}", json={}, headers=admin).status_code == 422
    bad = client.patch(f"{URL}/{hook['id']}", json={"url": "javascript:alert(1)"}, headers=admin)
    assert bad.status_code == 422 and "url" in bad.json["fields"]
    assert client.patch(f"{URL}/w-none", json={"active": False}, headers=admin).status_code == 404
    assert client.get(f"{URL}/{hook['id']}", headers=admin).json == hook


def test_delivery_survives_a_failure_and_a_timeout_signed_and_with_one_id(client, make, receiver, loopback_allowed):
    """A 500, a timeout, then success: every event delivered, signatures verified, the same webhook-id on retries."""
    made = subscribe(client, make, receiver.url)
    courier = make.courier()
    for _ in range(3):
        make.task(courier=courier)
    assigned = event_ids("task.assigned")
    receiver.script = [500, ("sleep", 2.5, 200), 200]
    now = utcnow()
    first = webhooks.deliver_due(now=now)
    assert first == {"fanned_out": 3, "sent": 3, "delivered": 1, "failed": 2, "dead": 0}
    log = {d["event_id"]: d for d in log_of(client, make, made["webhook"]["id"])}
    failed, timed_out, landed = (log[i] for i in assigned)
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("pending", 1, 500)
    assert timed_out["status"] == "pending" and "timed out" in timed_out["last_error"]
    assert (landed["status"], landed["last_status_code"]) == ("delivered", 200)
    for retry in (failed, timed_out):  # full jitter under BASE * 2^0
        wait = (retry_at := _time(retry["next_attempt_at"])) - _time(retry["last_attempt_at"])
        assert timedelta(0) <= wait <= timedelta(seconds=300) and retry_at > now
    assert webhooks.deliver_due(now=now)["sent"] == 0  # not due yet
    second = webhooks.deliver_due(now=now + LATER)
    assert (second["sent"], second["delivered"]) == (2, 2)
    assert webhooks.deliver_due(now=now + 2 * LATER)["sent"] == 0
    assert {d["status"] for d in log_of(client, make, made["webhook"]["id"])} == {"delivered"}
    # Every request verifies with the subscription's secret; retries carry the event's id again.
    verifier = standardwebhooks.Webhook(made["secret"])
    for request in receiver.requests:
        payload = verifier.verify(request["body"], request["headers"])
        assert payload["type"] == "task.assigned" and payload["id"] == request["headers"]["webhook-id"]
    assert Counter(receiver.ids()) == {assigned[0]: 2, assigned[1]: 2, assigned[2]: 1}
    assert receiver.requests[0]["path"] == "/hooks/fieldops"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhooks._new_secret()).verify(receiver.requests[0]["body"],
                                                                receiver.requests[0]["headers"])


def _time(value: str):
    """An API time as a datetime."""
    return datetime.fromisoformat(value)


def test_dead_after_the_last_attempt_then_replayed_by_an_admin(client, make, receiver, loopback_allowed):
    """Always 500: dead after FIELDOPS_WEBHOOK_MAX_ATTEMPTS, never tried again; replay sends it once more."""
    loopback_allowed.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    hook = subscribe(client, make, receiver.url, ["task.assigned"])["webhook"]
    make.task(courier=make.courier())
    receiver.script = [500] * 3
    now = utcnow()
    counts = [webhooks.deliver_due(now=now + k * LATER) for k in range(4)]
    assert [c["sent"] for c in counts] == [1, 1, 1, 0] and counts[2]["dead"] == 1
    [dead] = log_of(client, make, hook["id"], status="dead")
    assert (dead["attempts"], dead["last_status_code"]) == (3, 500)
    admin = make.headers("admin")
    replayed = client.post(f"{URL}/{hook['id']}/deliveries/{dead['id']}/replay", headers=admin)
    assert replayed.status_code == 200 and (replayed.json["status"], replayed.json["attempts"]) == ("pending", 0)
    assert webhooks.deliver_due()["delivered"] == 1
    assert receiver.ids() == [dead["event_id"]] * 4
    # A delivery delivered can be replayed too; an unknown one, or another subscription's, is a 404.
    again = client.post(f"{URL}/{hook['id']}/deliveries/{dead['id']}/replay", headers=admin)
    assert again.status_code == 200 and webhooks.deliver_due()["delivered"] == 1
    other = subscribe(client, make, receiver.url)["webhook"]
    assert client.post(f"{URL}/{other['id']}/deliveries/{dead['id']}/replay", headers=admin).status_code == 404
    assert client.post(f"{URL}/{hook['id']}/deliveries/999999/replay", headers=admin).status_code == 404


def test_forbidden_addresses_get_no_request_and_redirects_are_not_followed(client, make, receiver):
    """By default loopback is forbidden: nothing reaches the receiver (by address or by name); a 3xx is a failure."""
    by_address = subscribe(client, make, receiver.url)["webhook"]
    by_name = subscribe(client, make, f"http://localhost:{receiver.port}/x")["webhook"]
    make.task(courier=make.courier())
    assert webhooks.deliver_due()["failed"] == 2
    assert receiver.requests == []
    for hook in (by_address, by_name):
        [refused] = log_of(client, make, hook["id"])
        assert refused["attempts"] == 1 and refused["last_status_code"] is None
        assert "forbidden network" in refused["last_error"]
    client.application.config["WEBHOOK_FORBIDDEN_NETWORKS"] = ()
    receiver.script = [302]
    client.delete(f"{URL}/{by_name['id']}", headers=make.headers("admin"))
    webhooks.deliver_due(now=utcnow() + LATER)
    [redirected] = log_of(client, make, by_address["id"])
    assert (redirected["status"], redirected["last_status_code"]) == ("pending", 302)
    assert redirected["last_error"] == "redirect not followed" and len(receiver.requests) == 1


def _certificate_for_localhost(folder) -> tuple[str, str]:
    """A self-signed certificate for the name localhost: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_checks_the_certificate_against_the_urls_name(client, make, loopback_allowed, tmp_path, monkeypatch):
    """HTTPS to the checked address: an untrusted certificate is a failure; trusted, it verifies for the URL's name."""
    cert_file, key_file = _certificate_for_localhost(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = Receiver(tls)
    try:
        made = subscribe(client, make, f"https://localhost:{server.port}/hooks")
        make.task(courier=make.courier())
        assert webhooks.deliver_due()["failed"] == 1 and server.requests == []
        [untrusted] = log_of(client, make, made["webhook"]["id"])
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted["last_error"]
        monkeypatch.setenv("SSL_CERT_FILE", cert_file)  # now the certificate is trusted
        assert webhooks.deliver_due(now=utcnow() + LATER)["delivered"] == 1
        [request] = server.requests
        assert request["headers"]["Host"] == f"localhost:{server.port}"
        standardwebhooks.Webhook(made["secret"]).verify(request["body"], request["headers"])
    finally:
        server.stop()


def test_subscriptions_get_what_they_asked_for_from_their_creation_on(client, make, receiver, loopback_allowed):
    """Earlier events are not sent; a type filter holds; a paused subscription sends nothing until resumed."""
    courier = make.courier()
    make.task(courier=courier)
    delivered_only = subscribe(client, make, receiver.url, ["task.delivered"])["webhook"]
    everything = subscribe(client, make, receiver.url)["webhook"]
    client.patch(f"{URL}/{everything['id']}", json={"active": False}, headers=make.headers("admin"))
    make.task(courier=courier)
    assert webhooks.deliver_due()["sent"] == 0
    client.patch(f"{URL}/{everything['id']}", json={"active": True}, headers=make.headers("admin"))
    assert webhooks.deliver_due()["delivered"] == 1
    assert receiver.ids() == event_ids("task.assigned")[1:]
    assert log_of(client, make, delivered_only["id"]) == []


def test_changing_the_types_loses_nothing_already_committed(client, make, receiver, loopback_allowed):
    """Events committed before a change of types go out under the old types; the new types count from the change."""
    hook = subscribe(client, make, receiver.url, ["task.assigned"])["webhook"]
    courier, van = make.courier(), make.vehicle()
    make.task(courier=courier)
    headers = make.headers("admin")
    assert client.patch(f"{URL}/{hook['id']}", json={"event_types": ["vehicle.out_of_service"]},
                        headers=headers).status_code == 200
    make.task(courier=courier)
    client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"status": "out_of_service"},
                 headers=make.headers("dispatcher"))
    assert webhooks.deliver_due()["delivered"] == 2
    assert receiver.ids() == [event_ids("task.assigned")[0], *event_ids("vehicle.out_of_service")]


def test_a_crashed_workers_claim_expires_and_its_late_outcome_is_ignored(client, make, receiver, loopback_allowed):
    """A claim lasts WEBHOOK_CLAIM_SECONDS: no one else sends meanwhile; then another worker does, once."""
    subscribe(client, make, receiver.url)
    make.task(courier=make.courier())
    now = utcnow()
    webhooks._fan_out(now)
    crashed = webhooks._claim(now, now, set())  # claimed, then the worker died before sending
    assert webhooks.deliver_due(now=now + timedelta(seconds=30))["sent"] == 0
    assert webhooks.deliver_due(now=now + timedelta(seconds=61))["delivered"] == 1
    assert webhooks._record(crashed, webhooks.outbound.Answer(500, "late"), now) is None
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == ("delivered", 1, 1)


def test_a_rotated_secret_signs_from_the_next_attempt(client, make, receiver, loopback_allowed):
    """After rotation deliveries verify with the new secret, not the old one; the job runs by name."""
    made = subscribe(client, make, receiver.url)
    rotated = client.post(f"{URL}/{made['webhook']['id']}/rotate-secret", headers=make.headers("admin")).json
    make.task(courier=make.courier())
    assert jobs.run("outbox")["delivered"] == 1
    [request] = receiver.requests
    standardwebhooks.Webhook(rotated["secret"]).verify(request["body"], request["headers"])
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(made["secret"]).verify(request["body"], request["headers"])


def test_a_changed_secret_key_fails_deliveries_until_the_secret_is_rotated(client, make, receiver, loopback_allowed):
    """Sealed under the old FIELDOPS_SECRET_KEY the secret cannot be read: the attempt fails, nothing is sent."""
    hook = subscribe(client, make, receiver.url)["webhook"]
    make.task(courier=make.courier())
    loopback_allowed.config["SECRET_KEY"] = "a-new-key"
    assert webhooks.deliver_due()["failed"] == 1 and receiver.requests == []
    [failed] = log_of(client, make, hook["id"])
    assert "rotate it" in failed["last_error"]
    rotated = client.post(f"{URL}/{hook['id']}/rotate-secret", headers=make.headers("admin")).json
    assert webhooks.deliver_due(now=utcnow() + LATER)["delivered"] == 1
    standardwebhooks.Webhook(rotated["secret"]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])


def test_two_workers_never_send_one_delivery_at_once(app, client, make, receiver, loopback_allowed):
    """Two outbox workers in parallel (FOR UPDATE SKIP LOCKED on PostgreSQL): each event sent once, never twice at once."""
    subscribe(client, make, receiver.url)
    courier = make.courier()
    for _ in range(12):
        make.task(courier=courier)
    receiver.script = [("sleep", 0.2, 200)] * 12
    # The deliveries exist before both start (a worker that finds none due while the other fans out just stops).
    assert webhooks._fan_out(utcnow()) == 12
    results, errors = [], []
    both = threading.Barrier(2)

    def worker():
        try:
            with app.app_context():
                both.wait(30)
                results.append(webhooks.deliver_due())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sum(r["delivered"] for r in results) == 12 and all(r["sent"] for r in results)  # both worked
    assert Counter(receiver.ids()) == Counter(event_ids("task.assigned"))
    assert set(receiver.most_in_flight.values()) == {1}
    assert {d.status for d in db.session.scalars(select(WebhookDelivery))} == {"delivered"}


def test_forbidden_networks_none_forbids_nothing_and_a_bad_block_stops_start_up():
    """FIELDOPS_WEBHOOK_FORBIDDEN_NETWORKS=none lets a receiver on this machine in; a malformed block is refused."""
    import ipaddress

    from server.config import parse_networks
    assert parse_networks("none") == parse_networks(" NONE ") == ()
    assert parse_networks("127.0.0.0/8, ::1/128") == (ipaddress.ip_network("127.0.0.0/8"),
                                                      ipaddress.ip_network("::1/128"))
    with pytest.raises(RuntimeError, match="CIDR"):
        parse_networks("127.0.0.0/33")
def test_a_stored_url_that_cannot_be_parsed_fails_its_delivery_and_stalls_no_other(client, make, receiver,
                                                                                 loopback_allowed):
    """A URL stored before the schema refused it (a port beyond 65535, a broken IPv6 bracket) used to raise out of
    the outbox run: every run then died on it first and nothing else was sent. Now it is a failed attempt."""
    good = subscribe(client, make, receiver.url)["webhook"]
    broken = [subscribe(client, make, "https://a.example.com/x")["webhook"] for _ in range(2)]
    for hook, url in zip(broken, (f"http://127.0.0.1:{10 ** 6}/x", "http://[::1/x"), strict=True):
        db.session.execute(update(WebhookSubscription).where(WebhookSubscription.id == hook["id"]).values(url=url))
    db.session.commit()
    make.task(courier=make.courier())
    counts = webhooks.deliver_due()
    assert counts == {"fanned_out": 3, "sent": 3, "delivered": 1, "failed": 2, "dead": 0}
    assert len(receiver.requests) == 1 and log_of(client, make, good["id"])[0]["status"] == "delivered"
    for hook in broken:
        [failed] = log_of(client, make, hook["id"])
        assert failed["status"] == "pending" and "not a valid URL" in failed["last_error"], failed


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]",
                                  "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[64:ff9b::a00:1]", "[2002:7f00:1::]",
                                  "[2002:c0a8:101::1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "[::127.0.0.1]"])
def test_loopback_and_private_addresses_in_disguise_are_refused(client, make, receiver, host):
    """Decimal, hex and octal IPv4, IPv4-mapped, NAT64 (64:ff9b::/96), 6to4 (2002::/16), Teredo and
    IPv4-compatible IPv6 addresses carrying a loopback or private IPv4: refused, nothing sent."""
    hook = subscribe(client, make, f"http://{host}:{receiver.port}/x")["webhook"]
    make.task(courier=make.courier())
    assert webhooks.deliver_due()["failed"] == 1 and receiver.requests == []
    [refused] = log_of(client, make, hook["id"])
    assert "forbidden network" in refused["last_error"], refused


class Dripper:
    """A raw TCP server on 127.0.0.1 that answers 200 and then drips one header byte at a time, each well inside
    the read timeout, for `seconds`: a receiver that never finishes its answer."""

    def __init__(self, seconds: float, gap: float = 0.2):
        """Listen on a free port; serve one connection at a time in a thread."""
        import socket
        self.seconds, self.gap, self.connections = seconds, gap, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        """Accept, read the request, drip."""
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                try:
                    connection.recv(65536)
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    until = time.monotonic() + self.seconds
                    while time.monotonic() < until:
                        connection.sendall(b"a")
                        time.sleep(self.gap)
                    connection.sendall(b"\r\nContent-Length: 0\r\n\r\n")
                except OSError:  # the sender gave up
                    pass

    def stop(self):
        """Stop listening."""
        self.listener.close()


def test_an_answer_dripped_slowly_is_cut_at_the_attempts_deadline(client, make, loopback_allowed):
    """Each byte comes inside the read timeout, the whole never: the attempt ends at connect + read timeout
    (here 1 + 1 s), well inside the claim, so no second worker can send the same delivery meanwhile."""
    loopback_allowed.config["WEBHOOK_CONNECT_TIMEOUT_SECONDS"] = 1
    dripper = Dripper(seconds=12)
    try:
        hook = subscribe(client, make, f"http://127.0.0.1:{dripper.port}/x")["webhook"]
        make.task(courier=make.courier())
        started = time.monotonic()
        counts = webhooks.deliver_due()
        took = time.monotonic() - started
    finally:
        dripper.stop()
    assert counts["failed"] == 1 and took < 6, (counts, took)
    [slow] = log_of(client, make, hook["id"])
    assert slow["status"] == "pending" and "timed out" in slow["last_error"], slow
