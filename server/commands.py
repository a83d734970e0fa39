"""The administration commands the app carries (create-staff, seed-demo, jobs, ...): `fieldops` and `flask` list them."""
import getpass
import os
import sys
from datetime import date

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy.exc import DBAPIError

from server.database import MIGRATIONS_DIR, schema_revisions
from server.errors import DomainError
from schemas.vocab import KPI_GROUPS, STAFF_ROLES


def schema_at_head() -> bool | None:
    """Whether the database's Alembic revision is the migrations' head; None if it cannot be read."""
    from server.extensions import db
    try:
        db.session.rollback()
        with db.engine.connect() as conn:
            current, heads = schema_revisions(current_app, conn)
    except DBAPIError:  # unreachable, say: the command's own error is the one to show
        return None
    return current == heads


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


def _read_password() -> str:
    """The new password: typed twice at a hidden prompt on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("New console password: ")
        if getpass.getpass("Again: ") != first:
            raise click.ClickException("the two passwords differ; nothing changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@click.command("set-password")
@click.argument("username")
@click.argument("extra", nargs=-1, metavar="")
@with_appcontext
def set_password(username, extra):
    """Set a staff user's console password: typed at a prompt (twice), or piped on standard input; never an argument."""
    if extra:
        # An argument stays in shell history and in every `ps` listing while the command runs.
        raise click.UsageError("the password is never an argument: type it at the prompt or pipe it on standard input")
    from server.auth import SYSTEM
    from server.services import staff
    password = _read_password()
    try:
        user = staff.set_password(actor=SYSTEM, staff_id=staff.get_by_username(username=username).id,
                                  password=password)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"console password set for {user.username} ({user.role}); their console sessions were ended")


@click.command("enroll-courier")
@click.argument("courier")
@with_appcontext
def enroll_courier(courier):
    """Issue a one-time enrollment code for a courier (by employee number or id), with its QR paths."""
    from flask import current_app

    from server.auth import SYSTEM
    from server.courier_app import enroll_link
    from server.qr import qr_text
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
    # The phone's camera opens the app holding the code (as the demo's and the console's QR); the code stays the
    # last line, for scripts that read it.
    click.echo(f"app link (a phone's camera opens the courier's app holding the code): {enroll_link(code)}")
    click.echo(qr_text(enroll_link(code)))
    click.echo("enrollment code (single use, shown once):")
    click.echo(code)


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
              help="Service date YYYY-MM-DD, today or before (default: today, depot time).")
@with_appcontext
def seed_demo(day):
    """Load a demo depot: staff, couriers, vans and a day of tasks (once: run again, it only issues fresh tokens)."""
    from server.demo import seed
    try:
        summary = seed(day=day)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--day") from None
    for line in summary:
        click.echo(line)


@click.command("sync-maintain")
@with_appcontext
def sync_maintain():
    """Day-end tombstones for finished tasks, compact the change feed, bring handheld docs up to date.

    The same as `fieldops jobs run sync-maintain` (and recorded as its run).
    """
    from flask import current_app

    counts = _run_job("sync-maintain")
    click.echo(f"day-end tombstones: {counts['tombstones']} tasks")
    click.echo(f"feed compaction: {counts['compacted']} changes older than {current_app.config['SYNC_RETENTION']} "
               "removed")
    click.echo(f"handheld docs: {counts['docs']} missing or behind, rewritten")


def _run_job(name: str) -> dict:
    """Run a job now (recorded); an unknown name or a failure is a one-line error, exit status 1."""
    from server import jobs
    try:
        return jobs.run(name)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from exc
    except DBAPIError:
        raise  # the group says what to do about a database without its schema
    except Exception as exc:
        raise click.ClickException(f"{name} failed (recorded in its runs): {type(exc).__name__}: {exc}") from exc


def _counts(counts: dict | None) -> str:
    """A run's counts on one line."""
    return ", ".join(f"{key} {value}" for key, value in (counts or {}).items()) or "-"


@click.command("import-manifest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("csv", "json")), default=None,
              help="Default: by the file's extension.")
@with_appcontext
def import_manifest(file, fmt):
    """Import an upstream manifest: tasks created or updated by waybill, bad rows quarantined (exit status 2)."""
    from server.auth import SYSTEM
    from server.services import manifests
    fmt = fmt or manifests.format_of(file)
    if fmt is None:
        raise click.BadParameter("name a .csv or .json file, or give --format.", param_hint="FILE")
    with open(file, "rb") as source:
        content = source.read()
    try:
        report = manifests.import_manifest(actor=SYSTEM, file_name=os.path.basename(file), content=content, fmt=fmt)
    except DomainError as exc:
        problems = "; ".join(f"{path}: {' '.join(messages)}" for path, messages in (exc.fields or {}).items())
        raise click.ClickException(f"{exc.detail} {problems}".strip()) from exc
    click.echo(f"{report['file_name']} ({report['file_sha256'][:12]}): "
               + ", ".join(f"{key} {value}" for key, value in report["counts"].items()))
    for row in report["rows"]:
        for reason in row["reasons"]:
            click.echo(f"quarantined row {row['row']} ({row['waybill_no'] or 'no waybill'}): "
                       f"{reason['field']} {reason['code']}: {reason['message']}")
    if report["counts"]["quarantined"]:
        sys.exit(2)


@click.group("jobs")
def jobs_group():
    """Background jobs (the scheduler runs the same list)."""


@jobs_group.command("list")
@with_appcontext
def jobs_list():
    """Every job: name, schedule, last run (outcome, when, where, counts), what it does."""
    from server.services import job_runs
    for job in job_runs.get_all():
        run = job["last_run"]
        if run is None:
            last = "never ran"
        else:
            last = f"{run.outcome or 'unfinished'} {_when(run.started_at)} on {run.host} ({_counts(run.counts)})"
        click.echo(f"{job['name']}\t{job['schedule']}\t{last}\t{job['description']}")


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name):
    """Run one job now and print its counts (recorded in its runs, with this host)."""
    counts = _run_job(name)
    click.echo(f"{name}: {_counts(counts)}")


@click.command("scheduler")
@with_appcontext
def scheduler():
    """Run the jobs on their schedules until SIGTERM; start one on each of several hosts: one leads at a time."""
    from server.scheduler import Scheduler
    if schema_at_head() is False:
        # Its errors happen in threads, logged and retried: without this it would log them forever.
        url = current_app.extensions["sqlalchemy"].engines[None].url.render_as_string(hide_password=True)
        raise click.ClickException(f"the database at {url} has no schema (or is behind): run 'fieldops db upgrade'")
    try:
        process = Scheduler(current_app._get_current_object())
    except (KeyError, ValueError) as exc:  # a bad FIELDOPS_JOB_SCHEDULES
        raise click.ClickException(str(exc.args[0])) from exc
    if current_app.config["SCHEDULER_METRICS_PORT"]:
        from server.metrics import serve_process_metrics
        serve_process_metrics(current_app.config["SCHEDULER_METRICS_HOST"], current_app.config["SCHEDULER_METRICS_PORT"])
    process.run()


@click.group("report")
def report_group():
    """Reports for the office (docs/kpis.md)."""


def _date(_ctx, _param, value):
    """A YYYY-MM-DD option as a date: a bad one is a usage error, not a traceback."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD.") from None


@report_group.command("kpis")
@click.option("--from", "start", required=True, callback=_date, help="First depot-local date, YYYY-MM-DD.")
@click.option("--to", "end", required=True, callback=_date, help="Last depot-local date (included).")
@click.option("--group-by", type=click.Choice(KPI_GROUPS), default=None, help="One column per courier, depot or day.")
@click.option("--chart", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also draw the daily trend into this PNG file.")
@with_appcontext
def report_kpis(start, end, group_by, chart):
    """Print the service-quality KPIs (value and numerator/denominator) and optionally chart their daily trend."""
    from server.database import mark_read_only, reset_read_only
    from server.extensions import db
    from server.services import kpis
    # A read: on SQLite it must not hold the writers' lock for the seconds a big report takes.
    db.session.rollback()
    token = mark_read_only(True)
    try:
        result = kpis.report(start=start, end=end, group_by=group_by)
        drawn = kpis.chart(start=start, end=end) if chart else None
    except DomainError as exc:
        raise click.ClickException(f"{exc.detail} {exc.fields or ''}".strip()) from exc
    finally:
        db.session.rollback()
        reset_read_only(token)
    for line in kpis.table(result):
        click.echo(line)
    if chart:
        with open(chart, "wb") as out:
            out.write(drawn)
        click.echo(f"daily trend chart written to {chart}")


@click.group("receipt-key")
def receipt_key_group():
    """The Ed25519 key that seals receipts (docs/receipts.md)."""


@receipt_key_group.command("rotate")
@with_appcontext
def receipt_key_rotate():
    """Make a new signing key in the instance folder; the old public keys stay published."""
    from server.services import receipts
    try:
        row = receipts.rotate()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"new receipt key {row.key_id} signs from now on; earlier keys are retired and stay published")


@receipt_key_group.command("list")
@with_appcontext
def receipt_key_list():
    """Every published key: id, status, from, until."""
    from server.services import receipts
    for key in receipts.key_set()["keys"]:
        click.echo(f"{key['kid']}\t{key['status']}\t{_when(key['valid_from'])}\t{_when(key['valid_until'])}")


def init_app(app: Flask) -> None:
    """Attach the commands to the app (so `flask` and `fieldops` both see them)."""
    for command in (create_staff, list_staff, set_password, issue_token, revoke_token, enroll_courier, seed_demo,
                    sync_maintain, import_manifest, jobs_group, scheduler, report_group, receipt_key_group):
        app.cli.add_command(command)


# Flask-Migrate's help names a ./migrations folder; ours ship inside the package.
db_group.help = f"Alembic migrations of the Fieldops schema (scripts in {MIGRATIONS_DIR}/versions)."
for _command in (db_group, *db_group.commands.values()):
    for _param in _command.params:
        if _param.name == "directory":
            _param.help = f"Migration script directory (default: {MIGRATIONS_DIR})"
