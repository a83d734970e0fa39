"""Every JSON column of every model stores every JSON value and reads it back as written, on both engines.

The columns are found from the models (db.metadata), so a JSON column added later is tested too. A row
needs what its table demands besides the JSON: each required column gets a plain value of its type and
each required foreign key a parent row built the same way (recursively), so every constraint holds and
nothing is switched off; the point is the JSON column's round trip. Every value is written twice: by an
INSERT (what the ORM does) and by bulk_insert (COPY on PostgreSQL).
"""
import math
from datetime import date
from itertools import count

import pytest
from sqlalchemy import JSON, Boolean, Date, Float, Integer, String, select
from sqlalchemy.exc import StatementError

from server.clock import UTCDateTime, utcnow
from server.database import bulk_insert
from server.extensions import db
from server.models.types import JSONText

# Every shape a JSON value takes, with the texts a store might mistake for something else.
VALUES = [
    0, 5, -5, 2**53 + 1, 2**63 - 1, -2**63, 2**64 - 1,  # orjson writes and reads integers up to 64 bits
    0.5, -1.25, 1.0, -0.0, 0.30000000000000004, 1.5e-7, 1e300, 1.8446744073709552e19,
    "", "5", "-7", "0.5", "1e3", " 5 ", "0x10", "null", "true", "false", "[1]", "{}", '"quoted"',
    "中文 émoji 📦", "tab\there\nnewline, backslash \\ and \\N", "\u2028\u2029", "nul \x00 inside",
    True, False, None,
    [], {}, [5], [[[[["deep"]]]]], [1, "a", None, True, 2.5, [], {}],
    {"a": 1, "": "", "中": [None, {"x": False}], "nested": {"list": [1, {"y": -0.5}]}},
]
# Beyond 64 bits orjson writes no integer (and would read the text back as a float): refused when written.
TOO_BIG = [2**64, -2**63 - 1, 10**30]


def json_tables() -> list:
    """Every table with a JSON column (of any JSON type), from the models."""
    return [table for table in db.metadata.sorted_tables if any(isinstance(c.type, JSON) for c in table.c)]


def json_columns(table) -> list:
    """The table's JSON columns."""
    return [column for column in table.c if isinstance(column.type, JSON)]


def same(a, b) -> bool:
    """Equal and of the same types all the way down (True is not 1, 1.0 is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


class Rows:
    """Rows for any table: every required column given a plain value, every required foreign key a parent."""

    def __init__(self):
        """Number every value handed out, so unique columns never collide."""
        self.numbers = count(900_001)

    def plain(self, column, n: int):
        """A value of the column's type that every constraint of the schema accepts."""
        kind = column.type
        if isinstance(kind, JSON):  # a parent's
            return []
        if isinstance(kind, UTCDateTime):
            return utcnow()
        if isinstance(kind, Date):
            return date.today()
        if isinstance(kind, Boolean):
            return False
        if isinstance(kind, Integer):  # BigInteger too
            return n if column.primary_key or column.unique else 1  # 1: within ratings' score check
        if isinstance(kind, Float):  # Double too
            return 0.0
        if isinstance(kind, String):  # Text too
            return f"j{n}"[:kind.length] if kind.length else f"j{n}"
        raise AssertionError(f"no plain value for {column} ({kind!r}): add one")

    def row(self, table, **given) -> dict:
        """A row's values: the given ones, the rest each required column needs (parents inserted first)."""
        n = next(self.numbers)
        values = dict(given)
        for column in table.c:
            optional = column.nullable or column.default is not None or column.server_default is not None
            if column.name in values or (optional and not column.primary_key):  # the key: to read the row by
                continue
            if column.foreign_keys:
                (key,) = column.foreign_keys
                values[column.name] = self.parent(key.column)
            else:
                values[column.name] = self.plain(column, n)
        return values

    def parent(self, column):
        """Insert a row into the column's table; the column's value in it."""
        values = self.row(column.table)
        db.session.execute(column.table.insert().values(values))
        return values[column.name]


def test_every_json_column_reads_back_every_json_value(app):
    """Each value into each JSON column (all JSON columns of a row hold it), by INSERT and by bulk_insert: read
    back the same, of the same types; None is JSON null (the column is not SQL NULL), as every column declares."""
    tables = json_tables()
    assert len(tables) >= 18  # the models as this test was written: it finds their JSON columns
    rows = Rows()
    written = {}
    for table in tables:
        (key,) = table.primary_key.columns
        by_insert = [rows.row(table, **{c.name: value for c in json_columns(table)}) for value in VALUES]
        for values in by_insert:
            db.session.execute(table.insert().values(values))
        by_copy = [rows.row(table, **{c.name: value for c in json_columns(table)}) for value in VALUES]
        bulk_insert(db.session, table, by_copy)
        written[table.name] = [(values[key.name], value) for values, value in zip(by_insert + by_copy, VALUES * 2, strict=True)]
    db.session.commit()
    db.session.remove()  # read on a fresh session: nothing from the writes is kept
    for table in tables:
        (key,) = table.primary_key.columns
        columns = json_columns(table)
        stored = {row[0]: row[1:] for row in db.session.execute(
            select(key, *columns, *(c.is_(None) for c in columns)))}
        for row_key, value in written[table.name]:
            read, sql_null = stored[row_key][:len(columns)], stored[row_key][len(columns):]
            for column, got in zip(columns, read, strict=True):
                assert same(got, value), (table.name, column.name, value, got)
            assert not any(sql_null), (table.name, value)


def test_every_json_column_is_of_the_one_json_type():
    """A JSON column declared with SQLAlchemy's own JSON would be NUMERIC on SQLite again: the models use JSONText."""
    columns = [column for table in json_tables() for column in json_columns(table)]
    assert len(columns) >= 27  # as many as the models had when this was written: the search finds them
    assert [str(column) for column in columns if type(column.type) is not JSONText] == []


@pytest.mark.parametrize("value", TOO_BIG, ids=str)
def test_an_integer_beyond_64_bits_is_refused_when_written(app, value):
    """No JSON column stores an integer orjson cannot write (nor read back as an integer): the write fails
    naming the integer's range, by INSERT and by bulk_insert, and nothing is stored."""
    table = next(t for t in json_tables() if t.name == "manifest_quarantine")
    rows = Rows()
    # SQLAlchemy's encoding on SQLite (a StatementError around it), psycopg's on PostgreSQL: the same encoder.
    with pytest.raises((StatementError, TypeError), match="64-bit"):
        db.session.execute(table.insert().values(rows.row(table, raw=value, reasons=[])))
    db.session.rollback()
    with pytest.raises((StatementError, TypeError), match="64-bit"):
        bulk_insert(db.session, table, [rows.row(table, raw=[1, {"n": value}], reasons=[])])
    db.session.rollback()
    assert db.session.execute(select(table.c.id)).all() == []
