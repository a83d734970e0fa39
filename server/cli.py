"""The `fieldops` command: a Flask CLI group that builds the app and runs its commands (db, create-staff, serve, ...)."""
import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup
from sqlalchemy.exc import DBAPIError
from werkzeug.serving import run_simple

from server import create_app
from server.commands import schema_at_head
from server.logs import DevRequestHandler


class _FieldopsGroup(FlaskGroup):
    """The CLI group: a command that meets a database without its schema says so in one line."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand; a database error on a schema not at head becomes 'run fieldops db upgrade'."""
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            if ctx.invoked_subcommand == "db" or not current_app or schema_at_head() is not False:
                raise
            url = current_app.extensions["sqlalchemy"].engines[None].url.render_as_string(hide_password=True)
            raise click.ClickException(f"the database at {url} has no schema (or is behind): "
                                       "run 'fieldops db upgrade'") from exc


# The app (configured from the environment) carries every other command: server.commands.
@click.group(cls=_FieldopsGroup, create_app=create_app, add_default_commands=True,
             add_version_option=False)
def main():
    """Fieldops administration."""


@main.command("serve")
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
    run_simple(host, port, create_app(), threaded=True, request_handler=DevRequestHandler)
