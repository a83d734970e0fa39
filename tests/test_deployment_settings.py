"""The settings docs/deployment.md sizes a deployment with: PostgreSQL pool per process, prepared statements."""
import pytest
from sqlalchemy import text

from server import create_app
from server import config
from server.extensions import db


def _prepared_after_repeats(app) -> int:
    """How many server-side prepared statements one connection holds after the same query ran ten times."""
    with app.app_context():
        with db.engine.connect() as conn:
            for _ in range(10):
                conn.execute(text("SELECT count(*) FROM staff_users WHERE id = :id"), {"id": "nobody"})
            return conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()


@pytest.mark.parametrize("prepared", ["on", "off"])
def test_pool_size_and_prepared_statements_follow_the_settings(app, database_url, engine_name, tmp_path,
                                                               monkeypatch, prepared):
    """FIELDOPS_DB_POOL_SIZE/_MAX_OVERFLOW size each process's pool; FIELDOPS_DB_PREPARED_STATEMENTS=off
    (for PgBouncer in transaction mode) leaves no prepared statement on the server."""
    if engine_name != "postgresql":
        pytest.skip("pool sizes and prepared statements are PostgreSQL settings")
    monkeypatch.setenv("FIELDOPS_DB_POOL_SIZE", "3")
    monkeypatch.setenv("FIELDOPS_DB_MAX_OVERFLOW", "1")
    monkeypatch.setenv("FIELDOPS_DB_PREPARED_STATEMENTS", prepared)
    other = create_app(config.TestConfig(database_url, str(tmp_path / "attachments")))
    try:
        with other.app_context():
            assert (db.engine.pool.size(), db.engine.pool._max_overflow) == (3, 1)
        held = _prepared_after_repeats(other)
        assert held == 0 if prepared == "off" else held >= 1
    finally:
        with other.app_context():
            db.engine.dispose()


def test_prepared_statements_setting_is_checked(monkeypatch):
    """Anything but on or off stops the app at start-up."""
    monkeypatch.setenv("FIELDOPS_DB_PREPARED_STATEMENTS", "no")
    with pytest.raises(RuntimeError, match="DB_PREPARED_STATEMENTS"):
        config.TestConfig("sqlite://", "/tmp/unused")
