"""Column types every model shares."""
from sqlalchemy import JSON
from sqlalchemy.ext.compiler import compiles

# The integers a JSON column holds: those orjson writes, and reads back as integers.
JSON_INTEGERS = range(-2**63, 2**64)


class JSONText(JSON):
    """A JSON value, kept as its JSON text: TEXT on SQLite, PostgreSQL's json elsewhere.

    SQLAlchemy's JSON declares the SQLite column `JSON`, a name SQLite gives
    NUMERIC affinity: the text of a bare number (`5`, `1.5`, `1e3`) is stored
    as an INTEGER or REAL, which reads back as a number the JSON reader refuses
    (and a REAL with its digits rounded). Declared TEXT, every value stays the
    text that was written. Only the column's declared type differs: binding and
    reading are JSON's own (the engine's orjson encoder and decoder), so is
    None as JSON null unless none_as_null, and bulk_insert's COPY path.
    """


@compiles(JSONText, "sqlite")
def _text_on_sqlite(_type, _compiler, **_kw) -> str:
    """The SQLite declared type: TEXT affinity keeps the JSON text as written."""
    return "TEXT"
