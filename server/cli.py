"""The `fieldops` command: a Flask CLI group (db, create-staff, serve, seed-demo, ...)."""
import os
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from server.errors import DomainError
from server.models import STAFF_ROLES


def _create_app():
    """App for the CLI, configured from the environment."""
    from server import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True,
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


@click.command("seed-demo")
@click.option("--day", default=None, help="Service date YYYY-MM-DD (default: today, depot time).")
@with_appcontext
def seed_demo(day):
    """Load a demo depot: staff, couriers, vans and a day of tasks (idempotent)."""
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


def init_app(app: Flask) -> None:
    """Attach the commands to the app (so `flask` and `fieldops` both see them)."""
    for command in (create_staff, seed_demo, sync_maintain):
        app.cli.add_command(command)


main.add_command(serve)
