"""Sealed receipts: a completed handover's evidence as canonical JSON, signed with the server's Ed25519 key.

The format (docs/receipts.md) is what a customer, a court or the upstream system
re-creates to verify a receipt offline with nothing but the published public key.
"""
import base64
import binascii
import functools
import hashlib
import json
import os
import re
import tempfile
from datetime import date, datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app, g, has_request_context, request
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.dialects import postgresql, sqlite

from schemas.vocab import RECEIPT_KINDS
from server import ids, sealing
from server.auth import Budget, client_key, count_attempt, record_failure
from server.clock import local_date, utcnow
from server.errors import Gone, NotFound
from server.extensions import db
from server.requests import public_url
from server.models import Receipt, ReceiptCounter, ReceiptKey, Task
from server.services import privacy, tasks

FORMAT = "fieldops.receipt.v1"
ALG = "Ed25519"
TOKEN_PREFIX = "for_"
_TOKEN = re.compile(r"for_[A-Za-z0-9_-]{43}")
# The page token is kept sealed (shown again: dispatch's view, QR codes, the handheld); only its hash is looked up.
_TOKEN_SEALING = "fieldops receipt page token"
# A handheld's stored doc (and the op log's copy of a push result) holds the page's address as this
# mark, so the database never holds the token: sync responses put the address in its place.
_DOC_MARK = "fieldops-sealed-receipt:"
_DOC_URL = re.compile(r"fieldops-sealed-receipt:([A-Za-z0-9_-]+):([A-Za-z0-9_=.-]+)")
_DOC_STRING = re.compile(f'"{_DOC_URL.pattern}"')  # the mark as a JSON string, quotes and all
_KEY_ASCII = re.compile(r"[\x20-\x7e]+")
# JSON numbers every language reads exactly (JavaScript's safe integers); money is integer fen.
MAX_SAFE_INTEGER = 2 ** 53 - 1
_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


# --- canonical JSON -------------------------------------------------------------------------------

def time_text(moment: datetime) -> str:
    """An instant as the receipt writes it: UTC, to the second, with Z (2026-11-24T03:00:00Z)."""
    if moment.tzinfo is None:
        raise TypeError("receipt times must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sealable(value):
    """The value in the canonical subset of JSON: datetimes and dates become text; floats are refused.

    Objects with printable-ASCII string keys, arrays, strings, booleans, null and integers
    of at most 2**53 - 1 in magnitude; nothing else (a float has no single spelling).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is beyond 2**53 - 1")
        return value
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [sealable(item) for item in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not _KEY_ASCII.fullmatch(key):
                raise ValueError(f"object keys must be printable ASCII text, got {key!r}")
        return {key: sealable(item) for key, item in value.items()}
    raise TypeError(f"{type(value).__name__} cannot be sealed (money in integer fen, coordinates as text)")


def canonical_json(value) -> bytes:
    """The canonical bytes of a sealable value: sorted keys, no whitespace, UTF-8 (RFC 8785 for this subset)."""
    return json.dumps(sealable(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def b64url(raw: bytes) -> str:
    """Base64url without padding (as JWK and JWS write bytes)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    """Undo b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- keys -----------------------------------------------------------------------------------------

def _raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@functools.lru_cache(maxsize=16)
def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of SHA-256 over its raw public key (kept per key: every receipt asks)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def load_private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or from base64 (standard or url-safe) of its 32 raw bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the receipt key must be an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("the receipt key is neither PEM nor base64") from exc
    if len(raw) != 32:
        raise ValueError("a raw Ed25519 private key has 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _pem(key: Ed25519PrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_key_file(path: str, key: Ed25519PrivateKey, *, replace: bool) -> bool:
    """Write the key readable by its owner only (0600), whole or not at all; False if it exists and not replace."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".receipt-key-")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_pem(key))
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)  # fails if another worker made it first: theirs stands
        except FileExistsError:
            return False
        return True
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# Parsed keys by where they came from: the configured text, or the file's (path, mtime, size, inode).
# A handover batch seals dozens of receipts; reading and parsing the key for each cost more than signing.
_KEYS: dict[tuple, Ed25519PrivateKey] = {}


def _cached_key(source: tuple, read) -> Ed25519PrivateKey:
    """The key parsed from read() once per source (a rotated file is a new source)."""
    key = _KEYS.get(source)
    if key is None:
        if len(_KEYS) > 16:
            _KEYS.clear()
        key = _KEYS[source] = load_private_key(read())
    return key


def signing_key() -> Ed25519PrivateKey:
    """The key that seals new receipts: FIELDOPS_RECEIPT_KEY, else the instance folder's file (made on first use)."""
    configured = current_app.config.get("RECEIPT_KEY")
    if configured:
        return _cached_key(("config", configured), lambda: configured)
    path = current_app.config["RECEIPT_KEY_FILE"]
    if not os.path.exists(path):
        _write_key_file(path, Ed25519PrivateKey.generate(), replace=False)
    stat = os.stat(path)

    def read() -> str:
        with open(path, encoding="ascii") as key_file:
            return key_file.read()

    return _cached_key(("file", path, stat.st_mtime_ns, stat.st_size, stat.st_ino), read)


# session.info: {key id: the transaction that found it published}. Valid for that transaction only,
# so a batch sealing dozens of receipts looks the key up once.
_REGISTERED = "fieldops.receipts.registered"


def register(key: Ed25519PrivateKey) -> str:
    """Publish the key's public half (once); a key seen for the first time retires the keys before it. Its id."""
    kid = key_id(key)
    session = db.session()
    known, transaction = session.info.setdefault(_REGISTERED, {}), session.get_transaction()
    if transaction is not None and known.get(kid) is transaction:
        return kid
    if db.session.get(ReceiptKey, kid) is not None:
        known.clear()
        known[kid] = transaction
        return kid
    now = utcnow()
    insert = _INSERT[db.session.get_bind().dialect.name]
    added = db.session.execute(insert(ReceiptKey.__table__).values(
        key_id=kid, public_key=b64url(_raw_public(key)), created_at=now,
    ).on_conflict_do_nothing(index_elements=["key_id"]).returning(ReceiptKey.key_id)).scalar()
    if added is not None:
        db.session.execute(update(ReceiptKey).where(ReceiptKey.retired_at.is_(None), ReceiptKey.key_id != kid)
                           .values(retired_at=now))
    return kid


def rotate() -> ReceiptKey:
    """A new signing key in the instance folder; the old public keys stay published. Commits."""
    if current_app.config.get("RECEIPT_KEY"):
        raise RuntimeError("the receipt key comes from FIELDOPS_RECEIPT_KEY: set a new key there and restart; "
                           "it is published and the old one retired when it first seals a receipt")
    key = Ed25519PrivateKey.generate()
    kid = register(key)
    db.session.flush()
    _write_key_file(current_app.config["RECEIPT_KEY_FILE"], key, replace=True)
    db.session.commit()
    return db.session.get(ReceiptKey, kid)


def key_set() -> dict:
    """Every published key, oldest first, as a JWK Set (RFC 7517; keys as RFC 8037 OKP) with ids and validity."""
    rows = db.session.scalars(select(ReceiptKey).order_by(ReceiptKey.created_at, ReceiptKey.key_id))
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": row.key_id,
                      "x": row.public_key, "status": "retired" if row.retired_at else "active",
                      "valid_from": row.created_at, "valid_until": row.retired_at} for row in rows]}


# --- issuing --------------------------------------------------------------------------------------

# session.info: the receipts issued in this transaction and not numbered yet, in issue order.
_UNNUMBERED = "fieldops.receipts.unnumbered"


def _take_numbers(connection, day: date, count: int) -> range:
    """`count` consecutive numbers of a depot-local day from its counter, in one upsert.

    The upsert is atomic: two callers never get one number. It holds the counter
    row's lock until the connection's transaction ends.
    """
    table = ReceiptCounter.__table__
    insert = _INSERT[connection.dialect.name](table).values(day=day, last=count)
    last = connection.execute(insert.on_conflict_do_update(
        index_elements=["day"], set_={"last": table.c.last + insert.excluded.last}).returning(table.c.last)
    ).scalar_one()
    return range(last - count + 1, last + 1)


def _numbers(session, day: date, count: int) -> range:
    """The day's next `count` numbers for the session's transaction.

    PostgreSQL: taken in a transaction of their own, committed at once, so the
    counter row is locked for one statement, not from this flush to the issuer's
    commit (every push with a handover would queue behind every other one). A
    transaction that rolls back after taking numbers leaves them unused: numbers
    are unique and increase within a day, with a gap where an issue was rolled
    back. SQLite runs one writer at a time anyway: the numbers are taken in the
    issuing transaction, and a rollback gives them back.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return _take_numbers(connection, day, count)
    with connection.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as own:
        return _take_numbers(own, day, count)


def _number_pending(session, _flush_context=None, _instances=None) -> None:
    """Number and seal, at the flush that inserts them, the receipts the transaction issued.

    One counter upsert per day for all of them (`_numbers`: on PostgreSQL in a
    transaction of its own). A receipt whose issue was rolled back (a
    savepoint's) is no longer pending and takes no number.
    """
    entries = [e for e in session.info.pop(_UNNUMBERED, ()) if e[0] in session.new]
    if not entries:
        return
    prefix = current_app.config["RECEIPT_PREFIX"]
    by_day: dict[date, list] = {}
    for entry in entries:
        by_day.setdefault(local_date(entry[0].issued_at), []).append(entry)
    for day in sorted(by_day):
        numbers = _numbers(session, day, len(by_day[day]))
        for (receipt, sealed, key), sequence in zip(by_day[day], numbers, strict=True):
            receipt.number = sealed["number"] = f"{prefix}-{day:%Y%m%d}-{sequence:05d}"
            payload = canonical_json(sealed)
            receipt.payload, receipt.signature = payload.decode("utf-8"), b64url(key.sign(payload))
            for target, name in receipt.__dict__.pop("_number_targets", ()):
                target[name] = receipt.number


def _flush_pending(session) -> None:
    """A commit with receipts still unflushed flushes them first: the before_commit hooks that
    follow (events, handover steps) read their numbers."""
    if session.info.get(_UNNUMBERED) and not session.in_nested_transaction():
        session.flush()


def _forget_pending(session, _transaction=None) -> None:
    """Pending receipts do not outlive their transaction."""
    session.info.pop(_UNNUMBERED, None)


def init_app(_app) -> None:
    """Install the flush-time numbering once per process (session events are per Session class)."""
    if not event.contains(Session, "before_flush", _number_pending):
        event.listen(Session, "before_flush", _number_pending)
        event.listen(Session, "before_commit", _flush_pending, insert=True)
        event.listen(Session, "after_soft_rollback", _forget_pending)
        event.listen(Session, "after_commit", _forget_pending)


def number_into(receipt: Receipt, target: dict, name: str = "number") -> None:
    """Write the receipt's number into target[name] now, or at the flush that gives it one."""
    if receipt.number is not None:
        target[name] = receipt.number
    else:
        target[name] = None
        receipt.__dict__.setdefault("_number_targets", []).append((target, name))


def _existing(task_id: str, kind: str) -> Receipt | None:
    """The task's receipt of this kind: one added earlier in this (unflushed) batch, or a stored one."""
    for obj in db.session.new:
        if isinstance(obj, Receipt) and obj.task_id == task_id and obj.kind == kind:
            return obj
    return db.session.scalar(select(Receipt).where(Receipt.task_id == task_id, Receipt.kind == kind))


def issue(*, task_id: str, kind: str, evidence: dict, first: bool = False) -> Receipt:
    """The sealed receipt of a completed handover (delivery, refusal or pickup); does not commit.

    Its number, payload and signature come at the flush that inserts it
    (`number_into` hands the number to whoever needs it by then).

    Idempotent per (task, kind): a second call returns the first receipt unchanged
    (the task row's lock queues concurrent callers; a unique key backs it). A
    caller that knows there is none yet (`first`: a handover completing now; a
    completed one never reopens) saves the lookup. The
    task's id, waybill and masked recipient are written into the evidence here;
    see docs/receipts.md for the rest of the evidence and the format.
    """
    if kind not in RECEIPT_KINDS:
        raise ValueError(f"receipt kind must be one of {RECEIPT_KINDS}, got {kind!r}")
    # A caller completing a handover holds the task, locked, with unflushed changes: a locking
    # re-read would refresh it from the database and lose them. Others get it locked here.
    task = db.session.identity_map.get(identity_key(Task, task_id)) or tasks.get(task_id=task_id, for_update=True)
    existing = None if first else _existing(task.id, kind)
    if existing is not None:
        return existing
    key = signing_key()
    kid = register(key)
    issued_at = utcnow().replace(microsecond=0)
    sealed = {"format": FORMAT, "number": None, "issued_at": time_text(issued_at), "kind": kind, "key_id": kid,
              "evidence": {**evidence, "task_id": task.id, "waybill_no": task.waybill_no,
                           "recipient": privacy.surname_masked(task.recipient_name)}}
    sealable(sealed)  # evidence with no single spelling (a float, a naive time) is refused here
    receipt_id, token = ids.new_id("r"), ids.new_token(TOKEN_PREFIX)
    receipt = Receipt(id=receipt_id, token_hash=ids.hash_secret(token), task_id=task.id, kind=kind,
                      token_sealed=sealing.seal(token, purpose=_TOKEN_SEALING, bound_to=receipt_id),
                      issued_at=issued_at, key_id=kid)
    db.session.add(receipt)
    db.session.info.setdefault(_UNNUMBERED, []).append((receipt, sealed, key))
    return receipt


# --- reading and verifying ------------------------------------------------------------------------

def get(*, number: str) -> Receipt:
    """A receipt by its number (staff)."""
    receipt = db.session.scalar(select(Receipt).where(Receipt.number == number))
    if receipt is None:
        raise NotFound(f"No receipt {number}.", code="receipt_not_found")
    return receipt


def for_staff(*, number: str) -> dict:
    """A receipt for dispatch: the sealed receipt, whether it verifies, and the public page's address."""
    receipt = get(number=number)
    return {**sealed(receipt), **link(receipt), "kind": receipt.kind, "task_id": receipt.task_id,
            "issued_at": receipt.issued_at, "verified": verifies(receipt)}


def open_page(*, token: str) -> Receipt:
    """The receipt of a public page token, counted against that receipt's request budget.

    A malformed or unknown token is the same 404 and counts as a failure of the
    caller's address (429 once it guessed too often); a known token is never
    refused for its address's failures, only past its own budget.
    """
    receipt = (db.session.scalar(select(Receipt).where(Receipt.token_hash == ids.hash_secret(token)))
               if _TOKEN.fullmatch(token) else None)
    if receipt is None:
        record_failure([Budget("receipt_token_failures_per_address", "RECEIPT_TOKEN_FAILURES_PER_ADDRESS",
                               client_key("receipt-token"))], "unknown receipt token")
        raise NotFound("This receipt link is not valid.", code="receipt_link_invalid")
    receipt_id = receipt.id
    count_attempt([Budget("receipt_page_requests", "RECEIPT_PAGE_REQUESTS", f"receipt:{receipt_id}")])
    return db.session.get(Receipt, receipt_id)


def sealed(receipt: Receipt) -> dict:
    """The sealed receipt for machine verification: what was signed, and the seal."""
    return {"receipt": json.loads(receipt.payload),
            "seal": {"alg": ALG, "key_id": receipt.key_id, "signature": receipt.signature}}


def verifies(receipt: Receipt) -> bool:
    """Whether the stored receipt is canonical and its seal verifies with its published public key."""
    row = db.session.get(ReceiptKey, receipt.key_id)
    if row is None:
        return False
    payload = receipt.payload.encode("utf-8")
    try:
        if canonical_json(json.loads(payload)) != payload:
            return False
        Ed25519PublicKey.from_public_bytes(_unb64url(row.public_key)).verify(_unb64url(receipt.signature), payload)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def page_url(*, token: str) -> str:
    """The public page's address: under FIELDOPS_PUBLIC_URL when set, else the request's host."""
    return public_url("receipt_page.show", token=token)


def page_token(receipt) -> str | None:
    """The page token of a receipt (or a row with id and token_sealed); None if it cannot be unsealed."""
    return _unsealed_token(receipt.id, receipt.token_sealed)


def _unsealed_token(receipt_id: str, token_sealed: str) -> str | None:
    """A receipt's page token from its sealed copy; None if it cannot be unsealed."""
    try:
        return sealing.unseal(token_sealed, purpose=_TOKEN_SEALING, bound_to=receipt_id)
    except ValueError:
        return None  # SECRET_KEY changed: the page still opens (by hash), its address cannot be shown


def staff_url(receipt) -> str | None:
    """The public page's address (None if it cannot be recovered): what every face shows, and the QR codes."""
    token = page_token(receipt)
    return None if token is None else page_url(token=token)


def staff_url_of(*, number: str) -> str:
    """The page's address of a receipt by number (its QR code); 410 if the address cannot be recovered."""
    url = staff_url(get(number=number))
    if url is None:
        raise Gone("The page's address cannot be recovered (FIELDOPS_SECRET_KEY changed); the page itself works.",
                   code="receipt_url_gone")
    return url


def _numbered(receipt, shown: dict) -> dict:
    """shown with the receipt's number: now, or (a receipt issued in this transaction) at the flush that numbers it."""
    if isinstance(receipt, Receipt):
        number_into(receipt, shown)
    else:
        shown["number"] = receipt.number
    return shown


def link(receipt) -> dict:
    """A receipt as every face shows it: {number, url}, the url its public page (null if it cannot be recovered).

    The one dump of a receipt: handhelds (a stored doc's doc_link, revealed by the
    sync response), the courier's online routes, dispatch's handover and receipt
    views. receipt: a Receipt, or a row with id, number and token_sealed.
    """
    return _numbered(receipt, {"url": staff_url(receipt)})


def doc_link(receipt) -> dict:
    """link() as a stored handheld doc (and the op log's copy of a push result) holds it: the page's address
    as a mark, so the database never holds the token; reveal_docs and reveal_state make it link() again."""
    return _numbered(receipt, {"url": f"{_DOC_MARK}{receipt.id}:{receipt.token_sealed}"})


@functools.lru_cache(maxsize=8192)
def _remembered_token(receipt_id: str, token_sealed: str, _secret_key: str) -> str | None:
    """_unsealed_token, remembered: a sealed value under one SECRET_KEY always opens to the same token.

    Every pull reveals the receipts of the courier's day; opening each afresh was a tenth of a full
    listing. The key is part of the memo's key, so a changed SECRET_KEY opens (or fails) anew.
    """
    return _unsealed_token(receipt_id, token_sealed)


_PLACEHOLDER = "for_" + "0" * 43  # a token's shape: url_for quotes nothing in it, JSON escapes nothing in it


def _page_url_around() -> tuple[str, str]:
    """(before, after) the token in page_url, each as JSON string text: url_for once per request and public address."""
    base = current_app.config.get("PUBLIC_URL")
    where = (base, request.url_root if base is None and has_request_context() else None)
    built = g.setdefault("fieldops_receipt_page_urls", {})
    if where not in built:
        before, _, after = json.dumps(page_url(token=_PLACEHOLDER)).partition(_PLACEHOLDER)
        built[where] = (before, after)
    return built[where]


def reveal_docs(bodies: list[str]) -> list[str]:
    """Stored docs' JSON texts as the handheld gets them: each receipt mark replaced by the page's address.

    Built for a page of docs: the address around the token is made once, and a token once per receipt.
    """
    if not any(_DOC_MARK in body for body in bodies):
        return bodies
    secret_key = current_app.config["SECRET_KEY"]
    before, after = _page_url_around()

    def revealed(match: re.Match) -> str:
        """A doc mark (a JSON string) as link()'s url: the page's address, or null if it cannot be unsealed."""
        token = _remembered_token(match[1], match[2], secret_key)
        if token is None:
            return "null"
        return before + token + after if _TOKEN.fullmatch(token) else json.dumps(page_url(token=token))
    return [_DOC_STRING.sub(revealed, body) if _DOC_MARK in body else body for body in bodies]


def reveal_state(entity: dict | None) -> dict | None:
    """An entity of a push result ({..., "data": doc}) as the handheld gets it: its receipt mark made the address."""
    data = entity.get("data") if isinstance(entity, dict) else None
    receipt = (data.get("handover") or {}).get("receipt") if isinstance(data, dict) else None
    mark = _DOC_URL.fullmatch(receipt.get("url") or "") if isinstance(receipt, dict) else None
    if mark is None:
        return entity
    token = _unsealed_token(mark[1], mark[2])
    url = None if token is None else page_url(token=token)
    return {**entity, "data": {**data, "handover": {**data["handover"], "receipt": {**receipt, "url": url}}}}


def _shown_time(evidence: dict, issued_at: datetime) -> datetime:
    """When the handover was completed (the evidence's completed_at), else when the receipt was issued."""
    value = evidence.get("completed_at")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    return issued_at


def page(*, receipt: Receipt) -> dict:
    """What the public page shows, and only that: number, kind, masked recipient, time, inspection, fees, COD, seal."""
    evidence = json.loads(receipt.payload).get("evidence", {})
    inspection = evidence.get("inspection") if isinstance(evidence.get("inspection"), dict) else {}
    items = [{"parcel_no": str(item.get("parcel_no", "")), "counted": item.get("counted"),
              "condition": str(item.get("condition", ""))}
             for item in inspection.get("items", []) if isinstance(item, dict)]
    fees = [{"code": str(fee.get("code", "")), "amount": fee["amount"]}
            for fee in evidence.get("fees", []) if isinstance(fee, dict) and isinstance(fee.get("amount"), int)]
    amount, cod = _fen(evidence.get("amount")), _fen(evidence.get("cod_amount"))
    return {"number": receipt.number, "kind": receipt.kind, "recipient": str(evidence.get("recipient", "**")),
            "time": _shown_time(evidence, receipt.issued_at), "items": items,
            "accepted": inspection.get("customer_accepted"), "fees": fees,
            # The goods' cash on delivery, on its own line where the amount paid includes it (a payment is
            # exactly COD plus fees); a handover paid nothing for (a refusal before paying) shows none.
            "cod_amount": cod if cod and amount else None, "amount": amount, "verified": verifies(receipt)}


def _fen(value) -> int | None:
    """An amount of the evidence, if it is one (integer fen)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
