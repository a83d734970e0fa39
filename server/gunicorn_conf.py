"""gunicorn settings (`--config python:server.gunicorn_conf`): its logs in the app's JSON lines.

gunicorn's own access log stays off: the app writes one JSON line per request.
"""
accesslog = None

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "server.logs.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        # alembic >= 1.17 announces its 7 built-in plugins at INFO, in each worker, on the first /readyz
        "alembic.runtime.plugins": {"level": "WARNING"},
    },
}
