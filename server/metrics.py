"""Prometheus metrics: what each process counts, what a scrape reads from the database, and `/metrics`.

Counters and histograms live in the process that records them. Under gunicorn
(server.gunicorn_conf) every worker writes them to files in
PROMETHEUS_MULTIPROC_DIR and a scrape, served by any one worker, sums them all;
without that variable (flask run, tests, the CLI) they stay in memory. Gauges of
stored state (the outbox backlog, each job's last run) are read from the
database at scrape time, so every host and process agrees on them.

Labels are route templates, methods, status classes, op types, outcomes and job
names: a fixed, small set. Never an id, a token, a name or a raw path.
"""
import hmac
import ipaddress
import os
import time
from collections import Counter as Tally

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess, start_http_server)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from server.errors import Forbidden, Unauthorized
from server.extensions import db

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


class StoredStateCollector:
    """Gauges read from the database at scrape time: cheap indexed queries only."""

    def collect(self):
        """The outbox backlog, each declared job's last run, and the noisy devices."""
        from server import jobs
        from server.models import Device, Event, JobRun, WebhookDelivery, WebhookSubscription
        yield GaugeMetricFamily(  # the devices table is the fleet's size: scanned, not indexed
            "fieldops_sync_noisy_devices", "Devices not revoked whose rejected ops are beyond "
            "FIELDOPS_DEVICE_REJECTIONS_ALERT (GET /dispatch/devices?noisy=true lists them).",
            value=db.session.scalar(select(func.count()).select_from(Device).where(
                Device.revoked_at.is_(None), Device.rejections_beyond(current_app.config["DEVICE_REJECTIONS_ALERT"]))))
        deliveries = GaugeMetricFamily("fieldops_outbox_deliveries",
                                       "Webhook deliveries waiting to be sent (pending) or given up (dead).",
                                       labels=["status"])
        for status in ("pending", "dead"):  # ix_webhook_deliveries_due leads with status
            deliveries.add_metric([status], db.session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == status)))
        yield deliveries
        newest = db.session.scalar(select(func.max(Event.position))) or 0
        behind = db.session.scalar(select(func.min(WebhookSubscription.fanned_out_to))
                                   .where(WebhookSubscription.active.is_(True)))
        yield GaugeMetricFamily("fieldops_outbox_events_behind",
                                "Events not yet made into deliveries for the furthest-behind active subscription.",
                                value=max(newest - behind, 0) if behind is not None else 0)
        finished = GaugeMetricFamily("fieldops_job_last_finished_timestamp_seconds",
                                     "When each job's last finished run ended (any host), Unix time.", labels=["job"])
        failed = GaugeMetricFamily("fieldops_job_last_run_failed",
                                   "1 if each job's last finished run failed, else 0.", labels=["job"])
        succeeded = GaugeMetricFamily("fieldops_job_last_success_timestamp_seconds",
                                      "When each job's last successful run ended, Unix time.", labels=["job"])
        for job in jobs.JOBS:  # ix_job_runs_job_id (job, id): each is a short backward index scan
            newest_runs = select(JobRun.outcome, JobRun.finished_at).where(
                JobRun.job == job.name, JobRun.outcome.in_(("ok", "failed"))).order_by(JobRun.id.desc()).limit(1)
            last = db.session.execute(newest_runs).first()
            if last is not None:
                finished.add_metric([job.name], last.finished_at.timestamp())
                failed.add_metric([job.name], 1.0 if last.outcome == "failed" else 0.0)
            ok = last if last is not None and last.outcome == "ok" else db.session.execute(
                newest_runs.where(JobRun.outcome == "ok")).first()
            if ok is not None:
                succeeded.add_metric([job.name], ok.finished_at.timestamp())
        yield from (finished, failed, succeeded)


def serve_process_metrics(host: str, port: int) -> None:
    """Serve this process's own counters (the scheduler's job runs and webhook attempts) on a thread."""
    start_http_server(port, addr=host)


_STORED = CollectorRegistry(auto_describe=False)
_STORED.register(StoredStateCollector())


def exposition() -> bytes:
    """The text a scrape gets: every worker's counts (summed in multiprocess mode) and the stored state."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_STORED)


def _is_loopback(address: str) -> bool:
    """Whether an address (bracketed or with a port as Forwarded may write it) is a loopback one."""
    address = address.strip().strip('"')
    if address.startswith("["):
        address = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        address = address.partition(":")[0]
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _whole_chain_is_loopback() -> bool:
    """The caller, the peer that connected and every address the proxies named are all loopback.

    A reverse proxy on this host relays the world from 127.0.0.1: with FIELDOPS_PROXY_HOPS unset
    remote_addr is the proxy's, and with too many hops ProxyFix takes an address the client wrote.
    A client can add a forged 127.0.0.1 to X-Forwarded-For but cannot remove the address its
    proxy appends, so requiring every one of them to be loopback refuses both."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    addresses = [request.remote_addr or "", *([original] if original is not None else [])]
    for header in request.headers.getlist("X-Forwarded-For"):
        addresses += header.split(",")
    for header in request.headers.getlist("Forwarded"):
        for element in header.replace(";", ",").split(","):
            name, _, given = element.strip().partition("=")
            if name.strip().lower() == "for":
                addresses.append(given)
    return all(_is_loopback(address) for address in addresses)


def _authorize() -> None:
    """FIELDOPS_METRICS_TOKEN set: its bearer only, from anywhere. Unset: loopback callers only."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            raise Unauthorized("/metrics needs the metrics bearer token.", code="metrics_token_required")
        return
    if not _whole_chain_is_loopback():
        raise Forbidden("/metrics answers loopback callers only unless FIELDOPS_METRICS_TOKEN is set.",
                        code="metrics_loopback_only")


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """The Prometheus text exposition."""
    _authorize()
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time and count every request, and serve /metrics."""
    @app.before_request
    def _start_clock():
        g.metrics_started = time.perf_counter()

    app.after_request(observe_request)
    app.register_blueprint(bp)
