"""Readiness: whether this host can serve what a request needs, each check named."""
import logging
import uuid

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from server import storage
from server.database import mark_read_only, reset_read_only, schema_revisions
from server.database_faults import database_fault
from server.extensions import db
from server.models import SyncState

log = logging.getLogger(__name__)


def check() -> dict:
    """Every check's state and the overall status ("ok" only when each passed).

    database: reads and takes a write ("ok"; "busy" counts as ready: it is contention every
    writer rides out, and every host shares it), or "unreachable" / "unwritable";
    migrations: "head" or "behind"; storage: "ok" or "unavailable". A failure's short
    reason (a fixed phrase, an errno name, an S3 error code) is under "reasons".
    """
    body: dict = {}
    reasons: dict = {}
    try:
        with db.engine.connect() as conn:
            current, heads = schema_revisions(current_app, conn)
    except Exception as exc:  # any failure to read means not ready
        log.warning("readiness: database unreachable", extra={"error": str(exc)[:200]})
        body["database"] = "unreachable"
    else:
        body["database"] = _database_write(reasons)
        body["migrations"] = "head" if current == heads else "behind"
        if current != heads:
            body.update(current=sorted(current), head=sorted(heads))
    body["storage"] = _storage_write(reasons)
    ready = body["database"] in ("ok", "busy") and body.get("migrations") == "head" and body["storage"] == "ok"
    return {"status": "ok" if ready else "unavailable", **body, **({"reasons": reasons} if reasons else {})}


def _database_write(reasons: dict) -> str:
    """Write a row in a transaction that is rolled back: the database takes writes (not read-only, not refusing)."""
    token = mark_read_only(False)  # a write transaction: SQLite's writer queue, PostgreSQL READ WRITE
    try:
        with db.engine.connect() as conn:
            conn.execute(insert(SyncState).values(key=f"readyz-{uuid.uuid4().hex[:16]}", value="probe"))
            conn.rollback()
    except DBAPIError as exc:
        fault = database_fault(exc)
        if fault is not None and fault.kind == "busy":
            return "busy"
        reasons["database"] = fault.reason if fault is not None else "a write failed"
        log.warning("readiness: database cannot write", extra={"error": str(exc.orig)[:200]})
        return "unwritable"
    finally:
        reset_read_only(token)
    return "ok"


def _storage_write(reasons: dict) -> str:
    """Write and delete a probe in the attachment store, as an upload and the collector would."""
    try:
        storage.backend().probe()
    except storage.StorageUnavailable as exc:
        reasons["storage"] = exc.reason
        return "unavailable"
    return "ok"
