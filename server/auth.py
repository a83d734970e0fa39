"""Who is calling: staff and device bearer tokens, roles, and auth-failure limits."""
import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from server.clock import utcnow
from server.database import is_read_only, mark_read_only, reset_read_only
from server.errors import Forbidden, TooManyRequests, Unauthorized
from server.extensions import db
from server.ids import hash_secret
from server.models import ApiToken, AuthFailure, Courier, Device, StaffUser

log = logging.getLogger(__name__)

STAFF_TOKEN_PREFIX = "fos_"
DEVICE_TOKEN_PREFIX = "fod_"
# A staff token's last use is stamped at most this often, so reads stay reads.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, as services see it."""

    kind: str  # "staff" | "courier" | "system"
    id: str | None
    role: str | None = None  # staff role, or "courier"
    courier_id: str | None = None
    device_id: str | None = None

    @property
    def is_courier(self) -> bool:
        """True for a handheld."""
        return self.kind == "courier"


SYSTEM = Actor(kind="system", id=None, role="system")


def client_key(prefix: str) -> str:
    """A rate-limit key for the calling address."""
    return f"{prefix}:{request.remote_addr or 'unknown'}"


# Every request runs these; they are built once (building costs more than running them).
# The token lookups also count the caller's recent failures: one round trip, not two.
_FAILURES = (select(func.count()).select_from(AuthFailure)
             .where(AuthFailure.key == bindparam("key"), AuthFailure.at >= bindparam("since")))
_STAFF_TOKEN = (select(ApiToken.id, ApiToken.last_used_at, StaffUser.id.label("staff_id"), StaffUser.role,
                       _FAILURES.scalar_subquery().label("failures")).join(ApiToken.staff)
                .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None),
                       StaffUser.active.is_(True)))
_DEVICE_TOKEN = (select(Device.id, Device.courier_id, _FAILURES.scalar_subquery().label("failures"))
                 .join(Courier)
                 .where(Device.token_hash == bindparam("digest"), Device.revoked_at.is_(None),
                        Courier.active.is_(True)))


def _failure_window(key: str) -> dict:
    """Bind parameters for counting the key's failures in the current window."""
    return {"key": key, "since": utcnow() - timedelta(seconds=current_app.config["AUTH_FAILURE_WINDOW"])}


def _refuse_over_budget(failures: int) -> None:
    """429 when a key failed too often recently (even with a correct token, until the window passes)."""
    if failures >= current_app.config["AUTH_FAILURE_LIMIT"]:
        raise TooManyRequests("Too many failed attempts; wait before trying again.",
                              headers={"Retry-After": str(current_app.config["AUTH_FAILURE_WINDOW"])})


def check_failure_budget(key: str) -> None:
    """Refuse with 429 when this key failed too often recently."""
    _refuse_over_budget(db.session.scalar(_FAILURES, _failure_window(key)))


def record_failure(key: str, reason: str) -> None:
    """Count a failure in its own committed transaction, and log it without the secret."""
    db.session.rollback()
    token = mark_read_only(False)
    try:
        now = utcnow()
        db.session.execute(delete(AuthFailure).where(
            AuthFailure.at < now - timedelta(seconds=current_app.config["AUTH_FAILURE_WINDOW"])))
        db.session.add(AuthFailure(key=key, at=now))
        db.session.commit()
    finally:
        reset_read_only(token)
    log.warning("auth failure", extra={"auth_key": key, "reason": reason})


def _bearer() -> str | None:
    """The bearer token of this request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate() -> Actor:
    """Resolve the bearer token to an Actor, or raise 401 (429 after repeated failures)."""
    key = client_key("auth")
    token = _bearer()
    # A read request goes on in the transaction the lookup began (one snapshot,
    # fewer round trips). Otherwise the lookup reads in a short read-only
    # transaction of its own, so the write transaction that follows (on SQLite,
    # the database's single write lock) does not span the request's parsing.
    reading = is_read_only()
    read_only = mark_read_only(True)
    try:
        window = _failure_window(key)
        actor, failures, unstamped = _actor_for(hash_secret(token), token, window) if token else (None, None, None)
        _refuse_over_budget(db.session.scalar(_FAILURES, window) if failures is None else failures)
    finally:
        if not reading:
            db.session.commit()
        reset_read_only(read_only)
    if actor is None:
        record_failure(key, "missing token" if token is None else "unknown or revoked token")
        raise Unauthorized("A bearer token is required." if token is None else "The token is not valid.",
                           headers={"WWW-Authenticate": "Bearer"})
    if unstamped is not None:
        _stamp_use(unstamped)
    g.actor = actor
    return actor


def _stamp_use(token_id: int) -> None:
    """Record a staff token's use in its own short committed transaction; a failure here never fails the request."""
    db.session.rollback()
    read_only = mark_read_only(False)
    try:
        now = utcnow()
        # The condition keeps concurrent workers from stamping one token twice a minute.
        db.session.execute(update(ApiToken).where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_USE_RESOLUTION),
        ).values(last_used_at=now))
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("token use not recorded", extra={"token_id": token_id}, exc_info=True)
    finally:
        reset_read_only(read_only)


def _actor_for(digest: str, token: str, window: dict) -> tuple[Actor | None, int | None, int | None]:
    """(actor, recent failures, staff token id if its last use is due a stamp) for a valid token; Nones if none."""
    if token.startswith(STAFF_TOKEN_PREFIX):
        row = db.session.execute(_STAFF_TOKEN, {"digest": digest, **window}).first()
        if row:
            due = row.last_used_at is None or row.last_used_at < utcnow() - TOKEN_USE_RESOLUTION
            return Actor(kind="staff", id=row.staff_id, role=row.role), row.failures, row.id if due else None
    elif token.startswith(DEVICE_TOKEN_PREFIX):
        row = db.session.execute(_DEVICE_TOKEN, {"digest": digest, **window}).first()
        if row:
            return Actor(kind="courier", id=row.courier_id, role="courier", courier_id=row.courier_id,
                         device_id=row.id), row.failures, None
    return None, None, None


def require(*roles: str):
    """Decorate a view: the caller must hold one of the roles ("courier" for handhelds)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            actor = authenticate()
            if actor.role not in roles:
                raise Forbidden(f"This route is for: {', '.join(roles)}.")
            return view(*args, **kwargs)
        wrapper._fieldops_roles = roles  # read by the spec (server/openapi.py) and the route × role test
        return wrapper
    return decorator


DISPATCH = ("admin", "dispatcher")
OFFICE = ("admin", "dispatcher", "quality")
COURIER = ("courier",)


def current_actor() -> Actor:
    """The actor authenticated for this request."""
    return g.actor
