"""Who is calling: staff and device bearer tokens, roles, and auth-failure limits."""
import functools
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import and_, bindparam, delete, func, or_, select, update
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


def customer(link_id: str | None) -> Actor:
    """The customer acting through a confirmation link (its id names the link)."""
    return Actor(kind="customer", id=link_id, role="customer")


def client_key(prefix: str) -> str:
    """A rate-limit key for the calling address (ProxyFix has put the client's there when behind proxies)."""
    return f"{prefix}:{request.remote_addr or 'unknown'}"


@dataclass(frozen=True)
class Budget:
    """One failure limit applied to one key: its name (in the 429), its setting, the counted key."""

    name: str
    setting: str
    key: str


_SETTINGS = ("AUTH_TOKEN_FAILURES_PER_ADDRESS", "AUTH_TOKEN_FAILURES_PER_TOKEN",
             "AUTH_ENROLL_FAILURES_PER_ADDRESS", "AUTH_ENROLL_FAILURES_PER_CODE",
             "CUSTOMER_LINK_REQUESTS", "CUSTOMER_LINK_FAILURES_PER_ADDRESS", "RECEIPT_PAGE_REQUESTS",
             "RECEIPT_TOKEN_FAILURES_PER_ADDRESS", "COMPLAINT_PAGE_FILINGS",
             "CONSOLE_LOGIN_FAILURES_PER_USER_ADDRESS", "CONSOLE_LOGIN_FAILURES_PER_ADDRESS")


def _credential_key(prefix: str, secret: str) -> str:
    """A rate-limit key for a presented credential: a hash of it, never the credential."""
    return f"{prefix}:{hash_secret(secret)[:32]}"


def token_budgets(address_key: str, token: str | None) -> list[Budget]:
    """The limits on failed bearer tokens: per address, and per presented token."""
    budgets = [Budget("token_failures_per_address", "AUTH_TOKEN_FAILURES_PER_ADDRESS", address_key)]
    if token is not None:
        budgets.append(Budget("token_failures_per_token", "AUTH_TOKEN_FAILURES_PER_TOKEN",
                              _credential_key("auth-token", token)))
    return budgets


def enrollment_budgets(address_key: str, code: str) -> list[Budget]:
    """The limits on failed enrollment codes: per address, and per presented code."""
    return [Budget("enroll_failures_per_address", "AUTH_ENROLL_FAILURES_PER_ADDRESS", address_key),
            Budget("enroll_failures_per_code", "AUTH_ENROLL_FAILURES_PER_CODE",
                   _credential_key("enroll-code", code))]


def console_login_budgets(address_key: str, username: str) -> list[Budget]:
    """The limits on failed console sign-ins: per (username, address), and per address.

    Never per username alone: wrong guesses from one address must not lock the right password out from another.
    """
    pair = f"{username.strip().lower()}\n{address_key}"
    return [Budget("console_login_failures_per_user_address", "CONSOLE_LOGIN_FAILURES_PER_USER_ADDRESS",
                   _credential_key("console-login", pair)),
            Budget("console_login_failures_per_address", "CONSOLE_LOGIN_FAILURES_PER_ADDRESS", address_key)]


# Every request runs these; they are built once (building costs more than running them).
_STAFF_TOKEN = (select(ApiToken.id, ApiToken.last_used_at, StaffUser.id.label("staff_id"), StaffUser.role)
                .join(ApiToken.staff)
                .where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None),
                       StaffUser.active.is_(True)))
_DEVICE_TOKEN = (select(Device.id, Device.courier_id).join(Courier)
                 .where(Device.token_hash == bindparam("digest"), Device.revoked_at.is_(None),
                        Courier.active.is_(True)))


def check_failure_budget(budgets: list[Budget]) -> None:
    """Refuse with 429, naming the limit, when any of these keys failed too often recently."""
    now = utcnow()
    limits = {b.key: (b, current_app.config[b.setting]) for b in budgets}
    in_window = or_(*(and_(AuthFailure.key == key, AuthFailure.at >= now - timedelta(seconds=limit.seconds))
                      for key, (_budget, limit) in limits.items()))
    rows = db.session.execute(select(AuthFailure.key, func.count(), func.min(AuthFailure.at))
                              .where(in_window).group_by(AuthFailure.key))
    for key, failures, oldest in rows:
        budget, limit = limits[key]
        if failures >= limit.attempts:
            # The budget reopens when its oldest counted failure leaves the window.
            wait = math.ceil((oldest + timedelta(seconds=limit.seconds) - now).total_seconds())
            raise TooManyRequests(f"Too many failed attempts ({budget.name}); wait before trying again.",
                                  headers={"Retry-After": str(max(wait, 1))}, extra={"limit": budget.name})


def record_failure(budgets: list[Budget], reason: str) -> None:
    """Count a failure against each budget in its own committed transaction (429 if one is spent)."""
    g.auth_failure = reason  # the access line says why
    count_attempt(budgets)


def count_attempt(budgets: list[Budget]) -> None:
    """Count an attempt against each budget in its own committed transaction (429 if one is spent)."""
    db.session.rollback()
    token = mark_read_only(False)
    try:
        # Checked again under the write transaction, so concurrent failures do not
        # overshoot; a refused attempt is not counted, so the table stays bounded.
        check_failure_budget(budgets)
        now = utcnow()
        longest = max(current_app.config[setting].seconds for setting in _SETTINGS)
        db.session.execute(delete(AuthFailure).where(AuthFailure.at < now - timedelta(seconds=longest)))
        db.session.add_all([AuthFailure(key=budget.key, at=now) for budget in budgets])
        db.session.commit()
    finally:
        db.session.rollback()
        reset_read_only(token)


def _bearer() -> str | None:
    """The bearer token of this request, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate() -> Actor:
    """Resolve the bearer token to an Actor, or raise 401 (429 after repeated failures)."""
    token = _bearer()
    # A read request goes on in the transaction the lookup began (one snapshot,
    # fewer round trips). Otherwise the lookup reads in a short read-only
    # transaction of its own, so the write transaction that follows (on SQLite,
    # the database's single write lock) does not span the request's parsing.
    reading = is_read_only()
    read_only = mark_read_only(True)
    try:
        actor, unstamped = _actor_for(hash_secret(token), token) if token else (None, None)
    finally:
        if not reading:
            db.session.commit()
        reset_read_only(read_only)
    if actor is None:
        # Only failures are limited: a valid token is served whatever its address did.
        record_failure(token_budgets(client_key("auth"), token),
                       "missing token" if token is None else "unknown or revoked token")
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


def _actor_for(digest: str, token: str) -> tuple[Actor | None, int | None]:
    """(actor, staff token id if its last use is due a stamp) for a valid token; (None, None) if none."""
    if token.startswith(STAFF_TOKEN_PREFIX):
        row = db.session.execute(_STAFF_TOKEN, {"digest": digest}).first()
        if row:
            due = row.last_used_at is None or row.last_used_at < utcnow() - TOKEN_USE_RESOLUTION
            return Actor(kind="staff", id=row.staff_id, role=row.role), row.id if due else None
    elif token.startswith(DEVICE_TOKEN_PREFIX):
        row = db.session.execute(_DEVICE_TOKEN, {"digest": digest}).first()
        if row:
            return Actor(kind="courier", id=row.courier_id, role="courier", courier_id=row.courier_id,
                         device_id=row.id), None
    return None, None


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
