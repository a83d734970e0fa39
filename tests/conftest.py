"""Fixtures: one app per database (SQLite and a throw-away PostgreSQL), factories, clients.

Every test runs on both engines. The PostgreSQL database has a random name,
is migrated from empty, and is dropped at the end; nothing an earlier run
left is trusted. Tables are emptied after each test instead of rolling back a
wrapping transaction, because the sync tests need real commits seen by other
connections and threads.
"""
import contextlib
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from flask_migrate import upgrade
from sqlalchemy import select, text
from werkzeug.serving import make_server

from server import create_app
from server.config import TestConfig
from server.database import MIGRATIONS_DIR
from server.extensions import db
from server.models import FeeCode
from server.logs import DevRequestHandler, JsonFormatter

pytest_plugins = ["tests.log_audit"]  # every log line of the run, checked for issued secrets

PG_BASE_URL = os.environ.get("FIELDOPS_TEST_DATABASE_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")
_KEEP_TABLES = {"alembic_version", "fee_codes", "service_products", "sync_state"}


def pytest_addoption(parser):
    """--db chooses the engines: sqlite, postgresql or all."""
    parser.addoption("--db", default="all", choices=("sqlite", "postgresql", "all"),
                     help="database engine(s) to run the suite on")


def _pg_reachable() -> str | None:
    """None if PostgreSQL answers, else why not."""
    import psycopg
    try:
        with psycopg.connect(PG_BASE_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means the pass cannot run
        return f"{type(exc).__name__}: {exc}".strip()


def pytest_generate_tests(metafunc):
    """Parametrize every test that needs a database over the chosen engines."""
    if "engine_name" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        engines = ["sqlite", "postgresql"] if choice == "all" else [choice]
        metafunc.parametrize("engine_name", engines, scope="session")


def pytest_report_header(config):
    """Say up front which engines run, and why PostgreSQL would be skipped."""
    if config.getoption("--db") == "sqlite":
        return "fieldops: SQLite pass"
    reason = _pg_reachable()
    if reason:
        return f"fieldops: PostgreSQL NOT reachable at {PG_BASE_URL} ({reason}): its pass is SKIPPED"
    return f"fieldops: PostgreSQL at {PG_BASE_URL} reachable"


@pytest.fixture(scope="session")
def database_url(engine_name, tmp_path_factory):
    """A fresh, migrated database of the given engine, removed at the end."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'fieldops.sqlite3'}"
        return
    reason = _pg_reachable()
    if reason:
        if os.environ.get("FIELDOPS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but not reachable: {reason}")
        pytest.skip(f"PostgreSQL pass skipped: {reason}")
    import psycopg
    name = f"fieldops_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_BASE_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_BASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def app_session(database_url, tmp_path_factory):
    """The app bound to the test database, migrated to head once per engine."""
    app = create_app(TestConfig(database_url, str(tmp_path_factory.mktemp("attachments"))))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
    _wipe(app)  # what migrations seed beyond the kept tables (default checklists): tests add their own
    yield app
    with app.app_context():
        db.engine.dispose()


def _wipe(app) -> None:
    """Empty every table but the reference data the migrations seed.

    One query first asks which tables hold a row, and only those get a DELETE: a test fills a handful of
    the seventy, and a statement per table per test was about 20 ms on SQLite and 50 on PostgreSQL (one
    round trip each) over some 1,700 tests per pass (docs/decisions.md, "The suite's time").
    """
    with app.app_context():
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in _KEEP_TABLES]
        probe = " UNION ALL ".join(f'SELECT {n} FROM (SELECT 1 FROM "{table.name}" LIMIT 1) AS t{n}'
                                   for n, table in enumerate(tables))
        with db.engine.begin() as conn:
            filled = {row[0] for row in conn.execute(text(probe))}
            for n, table in enumerate(tables):
                if n in filled:
                    conn.execute(table.delete())
            # Service products are reference data the migrations seed; the ones a test published go.
            conn.execute(text("DELETE FROM service_products WHERE code NOT IN "
                              "('same_day', 'next_day', 'day_after', 'standard')"))
            if conn.dialect.name == "sqlite":
                conn.execute(text("DELETE FROM sqlite_sequence WHERE name != 'changes'"))


@pytest.fixture
def app(app_session):
    """The app, with empty tables afterwards and config changes undone."""
    saved = dict(app_session.config)
    with app_session.app_context():
        yield app_session
        db.session.remove()
    app_session.config.clear()
    app_session.config.update(saved)
    _wipe(app_session)


SHORT = os.environ.get("FIELDOPS_TEST_TIER") == "short"


@pytest.fixture(autouse=True)
def _root_log_level():
    """The root logger's level as it was before each test: an app made inside a test (tools.loadgen.app_for
    sets LOG_LEVEL WARNING, as the load tools' own apps run quiet) sets the process's root level, and the
    tests after it that read INFO access lines (tests/test_logs.py) would see none."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.fixture(scope="session", autouse=True)
def password_hashing():
    """In the short tier, console passwords are hashed with argon2id at a smaller work factor (8 MiB, 1 pass,
    1 lane instead of the library's 64 MiB, 3 passes, 4 lanes): the same algorithm, format and checks, at a
    fiftieth of the cost. Every console test sets a password and signs in (a hash and a verify, well over a
    second on a busy 2-core machine), hundreds per pass. The full tier keeps the production parameters.
    Servers started as processes (gunicorn) hash with their own, production, parameters."""
    if not SHORT:
        yield
        return
    from argon2 import PasswordHasher

    from server.services import staff
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(staff, "_HASHER", hasher)
        patch.setattr(staff, "_DUMMY_HASH", hasher.hash(uuid.uuid4().hex))  # an unknown user costs the same
        yield


class ServerClock:
    """The server's clock (server.clock.utcnow), which a test sets back to build through the API what was there
    hours before (a task, an enrolled device, a sync) and then lets run on again.

    Every server time is taken from server.clock.utcnow, which reads `datetime.now` from server.clock's
    namespace: that name is replaced by a class answering now() with the offset and everything else (combine,
    isinstance) as datetime itself, so no other kind of datetime ever reaches a row. Ids keep the real clock.
    """

    def __init__(self, monkeypatch):
        """Install the offset clock (undone when the test ends)."""
        import server.clock
        self.offset = timedelta(0)
        owner = self

        class _Shifted(type):
            def __instancecheck__(cls, obj):
                return isinstance(obj, datetime)

            def __getattr__(cls, name):
                return getattr(datetime, name)

        class ShiftedDatetime(metaclass=_Shifted):
            @staticmethod
            def now(tz=None):
                return datetime.now(tz) + owner.offset

        monkeypatch.setattr(server.clock, "datetime", ShiftedDatetime)

    def now(self) -> datetime:
        """The server's now, aware, in UTC."""
        return datetime.now(timezone.utc) + self.offset

    @contextlib.contextmanager
    def at(self, when: datetime):
        """Within the block the server's clock reads `when` (and runs on from there); afterwards it reads as before."""
        saved = self.offset
        self.offset = when - datetime.now(timezone.utc)
        try:
            yield
        finally:
            self.offset = saved


@pytest.fixture
def server_clock(monkeypatch):
    """The server's clock, to be set back while a test builds what existed hours ago (ServerClock)."""
    return ServerClock(monkeypatch)


@pytest.fixture
def midday(app):
    """A depot time zone in which it is now about noon, so windows a few hours either side of now fall on one
    depot-local day whatever the wall clock says (near Shanghai midnight they would not); the app fixture undoes it."""
    offset = (12 - datetime.now(timezone.utc).hour + 12) % 24 - 12  # hours east of UTC, in [-12, 11]
    app.config["TIMEZONE"] = f"Etc/GMT{-offset:+d}"  # the Etc/GMT names count west as positive
    return app.config["TIMEZONE"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real S3-compatible store (SeaweedFS) for the session; skipped when weed cannot run, unless
    FIELDOPS_REQUIRE_S3=1 (as in .ci/run), which fails instead."""
    from tools.seaweed import SeaweedServer, cannot_run

    reason = cannot_run()
    if reason:
        if os.environ.get("FIELDOPS_REQUIRE_S3") == "1":
            pytest.fail(f"S3 is required (FIELDOPS_REQUIRE_S3=1) but SeaweedFS cannot run: {reason}")
        pytest.skip(f"S3 tests skipped: SeaweedFS cannot run: {reason}")
    server = SeaweedServer(str(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()


@pytest.fixture(params=["folder", "s3"])
def storage(request, app):
    """Where attachments go for the test: the local folder, then (a second run) a SeaweedFS bucket
    under a prefix of the test's own. The app fixture undoes the config change afterwards."""
    if request.param == "s3":
        server = request.getfixturevalue("seaweed")
        app.config.update({name.removeprefix("FIELDOPS_"): value
                           for name, value in server.env(f"t-{uuid.uuid4().hex[:12]}").items()})
    return request.param


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


class Factory:
    """Builds staff, couriers, vehicles, tasks and devices through the real services."""

    def __init__(self, client):
        """Remember the client; create an admin and a dispatcher lazily."""
        self.client = client
        self._tokens: dict[str, str] = {}
        self._n = 0

    def _next(self) -> int:
        """A counter for unique names."""
        self._n += 1
        return self._n

    def token(self, role: str) -> str:
        """A token for a staff user of the role (one user per role per test)."""
        if role not in self._tokens:
            from server.services import staff
            self._tokens[role] = staff.create(username=f"{role}-{uuid.uuid4().hex[:6]}", role=role)[1]
        return self._tokens[role]

    def headers(self, role_or_token: str) -> dict:
        """Authorization header for a role name or a raw token."""
        token = role_or_token if role_or_token.startswith("fo") else self.token(role_or_token)
        return {"Authorization": f"Bearer {token}"}

    def courier(self, **overrides) -> dict:
        """A courier via the API."""
        n = self._next()
        body = {"name": f"Courier {n}", "phone": f"1380000{n:04d}", "employee_no": f"E{n:05d}"}
        body.update(overrides)
        response = self.client.post("/api/v1/dispatch/couriers", json=body,
                                    headers=self.headers("dispatcher"))
        assert response.status_code == 201, response.json
        return response.json

    def vehicle(self, **overrides) -> dict:
        """A vehicle via the API."""
        body = {"plate": f"A{self._next():05d}", "kind": "van"}
        body.update(overrides)
        response = self.client.post("/api/v1/dispatch/vehicles", json=body,
                                    headers=self.headers("dispatcher"))
        assert response.status_code == 201, response.json
        return response.json

    def task_spec(self, **overrides) -> dict:
        """A valid task body."""
        n = self._next()
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
        spec = {"waybill_no": f"WB{n:08d}", "kind": "delivery",
                "recipient": {"name": f"Recipient {n}", "phone": f"13912345{n:03d}",
                              "address": f"{n} Renmin Rd", "lat": 31.23, "lon": 121.47},
                "parcels": [{"parcel_no": f"P{n}-1", "description": "box", "count": 2}],
                "cod_amount": 4990, "fees": [{"code": "delivery", "amount": 1200}],
                "window": {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}}
        spec.update(overrides)
        return spec

    def task(self, courier: dict | None = None, **overrides) -> dict:
        """A task via the API, assigned to the courier if one is given."""
        response = self.client.post("/api/v1/dispatch/tasks", json=self.task_spec(**overrides),
                                    headers=self.headers("dispatcher"))
        assert response.status_code == 201, response.json
        task = response.json
        if courier:
            task = self.assign(task["id"], courier["id"])
        return task

    def assign(self, task_id: str, courier_id: str) -> dict:
        """Assign via the API."""
        response = self.client.post(f"/api/v1/dispatch/tasks/{task_id}/assign",
                                    json={"courier_id": courier_id},
                                    headers=self.headers("dispatcher"))
        assert response.status_code == 200, response.json
        return response.json

    def device(self, courier: dict, name: str = "handheld") -> dict:
        """Enroll a device for the courier through the API; returns {device_id, token}."""
        response = self.client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                                    headers=self.headers("dispatcher"))
        assert response.status_code == 201, response.json
        response = self.client.post("/api/v1/devices/enroll",
                                    json={"code": response.json["code"], "device_name": name})
        assert response.status_code == 201, response.json
        return response.json


@pytest.fixture
def make(client):
    """The factory."""
    return Factory(client)


@pytest.fixture
def lines():
    """The JSON lines the app logs during the test, formatted as in production."""
    collected: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            collected.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield collected
    root.removeHandler(handler)


@pytest.fixture
def fee_codes():
    """The published list as the migration seeded it; put back as it was after the test (the table is kept)."""
    before = {f.code: (f.name, f.active) for f in db.session.scalars(select(FeeCode))}
    yield before
    for fee in db.session.scalars(select(FeeCode)):
        if fee.code not in before:
            db.session.delete(fee)
        elif (fee.name, fee.active) != before[fee.code]:
            fee.name, fee.active = before[fee.code]
    db.session.commit()


@pytest.fixture
def live_server(app):
    """The test app served over HTTP on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=DevRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
