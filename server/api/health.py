"""Liveness and readiness probes."""
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app
from sqlalchemy import text

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
            current = MigrationContext.configure(conn).get_current_heads()
    except Exception as exc:  # any failure to reach the database means not ready
        current_app.logger.warning("readiness: database unreachable", extra={"error": str(exc)})
        return {"status": "unavailable", "database": "unreachable"}, 503
    migrate_config = current_app.extensions["migrate"].migrate.get_config()
    heads = ScriptDirectory.from_config(migrate_config).get_heads()
    if set(current) != set(heads):
        return {"status": "unavailable", "database": "ok", "migrations": "behind",
                "current": sorted(current), "head": sorted(heads)}, 503
    return {"status": "ok", "database": "ok", "migrations": "head"}
