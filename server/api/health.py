"""Liveness and readiness probes."""
from flask import Blueprint, current_app
from sqlalchemy import text

from server import storage
from server.database import schema_revisions
from server.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The database answers and its schema is at the migrations' head."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current, heads = schema_revisions(current_app, conn)
    except Exception as exc:  # any failure to reach the database means not ready
        current_app.logger.warning("readiness: database unreachable", extra={"error": str(exc)})
        return {"status": "unavailable", "database": "unreachable"}, 503
    if current != heads:
        return {"status": "unavailable", "database": "ok", "migrations": "behind",
                "current": sorted(current), "head": sorted(heads)}, 503
    store = storage.backend()
    if isinstance(store, storage.S3Bucket):
        # A host that cannot reach the shared bucket would refuse every upload: keep it out of rotation.
        if not store.ready():
            return {"status": "unavailable", "database": "ok", "migrations": "head", "storage": "unreachable"}, 503
        return {"status": "ok", "database": "ok", "migrations": "head", "storage": "ok"}
    return {"status": "ok", "database": "ok", "migrations": "head"}
