"""What a Prometheus scrape of `/metrics` reads, and who may scrape.

A scrape gets every process's counters (server.metrics; summed over the
workers in multiprocess mode) and gauges of stored state (the outbox backlog,
each job's last run, the noisy devices), read from the database at scrape time,
so every host and process agrees on them.
"""
import hmac
import ipaddress
import os

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from server import jobs
from server.errors import Forbidden, Unauthorized
from server.extensions import db
from server.models import Device, Event, JobRun, WebhookDelivery, WebhookSubscription


class StoredStateCollector:
    """Gauges read from the database at scrape time: cheap indexed queries only."""

    def collect(self):
        """The outbox backlog, each declared job's last run, and the noisy devices."""
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
