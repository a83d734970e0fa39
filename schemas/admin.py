"""Staff users, their API tokens and the audit log on the wire (admin routes)."""
from marshmallow import ValidationError, fields, validate, validates_schema

from schemas.common import SAFE_PATTERN, NewestFirstQuery, PageOut, Schema, Time, text
from schemas.vocab import STAFF_ROLES


class StaffIn(Schema):
    """A new staff user."""

    username = text(64, pattern=r"[A-Za-z0-9._@-]+", pattern_error="Letters, digits and . _ @ - only.")
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))


class PasswordIn(Schema):
    """A staff user's new console password: sent as typed (never trimmed), never stored or logged, only its
    argon2id hash. At least FIELDOPS_CONSOLE_PASSWORD_MIN_LENGTH (10) characters, not only spaces."""

    password = fields.String(required=True, validate=validate.Length(max=1024),
                             metadata={"format": "password", "writeOnly": True, "pattern": SAFE_PATTERN})


class TokenIn(Schema):
    """A new token for a staff user."""

    label = text(64, required=False, load_default=None)


class TokenOut(Schema):
    """A staff token as admins and its owner see it: never the secret, never its hash."""

    id = fields.Integer()
    staff_id = fields.String()
    username = fields.String(attribute="staff.username")
    label = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)
    last_used_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "Last authenticated use, to the minute (stamped at most once a minute)"})
    revoked_at = fields.AwareDateTime(allow_none=True)


class TokenList(Schema):
    """Tokens the caller may see."""

    items = fields.List(fields.Nested(TokenOut))


class StaffOut(Schema):
    """A staff user with their tokens."""

    id = fields.String()
    username = fields.String()
    role = fields.String()
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    tokens = fields.List(fields.Nested(TokenOut))


class StaffCreatedOut(Schema):
    """A staff user just created; `token`, their first, is shown this once."""

    staff = fields.Nested(StaffOut)
    token = fields.String()


class TokenIssuedOut(Schema):
    """A token just issued; `token`, the secret, is shown this once."""

    api_token = fields.Nested(TokenOut)
    token = fields.String()


class StaffList(Schema):
    """Every staff user."""

    items = fields.List(fields.Nested(StaffOut))


class AuditQuery(NewestFirstQuery):
    """Filters for the audit log; `from` is inclusive, `to` exclusive."""

    actor = text(32, required=False, load_default=None, attribute="staff_id",
                 metadata={"description": "Staff user id"})
    entity = text(32, required=False, load_default=None,
                  metadata={"description": "Kind of entity (its table), e.g. couriers, api_tokens"})
    entity_id = text(64, required=False, load_default=None)
    since = Time(load_default=None, data_key="from")
    until = Time(load_default=None, data_key="to", metadata={"description": "After from"})

    @validates_schema
    def _ordered(self, data, **_kw):
        """An empty or backwards range is a mistake, not an empty page."""
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError("Must be after `from`.", field_name="to")


class AuditOut(Schema):
    """One audit entry: who did what to which entity, before and after."""

    id = fields.Integer()
    at = fields.AwareDateTime()
    actor = fields.String(attribute="staff_id", allow_none=True)
    action = fields.String()
    entity = fields.String()
    entity_id = fields.String()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class AuditPage(PageOut):
    """A page of the audit log."""

    items = fields.List(fields.Nested(AuditOut))
