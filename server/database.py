"""Engine set-up per dialect: SQLite pragmas and write locking, PostgreSQL snapshots."""
import contextvars
import fcntl
import logging
import os
import sqlite3
import time

import orjson
from flask import current_app, has_app_context
from sqlalchemy import JSON, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from server import jsonio
from server.database_faults import classify, mark

log = logging.getLogger(__name__)

_FEED_LOCK_SQL = text("SELECT pg_advisory_xact_lock(7302001)")

# Whether transactions begun now will only read. SQLite: a transaction that
# will write takes the write lock when it begins (BEGIN IMMEDIATE) so it never
# fails half-way when upgrading a read lock under concurrency; read-only ones
# begin deferred and never block writers (WAL). PostgreSQL: a read-only one is
# REPEATABLE READ, so a whole read request (auth included) sees one snapshot.
_read_only: contextvars.ContextVar[bool] = contextvars.ContextVar("fieldops_read_only", default=False)


def mark_read_only(read_only: bool) -> contextvars.Token:
    """Declare whether transactions begun from now on in this context will only read."""
    return _read_only.set(read_only)


def reset_read_only(token: contextvars.Token) -> None:
    """Undo mark_read_only."""
    _read_only.reset(token)


def is_read_only() -> bool:
    """Whether transactions begun now in this context only read."""
    return _read_only.get()


def configure_engine(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Install per-connection settings for the engine's dialect."""
    event.listen(engine, "handle_error", _on_error)
    if engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_connection, record):
            # A session takes default_transaction_read_only when it starts (a database frozen
            # for a full disk, say) and keeps it after the database is writable again.
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SHOW transaction_read_only")
                read_only = cursor.fetchone()[0] == "on"
            dbapi_connection.rollback()
            if read_only:
                _serve_once(record, "the session is read-only")

        @event.listens_for(engine, "begin")
        def _on_pg_begin(conn):
            conn.info[_READ_ONLY_TRANSACTION] = _read_only.get()
            if _read_only.get():
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return
    if engine.dialect.name != "sqlite":
        return

    path = engine.url.database
    lock_path = f"{path}.writelock" if path and path != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        if lock_path:  # where this connection's writers queue, and for how long by default
            record.info["writer_queue"] = (lock_path, busy_timeout_ms)
            # SQLite opens a file it cannot write read-only, silently, and the connection stays
            # read-only after the file heals. Asked as SQLite's open asks (the kernel's write
            # permission: modes, an immutable flag, a read-only mount).
            if not os.access(path, os.W_OK):
                _serve_once(record, "the file is not writable")
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
        # we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # FULL: a commit is on disk before the answer leaves (the protocol's
        # "acknowledged means durable"); NORMAL in WAL can lose the last commits
        # to a power cut. It costs one fsync per transaction, i.e. per push batch.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if _read_only.get():
            conn.exec_driver_sql("BEGIN")
            return
        _leave_query_only(conn.connection.info, conn.connection.dbapi_connection)  # a read phase's guard left on
        if lock_path:
            _queue_for_writer(conn.connection.info)
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "after_cursor_execute")
    def _record_read(conn, _cursor, statement, parameters, _context, executemany):
        reads = _reads.get()
        if reads is not None and not executemany and statement.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
            # Run again on the same snapshot: what it returns now is what the write phase compares.
            params = dict(parameters) if isinstance(parameters, dict) else tuple(parameters or ())
            reads.append((statement, params, conn.connection.dbapi_connection.execute(statement, params).fetchall()))

    if lock_path:
        # Every way a transaction or a connection can end frees the writer slot.
        event.listen(engine, "commit", _on_transaction_end)
        event.listen(engine, "rollback", _on_transaction_end)
        event.listen(engine.pool, "reset", _on_reset)
        event.listen(engine.pool, "invalidate", _on_invalidate)
        event.listen(engine.pool, "close", _on_close)


# A connection that cannot write, or an error that says it: the pool does not keep the connection.
_READ_ONLY_TRANSACTION = "fieldops_read_only_transaction"  # PostgreSQL: this transaction began READ ONLY


def _serve_once(record, why: str) -> None:
    """A connection opened unable to write serves the checkout that opened it and is replaced at the next.

    Reads go on during the fault; the first checkout after it ends gets a connection that writes.
    """
    log.warning("database connection opened unable to write; it will not be reused", extra={"why": why})
    record.invalidate(soft=True)


def _on_error(context) -> None:
    """Decide what a driver error says (busy, unavailable); a connection that cannot write is discarded."""
    if context.sqlalchemy_exception is None or context.is_pre_ping:
        return
    fault = classify(context.original_exception, operational=isinstance(context.sqlalchemy_exception, OperationalError))
    info = context.connection.info if context.connection is not None else {}
    if fault is not None and fault.kind == "unavailable" and (info.get(_QUERY_ONLY) or info.get(_READ_ONLY_TRANSACTION)):
        fault = None  # our own guard refused a write (a read phase, a read request): not the database's state
    mark(context.sqlalchemy_exception, fault)
    if fault is not None and fault.discard:
        # SQLAlchemy closes it and, as for a lost connection, every pooled one opened before now:
        # they were opened under the same fault.
        context.is_disconnect = True


def _sqlite_error(statement: str, message: str, code: int) -> OperationalError:
    """An OperationalError as SQLAlchemy would wrap SQLite's, with SQLite's result code (for its classification)."""
    orig = sqlite3.OperationalError(message)
    orig.sqlite_errorcode = code
    return OperationalError(statement, None, orig)


def _queue_for_writer(info: dict) -> None:
    """Take the connection's place in its file's writer queue, waiting as long as the busy timeout allows."""
    lock_path, default_timeout_ms = info["writer_queue"]
    if "writer_lock" not in info:
        info["writer_lock"] = _WriterLock(lock_path)
    info["writer_lock"].acquire(_busy_timeout_ms(default_timeout_ms) / 1000)


def _busy_timeout_ms(default: int) -> int:
    """How long a writer queues: the app's setting now (tests shorten it), else the engine's."""
    return current_app.config["SQLITE_BUSY_TIMEOUT_MS"] if has_app_context() else default


def _on_transaction_end(conn) -> None:
    """A transaction committed or rolled back: its writer slot freed (an invalidated connection's already was)."""
    if not conn.invalidated:
        _release(conn.connection.info)


def _on_reset(dbapi_connection, connection_record, reset_state) -> None:
    """A connection returned to the pool: its writer slot freed, a read phase's guard off."""
    _release(connection_record.info)
    _leave_query_only(connection_record.info, dbapi_connection)


def _on_invalidate(dbapi_connection, connection_record, exception) -> None:
    """A connection found broken."""
    _release(connection_record.info)


def _on_close(dbapi_connection, connection_record) -> None:
    """A connection closed for good."""
    _release(connection_record.info, close=True)


def _release(info: dict, close: bool = False) -> None:
    """Free the connection's writer slot (harmless when not held); close its file with the connection."""
    lock = info.get("writer_lock")
    if lock is not None:
        lock.release()
        if close:
            lock.close()
            del info["writer_lock"]


class _WriterLock:
    """An flock beside a SQLite file that queues its writers, across threads and processes.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms) while the
    write lock is taken, so with several gunicorn workers the lock often sits
    free while the next writer sleeps. Waiting here in ~1 ms steps hands it on
    at once; SQLite's busy timeout stays as the backstop for other processes.
    Each connection has its own open file, so threads exclude each other too;
    the kernel frees the lock if the process dies.
    """

    def __init__(self, lock_path: str):
        try:
            self.fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # the folder or the lock file not writable: the database cannot take writes
            raise _sqlite_error("BEGIN IMMEDIATE", f"unable to open the writer queue: {exc.strerror}",
                                sqlite3.SQLITE_CANTOPEN) from None
        self.locked = False

    def acquire(self, timeout: float) -> None:
        """Wait for the writer slot; give up like SQLite would after the busy timeout."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.locked = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    # Raised from the engine's "begin" event, which SQLAlchemy does not
                    # wrap: wrapped here, so busy is one error class (503, a push's stop).
                    raise _sqlite_error("BEGIN IMMEDIATE", "database is locked (writer queue timeout)",
                                        sqlite3.SQLITE_BUSY) from None
                time.sleep(pause)
                pause = min(pause * 1.5, 0.002)

    def release(self) -> None:
        """Free the writer slot (harmless when not held)."""
        if self.locked:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.locked = False

    def close(self) -> None:
        """Close the lock file."""
        os.close(self.fd)


# Read, then write (SQLite): a write transaction holds the database's only write lock
# from its first statement, so work done in it is work no other writer can do meanwhile.
# A push may instead do its reading and deciding in a read transaction (WAL: no lock),
# with every SELECT it runs recorded with its rows, then take the write lock and run
# them again: if every one returns the same rows, the decisions stand as if taken under
# the lock, and only the writing is done there. If any differs, the caller starts over
# under the lock. The read phase cannot write by mistake: PRAGMA query_only refuses it.
_reads: contextvars.ContextVar[list | None] = contextvars.ContextVar("fieldops_reads", default=None)
_QUERY_ONLY = "fieldops_query_only"


def can_read_then_write(session) -> bool:
    """Whether the session's database takes read-then-write: a SQLite file (its writer queue is a file too)."""
    bind = session.get_bind()
    return bind.dialect.name == "sqlite" and bind.url.database not in (None, "", ":memory:")


def begin_reading(session) -> contextvars.Token:
    """Begin the session's transaction as a read phase: no write lock, writes refused, SELECTs recorded."""
    token = mark_read_only(True)
    try:
        connection = session.connection()
    finally:
        reset_read_only(token)
    connection.exec_driver_sql("PRAGMA query_only=1")
    connection.connection.info[_QUERY_ONLY] = True
    return _reads.set([])


def _leave_query_only(info: dict, dbapi_connection) -> None:
    """Turn off a read phase's PRAGMA query_only on the connection, if one is on."""
    if info.pop(_QUERY_ONLY, False):
        dbapi_connection.execute("PRAGMA query_only=0")


def end_reading(token: contextvars.Token) -> list[tuple]:
    """Stop recording; the read phase's SELECTs, their parameters and rows."""
    reads = _reads.get()
    _reads.reset(token)
    return reads or []


def begin_writing(session) -> None:
    """Turn the session's read transaction into a write one on the same connection, the session unaware.

    The read transaction ends (it wrote nothing); the writer queue and BEGIN
    IMMEDIATE are taken as for any write transaction; the session's commit or
    rollback ends it and frees the queue.
    """
    fairy = session.connection().connection
    dbapi_connection = fairy.dbapi_connection
    _leave_query_only(fairy.info, dbapi_connection)
    dbapi_connection.execute("COMMIT")
    _queue_for_writer(fairy.info)
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        fairy.info["writer_lock"].release()
        raise OperationalError("BEGIN IMMEDIATE", None, exc) from None


def reads_unchanged(session, reads: list[tuple]) -> bool:
    """Whether every recorded SELECT returns the same rows now (in the write transaction)."""
    dbapi_connection = session.connection().connection.dbapi_connection
    return all(dbapi_connection.execute(statement, params).fetchall() == rows for statement, params, rows in reads)


def take_feed_lock(session) -> None:
    """Serialise change-feed appends so feed positions are assigned in commit order.

    PostgreSQL hands out sequence values at insert time, not at commit, so two
    writers could commit out of order and a puller could move its cursor past
    a change still in flight. Holding one transaction-scoped advisory lock from
    the append to the commit makes position order equal commit order. SQLite
    already serialises writers (BEGIN IMMEDIATE), so it needs nothing more.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_FEED_LOCK_SQL)



MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def schema_revisions(app, conn) -> tuple[set[str], set[str]]:
    """The database's current Alembic revisions and the migrations' heads."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    # Read the version table directly: MigrationContext logs two INFO lines per call.
    current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) \
        if inspect(conn).has_table("alembic_version") else set()
    heads = set(ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config()).get_heads())
    return current, heads


def apply_defaults(app) -> None:
    """Fill in the database URL and attachment folder when the config left them unset."""
    app.instance_path = app.config["INSTANCE_DIR"]
    if not app.config.get("SQLALCHEMY_DATABASE_URI") or not app.config.get("ATTACHMENTS_DIR"):
        os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = \
            "sqlite:///" + os.path.join(app.instance_path, "fieldops.sqlite3")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the production driver; plain URLs would pick psycopg2.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + url.split("://", 1)[1]
    # JSON columns (op payloads and results, event data) through orjson as well.
    options = {"json_serializer": jsonio.dumps_str, "json_deserializer": orjson.loads,
               **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # Each process (gunicorn worker, scheduler) has its own pool: docs/deployment.md adds them up
        # against max_connections. Behind PgBouncer in transaction mode (before 1.21, or without
        # max_prepared_statements) psycopg's automatic server-side prepared statements must be off.
        options.setdefault("pool_size", app.config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", app.config["DB_MAX_OVERFLOW"])
        if not app.config["DB_PREPARED_STATEMENTS"]:
            options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if not app.config.get("ATTACHMENTS_DIR"):
        app.config["ATTACHMENTS_DIR"] = os.path.join(app.instance_path, "attachments")
    # Flask defines MAX_CONTENT_LENGTH (as None), so setdefault would never apply the limit.
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["JSON_BODY_LIMIT"]


def bulk_insert(session, table, rows: list[dict]) -> None:
    """Insert many rows of one table in the session's transaction, in their order.

    PostgreSQL: one COPY. An executemany INSERT is a separate execution on the
    server for every row (parse-free, but an executor start each); COPY feeds
    them all to one. Values go through the columns' bind processing (JSON as
    the engine encodes it, UTC times), and columns the rows leave out get their
    Python-side defaults, as an INSERT would give them; database defaults
    (the id's sequence) apply as usual. Elsewhere: one executemany INSERT.
    Rows share the first row's keys.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    given = list(rows[0])
    defaults = {column.name: column.default.arg for column in table.c
                if column.name not in given and column.default is not None and not column.default.is_sequence}
    names = given + list(defaults)
    processors = [_copy_processor(table.c[name].type, dialect) for name in names]
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({quoted}) FROM STDIN"
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in given] + [d(None) if callable(d) else d for d in defaults.values()]
                copy.write_row([p(v) if p else v for p, v in zip(processors, values, strict=True)])
    except dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy wraps a driver error of its own statements (OperationalError for a lock
        # timeout, a deadlock, a dropped connection): the callers' busy handling sees it.
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc


def _copy_processor(type_, dialect):
    """A column's bind processing before COPY (JSON encoded as the engine encodes it), or None."""
    if isinstance(type_, JSON):  # as JSON's own processor: None is JSON null unless none_as_null
        serializer, none_as_null = dialect._json_serializer, type_.none_as_null
        return lambda value: None if value is None and none_as_null else serializer(value)
    return type_.dialect_impl(dialect).bind_processor(dialect)
