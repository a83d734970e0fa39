"""Staff users and their API tokens."""
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server.auth import STAFF_TOKEN_PREFIX, SYSTEM, Actor
from server.clock import utcnow
from server.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from server.extensions import db
from server.ids import hash_secret, new_token
from schemas.vocab import STAFF_ROLES
from server.models import ApiToken, StaffUser
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
