"""Configuration: one Config class that reads FIELDOPS_* environment variables."""
import os
from datetime import timedelta
from typing import NamedTuple


def _env_str(name: str, default: str | None = None) -> str | None:
    """Return the variable FIELDOPS_<name>, or default when unset or empty."""
    value = os.environ.get(f"FIELDOPS_{name}")
    return value if value else default


def _env_int(name: str, default: int) -> int:
    """Return FIELDOPS_<name> as an int; a malformed value fails at start-up, not later."""
    value = _env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be an integer, got {value!r}") from exc


class FailureLimit(NamedTuple):
    """At most `attempts` failed attempts in any `seconds`-long window."""

    attempts: int
    seconds: int


def _env_limit(name: str, default: str) -> FailureLimit:
    """Return FIELDOPS_<name>, written ATTEMPTS/SECONDS (e.g. 10/300), as a FailureLimit."""
    value = _env_str(name, default)
    attempts, _, seconds = value.partition("/")
    try:
        limit = FailureLimit(int(attempts), int(seconds))
    except ValueError as exc:
        raise RuntimeError(f"FIELDOPS_{name} must be ATTEMPTS/SECONDS, got {value!r}") from exc
    if limit.attempts < 1 or limit.seconds < 1:
        raise RuntimeError(f"FIELDOPS_{name} must be positive, got {value!r}")
    return limit


class Config:
    """Settings read from the environment when the class is instantiated."""

    def __init__(self) -> None:
        """Read every setting once, so a config object is a snapshot."""
        self.SQLALCHEMY_DATABASE_URI = _env_str("DATABASE_URL")  # None: SQLite under instance/
        self.SECRET_KEY = _env_str("SECRET_KEY", "dev-only-not-secret")
        self.ATTACHMENTS_DIR = _env_str("ATTACHMENTS_DIR")  # None: instance/attachments
        # instance/ is FIELDOPS_INSTANCE_DIR, else the checkout's own folder beside the package:
        # never the current directory, so every command reaches the same database.
        self.INSTANCE_DIR = os.path.abspath(_env_str("INSTANCE_DIR") or os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "instance"))
        self.TIMEZONE = _env_str("TIMEZONE", "Asia/Shanghai")
        self.LOG_LEVEL = _env_str("LOG_LEVEL", "INFO")
        # Devices may stay offline this long; tombstones and op results outlive it.
        self.SYNC_RETENTION = timedelta(days=_env_int("SYNC_RETENTION_DAYS", 30))
        self.ENROLLMENT_TTL = timedelta(minutes=_env_int("ENROLLMENT_TTL_MINUTES", 15))
        # An op whose attachment is still not uploaded this long after its device_time is
        # rejected (attachment_never_uploaded) instead of stopping every retry forever.
        self.ATTACHMENT_WAIT = timedelta(hours=_env_int("ATTACHMENT_WAIT_HOURS", 24))
        # Failed attempts only; a valid token is never refused. Bearer tokens are
        # 256-bit (the limits spare the database, not the secret); enrollment
        # codes are ~50-bit and typed by people, so they are limited strictly.
        self.AUTH_TOKEN_FAILURES_PER_ADDRESS = _env_limit("AUTH_TOKEN_FAILURES_PER_ADDRESS", "100/300")
        self.AUTH_TOKEN_FAILURES_PER_TOKEN = _env_limit("AUTH_TOKEN_FAILURES_PER_TOKEN", "10/300")
        self.AUTH_ENROLL_FAILURES_PER_ADDRESS = _env_limit("AUTH_ENROLL_FAILURES_PER_ADDRESS", "10/900")
        self.AUTH_ENROLL_FAILURES_PER_CODE = _env_limit("AUTH_ENROLL_FAILURES_PER_CODE", "3/900")
        # Every request to one customer link (page views and form posts) counts; links never share a budget.
        self.CUSTOMER_LINK_REQUESTS = _env_limit("CUSTOMER_LINK_REQUESTS", "30/600")
        self.CUSTOMER_LINK_TTL_HOURS = _env_int("CUSTOMER_LINK_TTL_HOURS", 48)
        # Reverse proxies in front of us whose X-Forwarded-* headers are trusted (0: none).
        self.PROXY_HOPS = _env_int("PROXY_HOPS", 0)
        # The address customers reach the service at (customer links, their QR codes, the
        # demo's printed link); unset, links follow the request's own host.
        self.PUBLIC_URL = _env_str("PUBLIC_URL")
        # Appointments: a pushing device's clock this far off the server's flags its ops for review;
        # a courier waits this long at the stop before reporting the customer absent; the board
        # shows a confirmed appointment at risk this long before its window ends unvisited.
        self.CLOCK_SKEW_TOLERANCE_SECONDS = _env_int("CLOCK_SKEW_TOLERANCE_SECONDS", 300)
        self.MIN_WAIT_MINUTES = _env_int("MIN_WAIT_MINUTES", 10)
        self.AT_RISK_LEAD_MINUTES = _env_int("AT_RISK_LEAD_MINUTES", 30)

    # hide_parameters: SQL errors in logs never carry the values (hashes, names, codes).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "hide_parameters": True}
    JSON_BODY_LIMIT = 1024 * 1024
    PUSH_BODY_LIMIT = 5 * 1024 * 1024
    IMPORT_BODY_LIMIT = 10 * 1024 * 1024
    PUSH_MAX_OPS = 500
    ATTACHMENT_LIMIT = 10 * 1024 * 1024
    PULL_DEFAULT_LIMIT = 500
    PULL_MAX_LIMIT = 5000
    SYNC_PROTOCOLS = (1,)
    SQLITE_BUSY_TIMEOUT_MS = 10_000

    API_TITLE = "Fieldops"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    # Relative to the docs page: its assets are served under it (server/errors.py), no CDN needed.
    OPENAPI_SWAGGER_UI_URL = "docs/"
    API_SPEC_OPTIONS = {
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


class TestConfig(Config):
    """Settings for the test suite; the database URL is passed in by the fixture."""

    TESTING = True

    def __init__(self, database_url: str, attachments_dir: str) -> None:
        """Build a config for one test database and attachment folder."""
        super().__init__()
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.ATTACHMENTS_DIR = attachments_dir
        self.SECRET_KEY = "test"
        self.LOG_LEVEL = "INFO"  # every access line reaches the suite's log audit (tests/log_audit.py)
