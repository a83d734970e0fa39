"""Push: apply a device's ops exactly once, strictly in seq order.

Exactly-once is enforced by the database, not only here: the device row is
locked for the whole batch (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE serialises writers), and both (device_id, seq) and
(device_id, op_id) are unique in the op log. A retry racing the original
waits for it, then finds every op already taken and replays the stored
results; an op sent again under a new seq is answered from the first.
"""
import functools
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import marshmallow as ma
import orjson
from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from schemas.limits import MAX_INT32, MAX_INT64
from schemas.sync import OpIn
from server import metrics, sealing
from server.auth import Actor
from server.clock import local_day_start, utcnow
from server.database import (begin_reading, begin_writing, bulk_insert, can_read_then_write, end_reading,
                             mark_read_only, reads_unchanged, reset_read_only)
from server.database_faults import database_fault
from server.errors import DATABASE_UNAVAILABLE_RETRY_AFTER, DomainError, fields_from_messages
from server.extensions import db
from server.models import CreatedEntity, Device, OpLog, RefusedAttachment, SyncConflict
from server.models.sync import HOLDS_OP_ID, IN_SEQUENCE
from sync import docs
from sync.registry import EntityType, Registry
from sync.timing import BatchClock, OpTime, ceiling_of, floor_of, op_time

log = logging.getLogger(__name__)

TRANSIENT_RETRY_AFTER = 5  # seconds


class Transient(Exception):
    """The op cannot be applied yet (attachment missing, database busy): stop the batch here."""

    def __init__(self, code: str, detail: str, retry_after: int = TRANSIENT_RETRY_AFTER):
        super().__init__(detail)
        self.code, self.detail, self.retry_after = code, detail, retry_after


@dataclass(frozen=True)
class OpContext:
    """What a handler knows about the op beyond its payload."""

    actor: Actor
    op_id: str
    seq: int
    # When the op happened, as the engine decided it (sync.timing): the device's time corrected by the batch's
    # skew, never after the server received it nor before what the server knows came first. Every rule and
    # the ledger go by it.
    device_time: datetime | None
    # The device's clock minus the server's at receipt (push's device_now); and whether this op's time cannot
    # be trusted (moved beyond the tolerance, or its batch's clock off by more): what a rule decides by time on
    # a suspect op is for dispatch to review.
    clock_skew_s: int | None = None
    clock_suspect: bool = False
    entity_id: str | None = None  # the op's entity_id: for a create op, the id of what it makes
    base_version: int | None = None  # the entity's version the device held when it made the op
    reported_time: datetime | None = None  # the op's device_time as the device sent it


@dataclass(frozen=True)
class _Clock:
    """The batch's clock as measured, and the highest seq the device said it had assigned (push's last_seq)."""

    batch: BatchClock
    assigned_seq: int | None


def payload_hash(op: dict, secret_fields: tuple[str, ...] = ()) -> str:
    """Fingerprint of what an op asks for, to tell a true duplicate from a reused seq.

    Taken over the op as received (any JSON: the encoder escapes what it must).
    A secret field of the op's type (a handover PIN) enters it only as a keyed
    digest: the op log keeps this fingerprint, and a plain hash over a 6-digit
    PIN and fields stored beside it would give the PIN back in 10^6 tries.
    """
    payload = op.get("payload", {})
    if secret_fields and isinstance(payload, dict):
        payload = {k: sealing.keyed_digest(json.dumps(v, sort_keys=True, default=str), purpose=_SECRET_DIGEST)
                   if k in secret_fields and v is not None else v for k, v in payload.items()}
    canonical = json.dumps({k: op.get(k) for k in ("op_id", "type", "entity_id", "base_version")}
                           | {"payload": payload},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


_SECRET_DIGEST = "fieldops.op-secret-digest.v1"


# What neither database can store as text or JSON: NUL (PostgreSQL) and lone
# surrogates (not UTF-8 at all). Stored as the \uXXXX text instead.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSTORABLE_MESSAGE = "Contains a NUL character or a lone UTF-16 surrogate."


def _escape_char(match: re.Match) -> str:
    """A character neither database stores, as its \\uXXXX text."""
    return f"\\u{ord(match.group()):04x}"


def _plainly_storable(value) -> bool:
    """True when nothing in the value needs storable's care, told by one pass of the C encoder.

    It refuses lone surrogates and (strict) integers beyond 53 bits, and spells NUL as
    \\u0000: anything it refuses or spells so takes the slow, exact walk.
    """
    try:
        return b"\\u0000" not in orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER)
    except (orjson.JSONEncodeError, TypeError):
        return False


def storable(value, path: str = "", bad: list[str] | None = None):
    """JSON as received, made storable: unstorable characters escaped, integers beyond 64 bits as text.

    Paths of what had to change are appended to bad, when given. A value with
    nothing to change is returned as it is.
    """
    if not path and isinstance(value, (dict, list)) and _plainly_storable(value):
        return value
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value
        if bad is not None:
            bad.append(path)
        return _UNSTORABLE.sub(_escape_char, value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            out[storable(key, inner, bad)] = storable(item, inner, bad)
        return out
    if isinstance(value, list):
        return [storable(item, f"{path}.{i}" if path else str(i), bad) for i, item in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT64 - 1 <= value <= MAX_INT64:
        return str(value)
    return value


def _result(op: dict, status: str, code: str | None = None, detail: str | None = None,
            entity: dict | None = None, fields: dict | None = None) -> dict:
    """One op's result, as stored and sent."""
    # The detail may quote what was received (a field path made of a payload key):
    # stored and sent, so escaped like the rest of the op.
    result = {"seq": op["seq"], "op_id": op["op_id"], "status": status, "code": code,
              "detail": storable(detail), "entity": entity}
    if fields:
        result["fields"] = storable(fields)
    return result




def _column_text(value) -> str | None:
    """A received value as the op log's 64-character text columns can hold it."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return storable(text)[:64]


REDACTED = "[redacted]"


def _without_secrets(op: dict) -> dict:
    """The payload to store, with the op type's secret fields replaced (a PIN never reaches the op log)."""
    payload = op["stored_payload"]
    op_type = current_app.extensions["fieldops_sync"].ops.get(op["type"]) if op["type"] else None
    if op_type is None or not op_type.secret_fields:
        return payload
    if "_received" in payload:  # a malformed op stored whole: its payload may still hold the secret
        received = dict(payload["_received"])
        if isinstance(received.get("payload"), dict):
            received["payload"] = {k: REDACTED if k in op_type.secret_fields and v is not None else v
                                   for k, v in received["payload"].items()}
        return {"_received": received}
    return {k: REDACTED if k in op_type.secret_fields and v is not None else v for k, v in payload.items()}


def _log_fields(op: dict, received_at: datetime) -> dict:
    """What an op's log row holds of the op itself: taken when the batch arrives, before any lock."""
    device_time = op.get("device_time")
    offset = device_time.utcoffset() if device_time else None
    base = op.get("base_version")
    return {"seq": op["seq"], "op_id": _column_text(op["op_id"]) or "", "type": _column_text(op["type"]) or "",
            "entity_id": _column_text(op.get("entity_id")),
            "base_version": base if type(base) is int and 0 <= base <= MAX_INT32 else None,  # not a bool
            "payload": _without_secrets(op), "payload_hash": op["digest"],
            "device_time": device_time.astimezone(timezone.utc) if device_time else None,
            "device_utc_offset_min": int(offset.total_seconds() // 60) if offset is not None else None,
            "received_at": received_at, "clock_skew_s": op.get("clock_skew_s")}


def _log_row(device: Device, op: dict, result: dict, *, in_sequence: bool = True, holds_op_id: bool = False,
             status: str | None = None, detail: str | None = None) -> dict:
    """The op-log row for an op, whatever became of it; one that took no effect keeps a bounded payload."""
    status = status or result["status"]
    timed: OpTime | None = op.get("time")
    row = {**op["log"], "effective_time": timed.effective if timed else None,
           "clock_suspect": timed.suspect if timed else False,
           "device_id": device.id, "courier_id": device.courier_id, "status": status,
           "code": None if status == "duplicate" else result["code"], "detail": detail or result["detail"],
           "result": result, "in_sequence": in_sequence, "holds_op_id": holds_op_id}
    if status in ("rejected", "duplicate"):
        row["payload"] = _bounded(op, row["payload"])
    return row


def _canonical(value) -> bytes:
    """JSON with sorted keys and no spaces (orjson; the standard encoder for what it refuses, deep nesting)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _bounded(op: dict, payload: dict) -> dict:
    """A payload as the log keeps it for an op that took no effect (rejected, or a resend).

    Whole while its canonical JSON is at most REJECTED_PAYLOAD_MAX_BYTES; beyond, a
    marker with its size, SHA-256 and first bytes, and the files it names when its
    type's schema read it (so attachments-gc keeps them): else a device could make the
    log keep anything it sends, as fast as it sends it, for ever. The payload is the
    one stored (secrets redacted), so the hash is no oracle for a PIN.
    """
    limit = current_app.config["REJECTED_PAYLOAD_MAX_BYTES"]
    canonical = _canonical(payload)
    if len(canonical) <= limit:
        return payload
    marker = {"truncated": True, "bytes": len(canonical), "sha256": hashlib.sha256(canonical).hexdigest(),
              "prefix": canonical[:limit].decode("utf-8", "ignore")}
    if "loaded" in op:
        marker["attachments"] = current_app.extensions["fieldops_sync"].ops[op["type"]].attachments(op["loaded"])
    return marker


_OP_IN = OpIn()
_DEVICE_TIME = ma.fields.AwareDateTime()
# Rejections decided from the op alone; the log keeps such an op whole, as received.
_ENVELOPE_CODES = ("invalid_op", "invalid_base_version", "invalid_device_time")


_ENVELOPE_KEYS = frozenset(_OP_IN.fields)
# Printable ASCII without surrounding spaces, 1..64 characters: what OpIn's text fields take unchanged.
_PLAIN_TEXT = re.compile(r"[!-~](?:[ -~]{0,62}[!-~])?")


def _plainly_valid(raw: dict) -> bool:
    """True when OpIn certainly accepts the envelope: the op a handheld sends, checked in a few microseconds.

    A subset of what OpIn accepts (plain ASCII identifiers, integers in range);
    anything else goes through OpIn, which says what is wrong.
    """
    op_id, op_type, entity_id = raw.get("op_id"), raw.get("type"), raw.get("entity_id")
    seq, base = raw.get("seq"), raw.get("base_version")
    return (raw.keys() <= _ENVELOPE_KEYS and raw.get("device_time") is not None and raw.get("payload", {}) is not None
            and type(op_id) is str and _PLAIN_TEXT.fullmatch(op_id) is not None
            and type(op_type) is str and _PLAIN_TEXT.fullmatch(op_type) is not None
            and (entity_id is None or (type(entity_id) is str and len(entity_id) <= 64))
            and type(seq) is int and 1 <= seq <= MAX_INT64
            and type(base) is int and 0 <= base <= MAX_INT64)


def _envelope_code(fields: dict) -> str:
    """The code for an op whose envelope fails: one field named in it if only that one fails."""
    if set(fields) == {"base_version"}:
        return "invalid_base_version"
    return "invalid_device_time" if set(fields) == {"device_time"} else "invalid_op"


def _check(raw: dict, secret_fields: tuple[str, ...] = ()) -> dict:
    """An op as the engine works on it; whatever is wrong with it alone is decided here, as rejected.

    `verdict` is that rejection (or None); the other keys are storable versions
    of what was received; `digest` is taken over the op as received.
    """
    bad: list[str] = []
    escaped = storable(raw, "", bad)
    op_id, op_type, entity_id = (escaped.get(k) for k in ("op_id", "type", "entity_id"))
    op = {"seq": raw["seq"], "op_id": op_id if isinstance(op_id, str) else None,
          "type": op_type if isinstance(op_type, str) else None,
          "entity_id": entity_id if isinstance(entity_id, str) else None,
          "base_version": raw.get("base_version"), "device_time": None,
          "payload": escaped.get("payload", {}), "digest": payload_hash(raw, secret_fields), "verdict": None}
    if secret_fields:  # a retry of an op logged before secrets were keyed still replays as a duplicate
        op["legacy_digest"] = payload_hash(raw)
    fields = {}
    if not _plainly_valid(raw):
        try:
            _OP_IN.load(raw)
        except ma.ValidationError as exc:
            fields = fields_from_messages(exc.messages)
    fields.update({path: [_UNSTORABLE_MESSAGE] for path in bad if path.split(".")[0] != "payload"})
    if isinstance(op["op_id"], str) and len(op["op_id"]) > 64:  # OpIn measures it stripped; it is kept as sent
        fields.setdefault("op_id", []).append("Longer than 64 characters as sent.")
    # The op's identity for "one op id, one effect": only an op_id OpIn takes as sent (a malformed one,
    # escaped or cut to fit the column, could stand for another op's).
    op["key"] = op["op_id"] if "op_id" not in fields else None
    if fields:
        code = _envelope_code(fields)
        op["verdict"] = _result(op, "rejected", code, f"The op is invalid: {', '.join(sorted(fields))}.",
                                fields=fields)
    else:
        op["device_time"], problem = _device_time(raw["device_time"])
        if problem:
            op["verdict"] = _result(op, "rejected", "invalid_device_time", problem,
                                    fields={"device_time": [problem]})
        elif not isinstance(op["payload"], dict):
            op["verdict"] = _result(op, "rejected", "invalid_payload", "The payload is not an object.",
                                    fields={"payload": ["Not an object."]})
        elif bad:
            op["verdict"] = _result(op, "rejected", "invalid_payload",
                                    f"The payload is invalid: {', '.join(sorted(bad))}.",
                                    fields={path: [_UNSTORABLE_MESSAGE] for path in bad})
    whole = op["verdict"] is not None and (op["verdict"]["code"] in _ENVELOPE_CODES
                                           or not isinstance(op["payload"], dict))
    op["stored_payload"] = {"_received": escaped} if whole else op["payload"]
    return op


def _secret_fields(registry: Registry, raw: dict) -> tuple[str, ...]:
    """The secret fields of the op's type, if its type is one."""
    op_type = registry.ops.get(raw.get("type")) if isinstance(raw.get("type"), str) else None
    return op_type.secret_fields if op_type is not None else ()


def _load_payload(registry: Registry, op: dict) -> None:
    """Read an op's payload with its type's schema, once, before the batch takes any lock.

    What the schema refuses is decided here, like the envelope (unknown_op_type,
    invalid_payload); the loaded payload serves every attempt of the batch.
    """
    if op["verdict"] is not None:
        return
    op_type = registry.ops.get(op["type"])
    if op_type is None:
        op["verdict"] = _result(op, "rejected", "unknown_op_type", f"Unknown op type {op['type']!r}.")
        return
    try:
        op["loaded"] = _payload_schema(op_type.schema).load(op["payload"])
    except ma.ValidationError as exc:
        fields = {f"payload.{path}": messages for path, messages in fields_from_messages(exc.messages).items()}
        op["verdict"] = _result(op, "rejected", "invalid_payload",
                                f"The payload is invalid for {op['type']}: {', '.join(sorted(fields))}.",
                                fields=fields)
    except Exception:  # a schema that crashes on some input: the op is consumed and kept, as a handler's would be
        log.exception("payload schema failed; op rejected as handler_error",
                      extra={"seq": op["seq"], "op_type": op["type"]})
        op["verdict"] = _result(op, "rejected", "handler_error",
                                "The server failed to apply this op; it is kept for dispatch to review.")


def _device_time(value) -> tuple[datetime | None, str | None]:
    """The op's device time, or why it is not a time at all (unparsable, without an offset, beyond what UTC
    can express). Any year is a time: a wrong clock is for sync.timing to hold and flag, never to refuse."""
    try:
        at = _DEVICE_TIME.deserialize(value)
        at.astimezone(timezone.utc)
    except ma.ValidationError as exc:
        return None, f"device_time: {' '.join(exc.messages)}"
    except OverflowError:
        return None, f"device_time {value[:40]} cannot be expressed in UTC (years 1 to 9999)."
    return at, None


def _write_log(rows: list[dict]) -> None:
    """Insert the batch's op-log rows in one Core statement (the ORM's per-row bookkeeping costs more)."""
    if rows:
        bulk_insert(db.session, OpLog.__table__, rows)


def _stored_ops(device: Device, ops: list[dict]) -> dict[int, OpLog]:
    """The op-log rows of the batch's ops already taken (a retry replays them), in one query."""
    seqs = [op["seq"] for op in ops if op["seq"] <= device.last_seq]
    if not seqs:
        return {}
    return {row.seq: row for row in db.session.scalars(select(OpLog).where(
        OpLog.device_id == device.id, IN_SEQUENCE, OpLog.seq.in_(seqs)))}


# The index's own condition (HOLDS_OP_ID), as written: SQLite uses a partial index only for a query that states it.
_KNOWN_OP_IDS = select(OpLog).where(OpLog.device_id == bindparam("device_id"), HOLDS_OP_ID,
                                    OpLog.op_id.in_(bindparam("op_ids", expanding=True)))


def _known_op_ids(device: Device, ops: list[dict]) -> dict[str, OpLog]:
    """The op-log rows holding the op_ids of the batch's new ops (sent before under another seq), in one query."""
    keys = [op["key"] for op in ops if op["seq"] > device.last_seq and op["key"] is not None]
    if not keys:
        return {}
    return {row.op_id: row for row in db.session.scalars(_KNOWN_OP_IDS, {"device_id": device.id, "op_ids": keys})}


@dataclass
class _Repeat:
    """A new op whose op_id the device sent before (an earlier batch, or earlier in this one).

    The same op (same fingerprint) is answered with the first one's result, as a duplicate;
    another op under that op_id is rejected op_id_reused. Either way it takes its seq slot
    and no effect, and holds no op_id.
    """

    first_seq: int
    same: bool
    stored: dict | None = None  # the first one's result, when an earlier batch took it


def _repeat(op: dict, first: OpLog | dict) -> _Repeat:
    """What a new op is, given the first op (a stored row, or an op of this batch) that took its op_id."""
    if isinstance(first, OpLog):
        same = first.payload_hash in (op["digest"], op.get("legacy_digest"))
        return _Repeat(first.seq, same, first.result if same else None)
    return _Repeat(first["seq"], first["digest"] == op["digest"])


def _replay(device: Device, op: dict, stored: OpLog | None, log_rows: list[dict]) -> dict:
    """An op at or below last_seq: the stored result if it is the same op, else seq_reused."""
    if stored is not None and stored.payload_hash in (op["digest"], op.get("legacy_digest")):
        return dict(stored.result, duplicate=True)
    result = _result(op, "rejected", "seq_reused",
                     f"seq {op['seq']} was already used by another op; seqs must never be reused.")
    log_rows.append(_log_row(device, op, result, in_sequence=False))
    return result


def _missing_attachments(registry: Registry, shas: list[str]) -> list[str]:
    """Attachments an op names that have not been uploaded yet."""
    if not shas:
        return []
    stored = registry.attachments.present(shas)
    return [s for s in shas if s not in stored]


def _refused_attachments(shas: list[str]) -> dict[str, RefusedAttachment]:
    """Of the attachments not uploaded, those refused for their content at upload (final, by hash)."""
    if not shas:
        return {}
    return {row.sha256: row for row in db.session.scalars(
        select(RefusedAttachment).where(RefusedAttachment.sha256.in_(shas)))}


@functools.cache
def _payload_schema(schema: type[ma.Schema]) -> ma.Schema:
    """One instance per payload schema (loading keeps no state in it)."""
    return schema()


class _Restart(Exception):
    """Undo this attempt and apply the batch again with the op at seq decided in advance."""

    def __init__(self, seq: int, outcome: dict):
        super().__init__(seq)
        self.seq, self.outcome = seq, outcome


@dataclass
class _Applied:
    """An op applied (or recorded) in this attempt; its entity is dumped once the batch is flushed."""

    op: dict
    status: str
    code: str | None
    detail: str | None
    entity_name: str
    obj: object
    conflict: dict | None
    created: bool = False  # a create op's: its entity_id is spent at settle


def _decide(registry: Registry, device: Device, op: dict, held: dict[str, dict]):
    """Everything about an op that needs no change: its type, payload, entity, access, conflict.

    Returns a finished result (rejected), or (op_type, payload, obj, conflict_reason).
    Raises Transient for a missing attachment.
    """
    if op["verdict"] is not None:
        return op["verdict"]
    op_type, payload = registry.ops[op["type"]], dict(op["loaded"])  # a handler may change its copy
    missing = _missing_attachments(registry, op_type.attachments(payload))
    refused = _refused_attachments(missing)
    if refused:
        return _result(op, "rejected", "attachment_refused",
                       "The server refused these files at upload: " + "; ".join(
                           f"{sha} ({row.code}: {row.reason})" for sha, row in refused.items()) + ".",
                       fields={path: ["Refused at upload."] for path in _naming(payload, set(refused))})
    if missing:
        wait = current_app.config["ATTACHMENT_WAIT"]
        if utcnow() - op["time"].effective > wait:
            # A file the device lost, or one the server refused (unsafe_svg, hash_mismatch),
            # never arrives: stopping every retry would stall the queue for good.
            return _result(op, "rejected", "attachment_never_uploaded",
                           f"Still not uploaded {wait} after device_time: {', '.join(missing)}.",
                           fields={path: ["Never uploaded."] for path in _naming(payload, set(missing))})
        raise Transient("attachment_missing", f"Upload first: {', '.join(missing)}")
    if op_type.create:
        return _decide_create(op, op_type, payload, held)
    entity_type = registry.entities[op_type.entity]
    obj = held[op_type.entity].get(op.get("entity_id"))
    access = entity_type.access(obj, device.courier_id) if obj is not None else None
    if access is None or (access == "former" and op_type.kind != "fact"):
        return _result(op, "rejected", "not_assigned",
                       f"No {op_type.entity} {op.get('entity_id')} assigned to this courier.")
    base = op["base_version"]
    if base > obj.version:
        return _result(op, "rejected", "invalid_base_version",
                       f"base_version {base} is above the {op_type.entity}'s version {obj.version}.",
                       fields={"base_version": [f"Above the current version {obj.version}."]})
    stale = base < entity_type.dispatch_version(obj)
    conflict_reason = ("reassigned" if access == "former" else
                       f"{obj.status}_by_dispatch" if stale and getattr(obj, "status", None) == "cancelled"
                       else "stale_version" if stale else None)
    return op_type, payload, obj, conflict_reason


def _naming(payload, shas: set[str], path: str = "payload") -> list[str]:
    """The payload's fields that name some of these files (payload.photos.0, payload.answers.2.photo)."""
    if isinstance(payload, str):
        return [path] if payload in shas else []
    if isinstance(payload, dict):
        items = payload.items()
    elif isinstance(payload, list):
        items = enumerate(payload)
    else:
        return []
    return [found for key, value in items for found in _naming(value, shas, f"{path}.{key}")]


def _is_uuid(value: str | None) -> bool:
    """A UUID in its canonical (lower-case) text form: what a create op's entity_id must be."""
    try:
        return value is not None and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _decide_create(op: dict, op_type, payload: dict, held: dict):
    """A create op: its entity_id must be a fresh UUID and its base_version 0; nothing is locked."""
    entity_id = op.get("entity_id")
    if not _is_uuid(entity_id):
        return _result(op, "rejected", "invalid_op", f"{op['type']} creates an entity: entity_id must be a UUID.",
                       fields={"entity_id": ["A create op names a new UUID the device made."]})
    if op["base_version"] != 0:
        return _result(op, "rejected", "invalid_base_version", f"{op['type']} creates an entity: base_version is 0.",
                       fields={"base_version": ["Must be 0 for a create op."]})
    if entity_id in held[_CREATED]:
        return _result(op, "rejected", "entity_exists", f"An entity {entity_id} exists already; make a new id.")
    return op_type, payload, None, None


def _apply_op(registry: Registry, actor: Actor, device: Device, op: dict, held: dict) -> dict | _Applied:
    """Apply one in-sequence op in memory; a rule's refusal inside its handler restarts the attempt."""
    decided = _decide(registry, device, op, held)
    if isinstance(decided, dict):
        return decided
    op_type, payload, obj, conflict_reason = decided
    if conflict_reason and op_type.kind == "wish":
        return _Applied(op, "conflict", conflict_reason,
                        "Dispatch changed this since; the request was recorded, not applied.",
                        op_type.entity, obj, {"applied": False, "reason": conflict_reason, "entity_id": obj.id})
    timed: OpTime = op["time"]
    ctx = OpContext(actor=actor, op_id=op["op_id"], seq=op["seq"], device_time=timed.effective,
                    clock_skew_s=op.get("clock_skew_s"), clock_suspect=timed.suspect,
                    entity_id=op.get("entity_id"), base_version=op.get("base_version"),
                    reported_time=op["device_time"])
    try:
        made = op_type.handler(ctx=ctx, obj=obj, payload=payload)
    except DomainError as exc:
        result = _result(op, "rejected", exc.code, exc.detail, fields=exc.fields)
        if exc.unchanged:
            # Refused before changing anything: nothing to undo, so what the refusal leaves behind is
            # written now, under the locks it was decided under (a wrong PIN is counted in the same span
            # as it was checked: another device's guess cannot be checked at the same count meanwhile).
            if exc.keep is not None:
                exc.keep()
            return result
        # The handler may have changed something before refusing: undo the attempt,
        # and next time record this op as rejected without running it.
        raise _Restart(op["seq"], {"result": result, "keep": exc.keep}) from exc
    if op_type.create:
        held[_CREATED][op["entity_id"]] = op_type.entity
        return _Applied(op, "applied", None, None, op_type.entity, made, None, created=True)
    if conflict_reason:
        registry.entities[op_type.entity].flag(obj)
        return _Applied(op, "conflict", conflict_reason,
                        "Applied as a field fact; dispatch changed this since and will review it.",
                        op_type.entity, obj, {"applied": True, "reason": conflict_reason, "entity_id": obj.id})
    return _Applied(op, "applied", None, None, op_type.entity, obj, None)


# held[_CREATED]: {entity_id: entity} of the ids create ops have spent, stored or made in this attempt.
_CREATED = ""
_CREATED_AMONG = select(CreatedEntity.entity_id, CreatedEntity.entity).where(
    CreatedEntity.entity_id.in_(bindparam("ids", expanding=True)))


def _lock_entities(registry: Registry, ops: list[dict]) -> dict[str, dict]:
    """Every entity the batch's ops name, locked in one query per type (in id order: no deadlocks).

    Create ops lock nothing: the ids of theirs already spent are read in one query.
    """
    wanted: dict[str, set[str]] = {}
    creating: set[str] = set()
    for op in ops:
        op_type = registry.ops.get(op["type"]) if op["verdict"] is None else None
        if op_type is not None and op["entity_id"]:
            if op_type.create:
                creating.add(op["entity_id"])
            else:
                wanted.setdefault(op_type.entity, set()).add(op["entity_id"])
    held = {name: {} for name in registry.entities}
    for name, ids in wanted.items():
        held[name] = registry.entities[name].lock_many(sorted(ids))
    held[_CREATED] = dict(db.session.execute(_CREATED_AMONG, {"ids": sorted(creating)}).all()) if creating else {}
    return held


# The op log's unique indexes: one row per (device, seq) and one per (device, op_id) that took effect.
_SLOT_INDEXES = ("uq_op_log_device_seq", "uq_op_log_device_op_id")


def _slot_taken(exc: IntegrityError) -> str | None:
    """Which of the op log's slots (seq, op_id) a refused row wanted, if that is why it was refused."""
    index = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)  # PostgreSQL names the index
    if index is not None:
        return index.removeprefix("uq_op_log_device_") if index in _SLOT_INDEXES else None
    taken = re.fullmatch(r"UNIQUE constraint failed: op_log\.device_id, op_log\.(seq|op_id)", str(exc.orig))
    return taken[1] if taken else None  # SQLite names the columns


def _is_transient(exc: Exception) -> bool:
    """Database busy (a lock, a deadlock, a serialization failure), unavailable (it cannot write now),
    a concurrent update: nothing is applied, the device tries again later."""
    return isinstance(exc, StaleDataError) or database_fault(exc) is not None


def _database_stop(exc: Exception, stopped_at: int, applied: str) -> dict:
    """The stop for a database that could not take the batch: busy, or unavailable with its reason."""
    fault = database_fault(exc)
    if fault is not None and fault.kind == "unavailable":
        return {"stopped_at": stopped_at, "retry_after": DATABASE_UNAVAILABLE_RETRY_AFTER,
                "stop_code": "database_unavailable",
                "stop_detail": f"The database cannot take writes now ({fault.reason}); {applied}"}
    return {"stopped_at": stopped_at, "retry_after": TRANSIENT_RETRY_AFTER, "stop_code": "busy",
            "stop_detail": f"The database is busy; {applied}"}


def push(*, registry: Registry, actor: Actor, ops: list[dict], device_now: datetime | None = None,
         skew_tolerance_s: int = 300, assigned_seq: int | None = None) -> dict:
    """Apply a batch; every op gets a result; what the response acknowledges is committed.

    The batch is applied in memory and flushed once; each touched entity is
    dumped once, so every result of the batch shows its entity as the batch left
    it. An op whose handler refuses or fails makes the attempt start over with
    that op decided in advance (rejected, or a stop), so nothing a refused op
    changed survives.

    device_now, the device's clock when it sent the batch, gives the batch's
    clock skew; with it each op's effective time is decided (sync.timing) and
    given to its handler as its device_time. A batch whose clock is within
    skew_tolerance_s, and which says the highest seq its device had assigned
    (assigned_seq, push's last_seq), is the device's trusted sync: no op it
    numbers later happened before this batch arrived.
    """
    decided: dict[int, dict] = {}
    if not (db.session.new or db.session.dirty or db.session.deleted):
        # The decisions rest on rows this push reads (and, reading first, records): objects the
        # session kept from an earlier transaction (expire_on_commit is off) are read again. A session
        # with unflushed changes is left as it is: expiring would drop them.
        db.session.expire_all()
    received_at = utcnow()
    skew = round((device_now - received_at).total_seconds()) if device_now is not None else None
    if skew is not None:  # a clock decades off is flagged like any other; the column holds 32 bits
        skew = max(-MAX_INT32, min(MAX_INT32, skew))
    clock = _Clock(BatchClock(received_at, skew, timedelta(seconds=skew_tolerance_s)), assigned_seq)
    ops = [dict(_check(op, _secret_fields(registry, op)), clock_skew_s=skew)
           for op in sorted(ops, key=lambda o: o["seq"])]
    for op in ops:
        _load_payload(registry, op)
        op["log"] = _log_fields(op, received_at)
    read_first = current_app.config["PUSH_READ_THEN_WRITE"] and can_read_then_write(db.session)
    collided = False
    for _ in range(2 * len(ops) + 3):  # each restart decides one more op; a stale read phase or a collision, all again
        try:
            return _attempt(registry, actor, ops, decided, clock, read_first=read_first)
        except IntegrityError as exc:
            slot = _slot_taken(exc)
            if slot is None:
                raise
            # The op log refused a seq or op_id another push took after this attempt read it. The device
            # lock makes that a backstop, not a path: decided again under the lock, those ops are found
            # taken and answered from the log; a second collision is a busy stop (the device resends).
            db.session.rollback()
            log.warning("push collided with the op log's unique index; deciding again under the lock",
                        extra={"device_id": actor.device_id, "slot": slot})
            if collided:
                return _stop_before_any_op(actor, ops, exc)  # busy: a refused row is no fault of the database
            collided, read_first = True, False
            decided.clear()
        except _Stale as stale:
            # What the batch read changed before it could write: everything is decided again, under the lock.
            db.session.rollback()
            decided.clear()
            read_first = False
            metrics.observe_read_phase(stale.outcome)
            log.info("push read phase did not stand; deciding again under the write lock",
                     extra={"device_id": actor.device_id, "outcome": stale.outcome, "detail": stale.detail})
        except _Restart as restart:
            db.session.rollback()
            decided[restart.seq] = restart.outcome
        except Exception as exc:
            if not _is_transient(exc):
                raise
            db.session.rollback()
            return _stop_before_any_op(actor, ops, exc)
    raise RuntimeError("push did not settle")  # pragma: no cover - each restart decides one more op


def _stop_before_any_op(actor: Actor, ops: list[dict], exc: Exception) -> dict:
    """The database could not take the batch (busy, deadlock, unable to write): nothing applied, resend
    from the first new op.

    last_seq is read in a read-only transaction, which waits for no writer (and needs no write).
    """
    token = mark_read_only(True)
    try:
        last_seq = db.session.scalar(select(Device.last_seq).where(Device.id == actor.device_id))
        db.session.rollback()
    finally:
        reset_read_only(token)
    new = [op["seq"] for op in ops if op["seq"] > last_seq]
    stopped_at = new[0] if new else (ops[0]["seq"] if ops else last_seq + 1)
    return {"results": [], "last_seq": last_seq, "server_time": utcnow(),
            **_database_stop(exc, stopped_at, "nothing in this batch was applied, resend it.")}


class _Stale(Exception):
    """A read-then-write attempt cannot stand: a read changed (read_changed), or the read phase tried
    to write, which query_only refused (wrote_early: a rule that writes at once, a violation's insert)."""

    def __init__(self, outcome: str, detail: str = ""):
        super().__init__(outcome)
        self.outcome, self.detail = outcome, detail


def _attempt(registry: Registry, actor: Actor, ops: list[dict], decided: dict[int, dict], clock: _Clock, *,
             read_first: bool = False) -> dict:
    """One pass over the batch: decide every op in memory, then write and commit.

    Under the device lock from the start; or, with read_first (SQLite), decided
    in a read transaction and written in a write transaction only if every read
    returns the same rows there (server.database: read, then write). The
    database's single write lock is then held for the writing only.
    """
    if not read_first:
        return _settle(*_decide_batch(registry, actor, ops, decided, clock))
    reading = begin_reading(db.session)
    try:
        decided_batch = _decide_batch(registry, actor, ops, decided, clock, read_first=True)
    except DBAPIError as exc:  # query_only refused a write (or a read failed): nothing written, try under the lock
        raise _Stale("wrote_early", f"{exc.orig or exc}: {(exc.statement or '')[:120]}") from exc
    finally:
        reads = end_reading(reading)
    begin_writing(db.session)
    if not reads_unchanged(db.session, reads):
        raise _Stale("read_changed")
    answer = _settle(*decided_batch)
    metrics.observe_read_phase("stood")
    return answer


def _timed(registry: Registry, device: Device, op: dict, held: dict, clock: _Clock,
           previous: datetime | None) -> OpTime | None:
    """When an op happened (sync.timing), from what the batch holds already: the device row and the locked
    entities. None for an op without a device time (rejected invalid_device_time, or not a time at all)."""
    if op["device_time"] is None:
        return None
    op_type = registry.ops.get(op["type"]) if op["verdict"] is None else None
    born = None
    if op_type is not None and not op_type.create:
        entity_type, obj = registry.entities[op_type.entity], held[op_type.entity].get(op["entity_id"])
        born = entity_type.born(obj) if entity_type.born is not None and obj is not None else None
    floor = floor_of(enrolled_at=device.enrolled_at, previous=previous, anchor_at=device.trusted_sync_at,
                     anchor_seq=device.trusted_sync_seq, seq=op["seq"], born=born)
    ceiling = ceiling_of(anchor_at=device.trusted_sync_at, anchor_seq=device.trusted_sync_seq, seq=op["seq"])
    return op_time(op["device_time"], clock.batch, floor, ceiling)


def _decide_batch(registry: Registry, actor: Actor, ops: list[dict], decided: dict[int, dict], clock: _Clock, *,
                  read_first: bool = False) -> tuple:
    """Every op of the batch applied (or refused) in memory; what _settle needs to write and answer."""
    device = db.session.scalar(_DEVICE_FOR_UPDATE, {"device_id": actor.device_id})
    response: dict = {}
    taken: list[tuple[dict, dict | _Applied | _Repeat]] = []  # in-sequence ops and their outcomes
    replies: dict[int, dict] = {}  # replays of ops at or below last_seq
    log_rows: list[dict] = []
    held = _lock_entities(registry, [op for op in ops if op["seq"] > device.last_seq])
    registry.attachments.hold([op["payload"] for op in ops if op["seq"] > device.last_seq and op["verdict"] is None])
    stored = _stored_ops(device, ops)
    known = _known_op_ids(device, ops)  # op_ids taken by earlier batches
    holders: dict[str, dict] = {}  # op_ids taken by this batch, by the op that took each
    last_seq = device.last_seq
    previous = device.last_op_at  # the floor of the device's next op: each op taken moves it
    with db.session.no_autoflush:
        for op in ops:
            op["time"] = None
            if op["seq"] <= device.last_seq:
                replies[op["seq"]] = _replay(device, op, stored.get(op["seq"]), log_rows)
                continue
            if op["seq"] > last_seq + 1:
                response["expected_seq"] = last_seq + 1
                break
            op["time"] = _timed(registry, device, op, held, clock, previous)
            first = (known.get(op["key"]) or holders.get(op["key"])) if op["key"] is not None else None
            if first is not None:  # a resend: it answers as the first did, and says nothing new of the clock
                taken.append((op, _repeat(op, first)))
                last_seq = op["seq"]
                continue
            outcome = decided.get(op["seq"])
            if outcome and "stop" in outcome:
                response.update(outcome["stop"])
                break
            if outcome:
                if outcome.get("keep"):
                    outcome["keep"]()  # what the refusal leaves behind survives the rollback of its attempt
                taken.append((op, outcome["result"]))
            else:
                try:
                    taken.append((op, _apply_op(registry, actor, device, op, held)))
                except Transient as exc:  # decided before anything changed: stop here
                    response.update(stopped_at=op["seq"], retry_after=exc.retry_after,
                                    stop_code=exc.code, stop_detail=exc.detail)
                    break
                except _Restart:
                    raise
                except Exception as exc:
                    if read_first and isinstance(exc, DBAPIError):
                        raise  # the read phase's: the batch is decided again under the lock
                    if _is_transient(exc):
                        raise _Restart(op["seq"], {"stop": _database_stop(exc, op["seq"], "resend from here.")}) from exc
                    # A bug or a case the handler never met: retrying cannot help, so the
                    # op is consumed and kept for dispatch, and the queue moves on.
                    log.exception("op handler failed; op rejected as handler_error",
                                  extra={"seq": op["seq"], "op_type": op["type"]})
                    raise _Restart(op["seq"], {"result": _result(
                        op, "rejected", "handler_error",
                        "The server failed to apply this op; it is kept for dispatch to review.")}) from exc
            if op["key"] is not None:
                holders[op["key"]] = op
            if op["time"] is not None:
                previous = op["time"].next_floor
            last_seq = op["seq"]
    return registry, device, ops, taken, replies, log_rows, last_seq, response, clock, previous


# A batch runs these once each; built once, since building costs about as much as running them.
_DEVICE_FOR_UPDATE = select(Device).where(Device.id == bindparam("device_id")).with_for_update()


@functools.lru_cache(maxsize=64)
def _in_scope_statement(entity_type: EntityType):
    """Which of some ids are in a courier's scope today."""
    model = entity_type.model
    return entity_type.scoped(model.id).where(model.id.in_(bindparam("ids", expanding=True)))


def _states(entity_type: EntityType, objs: dict[str, object], courier_id: str) -> dict[str, dict]:
    """The touched entities still in the courier's scope, as the handheld holds them.

    All are dumped (and remembered, so the commit's doc write reuses the dumps);
    one query tells which are still in scope. An entity devices do not keep is
    shown as it is.
    """
    if entity_type.held:
        in_scope = {row.id for row in db.session.execute(_in_scope_statement(entity_type), {
            "ids": list(objs), "courier_id": courier_id, "day_start": local_day_start(utcnow())})}
    else:
        in_scope = set(objs)
    data = docs.dump(db.session, entity_type, list(objs.values()))
    return {entity_id: data[entity_id] for entity_id in objs if entity_id in in_scope}


_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _spend_created(device: Device, taken: list) -> None:
    """Record the ids the batch's applied create ops made, before their entities are flushed.

    An id another device spent since this batch read them (a push racing this
    one) makes that op entity_exists: the attempt starts over with it decided.
    """
    rows = [{"entity_id": op["entity_id"], "entity": outcome.entity_name, "device_id": device.id,
             "seq": op["seq"], "created_at": utcnow()}
            for op, outcome in taken if isinstance(outcome, _Applied) and outcome.created]
    if not rows:
        return
    # In id order, as _lock_entities locks: two pushes creating the same ids in opposite orders
    # would otherwise each wait on the other's uncommitted row (PostgreSQL: a deadlock, a busy stop).
    rows.sort(key=lambda row: row["entity_id"])
    insert_ = _INSERT[db.session.get_bind().dialect.name]
    statement = insert_(CreatedEntity.__table__).on_conflict_do_nothing(
        index_elements=["entity_id"]).returning(CreatedEntity.entity_id)
    with db.session.no_autoflush:  # RETURNING an ORM column would flush the entities first: a spent id, a 500
        spent = set(db.session.scalars(statement, rows))
    for row in rows:
        if row["entity_id"] not in spent:
            op = next(op for op, _ in taken if op["seq"] == row["seq"])
            raise _Restart(op["seq"], {"result": _result(
                op, "rejected", "entity_exists", f"An entity {op['entity_id']} exists already; make a new id.")})


def _repeat_result(device: Device, op: dict, repeat: _Repeat, taken_results: dict[int, dict]) -> tuple[dict, dict]:
    """A resent op_id's answer and log row: the first op's result as a duplicate, or op_id_reused."""
    if repeat.same:
        first = repeat.stored if repeat.stored is not None else taken_results[repeat.first_seq]
        result = dict(first, seq=op["seq"], duplicate=True)
        return result, _log_row(device, op, result, status="duplicate", detail=(
            f"The op taken at seq {repeat.first_seq}, sent again under a new seq: answered with its result."))
    result = _result(op, "rejected", "op_id_reused",
                     f"op_id {op['op_id']} was taken by another op (seq {repeat.first_seq}); a new op needs a new "
                     f"op_id.")
    return result, _log_row(device, op, result)


def _settle(registry: Registry, device: Device, ops: list[dict], taken: list, replies: dict[int, dict],
            log_rows: list[dict], last_seq: int, response: dict, clock: _Clock, next_floor: datetime | None) -> dict:
    """Flush the batch once, dump each touched entity once, log every op, commit."""
    _spend_created(device, taken)
    db.session.flush()
    touched: dict[str, dict[str, object]] = {}
    for _, outcome in taken:
        if isinstance(outcome, _Applied):
            touched.setdefault(outcome.entity_name, {})[outcome.obj.id] = outcome.obj
    states = {name: _states(registry.entities[name], objs, device.courier_id) for name, objs in touched.items()}
    taken_results, conflicts = {}, []
    for op, outcome in taken:
        if isinstance(outcome, _Repeat):
            result, row = _repeat_result(device, op, outcome, taken_results)
            log_rows.append(row)
            taken_results[op["seq"]] = result
            continue
        if isinstance(outcome, _Applied):
            obj, data = outcome.obj, states[outcome.entity_name].get(outcome.obj.id)
            entity = {"entity": outcome.entity_name, "id": obj.id, "version": obj.version,
                      "deleted": data is None, **({"data": data} if data is not None else {})}
            result = _result(op, outcome.status, outcome.code, outcome.detail, entity)
            if outcome.conflict:
                conflicts.append((op["seq"], outcome.conflict))
        else:
            result = outcome
        if op["time"] is not None and op["time"].suspect:
            result = dict(result, clock_suspect=True)
        log_rows.append(_log_row(device, op, result, holds_op_id=op["key"] is not None))
        taken_results[op["seq"]] = result
    _write_log(log_rows)
    if conflicts:
        ids = dict(db.session.execute(select(OpLog.seq, OpLog.id).where(
            OpLog.device_id == device.id, IN_SEQUENCE,
            OpLog.seq.in_([seq for seq, _ in conflicts]))).all())
        db.session.add_all(SyncConflict(op_log_id=ids[seq], task_id=c["entity_id"], courier_id=device.courier_id,
                                        applied=c["applied"], reason=c["reason"]) for seq, c in conflicts)
    device.last_seq = last_seq
    device.last_seen_at = utcnow()
    device.last_op_at = next_floor
    if clock.batch.trusted and clock.assigned_seq is not None:
        # The device's clock agreed with the server's, and it said how far it had numbered its ops: whatever
        # it numbers later happened after this batch arrived (sync.timing's floor).
        device.trusted_sync_at = clock.batch.received_at
        device.trusted_sync_seq = max(device.trusted_sync_seq or 0, clock.assigned_seq,
                                      max((op["seq"] for op in ops), default=0))
    rejected = sum(1 for row in log_rows if row["status"] == "rejected")
    if rejected:  # in the device row's UPDATE that last_seq makes anyway
        device.rejected_ops += rejected
    db.session.commit()
    results = [replies.get(op["seq"]) or taken_results.get(op["seq"]) for op in ops]
    response.update(results=[r for r in results if r is not None], last_seq=device.last_seq,
                    server_time=utcnow())
    if clock.batch.skew_s is not None:
        response.update(clock_skew_s=clock.batch.skew_s, clock_suspect=not clock.batch.trusted)
    return response
