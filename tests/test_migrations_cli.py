"""Migrations apply from empty and back; the CLI creates staff and demo data."""
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from server.database import MIGRATIONS_DIR
from server.extensions import db
from server.models import Courier, Task


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
    assert couriers == 5 and tasks == 40
    assert db.session.query(Task).filter(Task.courier_id.is_(None)).count() == 0
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0 and "already present" in second.output
    assert db.session.query(Task).count() == tasks


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
