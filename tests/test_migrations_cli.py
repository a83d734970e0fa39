"""Migrations apply from empty and back; the CLI creates staff and demo data."""
import os

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from server.database import MIGRATIONS_DIR
from server.extensions import db
from server.models import Courier, Task, Vehicle, VehicleDefect


def test_migrations_downgrade_to_empty_and_upgrade_again(app):
    """base then head: every table goes and comes back, matching the models."""
    downgrade(directory=MIGRATIONS_DIR, revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade(directory=MIGRATIONS_DIR)
    tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in db.metadata.sorted_tables} <= tables


def test_models_match_migrations(app):
    """Autogenerate finds nothing to do: the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_create_staff_prints_token_last(app):
    """The token is the last line of output and works."""
    result = app.test_cli_runner().invoke(args=["create-staff", "ops1", "--role", "dispatcher"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("fos_")
    response = app.test_client().get("/api/v1/dispatch/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    again = app.test_cli_runner().invoke(args=["create-staff", "ops1", "--role", "dispatcher"])
    assert again.exit_code != 0 and "exists" in again.output


def test_seed_demo_is_idempotent(app):
    """The demo depot is created once; a second run adds nothing but tokens."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo", "--day", "2026-11-22"])
    assert first.exit_code == 0, first.output
    couriers, tasks = db.session.query(Courier).count(), db.session.query(Task).count()
    assert couriers == 5 and tasks == 41  # 40 and the return task of the demo's refusal, for dispatch to assign
    assert [t.kind for t in db.session.query(Task).filter(Task.courier_id.is_(None))] == ["return"]
    grounded = db.session.query(Vehicle).filter(Vehicle.status == "out_of_service").one()
    assert [(d.item, d.severity, d.status) for d in db.session.query(VehicleDefect)] == [
        ("safety_equipment", "critical", "open")]
    assert grounded.open_defects == 1
    by_employee = {c.employee_no: c.grade for c in db.session.query(Courier)}
    assert [by_employee[e] for e in ("E1001", "E1002", "E1003")] == ["A", "B", "C"]
    assert "grades: Wang Lei A, Li Na B, Zhang Wei C; an overdue complaint about Liu Yang" in first.output
    assert "40 tasks on 2026-11-22 (and the refusal's return task, unassigned)" in first.output
    # The return waybill printed is the return task's; every handover comes after its task's assignment.
    returned = db.session.query(Task).filter(Task.kind == "return").one()
    assert f"(return {returned.waybill_no})" in first.output
    from server.models import Handover, TaskAssignment
    pairs = db.session.query(TaskAssignment.assigned_at, Handover.completed_at).join(
        Handover, Handover.task_id == TaskAssignment.task_id).filter(Handover.completed_at.is_not(None)).all()
    assert pairs and all(assigned < completed for assigned, completed in pairs)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "already present" in second.output
    assert db.session.query(Task).count() == tasks


def test_seed_demo_for_a_later_day_is_a_usage_error(app):
    """A --day not yet begun has no facts to show: a usage error naming it, and nothing seeded."""
    from datetime import timedelta

    from server.clock import local_date, utcnow
    later = (local_date(utcnow()) + timedelta(days=1)).isoformat()
    result = app.test_cli_runner().invoke(args=["seed-demo", "--day", later])
    assert result.exit_code == 2 and f"{later} has not begun" in result.output, result.output
    assert db.session.query(Task).count() == 0


def test_seed_demo_bad_day_is_one_line(app):
    """A --day that is not YYYY-MM-DD is a usage error naming it, not a traceback."""
    result = app.test_cli_runner().invoke(args=["seed-demo", "--day", "bad"])
    assert result.exit_code == 2 and "'bad' is not a date YYYY-MM-DD" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_fieldops_serve_answers_requests(tmp_path, engine_name):
    """`fieldops db upgrade` then `fieldops serve` really serves (the README's first command)."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    from server.process import free_port
    if engine_name != "sqlite":
        pytest.skip("the command is engine-independent; once on SQLite is enough")
    port = free_port()
    env = dict(os.environ, FIELDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    fieldops = [sys.executable, "-c", "from server.cli import main; main()"]
    subprocess.run(fieldops + ["db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(fieldops + ["serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("fieldops serve did not answer")
    finally:
        proc.terminate()
        proc.wait(10)


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(app, engine_name):
    """The embedded engine's settings are on for every connection."""
    import pytest
    from sqlalchemy import text
    if engine_name != "sqlite":
        pytest.skip("SQLite settings")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: acknowledged is on disk


def _fieldops(*args, env, cwd=None):
    """Run the installed CLI's entry point in a child process."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", "from server.cli import main; main()", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_database_url(engine_name, database_url, tmp_path):
    """A database of the test's engine with no schema at all."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    import psycopg
    base, _, admin_db = database_url.rpartition("/")
    name = f"{admin_db}_empty"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_commands_on_a_database_without_schema_say_run_db_upgrade(empty_database_url, tmp_path):
    """Every command that needs the schema ends in one line naming `fieldops db upgrade`, not a traceback."""
    env = dict(os.environ, FIELDOPS_DATABASE_URL=empty_database_url, FIELDOPS_INSTANCE_DIR=str(tmp_path))
    for args in (["create-staff", "ops1", "--role", "admin"], ["seed-demo"], ["sync-maintain"], ["scheduler"]):
        result = _fieldops(*args, env=env)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "has no schema" in lines[0] and "run 'fieldops db upgrade'" in lines[0], lines[0]
        assert "database at " + empty_database_url.split("://")[0] in lines[0]
    # db commands are not blocked: upgrade, and then the same command works.
    assert _fieldops("db", "upgrade", env=env).returncode == 0
    created = _fieldops("create-staff", "ops1", "--role", "admin", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("fos_")


def test_a_database_error_on_a_migrated_schema_is_not_blamed_on_migrations(app, monkeypatch):
    """With the schema at head, a database error stays what it is (no 'run db upgrade' misdirection)."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo
    from sqlalchemy.exc import OperationalError

    from server import cli
    from server.services import staff

    def broken(**_kw):
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(staff, "create", broken)
    result = CliRunner().invoke(cli.main, ["create-staff", "ops1", "--role", "admin"],
                                obj=ScriptInfo(create_app=lambda: app))
    assert isinstance(result.exception, OperationalError)
    assert "fieldops db upgrade" not in result.output


def test_every_command_reaches_the_same_database_from_any_directory(tmp_path, engine_name, monkeypatch):
    """The instance folder comes from FIELDOPS_INSTANCE_DIR (else the checkout's instance/), never the cwd."""
    if engine_name != "sqlite":
        pytest.skip("the default database is SQLite")
    from server.config import Config
    instance, here, there = tmp_path / "instance", tmp_path / "a", tmp_path / "b"
    here.mkdir()
    there.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FIELDOPS_DATABASE_URL", "FIELDOPS_ATTACHMENTS_DIR")}
    env["FIELDOPS_INSTANCE_DIR"] = str(instance)
    assert _fieldops("db", "upgrade", env=env, cwd=here).returncode == 0
    created = _fieldops("create-staff", "ops1", "--role", "admin", env=env, cwd=there)
    assert created.returncode == 0, created.stderr
    assert (instance / "fieldops.sqlite3").exists()
    assert list(here.iterdir()) == [] and list(there.iterdir()) == []
    monkeypatch.delenv("FIELDOPS_INSTANCE_DIR", raising=False)
    assert Config().INSTANCE_DIR == os.path.join(os.path.dirname(os.path.dirname(MIGRATIONS_DIR)), "instance")


def test_db_help_names_the_migrations_inside_the_package():
    """`fieldops db --help` points at server/migrations, not a ./migrations folder."""
    from click.testing import CliRunner

    from server import cli
    for args in (["db", "--help"], ["db", "upgrade", "--help"]):
        result = CliRunner().invoke(cli.main, args)
        assert result.exit_code == 0, result.output
        assert 'default is "migrations"' not in result.output
        assert MIGRATIONS_DIR.replace(os.sep, "") in result.output.replace("\n", "").replace(" ", "").replace(
            os.sep, "")


def test_0017_counts_the_lines_of_inspections_made_before_it(app):
    """Upgrading past 0017 counts existing inspections' lines, damaged and short lines from their JSON."""
    import sqlalchemy as sa

    from server.clock import utcnow
    downgrade(directory=MIGRATIONS_DIR, revision="0013_handover_consent")
    now = utcnow()
    tasks = sa.table("tasks", *(sa.column(c) for c in (
        "id", "waybill_no", "kind", "status", "recipient_name", "recipient_phone", "address", "cod_amount",
        "window_start", "window_end", "service_date", "version", "dispatch_version", "needs_review", "pin_required",
        "created_at", "updated_at")))
    handovers = sa.table("handovers", sa.column("task_id"), sa.column("items", sa.JSON), sa.column("inspection"),
                         *(sa.column(c) for c in ("recipient_verified", "discrepancy", "damaged", "signed",
                                                  "gift_disclosed", "not_at_address", "updated_at")))
    items = [{"parcel_no": "P1", "expected": 1, "counted": 1, "condition": "damaged"},
             {"parcel_no": "P2", "expected": 2, "counted": 1, "condition": "ok"},
             {"parcel_no": "P3", "expected": 1, "counted": 0, "condition": "missing"},
             {"parcel_no": "P4", "expected": 1, "counted": 1, "condition": "ok"}]
    with db.engine.begin() as conn:
        for task_id, inspected in (("t-old1", "accepted"), ("t-old2", None)):
            conn.execute(tasks.insert().values(
                id=task_id, waybill_no=task_id.upper(), kind="delivery", status="assigned", recipient_name="R",
                recipient_phone="13900000000", address="1 Rd", cod_amount=0, window_start=now, window_end=now,
                service_date=now.date(), version=1, dispatch_version=1, needs_review=False, pin_required=False,
                created_at=now, updated_at=now))
            conn.execute(handovers.insert().values(
                task_id=task_id, items=items if inspected else None, inspection=inspected, recipient_verified=False,
                discrepancy=False, damaged=False, signed=False, gift_disclosed=False, not_at_address=False,
                updated_at=now))
    upgrade(directory=MIGRATIONS_DIR)
    with db.engine.connect() as conn:
        rows = dict((r[0], tuple(r[1:])) for r in conn.execute(sa.text(
            "SELECT task_id, items_inspected, items_damaged, items_short FROM handovers")))
    assert rows == {"t-old1": (4, 1, 2), "t-old2": (None, None, None)}


def test_0020_gives_violations_recorded_before_it_their_severity(app):
    """Upgrading past 0020: a violation takes its code's severity, a failed checklist item its evidence's."""
    import sqlalchemy as sa

    from server.clock import utcnow
    downgrade(directory=MIGRATIONS_DIR, revision="0017_ratings_kpis")
    now = utcnow()
    couriers = sa.table("couriers", *(sa.column(c) for c in (
        "id", "name", "phone", "employee_no", "active", "grade", "version", "created_at", "updated_at")))
    violations = sa.table("violations", sa.column("id"), sa.column("courier_id"), sa.column("code"),
                          sa.column("source"), sa.column("evidence", sa.JSON), sa.column("occurred_at"),
                          sa.column("recorded_at"), sa.column("dedupe_key"))
    with db.engine.begin() as conn:
        conn.execute(couriers.insert().values(id="c-old", name="Old", phone="13900000000", employee_no="E-OLD",
                                              active=True, grade="A", version=1, created_at=now, updated_at=now))
        for n, code, evidence in ((1, "private_surcharge", {}), (2, "conduct_item_failed", {"severity": "major"}),
                                  (3, "conduct_item_failed", {"item": "hair"}), (4, "late_without_notice", {})):
            conn.execute(violations.insert().values(id=n, courier_id="c-old", code=code, source="auto",
                                                    evidence=evidence, occurred_at=now, recorded_at=now,
                                                    dedupe_key=f"{code}:{n}"))
    upgrade(directory=MIGRATIONS_DIR)
    with db.engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, severity FROM violations")).all())
    assert rows == {1: "critical", 2: "major", 3: "minor", 4: "minor"}


def test_0021_seals_receipt_tokens_and_pins_stored_before_it(app, client, make):
    """Down to 0020 the tokens and PIN are stored as issued again; up past 0021 they work from hash and seal alone."""
    import sqlalchemy as sa

    from server.services import receipts
    from tests.api.test_ratings import deliver
    from tests.sync.conftest import Device
    courier = make.courier()
    handheld = Device(client, make.device(courier))
    delivered, waiting = make.task(courier=courier), make.task(courier=courier)
    deliver(handheld, delivered)
    pin = client.post(f"/api/v1/dispatch/tasks/{waiting['id']}/handover-pin",
                      headers=make.headers("dispatcher")).json["pin"]
    receipt_id = db.session.scalar(sa.text("SELECT id FROM receipts"))
    token = receipts.page_token(db.session.get(receipts.Receipt, receipt_id))
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision="0020_violation_severity")
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT token FROM receipts")).scalar() == token
        assert conn.execute(sa.text("SELECT pin_for_customer FROM handovers WHERE pin_for_customer IS NOT NULL")
                            ).scalar() == pin
        body = conn.execute(sa.text("SELECT body FROM sync_docs WHERE entity_id = :id"),
                            {"id": delivered["id"]}).scalar()
    assert f'"/r/{token}"' in body
    upgrade(directory=MIGRATIONS_DIR)
    with db.engine.connect() as conn:
        stored = " ".join(str(value) for table in ("receipts", "handovers", "sync_docs", "op_log")
                          for row in conn.execute(sa.text(f"SELECT * FROM {table}")) for value in row)
    assert token not in stored and token[4:] not in stored
    assert client.get(f"/r/{token}").status_code == 200
    assert handheld.pull_all()[0][("task", delivered["id"])]["data"]["handover"]["receipt"]["url"].endswith(
        f"/r/{token}")
    assert handover_pin(waiting["id"]) == pin


def handover_pin(task_id: str) -> str | None:
    """The PIN the customer page shows for a task."""
    from server.services import handover
    db.session.expire_all()
    return handover.pin_for_customer(db.session.get(Task, task_id))


def test_0022_reads_back_json_values_stored_as_numbers_before_it(app, client, make, engine_name):
    """Down to 0021, a manifest's bare numbers are stored as before (SQLite: as numbers, which no read took);
    up past 0022 every one reads back. The tables rebuilt on SQLite keep their rows, the rows that refer to
    them, their indexes, AUTOINCREMENT and its counter; foreign keys are on again afterwards."""
    import sqlalchemy as sa
    courier = make.courier()
    make.device(courier)  # a device refers to the courier, whose table SQLite rebuilds
    make.task(courier=courier)  # its assignment: an event (events counts by AUTOINCREMENT), task events
    headers = make.headers("dispatcher")
    sent = [5, -7, 0.30000000000000004, 1.0, 18446744073709551615, "5", None, {"a": [1]}]

    def snapshot():
        """SQLite: every index as created, whether events counts by AUTOINCREMENT, and the counters."""
        if engine_name != "sqlite":
            return None
        with db.engine.connect() as conn:
            return (conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")).all(),
                    "AUTOINCREMENT" in conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'events'")).scalar(),
                    conn.execute(sa.text("SELECT * FROM sqlite_sequence ORDER BY name")).all())
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision="0021_access")
    assert client.post("/api/v1/integrations/manifests", json=sent, headers=headers).status_code == 200
    before = snapshot()
    assert before is None or (before[1] and dict(before[2])["events"] >= 1)
    if engine_name == "sqlite":
        with db.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT typeof(raw) FROM manifest_quarantine ORDER BY row_number")).scalars()
            assert list(stored)[:5] == ["integer", "integer", "real", "integer", "real"]  # as 0021 kept them
    db.session.remove()
    upgrade(directory=MIGRATIONS_DIR, revision="0022_json_text")
    rebuilt = snapshot()  # before later revisions add indexes of their own
    upgrade(directory=MIGRATIONS_DIR)
    listed = client.get("/api/v1/dispatch/manifests/quarantine", headers=headers)
    assert listed.status_code == 200, listed.json
    read = [i["raw"] for i in sorted(listed.json["items"], key=lambda i: i["row_number"])]
    if engine_name == "sqlite":
        # What SQLite had kept of them: 1.0 as the integer 1, the 64-bit unsigned integer as the nearest double.
        assert read == [5, -7, 0.30000000000000004, 1, 1.8446744073709552e19, "5", None, {"a": [1]}]
        assert [type(v) for v in read[3:5]] == [int, float]
        assert rebuilt == before  # indexes (partial ones too) and events' AUTOINCREMENT as they were
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
    else:
        assert read == sent and type(read[3]) is float
    assert client.get(f"/api/v1/dispatch/couriers/{courier['id']}", headers=headers).status_code == 200


def test_0025_keeps_each_decision_on_its_window(app, client, make, monkeypatch, midday):
    """Down to 0023 and up again: a late arrival's and a swept miss's outcomes are kept on their windows and their
    violations keyed by window; an appointment the old customer_absent set back to unconfirmed shows its kept window
    and why the attempt failed."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from server.services import appointments
    from tests.sync.conftest import SHANGHAI, Device
    from tests.sync.test_appointment_attempts import Clock
    clock = Clock(monkeypatch)  # every fact dated when it happened: after its task, before it reached the server
    clock.set(datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=10))
    courier = make.courier()
    device = Device(client, make.device(courier))
    start = clock.now() + timedelta(hours=1)
    end = start + timedelta(hours=2)
    window = {"start": start.isoformat(), "end": end.isoformat()}
    late, missed, absent = (make.task(courier=courier, window=window) for _ in range(3))

    def op(type_, task, payload):
        return dict(device.op(type_, task["id"], payload), device_time=clock.now().astimezone(SHANGHAI).isoformat())

    here = {"lat": 31.23, "lon": 121.47}
    device.push([op("appointment.confirm", t, {"window": window, "via": "phone"}) for t in (late, missed, absent)])
    clock.set(start)
    device.push([op("stop.arrive", absent, here), op("appointment.contact", absent, {"outcome": "no_answer"})])
    clock.advance(minutes=15)
    device.push([op("stop.customer_absent", absent, {"waited_minutes": 15})])
    clock.set(end + timedelta(minutes=5))
    appointments.sweep_missed()
    clock.advance(minutes=25)
    device.push([op("stop.arrive", late, here)])
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision="0023_op_ids")
    with db.engine.begin() as conn:  # what the old customer_absent left
        conn.execute(sa.text("UPDATE appointments SET status = 'unconfirmed' WHERE task_id = :id"),
                     {"id": absent["id"]})
        assert sorted(conn.execute(sa.text(  # (the arrivals without a shift are flagged too: not 0025's)
            "SELECT dedupe_key FROM violations WHERE code = 'late_without_notice'")).scalars()) == sorted(
            f"late_without_notice:{t['id']}" for t in (late, missed))
    upgrade(directory=MIGRATIONS_DIR)
    with db.engine.connect() as conn:
        windows = {row[0]: tuple(row[1:]) for row in conn.execute(sa.text(
            "SELECT a.task_id, w.id, w.outcome, w.failure_reason, w.decided_by, w.attempt, a.status "
            "FROM appointment_windows w JOIN appointments a ON a.id = w.appointment_id WHERE w.status = 'agreed'"))}
        keys = set(conn.execute(sa.text("SELECT dedupe_key FROM violations WHERE code = 'late_without_notice'"))
                   .scalars())
    assert {task_id: row[1:] for task_id, row in windows.items()} == {
        late["id"]: ("late", None, "migration", 1, "late"), missed["id"]: ("missed", None, "migration", 1, "missed"),
        absent["id"]: ("kept", "customer_absent", "migration", 1, "kept")}
    assert keys == {f"late_without_notice:{t['id']}:{windows[t['id']][0]}" for t in (late, missed)}


def test_0027_writes_the_contacts_of_complaints_answered_before_it(app, client, make, midday):
    """Up past 0027: each first response becomes a contact; a complaint its office said was not resolved at first
    contact gets one `legacy` contact at its resolution, so first-contact resolution reads as the office said."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    courier = make.courier()
    url = "/api/v1/dispatch/complaints"
    quality = make.headers("quality")
    ids = []
    for responded, box in ((True, True), (True, False), (True, None), (False, None)):
        complaint = client.post(url, json={"courier_id": courier["id"], "channel": "phone", "category": "late",
                                           "text": "late"}, headers=quality).json
        ids.append(complaint["id"])
        if responded:
            client.post(f"{url}/{complaint['id']}/respond", json={"text": "Sorry."}, headers=quality)
        if box is not None:
            client.post(f"{url}/{complaint['id']}/resolve", headers=quality, json={
                "outcome": "upheld", "note": "n", "resolved_at_first_contact": box})
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision="0023_op_ids")
    assert "complaint_contacts" not in inspect(db.engine).get_table_names()
    upgrade(directory=MIGRATIONS_DIR)
    read = {n: client.get(f"{url}/{complaint_id}", headers=quality).json for n, complaint_id in enumerate(ids)}
    assert [[c["kind"] for c in read[n]["contacts"]] for n in range(4)] == [
        ["first_response"], ["first_response", "legacy"], ["first_response"], []]
    first, legacy = read[1]["contacts"]
    assert (first["contacted_at"], first["note"], first["recorded_by"]) == (
        read[1]["first_response_at"], "Sorry.", read[1]["first_response_by"])
    assert (legacy["contacted_at"], legacy["recorded_by"], legacy["channel"]) == (read[1]["resolved_at"], None, None)
    day = datetime.now(ZoneInfo(app.config["TIMEZONE"])).date().isoformat()
    total = client.get("/api/v1/reports/kpis", query_string={"from": day, "to": day}, headers=quality).json["total"]
    fcr = total["figures"]["first_contact_resolution"]
    assert (fcr["numerator"], fcr["denominator"]) == (1, 2)


def test_0031_gives_complaints_recorded_before_it_their_recorder_as_owner(app, client, make):
    """Down to 0030 and up again: a complaint is about its courier and owned by whoever recorded it, with no
    resolution or update due time (none was set when it was received); one about no courier cannot go down."""
    courier = make.courier()
    url = "/api/v1/dispatch/complaints"
    dispatcher = make.headers("dispatcher")
    complaint = client.post(url, json={"courier_id": courier["id"], "channel": "phone", "category": "late",
                                       "text": "late"}, headers=dispatcher).json
    client.post(f"{url}/{complaint['id']}/respond", json={"text": "Sorry."}, headers=make.headers("quality"))
    depot = client.post(url, json={"subject": "depot", "channel": "phone", "category": "late", "text": "slow"},
                        headers=dispatcher).json
    db.session.remove()
    downgrade(directory=MIGRATIONS_DIR, revision="0030_claims")
    assert "complaint_handovers" not in inspect(db.engine).get_table_names()
    upgrade(directory=MIGRATIONS_DIR)
    read = client.get(f"{url}/{complaint['id']}", headers=dispatcher).json
    assert (read["owner_id"], read["subject"], read["courier_id"]) == (complaint["created_by"], "courier",
                                                                      courier["id"])
    assert (read["owned_since"], read["resolution_due_at"], read["update_due_at"]) == (read["created_at"], None, None)
    assert client.get(f"{url}/{depot['id']}", headers=dispatcher).status_code == 404
