"""Prometheus metrics: what each process counts (server.scrape serves them at `/metrics`).

Counters and histograms live in the process that records them. Under gunicorn
(server.gunicorn_conf) every worker writes them to files in
PROMETHEUS_MULTIPROC_DIR and a scrape, served by any one worker, sums them all;
without that variable (flask run, tests, the CLI) they stay in memory.

Labels are route templates, methods, status classes, op types, outcomes and job
names: a fixed, small set. Never an id, a token, a name or a raw path.
"""
import time
from collections import Counter as Tally

from flask import Flask, g, request
from prometheus_client import Counter, Histogram, start_http_server

HTTP_REQUESTS = Counter(
    "fieldops_http_requests", "HTTP requests answered, by route template, method and status class.",
    ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "fieldops_http_request_duration_seconds", "Time from the request's arrival at the app to its response.",
    ["route", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SYNC_OPS = Counter(
    "fieldops_sync_ops", "Pushed ops by type and what became of them "
    "(applied, conflict, rejected, duplicate: a replay answered from the op log).", ["type", "status"])
SYNC_PUSH_BATCH = Histogram(
    "fieldops_sync_push_batch_ops", "Ops in each push request.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500))
SYNC_PUSH_STOPS = Counter(
    "fieldops_sync_push_stops", "Push batches stopped before their end, by stop code (busy, attachment_missing...).",
    ["code"])
SYNC_PUSH_READ_PHASES = Counter(
    "fieldops_sync_push_read_phases", "SQLite push batches decided in a read transaction, by outcome: stood "
    "(written as decided), read_changed or wrote_early (decided again under the write lock).", ["outcome"])
SYNC_PULLS = Counter(
    "fieldops_sync_pulls", "Pull pages served, by cursor mode (full listing, incremental, reset).", ["mode"])
SYNC_PULL_LAG_CHANGES = Histogram(
    "fieldops_sync_pull_lag_changes", "Feed positions between an incremental pull's cursor and the feed head.",
    buckets=(0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000))
SYNC_PULL_LAG_SECONDS = Histogram(
    "fieldops_sync_pull_lag_seconds", "Age of the oldest change an incremental pull page brings the device.",
    buckets=(1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400))
JOB_RUNS = Counter("fieldops_job_runs", "Job runs in this process by job and outcome (ok, failed, skipped).",
                   ["job", "outcome"])
JOB_SECONDS = Histogram("fieldops_job_run_seconds", "Duration of job runs in this process.", ["job"],
                        buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600))
WEBHOOK_ATTEMPTS = Counter(
    "fieldops_webhook_attempts", "Webhook delivery attempts by outcome: delivered, failed (retried later), "
    "dead (the last attempt failed), lost (the claim expired before the outcome was kept).", ["outcome"])

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"


def observe_request(response):
    """Count the answered request under its URL rule (never the raw path) and time it."""
    started = g.pop("metrics_started", None)
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    method = request.method if request.method in _METHODS else "OTHER"
    HTTP_REQUESTS.labels(rule, method, f"{response.status_code // 100}xx").inc()
    if started is not None:
        HTTP_LATENCY.labels(rule, method).observe(time.perf_counter() - started)
    return response


def observe_push(*, ops: list[dict], response: dict, known_types) -> None:
    """Count a push batch once: its size, each op's outcome by type (tallied first: one increment per label)."""
    SYNC_PUSH_BATCH.observe(len(ops))
    # As received: a type may be anything JSON holds (a list is unhashable); only a registered one is a label.
    types = {op["seq"]: op.get("type") for op in ops if isinstance(op.get("seq"), int)}
    tally = Tally()
    for result in response.get("results", ()):
        op_type = types.get(result["seq"])
        known = isinstance(op_type, str) and op_type in known_types
        tally[(op_type if known else "unknown", "duplicate" if result.get("duplicate") else result["status"])] += 1
    for (op_type, status), count in tally.items():
        SYNC_OPS.labels(op_type, status).inc(count)
    if response.get("stop_code"):
        SYNC_PUSH_STOPS.labels(response["stop_code"]).inc()


def observe_read_phase(outcome: str) -> None:
    """Count a push's read phase by what became of it."""
    SYNC_PUSH_READ_PHASES.labels(outcome).inc()


def observe_pull(*, mode: str, lag_changes: int | None = None, lag_seconds: float | None = None) -> None:
    """Count a pull page; an incremental one also tells how far behind the feed head it started."""
    SYNC_PULLS.labels(mode).inc()
    if lag_changes is not None:
        SYNC_PULL_LAG_CHANGES.observe(lag_changes)
    if lag_seconds is not None:
        SYNC_PULL_LAG_SECONDS.observe(max(lag_seconds, 0.0))


def observe_job(*, job: str, outcome: str, seconds: float | None = None) -> None:
    """Count one job run (its duration too, when it ran)."""
    JOB_RUNS.labels(job, outcome).inc()
    if seconds is not None:
        JOB_SECONDS.labels(job).observe(seconds)


def observe_webhook_attempt(outcome: str) -> None:
    """Count one webhook delivery attempt."""
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def serve_process_metrics(host: str, port: int) -> None:
    """Serve this process's own counters (the scheduler's job runs and webhook attempts) on a thread."""
    start_http_server(port, addr=host)


def init_app(app: Flask) -> None:
    """Time and count every request."""
    @app.before_request
    def _start_clock():
        g.metrics_started = time.perf_counter()

    app.after_request(observe_request)
