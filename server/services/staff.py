"""Staff users, their API tokens, their console passwords and console sessions."""
import logging
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload

from server.auth import STAFF_TOKEN_PREFIX, SYSTEM, Actor
from server.clock import utcnow
from server.database import mark_read_only, reset_read_only
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.ids import hash_secret, new_token
from schemas.vocab import STAFF_ROLES
from server.models import ApiToken, ConsoleSession, StaffUser

log = logging.getLogger(__name__)

# argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes).
_HASHER = PasswordHasher()
# Verified against when the username is unknown, so an unknown user costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
# A password longer than this is refused (hashing megabytes on request is a denial of service, not a password).
PASSWORD_MAX_LENGTH = 1024
# A session's last request is stamped at most this often, so a page of htmx requests is not a row of writes.
SESSION_SEEN_RESOLUTION = timedelta(seconds=30)
from server.services.common import audit, get_or_404, snapshot


def _sees_all(actor: Actor) -> bool:
    """Admins (and the CLI) see and manage every token; other staff only their own."""
    return actor.role == "admin" or actor.kind == "system"


def _add_token(*, actor: Actor, staff: StaffUser, label: str | None) -> tuple[ApiToken, str]:
    """Attach a new token to the user and audit it; flushes only. Returns the row and the secret."""
    token = new_token(STAFF_TOKEN_PREFIX)
    row = ApiToken(token_hash=hash_secret(token), label=label, created_by=actor.id)
    staff.tokens.append(row)
    audit(actor, "token.issue", row, None)
    return row, token


def create(*, username: str, role: str, actor: Actor = SYSTEM) -> tuple[StaffUser, str]:
    """Add a staff user with a first API token; the token is returned once, never stored."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": [f"One of {STAFF_ROLES}."]})
    # Unique regardless of case: `Bob` beside `bob` would read as one person in the audit log.
    if db.session.scalar(select(StaffUser.id).where(func.lower(StaffUser.username) == username.lower())):
        raise Conflict(f"User {username} exists.", code="duplicate_username",
                       fields={"username": ["Already taken."]})
    staff = StaffUser(username=username, role=role)
    db.session.add(staff)
    audit(actor, "staff.create", staff, None)
    _, token = _add_token(actor=actor, staff=staff, label="first")
    db.session.commit()
    return staff, token


def get_all() -> list[StaffUser]:
    """Every staff user with their tokens, by username."""
    return list(db.session.scalars(
        select(StaffUser).options(selectinload(StaffUser.tokens)).order_by(StaffUser.username)))


def get(*, staff_id: str) -> StaffUser:
    """One staff user by id, or 404 `staff_not_found`."""
    return get_or_404(StaffUser, staff_id, what="staff")


def get_by_username(*, username: str) -> StaffUser:
    """One staff user by username, or 404."""
    staff = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if staff is None:
        raise NotFound(f"No staff user {username}.", code="staff_not_found")
    return staff


def issue_token(*, actor: Actor, staff_id: str, label: str | None = None) -> tuple[ApiToken, str]:
    """Give a staff user another API token; the secret is returned once, only its hash is kept."""
    staff = get_or_404(StaffUser, staff_id, what="staff")
    if not staff.active:
        raise RuleViolation("An inactive staff user cannot get a token.", code="staff_inactive")
    row, token = _add_token(actor=actor, staff=staff, label=label)
    db.session.commit()
    return row, token


def get_tokens(*, actor: Actor) -> list[ApiToken]:
    """Tokens the actor may see: every one for an admin, their own for other staff."""
    query = select(ApiToken).options(selectinload(ApiToken.staff)).order_by(ApiToken.id)
    if not _sees_all(actor):
        query = query.where(ApiToken.staff_id == actor.id)
    return list(db.session.scalars(query))


def revoke_token(*, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token (admin, or its owner); another user's token is 404 to a non-admin. Idempotent."""
    row = db.session.get(ApiToken, token_id, with_for_update=True, options=[selectinload(ApiToken.staff)])
    if row is None or not (_sees_all(actor) or row.staff_id == actor.id):
        raise NotFound(f"No token {token_id}.", code="token_not_found")
    if row.revoked_at is None:
        before = snapshot(row)
        row.revoked_at = utcnow()
        audit(actor, "token.revoke", row, before)
        db.session.commit()
    return row


def set_password(*, actor: Actor, staff_id: str, password: str) -> StaffUser:
    """Set a staff user's console password (argon2id); their console sessions end, so an old one cannot go on."""
    staff = get_or_404(StaffUser, staff_id, what="staff")
    return _store_password(actor=actor, staff=staff, password=password, keep_session_id=None)


def change_own_password(*, actor: Actor, current: str, password: str, keep_session_id: int | None) -> StaffUser:
    """A signed-in staff user changes their own password: the current one first (else 422 `current_password_wrong`,
    which the caller counts as a failed sign-in); their other console sessions end, the one asking goes on."""
    staff = get_or_404(StaffUser, actor.id, what="staff")
    stored = staff.password_hash or _DUMMY_HASH
    db.session.commit()  # the hash takes tens of milliseconds: not inside a transaction
    try:
        matches = _HASHER.verify(stored, current[:PASSWORD_MAX_LENGTH]) and stored is not _DUMMY_HASH
    except (VerificationError, InvalidHashError):
        matches = False
    if not matches or len(current) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed("The current password is wrong.", code="current_password_wrong",
                               fields={"current_password": ["Wrong password."]})
    return _store_password(actor=actor, staff=staff, password=password, keep_session_id=keep_session_id)


def _check_password(password: str) -> None:
    """A new console password's rules: long enough, not too long, not only spaces (422 naming `password`)."""
    minimum = current_app.config["CONSOLE_PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        raise ValidationFailed(f"A password has at least {minimum} characters.", code="password_too_short",
                               fields={"password": [f"At least {minimum} characters."]})
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationFailed(f"A password has at most {PASSWORD_MAX_LENGTH} characters.", code="password_too_long",
                               fields={"password": [f"At most {PASSWORD_MAX_LENGTH} characters."]})
    if not password.strip():
        raise ValidationFailed("A password cannot be only spaces.", code="password_blank",
                               fields={"password": ["Not only spaces."]})


def _store_password(*, actor: Actor, staff: StaffUser, password: str, keep_session_id: int | None) -> StaffUser:
    """Hash and keep a checked password, end the user's sessions (but the one kept), audit without the secret."""
    _check_password(password)
    db.session.commit()  # hashing outside any transaction (on SQLite a write's holds the lock)
    digest = _HASHER.hash(password)
    staff = db.session.get(StaffUser, staff.id, with_for_update=True)
    before = snapshot(staff)
    staff.password_hash = digest
    staff.password_set_at = utcnow()
    _end_sessions_of(staff.id, keep_session_id=keep_session_id)
    audit(actor, "staff.set_password", staff, before)  # the snapshot never holds the hash (common.snapshot)
    db.session.commit()
    return staff


def verify_password(*, username: str, password: str) -> StaffUser | None:
    """The active staff user with this username (any case) and password, or None; as slow for an unknown user."""
    staff = None
    # PostgreSQL text holds no NUL: a name with one is nobody's (and must not reach the query).
    if len(password) <= PASSWORD_MAX_LENGTH and len(username) <= 64 and "\x00" not in username:
        staff = db.session.scalar(select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower(),
                                                          StaffUser.active.is_(True)))
    stored = staff.password_hash if staff is not None and staff.password_hash else _DUMMY_HASH
    # The hash takes tens of milliseconds: not inside a transaction (on SQLite a post's holds the write lock).
    db.session.commit()
    try:
        _HASHER.verify(stored, password[:PASSWORD_MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    if staff is None or stored is _DUMMY_HASH:
        return None
    if _HASHER.check_needs_rehash(stored):  # the parameters were raised since: keep the stronger hash
        staff.password_hash = _HASHER.hash(password)
        db.session.commit()
    return staff


def start_session(*, staff: StaffUser, address: str | None) -> tuple[ConsoleSession, str]:
    """Open a console session for a signed-in staff user; the cookie value is returned once, only its hash kept."""
    secret = secrets.token_urlsafe(32)
    session = ConsoleSession(session_hash=hash_secret(secret), staff_id=staff.id, csrf_token=secrets.token_urlsafe(32),
                             address=(address or "")[:64] or None)
    db.session.add(session)
    db.session.commit()
    return session, secret


def _idle_limit() -> timedelta:
    """How long a console session lasts without a request."""
    return timedelta(minutes=current_app.config["CONSOLE_IDLE_MINUTES"])


def lookup_session(*, secret: str | None) -> ConsoleSession | None:
    """The live session for a cookie value (its staff user loaded), or None: unknown, ended, idle too long, older
    than CONSOLE_SESSION_MAX_HOURS, or its user made inactive. A live session's last request is stamped; an idle one is ended."""
    if not secret or len(secret) > 128:
        return None
    session = db.session.scalar(select(ConsoleSession).options(selectinload(ConsoleSession.staff))
                                .where(ConsoleSession.session_hash == hash_secret(secret),
                                       ConsoleSession.ended_at.is_(None)))
    if session is None or not session.staff.active:
        return None
    now = utcnow()
    lifetime = timedelta(hours=current_app.config["CONSOLE_SESSION_MAX_HOURS"])
    if session.last_seen_at < now - _idle_limit() or session.created_at < now - lifetime:
        ended = min(session.last_seen_at + _idle_limit(), session.created_at + lifetime)
        _write_apart(update(ConsoleSession).where(ConsoleSession.id == session.id, ConsoleSession.ended_at.is_(None))
                     .values(ended_at=ended))
        return None
    if session.last_seen_at < now - SESSION_SEEN_RESOLUTION:
        session_id = session.id
        _write_apart(update(ConsoleSession).where(ConsoleSession.id == session_id).values(last_seen_at=now))
        session = db.session.scalar(select(ConsoleSession).options(selectinload(ConsoleSession.staff))
                                    .where(ConsoleSession.id == session_id))
    return session


def _write_apart(statement) -> None:
    """Run one update in its own short committed transaction (a read request's is read-only); a failure is logged,
    never the request's."""
    db.session.rollback()
    read_only = mark_read_only(False)
    try:
        db.session.execute(statement)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("console session not stamped", exc_info=True)
    finally:
        reset_read_only(read_only)


def end_session(*, secret: str | None) -> None:
    """Sign out: the session of this cookie value ends now (nothing happens for an unknown or ended one)."""
    if not secret or len(secret) > 128:
        return
    db.session.execute(update(ConsoleSession).where(ConsoleSession.session_hash == hash_secret(secret),
                                                    ConsoleSession.ended_at.is_(None)).values(ended_at=utcnow()))
    db.session.commit()


def _end_sessions_of(staff_id: str, *, keep_session_id: int | None = None) -> None:
    """End every live console session of a staff user (but the one kept, if any); flushes only."""
    query = update(ConsoleSession).where(ConsoleSession.staff_id == staff_id, ConsoleSession.ended_at.is_(None))
    if keep_session_id is not None:
        query = query.where(ConsoleSession.id != keep_session_id)
    db.session.execute(query.values(ended_at=utcnow()))


def deactivate(*, actor: Actor, staff_id: str) -> StaffUser:
    """Deactivate a staff user: their tokens and console sessions stop working at once (an admin's own account is
    not theirs to deactivate: 409 cannot_deactivate_self). Repeating it changes nothing. Commits."""
    staff = db.session.get(StaffUser, staff_id, with_for_update=True) if staff_id else None
    if staff is None:
        raise NotFound(f"No staff user {staff_id}.", code="staff_not_found")
    if staff.id == actor.id:
        raise Conflict("You cannot deactivate your own account; another admin does.", code="cannot_deactivate_self")
    if staff.active:
        before = snapshot(staff)
        staff.active = False
        _end_sessions_of(staff.id)
        audit(actor, "staff.deactivate", staff, before)
        db.session.commit()
    return staff
