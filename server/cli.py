"""The `fieldops` command: a Flask CLI group (db, create-staff, serve, seed-demo, ...)."""
import os
import sys
from datetime import date

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy.exc import DBAPIError

from server.database import MIGRATIONS_DIR, schema_revisions
from server.errors import DomainError
from schemas.vocab import STAFF_ROLES


def _create_app():
    """App for the CLI, configured from the environment."""
    from server import create_app
    return create_app()


class _FieldopsGroup(FlaskGroup):
    """The CLI group: a command that meets a database without its schema says so in one line."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand; a database error on a schema not at head becomes 'run fieldops db upgrade'."""
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            if ctx.invoked_subcommand == "db" or not current_app or _schema_at_head() is not False:
                raise
            url = current_app.extensions["sqlalchemy"].engines[None].url.render_as_string(hide_password=True)
            raise click.ClickException(f"the database at {url} has no schema (or is behind): "
                                       "run 'fieldops db upgrade'") from exc


def _schema_at_head() -> bool | None:
    """Whether the database's Alembic revision is the migrations' head; None if it cannot be read."""
    from server.extensions import db
    try:
        db.session.rollback()
        with db.engine.connect() as conn:
            current, heads = schema_revisions(current_app, conn)
    except DBAPIError:  # unreachable, say: the command's own error is the one to show
        return None
    return current == heads


@click.group(cls=_FieldopsGroup, create_app=_create_app, add_default_commands=True,
             add_version_option=False)
def main():
    """Fieldops administration."""


@click.command("create-staff")
@click.argument("username")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True)
@with_appcontext
def create_staff(username, role):
    """Create a staff user; the API token is printed once, on the last line."""
    from server.services import staff
    try:
        user, token = staff.create(username=username, role=role)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {user.role} {user.username} ({user.id}); API token (shown once):")
    click.echo(token)


def _when(at) -> str:
    """A stored time for the console: UTC to the second, or 'never'."""
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at else "never"


@click.command("list-staff")
@with_appcontext
def list_staff():
    """List staff users, their roles and tokens with their last use (never a secret)."""
    from server.services import staff
    for user in staff.get_all():
        click.echo(f"{user.username}\t{user.role}\t{user.id}\t{'active' if user.active else 'inactive'}")
        for token in user.tokens:
            state = f"revoked {_when(token.revoked_at)}" if token.revoked_at else "valid"
            click.echo(f"  token {token.id}\t{token.label or '-'}\tcreated {_when(token.created_at)}"
                       f"\tlast used {_when(token.last_used_at)}\t{state}")


@click.command("issue-token")
@click.argument("username")
@click.option("--label", default=None, help="What the token is for (e.g. the machine it lives on).")
@with_appcontext
def issue_token(username, label):
    """Issue another API token for a staff user; it is printed once, on the last line."""
    from server.auth import SYSTEM
    from server.services import staff
    try:
        row, token = staff.issue_token(actor=SYSTEM, staff_id=staff.get_by_username(username=username).id,
                                       label=label)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"issued token {row.id} for {username}; API token (shown once):")
    click.echo(token)


@click.command("revoke-token")
@click.argument("token_id", type=int)
@with_appcontext
def revoke_token(token_id):
    """Revoke a staff API token by its id (see list-staff); it is refused from its next request."""
    from server.auth import SYSTEM
    from server.services import staff
    try:
        row = staff.revoke_token(actor=SYSTEM, token_id=token_id)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"token {row.id} of {row.staff.username} revoked at {_when(row.revoked_at)}")


@click.command("enroll-courier")
@click.argument("courier")
@with_appcontext
def enroll_courier(courier):
    """Issue a one-time enrollment code for a courier (by employee number or id), with its QR paths."""
    from flask import current_app

    from server.auth import SYSTEM
    from server.services import couriers, devices
    try:
        enrollment, code = devices.create_enrollment(
            actor=SYSTEM, courier_id=couriers.get_by_id_or_employee_no(key=courier).id)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    urls = current_app.url_map.bind("localhost")
    click.echo(f"courier {enrollment.courier_id}: code expires {_when(enrollment.expires_at)}")
    for fmt in ("png", "svg"):
        click.echo(f"QR: {urls.build('devices.enrollment_qr', {'code': code, 'fmt': fmt})}")
    click.echo("enrollment code (single use, shown once):")
    click.echo(code)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=int, show_default=True)
@click.option("--workers", default=0, type=int,
              help="Run under gunicorn with this many workers (production); 0: development server.")
def serve(host, port, workers):
    """Serve the API (development server, or gunicorn with --workers N)."""
    if workers > 0:
        cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
               f"{host}:{port}", "--config", "python:server.gunicorn_conf", "server.wsgi:app"]
        os.execvp(cmd[0], cmd)
    # app.run() is ignored under the flask CLI; run werkzeug's server directly.
    from werkzeug.serving import run_simple

    from server import create_app
    from server.logs import DevRequestHandler
    run_simple(host, port, create_app(), threaded=True, request_handler=DevRequestHandler)


def _iso_day(ctx, param, value):
    """--day as YYYY-MM-DD: a bad date is a usage error, not a traceback."""
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD.") from None
    return value


@click.command("seed-demo")
@click.option("--day", default=None, callback=_iso_day,
              help="Service date YYYY-MM-DD (default: today, depot time).")
@with_appcontext
def seed_demo(day):
    """Load a demo depot: staff, couriers, vans and a day of tasks (once: run again, it only issues fresh tokens)."""
    from server.demo import seed
    summary = seed(day=day)
    for line in summary:
        click.echo(line)


@click.command("sync-maintain")
@with_appcontext
def sync_maintain():
    """Day-end tombstones for finished tasks, compact the change feed, bring handheld docs up to date."""
    from flask import current_app

    from server.clock import utcnow
    from server.extensions import db
    from server.services.tasks import close_day
    from sync import docs
    from sync.maintenance import compact_feed
    now = utcnow()
    click.echo(f"day-end tombstones: {close_day(now=now)} tasks")
    deleted = compact_feed(now=now, retention=current_app.config["SYNC_RETENTION"])
    click.echo(f"feed compaction: {deleted} changes older than {current_app.config['SYNC_RETENTION']} removed")
    written = docs.rebuild(db.session, current_app.extensions["fieldops_sync"])
    db.session.commit()
    click.echo(f"handheld docs: {written} missing or behind, rewritten")


@click.group("jobs")
def jobs_group():
    """Background jobs (the scheduler runs the same list)."""


@jobs_group.command("list")
@with_appcontext
def jobs_list():
    """Every job: name, schedule, what it does."""
    from server.jobs import JOBS
    for job in JOBS:
        click.echo(f"{job.name}\t{job.schedule}\t{job.description}")


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name):
    """Run one job now and print its counts."""
    from server import jobs
    try:
        counts = jobs.run(name)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from exc
    click.echo(f"{name}: " + ", ".join(f"{key} {value}" for key, value in counts.items()))


def init_app(app: Flask) -> None:
    """Attach the commands to the app (so `flask` and `fieldops` both see them)."""
    for command in (create_staff, list_staff, issue_token, revoke_token, enroll_courier, seed_demo,
                    sync_maintain, jobs_group):
        app.cli.add_command(command)


main.add_command(serve)

# Flask-Migrate's help names a ./migrations folder; ours ship inside the package.
db_group.help = f"Alembic migrations of the Fieldops schema (scripts in {MIGRATIONS_DIR}/versions)."
for _command in (db_group, *db_group.commands.values()):
    for _param in _command.params:
        if _param.name == "directory":
            _param.help = f"Migration script directory (default: {MIGRATIONS_DIR})"
