"""Engine set-up per dialect: SQLite pragmas and write locking, PostgreSQL snapshots."""
import contextvars
import os

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

_FEED_LOCK_SQL = text("SELECT pg_advisory_xact_lock(7302001)")

# SQLite: a transaction that will write takes the write lock when it begins
# (BEGIN IMMEDIATE) so it never fails half-way when upgrading a read lock under
# concurrency; read-only requests begin deferred and never block writers (WAL).
_sqlite_read_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fieldops_sqlite_read_only", default=False)


def mark_read_only(read_only: bool) -> contextvars.Token:
    """Declare whether transactions begun from now on in this context will only read."""
    return _sqlite_read_only.set(read_only)


def reset_read_only(token: contextvars.Token) -> None:
    """Undo mark_read_only."""
    _sqlite_read_only.reset(token)


def configure_engine(engine: Engine, *, busy_timeout_ms: int) -> None:
    """Install per-connection settings for the engine's dialect."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
        # we emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN" if _sqlite_read_only.get() else "BEGIN IMMEDIATE")


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


def apply_defaults(app) -> None:
    """Fill in the database URL and attachment folder when the config left them unset."""
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = \
            "sqlite:///" + os.path.join(app.instance_path, "fieldops.sqlite3")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # psycopg 3 is the production driver; plain URLs would pick psycopg2.
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not app.config.get("ATTACHMENTS_DIR"):
        app.config["ATTACHMENTS_DIR"] = os.path.join(app.instance_path, "attachments")
    app.config.setdefault("MAX_CONTENT_LENGTH", app.config["JSON_BODY_LIMIT"])
