"""Administration: staff users, their API tokens, the audit log, and the scheduled jobs' runs."""
from flask.views import MethodView
from flask_smorest import Blueprint

from schemas.admin import (AuditPage, AuditQuery, PasswordIn, StaffCreatedOut, StaffIn, StaffList, StaffOut,
                           TokenIn, TokenIssuedOut, TokenList, TokenOut)
from schemas.common import NewestFirstQuery
from schemas.jobs import JobList, JobRunPage
from schemas.products import ServiceProductIn, ServiceProductList, ServiceProductOut, ServiceProductPatch
from server.auth import OFFICE, current_actor, require
from server.services import audit, job_runs, promises, staff

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Staff, tokens, the audit log, the scheduled jobs and the service products")

ADMIN = ("admin",)
AUDIT_READERS = ("admin", "quality")
# Staff who manage their own tokens: an integration token reads events and imports manifests, nothing else
# (an admin lists and revokes it).
TOKEN_HOLDERS = ("admin", "dispatcher", "quality", "maintenance")


@blp.route("/staff")
class Staff(MethodView):
    """Staff users."""

    @require(*ADMIN)
    @blp.response(200, StaffList)
    def get(self):
        """List every staff user with their tokens (never the secrets)."""
        return {"items": staff.get_all()}

    @require(*ADMIN)
    @blp.arguments(StaffIn)
    @blp.response(201, StaffCreatedOut)
    def post(self, data):
        """Add a staff user; their first token is in the answer, shown this once."""
        user, token = staff.create(actor=current_actor(), **data)
        return {"staff": user, "token": token}


@blp.route("/staff/<staff_id>/deactivate")
class StaffDeactivation(MethodView):
    """Deactivating a staff user."""

    @require(*ADMIN)
    @blp.response(200, StaffOut)
    def post(self, staff_id):
        """Deactivate a staff user: their tokens and console sessions stop working; your own account is 409
        cannot_deactivate_self. Repeating it changes nothing."""
        return staff.deactivate(actor=current_actor(), staff_id=staff_id)


@blp.route("/staff/<staff_id>/tokens")
class StaffTokens(MethodView):
    """A staff user's tokens."""

    @require(*ADMIN)
    @blp.arguments(TokenIn)
    @blp.response(201, TokenIssuedOut)
    def post(self, data, staff_id):
        """Issue another token; the secret is in the answer, shown this once (only its hash is kept)."""
        row, token = staff.issue_token(actor=current_actor(), staff_id=staff_id, **data)
        return {"api_token": row, "token": token}


@blp.route("/staff/<staff_id>/password")
class StaffPassword(MethodView):
    """A staff user's console password."""

    @require(*ADMIN)
    @blp.arguments(PasswordIn)
    @blp.response(200, StaffOut)
    def put(self, data, staff_id):
        """Set their console password (at least FIELDOPS_CONSOLE_PASSWORD_MIN_LENGTH characters); every console
        session of theirs ends. Audited as staff.set_password, without the password."""
        return staff.set_password(actor=current_actor(), staff_id=staff_id, **data)


@blp.route("/tokens")
class Tokens(MethodView):
    """Staff tokens."""

    @require(*TOKEN_HOLDERS)
    @blp.response(200, TokenList)
    def get(self):
        """Every token for an admin; your own for other staff."""
        return {"items": staff.get_tokens(actor=current_actor())}


@blp.route("/tokens/<int:token_id>/revoke")
class TokenRevocation(MethodView):
    """Revoking a token: refused from its next request on."""

    @require(*TOKEN_HOLDERS)
    @blp.response(200, TokenOut)
    def post(self, token_id):
        """Revoke a token (admin, or its owner; another user's token is a 404). Repeating it changes nothing."""
        return staff.revoke_token(actor=current_actor(), token_id=token_id)


@blp.route("/audit")
class Audit(MethodView):
    """The audit log: every staff change with before and after."""

    @require(*AUDIT_READERS)
    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditPage)
    def get(self, query):
        """A filtered page of the audit log, newest first; pass next_cursor back as cursor."""
        return audit.get_entries(**query)


@blp.route("/jobs")
class Jobs(MethodView):
    """The scheduled jobs."""

    @require(*ADMIN)
    @blp.response(200, JobList)
    def get(self):
        """Every job with its schedule and last run (what `fieldops jobs list` shows)."""
        return {"items": job_runs.get_all()}


@blp.route("/jobs/<name>/runs")
class JobRuns(MethodView):
    """One job's runs."""

    @require(*ADMIN)
    @blp.arguments(NewestFirstQuery, location="query")
    @blp.response(200, JobRunPage)
    def get(self, query, name):
        """A page of the job's runs, newest first; pass next_cursor back as cursor."""
        return job_runs.get_runs(job=name, **query)


@blp.route("/service-products")
class ServiceProducts(MethodView):
    """The service products (当日达, 次日达, ...) and their promises."""

    @require(*OFFICE)
    @blp.response(200, ServiceProductList)
    def get(self):
        """Every service product, active or not, by code (the office reads them; admin edits them)."""
        return {"items": promises.get_all()}

    @require(*ADMIN)
    @blp.arguments(ServiceProductIn)
    @blp.response(201, ServiceProductOut)
    def post(self, data):
        """Publish a service product; a code already used is a 409."""
        return promises.create(actor=current_actor(), **data)


@blp.route("/service-products/<code>")
class ServiceProductByCode(MethodView):
    """One service product."""

    @require(*ADMIN)
    @blp.arguments(ServiceProductPatch)
    @blp.response(200, ServiceProductOut)
    def patch(self, data, code):
        """Rename it, change its promise (for tasks created afterwards), or take it off offer (active=false)."""
        return promises.update(actor=current_actor(), code=code, **data)
