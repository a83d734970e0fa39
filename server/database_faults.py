"""What a database error says about the database: busy (retry soon), unavailable (it cannot write), or neither.

Busy is contention: a lock held, a deadlock, a dropped connection; the next try
usually gets through. Unavailable is a fault of the database's storage or mode:
a read-only file or session, a full volume, an I/O error; it lasts until someone
(or something) ends it, so it is reported as itself, never as busy. Anything
else (a constraint, a bug) is neither. Kept apart from server.database so the
error handler and the push engine can ask without importing the engine set-up.
"""
import sqlite3
from typing import NamedTuple

from sqlalchemy.exc import DBAPIError, OperationalError


class DatabaseFault(NamedTuple):
    """Why the database could not take a request."""

    kind: str  # "busy" or "unavailable"
    reason: str  # a fixed phrase, safe to show: never the driver's message
    discard: bool = False  # the connection itself is the problem: close it, the next one opens afresh


BUSY = DatabaseFault("busy", "busy or unreachable")

# SQLite primary result codes (the low byte of the extended code). Every unavailable one discards the
# connection: reopening a file is cheap, and one opened read-only stays read-only after the file heals.
_SQLITE = {
    sqlite3.SQLITE_BUSY: BUSY,
    sqlite3.SQLITE_LOCKED: BUSY,
    sqlite3.SQLITE_READONLY: DatabaseFault("unavailable", "its file cannot be written", True),
    sqlite3.SQLITE_PERM: DatabaseFault("unavailable", "access to its file is denied", True),
    sqlite3.SQLITE_CANTOPEN: DatabaseFault("unavailable", "its file cannot be opened", True),
    sqlite3.SQLITE_IOERR: DatabaseFault("unavailable", "an I/O error", True),
    sqlite3.SQLITE_FULL: DatabaseFault("unavailable", "its volume is full", True),
    sqlite3.SQLITE_CORRUPT: DatabaseFault("unavailable", "its file is damaged", True),
    sqlite3.SQLITE_NOTADB: DatabaseFault("unavailable", "its file is not a database", True),
}

# PostgreSQL SQLSTATEs. A session that began read-only (default_transaction_read_only, set while the
# database was frozen) stays so: it is discarded. A full disk or an I/O error is the server's; the
# connection is fine.
_POSTGRESQL = {
    "40001": BUSY, "40P01": BUSY, "55P03": BUSY, "57014": BUSY,
    "25006": DatabaseFault("unavailable", "it accepts reads only", True),
    "53100": DatabaseFault("unavailable", "its disk is full"),
    "58030": DatabaseFault("unavailable", "an I/O error"),
    "XX001": DatabaseFault("unavailable", "its data is damaged"),
    "XX002": DatabaseFault("unavailable", "an index is damaged"),
}

_MARK = "fieldops_database_fault"  # set by the engine's handle_error hook, which knows the connection


def classify(orig: BaseException | None, *, operational: bool) -> DatabaseFault | None:
    """The fault a driver error reports; any other operational error (a connection lost) counts as busy."""
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        fault = _SQLITE.get(code & 0xFF)
    else:
        fault = _POSTGRESQL.get(getattr(orig, "sqlstate", None) or "")
    return fault if fault is not None else (BUSY if operational else None)


def mark(error: BaseException, fault: DatabaseFault | None) -> None:
    """Record what the engine decided about an error (it may know better than the code alone)."""
    setattr(error, _MARK, fault)


def database_fault(error: BaseException) -> DatabaseFault | None:
    """Busy, unavailable, or None (not the database's state: a constraint, a bug) for a SQLAlchemy error."""
    if not isinstance(error, DBAPIError):
        return None
    if hasattr(error, _MARK):
        return getattr(error, _MARK)
    return classify(error.orig, operational=isinstance(error, OperationalError))
