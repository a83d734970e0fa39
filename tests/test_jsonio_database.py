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


def test_utc_datetimes_bind_on_sqlite_as_sqlalchemy_stores_them():
    """UTCDateTime's one-step SQLite binding gives the text of SQLAlchemy's own DATETIME processor
    (microseconds always written, years padded, any offset turned to UTC); naive values are refused."""
    from datetime import datetime, timedelta, timezone

    import pytest
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from server.clock import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)  # what the engine calls
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    plus8 = timezone(timedelta(hours=8))
    values = [datetime(2026, 11, 24, 9, 0, tzinfo=plus8), datetime(2026, 11, 24, 1, 2, 3, 4, tzinfo=timezone.utc),
              datetime(1, 1, 1, 8, 0, tzinfo=plus8), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
              datetime(2026, 3, 1, 0, 30, 0, 500000, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))]
    for value in values:
        assert ours(value) == theirs(value.astimezone(timezone.utc).replace(tzinfo=None)), value
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 11, 24, 9, 0))


def test_a_body_with_a_lone_surrogate_refuses_the_numbers_orjson_refuses():
    """The standard library's parser (taken for a lone surrogate) refuses NaN, Infinity and numbers beyond a
    double, as orjson does (a JSON column would have stored them as null); other numbers read as orjson reads
    them, but integers beyond 64 bits stay exact (orjson makes them doubles) for the stores to keep as text."""
    import pytest

    from server.jsonio import loads
    for number in ["0", "-0", "5", "-0.0", "1E2", "1.5e-7", "0.30000000000000004", "1e308", "1.0e-400",
                   "-9223372036854775808", "18446744073709551615"]:
        expected = orjson.loads(number)
        read = loads(f'["\\ud800", {number}]')[1]
        assert (type(read), read) == (type(expected), expected), number
    assert loads('["\\ud800", 18446744073709551616, -9223372036854775809]')[1:] == [2**64, -2**63 - 1]
    for refused in ["NaN", "Infinity", "-Infinity", "1e400", "-1e309", "1" * 5000]:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(refused)
        with pytest.raises(ValueError):
            loads(f'["\\ud800", {refused}]')
