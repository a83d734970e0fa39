"""Configuration: one Config class that reads FIELDOPS_* environment variables."""
import os
from datetime import timedelta


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
        self.AUTH_FAILURE_LIMIT = _env_int("AUTH_FAILURE_LIMIT", 10)
        self.AUTH_FAILURE_WINDOW = _env_int("AUTH_FAILURE_WINDOW_SECONDS", 300)

    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
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
    OPENAPI_SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"
    OPENAPI_REDOC_PATH = "redoc"
    OPENAPI_REDOC_URL = "https://cdn.jsdelivr.net/npm/redoc/bundles/redoc.standalone.js"
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
        self.LOG_LEVEL = "WARNING"
