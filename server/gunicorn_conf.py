"""gunicorn settings (`--config python:server.gunicorn_conf`): its logs in the app's JSON lines, metrics of all workers.

gunicorn's own access log stays off: the app writes one JSON line per request.

Prometheus runs in multiprocess mode: every worker writes its counts to files in
PROMETHEUS_MULTIPROC_DIR and a scrape of /metrics, whichever worker answers it,
sums them. The variable must be set before any worker imports prometheus_client,
so it is set here, when gunicorn reads this file: to the operator's folder if
given, else to a fresh temporary one, removed when gunicorn exits. The folder is
emptied when gunicorn starts (counts start from zero with the server, as a
Prometheus counter may), and a dead worker's files are marked so its live gauges go.
"""
import glob
import os
import shutil
import tempfile

accesslog = None

_MADE_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _MADE_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fieldops-metrics-")


def on_starting(_server):
    """Start every run's counts from zero: remove the files a previous gunicorn left."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


def child_exit(_server, worker):
    """A worker is gone (exited, killed, recycled): its counts stay summed, its live gauges go."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(_server):
    """Remove the metrics folder if this gunicorn made it."""
    if _MADE_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

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


def post_worker_init(_worker):
    """The worker has loaded the app: freeze what start-up made (modules, mappers, schemas, compiled
    statements), so the collector's full passes during requests no longer walk it each time."""
    import gc
    gc.collect()
    gc.freeze()
