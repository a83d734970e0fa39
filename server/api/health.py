"""Liveness and readiness probes."""
from flask import Blueprint

from server.services import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Whether this host can serve requests: the database reads and writes, at the migrations' head, and the
    attachment store writes; 503 naming what failed otherwise."""
    body = readiness.check()
    return body, 200 if body["status"] == "ok" else 503
