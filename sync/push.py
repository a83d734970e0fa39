"""Push: apply a device's ops exactly once, strictly in seq order.

Exactly-once is enforced by the database, not only here: the device row is
locked for the whole batch (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE serialises writers), and (device_id, seq) is unique in the op
log. A retry racing the original waits for it, then finds every op already
taken and replays the stored results.
"""
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import marshmallow as ma
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from server.auth import Actor
from server.clock import utcnow
from server.errors import DomainError
from server.extensions import db
from server.models import Attachment, Device, OpLog, SyncConflict
from sync.registry import Registry

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
    device_time: datetime | None


def payload_hash(op: dict) -> str:
    """Fingerprint of what an op asks for, to tell a true duplicate from a reused seq."""
    canonical = json.dumps({k: op.get(k) for k in ("op_id", "type", "entity_id", "base_version",
                                                   "payload")},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(op: dict, status: str, code: str | None = None, detail: str | None = None,
            entity: dict | None = None) -> dict:
    """One op's result, as stored and sent."""
    return {"seq": op["seq"], "op_id": op["op_id"], "status": status, "code": code,
            "detail": detail, "entity": entity}


def _log_row(device: Device, op: dict, digest: str, result: dict, *, in_sequence: bool = True) -> dict:
    """The op-log row for an op, whatever became of it: field data is never dropped."""
    device_time = op.get("device_time")
    offset = device_time.utcoffset() if device_time else None
    return {"device_id": device.id, "courier_id": device.courier_id, "seq": op["seq"], "op_id": op["op_id"],
            "type": op["type"], "entity_id": op.get("entity_id"), "base_version": op.get("base_version"),
            "payload": op.get("payload") or {}, "payload_hash": digest,
            "device_time": device_time.astimezone(timezone.utc) if device_time else None,
            "device_utc_offset_min": int(offset.total_seconds() // 60) if offset is not None else None,
            "received_at": utcnow(), "status": result["status"], "code": result["code"],
            "detail": result["detail"], "result": result, "in_sequence": in_sequence}


def _write_log(rows: list[dict]) -> None:
    """Insert the batch's op-log rows in one statement (the unit of work per row costs more)."""
    if rows:
        db.session.execute(insert(OpLog), rows)
        rows.clear()


def _replay(device: Device, op: dict, digest: str, log_rows: list[dict]) -> dict:
    """An op at or below last_seq: the stored result if it is the same op, else seq_reused."""
    stored = db.session.scalar(select(OpLog).where(
        OpLog.device_id == device.id, OpLog.seq == op["seq"], OpLog.in_sequence.is_(True)))
    if stored is not None and stored.payload_hash == digest:
        return dict(stored.result, duplicate=True)
    result = _result(op, "rejected", "seq_reused",
                     f"seq {op['seq']} was already used by another op; seqs must never be reused.")
    log_rows.append(_log_row(device, op, digest, result, in_sequence=False))
    return result


def _entity_state(registry: Registry, entity_name: str, obj, courier_id: str) -> dict:
    """The entity after the op, as the device will hold it (or a tombstone if it left scope)."""
    data = registry.entities[entity_name].state(obj, courier_id)
    if data is None:
        return {"entity": entity_name, "id": obj.id, "version": obj.version, "deleted": True}
    return {"entity": entity_name, "id": obj.id, "version": obj.version, "deleted": False, "data": data}


def _missing_attachments(shas: list[str]) -> list[str]:
    """Attachments an op names that have not been uploaded yet."""
    if not shas:
        return []
    present = set(db.session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(shas))))
    return [s for s in shas if s not in present]


def _apply(registry: Registry, actor: Actor, device: Device, op: dict,
           held: dict) -> tuple[dict, dict | None]:
    """Apply one in-sequence op; returns (result, conflict to open). Raises Transient."""
    op_type = registry.ops.get(op["type"])
    if op_type is None:
        return _result(op, "rejected", "unknown_op_type", f"Unknown op type {op['type']!r}."), None
    try:
        payload = op_type.schema().load(op.get("payload") or {})
    except ma.ValidationError as exc:
        return _result(op, "rejected", "invalid_payload",
                       json.dumps(exc.normalized_messages(), sort_keys=True)), None
    missing = _missing_attachments(op_type.attachments(payload))
    if missing:
        raise Transient("attachment_missing", f"Upload first: {', '.join(missing)}")
    entity_type = registry.entities[op_type.entity]
    obj = entity_type.lock(op.get("entity_id") or "")
    if obj is not None:
        # The session holds clean objects weakly; keep this one (and its loaded
        # collections) for the rest of the batch instead of reloading it per op.
        held[(op_type.entity, obj.id)] = obj
    access = entity_type.access(obj, device.courier_id) if obj is not None else None
    if access is None or (access == "former" and op_type.kind != "fact"):
        return _result(op, "rejected", "not_assigned",
                       f"No {op_type.entity} {op.get('entity_id')} assigned to this courier."), None
    base = op.get("base_version")
    stale = base is not None and base < entity_type.dispatch_version(obj)
    conflict_reason = ("reassigned" if access == "former" else
                       f"{obj.status}_by_dispatch" if stale and getattr(obj, "status", None) == "cancelled"
                       else "stale_version" if stale else None)
    if conflict_reason and op_type.kind == "wish":
        entity = _entity_state(registry, op_type.entity, obj, device.courier_id)
        return (_result(op, "conflict", conflict_reason,
                        "Dispatch changed this since; the request was recorded, not applied.", entity),
                {"applied": False, "reason": conflict_reason, "entity_id": obj.id})
    ctx = OpContext(actor=actor, op_id=op["op_id"], seq=op["seq"], device_time=op.get("device_time"))
    op_type.handler(ctx=ctx, obj=obj, payload=payload)
    if conflict_reason:
        entity_type.flag(obj)
        db.session.flush()
    entity = _entity_state(registry, op_type.entity, obj, device.courier_id)
    if conflict_reason:
        return (_result(op, "conflict", conflict_reason,
                        "Applied as a field fact; dispatch changed this since and will review it.", entity),
                {"applied": True, "reason": conflict_reason, "entity_id": obj.id})
    return _result(op, "applied", entity=entity), None


_TRANSIENT_DB_ERRORS = (OperationalError, StaleDataError)


def _is_transient(exc: Exception) -> bool:
    """Database busy, deadlock, serialization failure, a concurrent update: try again later."""
    if isinstance(exc, _TRANSIENT_DB_ERRORS):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and sqlstate in ("40001", "40P01", "55P03")


def push(*, registry: Registry, actor: Actor, ops: list[dict]) -> dict:
    """Apply a batch; every op gets a result; what the response acknowledges is committed."""
    device = db.session.scalar(select(Device).where(Device.id == actor.device_id).with_for_update())
    results: list[dict] = []
    response: dict = {}
    held: dict = {}
    log_rows: list[dict] = []
    for op in sorted(ops, key=lambda o: o["seq"]):
        digest = payload_hash(op)
        if op["seq"] <= device.last_seq:
            results.append(_replay(device, op, digest, log_rows))
            continue
        if op["seq"] > device.last_seq + 1:
            response["expected_seq"] = device.last_seq + 1
            break
        try:
            result, conflict = _apply_rejecting(registry, actor, device, op, held)
        except Transient as exc:
            response.update(stopped_at=op["seq"], retry_after=exc.retry_after,
                            stop_code=exc.code, stop_detail=exc.detail)
            break
        except Exception as exc:
            if not _is_transient(exc):
                log.exception("op failed unexpectedly; batch stopped",
                              extra={"seq": op["seq"], "op_type": op["type"]})
            response.update(stopped_at=op["seq"], retry_after=TRANSIENT_RETRY_AFTER,
                            stop_code="busy" if _is_transient(exc) else "internal_error",
                            stop_detail="The server could not apply this op now; resend from here.")
            break
        log_rows.append(_log_row(device, op, digest, result))
        if conflict:
            _write_log(log_rows)  # the conflict refers to the op-log row's id
            row_id = db.session.scalar(select(OpLog.id).where(
                OpLog.device_id == device.id, OpLog.seq == op["seq"], OpLog.in_sequence.is_(True)))
            db.session.add(SyncConflict(op_log_id=row_id, task_id=conflict["entity_id"],
                                        courier_id=device.courier_id, applied=conflict["applied"],
                                        reason=conflict["reason"]))
        device.last_seq = op["seq"]
        results.append(result)
    _write_log(log_rows)
    device.last_seen_at = utcnow()
    db.session.commit()
    response.update(results=results, last_seq=device.last_seq, server_time=utcnow())
    return response


def _apply_rejecting(registry: Registry, actor: Actor, device: Device, op: dict, held: dict):
    """_apply inside a savepoint: a refusal or failure undoes this op's writes and nothing else."""
    try:
        with db.session.begin_nested():
            return _apply(registry, actor, device, op, held)
    except DomainError as exc:
        return _result(op, "rejected", exc.code, exc.detail), None
