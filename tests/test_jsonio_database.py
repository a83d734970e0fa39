"""JSON through orjson, and how read and write transactions begin on each engine."""
import dataclasses
import decimal

import orjson
from sqlalchemy import text

from server.database import is_read_only, mark_read_only, reset_read_only
from server.extensions import db
from server.jsonio import dumps_bytes


def test_json_encodes_what_answers_and_columns_hold():
    """Integer keys (marshmallow's list errors), decimals, sets, dataclasses; unknown types refuse."""
    @dataclasses.dataclass
    class Point:
        lat: float
        lon: float

    body = {"fields": {0: ["bad"]}, "amount": decimal.Decimal("12.50"), "codes": {"b", "a"},
            "at": Point(31.2, 121.4)}
    assert orjson.loads(dumps_bytes(body)) == {"fields": {"0": ["bad"]}, "amount": "12.50",
                                               "codes": ["a", "b"], "at": {"lat": 31.2, "lon": 121.4}}
    try:
        dumps_bytes({"x": object()})
    except TypeError as exc:
        assert "not JSON serializable" in str(exc)
    else:  # pragma: no cover - the assertion below fails the test
        raise AssertionError("an unknown type was encoded")


def test_read_transactions_see_one_snapshot_and_cannot_write(app, engine_name):
    """Read-only: REPEATABLE READ, READ ONLY on PostgreSQL; on SQLite no write lock. A write one is neither."""
    token = mark_read_only(True)
    try:
        assert is_read_only()
        if engine_name == "postgresql":
            assert db.session.scalar(text("SHOW transaction_isolation")) == "repeatable read"
            assert db.session.scalar(text("SHOW transaction_read_only")) == "on"
        else:
            db.session.execute(text("SELECT value FROM sync_state")).all()
            # A read holds no write lock: a writer on another connection goes ahead at once.
            reset_read_only(token)
            token = mark_read_only(False)
            with db.engine.begin() as writer:
                writer.execute(text("UPDATE sync_state SET value = value WHERE key = 'epoch'"))
        db.session.rollback()
    finally:
        reset_read_only(token)
    assert not is_read_only()
    if engine_name == "postgresql":
        assert db.session.scalar(text("SHOW transaction_isolation")) == "read committed"
        assert db.session.scalar(text("SHOW transaction_read_only")) == "off"
    db.session.rollback()
