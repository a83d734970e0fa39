"""Staff users and their API tokens."""
from sqlalchemy import select

from server.auth import STAFF_TOKEN_PREFIX
from server.errors import Conflict, ValidationFailed
from server.extensions import db
from server.ids import hash_secret, new_token
from schemas.vocab import STAFF_ROLES
from server.models import ApiToken, StaffUser


def create(*, username: str, role: str) -> tuple[StaffUser, str]:
    """Add a staff user with a first API token; the token is returned once, never stored."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": [f"One of {STAFF_ROLES}."]})
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise Conflict(f"User {username} exists.", code="duplicate_username")
    staff = StaffUser(username=username, role=role)
    token = new_token(STAFF_TOKEN_PREFIX)
    staff.tokens.append(ApiToken(token_hash=hash_secret(token)))
    db.session.add(staff)
    db.session.commit()
    return staff, token
