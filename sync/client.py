"""The reference handheld: the Python twin of what the mobile app does.

Everything the courier does goes into a local SQLite queue first (a seq is
assigned in the same transaction), so a crash at any point loses nothing:
an op is only marked done when a push answer or a pull's last_seq says the
server has it, and the server applies a resent op at most once. Each pulled
page is applied in one local transaction together with its cursor.
"""
import hashlib
import hmac
import http.client
import json
import random
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

PROTOCOL_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY, op_id TEXT NOT NULL, type TEXT NOT NULL, entity_id TEXT,
    base_version INTEGER, device_time TEXT NOT NULL, payload TEXT NOT NULL, blobs TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', result TEXT);
CREATE INDEX IF NOT EXISTS queue_state ON queue (state, seq);
-- uploaded: 0 not yet, 1 stored by the server, 2 refused by it for its content (final)
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS entities (
    entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER, data TEXT NOT NULL, PRIMARY KEY (entity, id));
"""


@dataclass
class Reply:
    """An HTTP answer."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


class Transport(Protocol):
    """How the client reaches the server (HTTP in the field, a test client in tests)."""

    def request(self, method: str, path: str, *, headers: dict, body: bytes | None = None,
                query: dict | None = None) -> Reply:
        """Send one request; raise ConnectionError when the network fails."""


class HttpTransport:
    """urllib over HTTP(S), with a timeout."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        """base_url like http://127.0.0.1:8000/api/v1."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method, path, *, headers, body=None, query=None) -> Reply:
        """Send; HTTP errors are replies, network errors are ConnectionError.

        An answer cut off half-way (the server died while sending it: IncompleteRead,
        a bad status line) is a network error too: the request may or may not have
        been applied, and resending is how the protocol finds out.
        """
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Reply(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            try:
                return Reply(exc.code, dict(exc.headers), exc.read())
            except (http.client.HTTPException, OSError) as cut:
                raise ConnectionError(str(cut)) from cut
        except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            raise ConnectionError(str(exc)) from exc


def _transient(reply: Reply) -> bool:
    """5xx, 429, or 409 concurrent_update (a row changed under the request, which rolled back)."""
    if reply.status >= 500 or reply.status == 429:
        return True
    if reply.status != 409:
        return False
    try:
        problem = reply.json()
    except ValueError:
        return False
    return isinstance(problem, dict) and problem.get("code") == "concurrent_update"


# Upload refusals that are final for the bytes (attachments are content-addressed).
_REFUSED_CONTENT = ("unsafe_svg", "unsupported_content")


def _problem_code(reply: Reply) -> str | None:
    """The stable code of a problem+json answer, if it is one."""
    try:
        body = reply.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class SyncFailed(Exception):
    """The server refused in a way retrying will not fix (401, 426, a bug)."""


class DriftDetected(SyncFailed):
    """The local store still differs from the server's scope after a full resync."""


class PinRefused(Exception):
    """The task's handover PIN is missing or does not match (checked offline; nothing was queued)."""


class UnknownParcel(Exception):
    """The parcel is not one of the task's on this handheld (checked offline; nothing was queued)."""


class ShiftRequired(Exception):
    """A handover needs a shift open on this device (checked offline; nothing was queued)."""


# Ops that hand parcels over (the server applies one without an open shift and flags it work_without_shift_check).
HANDOVER_OPS = ("pod.verify_recipient", "pod.inspect", "pod.collect_payment", "pod.sign", "pod.refuse",
                "pod.deliver_alternate", "pickup.collect")


def pin_matches(pin: str, pin_state: dict) -> bool:
    """Check a PIN against the salt and hash the task carries: PBKDF2-HMAC-SHA256(pin, salt as text), hex."""
    if pin_state.get("algorithm") != "pbkdf2_sha256":
        raise ValueError(f"unknown PIN algorithm {pin_state.get('algorithm')!r}")
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), pin_state["salt"].encode(), pin_state["iterations"]).hex()
    return hmac.compare_digest(digest, pin_state["hash"])


class Handheld:
    """One device: local queue and store, push, pull."""

    def __init__(self, store_path: str, transport: Transport, *, batch_size: int = 500,
                 page_size: int = 1000, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, max_attempts: int = 8,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc).astimezone(),
                 max_shift_hours: int = 16):
        """Open (or create) the local store; a shift covers work for at most max_shift_hours (the server's
        FIELDOPS_SHIFT_MAX_HOURS)."""
        self.db = sqlite3.connect(store_path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # the queue is the courier's only copy
        self.db.executescript(_SCHEMA)
        self.transport = transport
        self.batch_size, self.page_size = batch_size, page_size
        self.sleep, self.rng, self.max_attempts, self.clock = sleep, rng or random.Random(), max_attempts, clock
        self.max_shift_hours = max_shift_hours

    # -- local state -------------------------------------------------------
    def _meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value", (key, None if value is None else str(value)))

    @property
    def device_id(self) -> str | None:
        """The enrolled device's id."""
        return self._meta("device_id")

    def _headers(self, content_type: str | None = "application/json") -> dict:
        headers = {"Authorization": f"Bearer {self._meta('token')}", "Fieldops-Protocol": PROTOCOL_VERSION}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def enroll(self, code: str, device_name: str) -> str:
        """Trade a one-time code for this device's identity and token."""
        reply = self.transport.request("POST", "/devices/enroll", headers={"Content-Type": "application/json"},
                                       body=json.dumps({"code": code, "device_name": device_name}).encode())
        if reply.status != 201:
            raise SyncFailed(f"enrollment refused: {reply.status} {reply.body[:200]!r}")
        body = reply.json()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._set_meta("device_id", body["device_id"])
            self._set_meta("token", body["token"])
        return body["device_id"]

    def add_blob(self, data: bytes) -> str:
        """Keep a photo or signature locally; returns the sha256 ops refer to it by."""
        sha = hashlib.sha256(data).hexdigest()
        self.db.execute("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (sha, data))
        return sha

    def open_shift(self) -> dict | None:
        """The shift this device has open: its newest shift op the server has not rejected, if that is a
        shift.start at most max_shift_hours old (as the server counts it); else None. {vehicle_id, started_at, seq}."""
        now = self.clock()
        for seq, op_type, vehicle_id, device_time, result in self.db.execute(
                "SELECT seq, type, entity_id, device_time, result FROM queue "
                "WHERE type IN ('shift.start', 'shift.end') ORDER BY seq DESC"):
            if result and json.loads(result).get("status") == "rejected":
                continue  # refused (checks not done, van off the road): it opened or ended nothing
            if op_type == "shift.end" or now - datetime.fromisoformat(device_time) > timedelta(
                    hours=self.max_shift_hours):
                return None
            return {"vehicle_id": vehicle_id, "started_at": device_time, "seq": seq}
        return None

    def queue(self, op_type: str, entity_id: str | None, payload: dict, *, blobs: list[str] = (),
              entity: str = "task") -> int:
        """Record what the courier did; the seq is assigned in the same local transaction.

        A handover op needs an open shift (open_shift): without one it is refused
        here (ShiftRequired) and nothing is queued.
        """
        if op_type in HANDOVER_OPS and self.open_shift() is None:
            raise ShiftRequired(
                "No shift is open on this handheld: do the conduct check and the van's pre-trip check, start the "
                "shift, then hand over (rule work_without_shift_check: handovers are made in an open shift).")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            seq = int(self._meta("next_seq", 1))
            row = self.db.execute("SELECT version FROM entities WHERE entity = ? AND id = ?",
                                  (entity, entity_id)).fetchone() if entity_id else None
            self.db.execute(
                "INSERT INTO queue (seq, op_id, type, entity_id, base_version, device_time, payload, blobs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                # The version this device last saw; 0 when it never saw the entity
                # (a new one it creates, or one it acts on before its first pull).
                (seq, str(uuid.uuid4()), op_type, entity_id, row[0] if row else 0,
                 self.clock().isoformat(), json.dumps(payload), json.dumps(list(blobs))))
            self._set_meta("next_seq", seq + 1)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return seq

    def task(self, task_id: str) -> dict | None:
        """The task as last pulled (None if this device does not hold it)."""
        row = self.db.execute("SELECT data FROM entities WHERE entity = 'task' AND id = ?", (task_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def scan(self, task_id: str, *, parcel_no: str, event: str, note: str | None = None) -> int:
        """parcel.scan: a parcel of the task seen at a point of its journey; a parcel the task does not hold (as
        pulled) is refused here first, offline (UnknownParcel). The server checks again (unknown_parcel)."""
        task = self.task(task_id)
        if task is not None and parcel_no not in {p["parcel_no"] for p in task.get("parcels", [])}:
            raise UnknownParcel(f"Task {task_id} has no parcel {parcel_no}.")
        return self.queue("parcel.scan", task_id, {"parcel_no": parcel_no, "event": event, "note": note})

    # The handover at the door: each method queues one op (the server applies the same rules again).
    def verify_recipient(self, task_id: str, *, method: str, name: str, relation: str | None = None,
                         pin: str | None = None, lat: float | None = None, lon: float | None = None) -> int:
        """pod.verify_recipient; a task that requires a PIN is checked here first, offline (PinRefused)."""
        task = self.task(task_id)
        pin_state = ((task or {}).get("handover") or {}).get("pin")
        if pin_state and pin is None:
            raise PinRefused("This task needs the handover PIN; ask the recipient for it.")
        if pin_state and not pin_matches(pin, pin_state):
            raise PinRefused("The PIN does not match; ask the recipient again.")
        return self.queue("pod.verify_recipient", task_id, {"method": method, "name": name, "relation": relation,
                                                            "pin": pin, "lat": lat, "lon": lon})

    def inspect(self, task_id: str, *, items: list[dict], customer_accepted: bool, photos: list[bytes] = ()) -> int:
        """pod.inspect: items [{parcel_no, counted, condition}], photos as bytes (kept and uploaded first)."""
        shas = [self.add_blob(photo) for photo in photos]
        return self.queue("pod.inspect", task_id, {"items": items, "customer_accepted": customer_accepted,
                                                   "photos": shas}, blobs=shas)

    def collect_payment(self, task_id: str, *, amount: int, method: str) -> int:
        """pod.collect_payment, in fen."""
        return self.queue("pod.collect_payment", task_id, {"amount": amount, "method": method})

    def sign(self, task_id: str, *, signature: bytes, signer_name: str, lat: float, lon: float,
             gift_disclosed: bool = False) -> int:
        """pod.sign with the signature image (kept and uploaded first)."""
        sha = self.add_blob(signature)
        return self.queue("pod.sign", task_id, {"signature": sha, "signer_name": signer_name, "lat": lat, "lon": lon,
                                                "gift_disclosed": gift_disclosed}, blobs=[sha])

    def refuse(self, task_id: str, *, reason: str, note: str | None = None, photos: list[bytes] = ()) -> int:
        """pod.refuse."""
        shas = [self.add_blob(photo) for photo in photos]
        return self.queue("pod.refuse", task_id, {"reason": reason, "note": note, "photos": shas}, blobs=shas)

    def deliver_alternate(self, task_id: str, *, place: str, via: str, reference: str = "",
                          photos: list[bytes] = ()) -> int:
        """pod.deliver_alternate with the customer's consent (via customer_link or contact)."""
        shas = [self.add_blob(photo) for photo in photos]
        return self.queue("pod.deliver_alternate", task_id, {
            "place": place, "authorization": {"via": via, "reference": reference}, "photos": shas}, blobs=shas)

    def collect_pickup(self, task_id: str, *, parcels: list[dict], fees: list[dict], signature: bytes,
                       signer_name: str, payment: dict | None = None) -> int:
        """pickup.collect."""
        sha = self.add_blob(signature)
        return self.queue("pickup.collect", task_id, {"parcels": parcels, "fees": fees, "payment": payment,
                                                      "signature": sha, "signer_name": signer_name}, blobs=[sha])
    def submit_checklist(self, template: dict, answers: list[dict], *, lat: float, lon: float,
                         vehicle_id: str | None = None, task_id: str | None = None, signature: str | None = None,
                         acknowledged_report_id: str | None = None, blobs: list[str] = ()) -> tuple[int, str]:
        """Queue checklist.submit against a template held locally: a create op named by a fresh UUID.

        Returns (seq, submission id); the id is the device's, so the op never waits for the server.
        """
        submission_id = str(uuid.uuid4())
        payload = {"template_id": template["id"], "template_version": template["current"], "answers": answers,
                   "lat": lat, "lon": lon, "vehicle_id": vehicle_id, "task_id": task_id, "signature": signature,
                   "acknowledged_report_id": acknowledged_report_id}
        return self.queue("checklist.submit", submission_id, payload, blobs=blobs,
                          entity="checklist_submission"), submission_id

    def appeal(self, violation_id: int, reason: str, *, photos: list[bytes] = ()) -> tuple[int, str]:
        """Queue violation.appeal of one of the courier's violations: a create op named by a fresh UUID.

        Returns (seq, appeal id); the courier record shows the appeal once the server took it.
        """
        appeal_id = str(uuid.uuid4())
        shas = [self.add_blob(photo) for photo in photos]
        payload = {"violation_id": violation_id, "reason": reason, "photos": shas}
        return self.queue("violation.appeal", appeal_id, payload, blobs=shas, entity="violation_appeal"), appeal_id

    def shift(self, kind: str, vehicle_id: str, odometer: int) -> int:
        """Queue shift.start or shift.end (kind "start" or "end") on the van, at the version held."""
        return self.queue(f"shift.{kind}", vehicle_id, {"odometer": odometer}, entity="vehicle")

    def receipts(self) -> dict[str, dict]:
        """{task id: {number, url}} of the held tasks whose handover has its receipt (the page's QR to show)."""
        held = {}
        for task_id, data in self.db.execute("SELECT id, data FROM entities WHERE entity = 'task'"):
            receipt = (json.loads(data).get("handover") or {}).get("receipt")
            if receipt:
                held[task_id] = receipt
        return held

    def pending(self) -> int:
        """Ops not yet known to be on the server."""
        return self.db.execute("SELECT count(*) FROM queue WHERE state = 'pending'").fetchone()[0]

    def results(self) -> dict[int, dict]:
        """Stored results by seq (None for ops acknowledged without a result in hand)."""
        return {seq: json.loads(result) if result else None for seq, result in
                self.db.execute("SELECT seq, result FROM queue WHERE state = 'done' ORDER BY seq")}

    def entities(self) -> dict[tuple[str, str], dict]:
        """The local store: (entity, id) -> {version, data}."""
        return {(e, i): {"version": v, "data": json.loads(d)} for e, i, v, d in
                self.db.execute("SELECT entity, id, version, data FROM entities")}

    def checksum(self) -> dict:
        """The same drift check the server computes over the device's scope."""
        lines = sorted(f"{e}:{i}:{v}" for e, i, v in self.db.execute("SELECT entity, id, version FROM entities"))
        return {"count": len(lines), "checksum": hashlib.sha256("\n".join(lines).encode()).hexdigest()}

    def _ack_through(self, last_seq: int) -> None:
        """The server has every op up to last_seq (from a push answer or a pull)."""
        self.db.execute("UPDATE queue SET state = 'done' WHERE state = 'pending' AND seq <= ?", (last_seq,))

    # -- network -----------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> Reply:
        """A request with retries on network failure and transient answers, backing off with jitter."""
        for attempt in range(self.max_attempts):
            try:
                reply = self.transport.request(method, path, **kwargs)
            except ConnectionError:
                reply = None
            if reply is not None and not _transient(reply):
                return reply
            retry_after = float((reply.headers.get("Retry-After") if reply else None) or 0)
            self.sleep(max(retry_after, min(30.0, 0.25 * 2 ** attempt) * (0.5 + self.rng.random())))
        raise ConnectionError(f"{method} {path}: no answer after {self.max_attempts} attempts")

    def _upload(self, shas: set[str]) -> None:
        """Upload attachments before the ops that name them; HEAD first, PUT is idempotent."""
        for sha in sorted(shas):
            row = self.db.execute("SELECT data, uploaded FROM blobs WHERE sha256 = ?", (sha,)).fetchone()
            if row is None or row[1]:
                continue
            if self._call("HEAD", f"/attachments/{sha}", headers=self._headers(None)).status != 200:
                reply = self._call("PUT", f"/attachments/{sha}", headers=self._headers("application/octet-stream"),
                                   body=row[0])
                if reply.status == 422 and _problem_code(reply) in _REFUSED_CONTENT:
                    # Final for these bytes: the ops naming them go anyway, and the
                    # server rejects them (attachment_refused) so the queue moves on.
                    self.db.execute("UPDATE blobs SET uploaded = 2 WHERE sha256 = ?", (sha,))
                    continue
                if reply.status not in (200, 201):
                    raise SyncFailed(f"attachment {sha} refused: {reply.status} {reply.body[:200]!r}")
            self.db.execute("UPDATE blobs SET uploaded = 1 WHERE sha256 = ?", (sha,))

    def push(self) -> int:
        """Push pending ops in seq order until none is left; returns how many were acknowledged."""
        acked, stops = 0, 0
        while True:
            rows = self.db.execute(
                "SELECT seq, op_id, type, entity_id, base_version, device_time, payload, blobs FROM queue "
                "WHERE state = 'pending' ORDER BY seq LIMIT ?", (self.batch_size,)).fetchall()
            if not rows:
                return acked
            self._upload({sha for row in rows for sha in json.loads(row[7])})
            ops = [{"seq": r[0], "op_id": r[1], "type": r[2], "entity_id": r[3], "base_version": r[4],
                    "device_time": r[5], "payload": json.loads(r[6])} for r in rows]
            # The clock the ops were dated by, whatever it says (the server measures it, and dates the ops by
            # it), and how far the queue is numbered: a batch of a long queue is not all of it.
            body = {"device_id": self.device_id, "ops": ops, "device_now": self.clock().isoformat(),
                    "last_seq": int(self._meta("next_seq", 1)) - 1}
            reply = self._call("POST", "/sync/push", headers=self._headers(), body=json.dumps(body).encode())
            if reply.status != 200:
                raise SyncFailed(f"push refused: {reply.status} {reply.body[:300]!r}")
            body = reply.json()
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for result in body["results"]:
                    self.db.execute("UPDATE queue SET state = 'done', result = ? WHERE seq = ? AND op_id = ?",
                                    (json.dumps(result), result["seq"], result["op_id"]))
                before = self.pending()
                self._ack_through(body["last_seq"])
                acked += len(body["results"]) + before - self.pending()
            if "expected_seq" in body:
                # The server lacks ops we held as done (it was restored from a backup):
                # they are still in the queue, so send them again from where it asks.
                stops += 1
                self.db.execute("UPDATE queue SET state = 'pending' WHERE seq >= ?", (body["expected_seq"],))
            if "stopped_at" in body:
                stops += 1
                self.sleep(body["retry_after"] * (0.5 + self.rng.random()))
            if stops > self.max_attempts:
                raise ConnectionError(f"server keeps stopping the push: {body.get('stop_code')} "
                                      f"at {body.get('stopped_at', body.get('expected_seq'))}")

    def pull(self) -> dict:
        """Pull until has_more is false; verify the scope checksum, resyncing once on drift."""
        for _ in range(2):
            last = self._pull_pages()
            if last["scope"] == self.checksum():
                return last
            with self.db:  # drift: forget the local copy and fetch the whole scope again
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("DELETE FROM entities")
                self._set_meta("cursor", None)
        raise DriftDetected(f"local store differs from the server's scope: {self.checksum()} vs {last['scope']}")

    def _pull_pages(self) -> dict:
        """Apply pages, each in one local transaction with its cursor."""
        while True:
            cursor = self._meta("cursor")
            query = {"limit": self.page_size, **({"cursor": cursor} if cursor else {})}
            reply = self._call("GET", "/sync/pull", headers=self._headers(None), query=query)
            if reply.status != 200:
                raise SyncFailed(f"pull refused: {reply.status} {reply.body[:300]!r}")
            page = reply.json()
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                if page.get("reset"):
                    self.db.execute("DELETE FROM entities")
                    self._set_meta("cursor", None)
                    continue
                if cursor is None:
                    self.db.execute("DELETE FROM entities")  # a full listing replaces the store
                for change in page["changes"]:
                    if change["deleted"]:
                        self.db.execute("DELETE FROM entities WHERE entity = ? AND id = ?",
                                        (change["entity"], change["id"]))
                    else:
                        self.db.execute("INSERT INTO entities (entity, id, version, data) VALUES (?, ?, ?, ?) "
                                        "ON CONFLICT (entity, id) DO UPDATE SET version = excluded.version, "
                                        "data = excluded.data",
                                        (change["entity"], change["id"], change["version"],
                                         json.dumps(change["data"])))
                self._ack_through(page["last_seq"])
                self._set_meta("cursor", page["cursor"])
            if not page["has_more"]:
                return page

    def sync(self) -> dict:
        """Push everything pending, then pull everything new."""
        pushed = self.push()
        last = self.pull()
        return {"pushed": pushed, "pending": self.pending(), "scope": last["scope"], "last_seq": last["last_seq"]}

    def close(self) -> None:
        """Close the local store."""
        self.db.close()
