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

# gunicorn answers a request line beyond this itself, in HTML, before the app sees it. At gunicorn's
# maximum (its default is 4094), so a URL above the app's own limit (Config.URI_LIMIT, 4096) but within
# this reaches the app and gets its 414 problem+json; only a line beyond 8190 bytes gets gunicorn's page.
limit_request_line = 8190

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


def post_worker_init(worker):
    """The worker has loaded the app: freeze what start-up made, and collect cycles only between requests.

    Frozen, the modules, mappers, schemas and compiled statements are never
    walked again by the cyclic collector. The collector is then switched off
    while a request runs and run once after it (post_request). On CPython 3.11.7
    a collection that ran in the middle of a large push could crash the worker
    with SIGSEGV (docs/benchmarks.md: 5 of 11 runs of the 20,000-op appointment
    backlog on SQLite, before this; none of 9 after), and a collection mid-push
    walks every ORM object of the batch for nothing. With one request at a time
    per worker (gunicorn's sync workers, as deployed) nothing of a request is
    alive when its garbage is collected. A threaded worker (--threads > 1) keeps
    the collector on: between one thread's requests another's may be running.
    """
    import gc
    gc.collect()
    gc.freeze()
    if worker.cfg.threads == 1:
        gc.disable()


def post_request(worker, _req, _environ, _resp):
    """Collect the request's cyclic garbage now that nothing of it runs (one request at a time)."""
    import gc
    if worker.cfg.threads == 1:
        gc.collect()
