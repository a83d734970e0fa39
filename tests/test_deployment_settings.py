"""The settings docs/deployment.md sizes a deployment with: PostgreSQL pool per process, prepared statements;
gunicorn's request line limit."""
import http.client
import json

import pytest
from sqlalchemy import text

from server import create_app
from server import config
from server.extensions import db
from server.process import ServerProcess


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


def _get_raw(port: int, target: str) -> tuple[int, str, bytes]:
    """GET a request target as is, over one connection: (status, content type, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_gunicorn_hands_overlong_urls_to_the_app_up_to_its_own_limit(app, database_url, tmp_path, monkeypatch):
    """Under gunicorn as deployed, a URL past the app's limit is the app's 414 problem+json, not gunicorn's HTML
    page; only a request line past gunicorn's limit (8190 bytes, its maximum) is answered by gunicorn itself."""
    # Importing the config sets PROMETHEUS_MULTIPROC_DIR when unset (as gunicorn needs): set it for this test
    # alone, or every later scrape in this process reads the empty multiprocess folder.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    from server import gunicorn_conf
    limit = app.config["URI_LIMIT"]
    request_line_overhead = len("GET  HTTP/1.1")
    assert limit + request_line_overhead < gunicorn_conf.limit_request_line <= 8190
    with ServerProcess(database_url, workers=1, log_path=str(tmp_path / "gunicorn.log")) as server:
        def target(length: int) -> str:
            return "/api/v1/me/tasks?pad=" + "x" * (length - len("/api/v1/me/tasks?pad="))
        status, content_type, body = _get_raw(server.port, target(limit))
        # The app's own answer: its unknown `pad` parameter refused (422), before any credential is looked at.
        assert (status, content_type) == (422, "application/problem+json") and "pad" in json.loads(body)["fields"]
        for length in (limit + 1, gunicorn_conf.limit_request_line - request_line_overhead):
            status, content_type, body = _get_raw(server.port, target(length))
            assert (status, content_type) == (414, "application/problem+json"), (length, body[:200])
            assert json.loads(body)["code"] == "uri_too_long"
        status, content_type, _body = _get_raw(server.port, target(gunicorn_conf.limit_request_line))
        assert status == 414 and content_type == "text/html"  # gunicorn's own answer: the documented edge
