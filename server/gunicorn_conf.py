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
import gc
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


class BetweenRequests:
    """The cyclic collector of a sync worker, run between requests at CPython's own pace.

    CPython collects the young generation every 700 allocations, the middle one
    every 10 young collections, and all of them only when the objects waiting
    to be examined for the first time in a full collection exceed a quarter of
    those the last one left (gcmodule.c, long_lived_pending > long_lived_total
    / 4). Here the young generation is collected after every request (all of the
    request's objects are in it: the collector is off while it runs), the middle
    one every MIDDLE_EVERY requests, and all of them on that same quarter rule,
    so a request pays for its own garbage and the long-lived heap is walked only
    when it has grown. (A full collection after every request, as before, was
    46% of the workers' time under the load test: docs/benchmarks.md, issue 26.)
    The counts are estimates, as CPython's are: gc.get_count() is allocations
    less deallocations since the last collection.
    """

    MIDDLE_EVERY = 10
    FULL_WHEN_GROWN_BY = 0.25

    def __init__(self):
        """Nothing pending; the long-lived heap as the last full collection left it (set by collect_all)."""
        self.requests = 0
        self.middle_pending = 0
        self.long_lived_pending = 0
        self.long_lived_total = 0

    def collect_all(self) -> None:
        """A full collection; what survives it is the long-lived heap the quarter rule measures against."""
        gc.collect()
        self.middle_pending = self.long_lived_pending = 0
        self.long_lived_total = len(gc.get_objects(generation=2))

    def after_request(self) -> None:
        """Collect the request's garbage (young), and the older generations when their turn or growth says."""
        self.requests += 1
        allocated = gc.get_count()[0]
        if self.requests % self.MIDDLE_EVERY:
            self.middle_pending += max(allocated - gc.collect(0), 0)
            return
        self.long_lived_pending += max(self.middle_pending + allocated - gc.collect(1), 0)
        self.middle_pending = 0
        if self.long_lived_pending > self.long_lived_total * self.FULL_WHEN_GROWN_BY:
            self.collect_all()


_collector = BetweenRequests()


def post_worker_init(worker):
    """The worker has loaded the app: freeze what start-up made, and collect cycles only between requests.

    Frozen, the modules, mappers, schemas and compiled statements are never
    walked again by the cyclic collector. The collector is then switched off
    while a request runs and run after it (post_request, BetweenRequests). On
    CPython 3.11.7 a collection that ran in the middle of a large push could
    crash the worker with SIGSEGV (docs/benchmarks.md: 5 of 11 runs of the
    20,000-op appointment backlog on SQLite, before this; none of 9 after), and
    a collection mid-push walks every ORM object of the batch for nothing. With
    one request at a time per worker (gunicorn's sync workers, as deployed)
    nothing of a request is alive when its garbage is collected. A threaded
    worker (--threads > 1) keeps the collector on: between one thread's
    requests another's may be running.
    """
    gc.collect()
    gc.freeze()
    if worker.cfg.threads == 1:
        gc.disable()
        _collector.collect_all()


def post_request(worker, _req, _environ, _resp):
    """Collect the request's cyclic garbage now that nothing of it runs (one request at a time)."""
    if worker.cfg.threads == 1:
        _collector.after_request()
