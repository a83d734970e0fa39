"""/metrics in one process: counts move by exactly what real pushes, pulls, requests and job runs did.

Counters are process-wide (the test process's default registry), so every
check is a difference between two scrapes around the action.
"""
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from server import jobs
from server.extensions import db
from server.models import Change
from server.services import webhooks
from sync.pull import Cursor, encode
from tests.sync.conftest import Device


def scrape(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    """GET /metrics as {(sample name, labels): value}."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.data.decode())
            for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    """How much a sample changed between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def test_push_counts_each_op_by_type_and_outcome_and_the_batch_size(client, make):
    """Applied, rejected (an unknown or malformed type counted as `unknown`), replayed duplicates; batch sizes."""
    courier = make.courier()
    task = make.task(courier=courier)
    device = Device(client, make.device(courier))
    ops = [device.op("task.note", task["id"], {"text": f"note {i}"}) for i in range(3)]
    ops.append(device.op("no.such.op", task["id"], {}))
    ops.append(device.op(["not", "a", "type"], task["id"], {}))  # a type no dict can key
    before = scrape(client)
    first = device.push(ops)
    assert [r["status"] for r in first["results"]] == ["applied"] * 3 + ["rejected"] * 2
    device.push(ops)  # a retry: every op is answered from the op log
    after = scrape(client)
    assert moved(before, after, "fieldops_sync_ops_total", type="task.note", status="applied") == 3
    assert moved(before, after, "fieldops_sync_ops_total", type="unknown", status="rejected") == 2
    assert moved(before, after, "fieldops_sync_ops_total", type="task.note", status="duplicate") == 3
    assert moved(before, after, "fieldops_sync_ops_total", type="unknown", status="duplicate") == 2
    assert moved(before, after, "fieldops_sync_push_batch_ops_count") == 2
    assert moved(before, after, "fieldops_sync_push_batch_ops_sum") == 10
    assert moved(before, after, "fieldops_sync_push_batch_ops_bucket", le="5.0") == 2
    assert moved(before, after, "fieldops_sync_push_batch_ops_bucket", le="2.0") == 0
    assert not any("no.such.op" in dict(labels).get("type", "") for _, labels in after)


def test_pull_counts_pages_by_mode_and_how_far_behind_the_feed_head_they_start(client, make):
    """A full listing, then an incremental pull behind by exactly the feed positions written since, then a reset."""
    courier = make.courier()
    task = make.task(courier=courier)
    device = Device(client, make.device(courier))
    before = scrape(client)
    _, cursor, _ = device.pull_all()
    head = db.session.scalar(select(func.max(Change.position)))
    device.push([device.op("task.note", task["id"], {"text": "behind"})])
    make.task(courier=courier)
    db.session.expire_all()
    behind = db.session.scalar(select(func.max(Change.position))) - head
    assert behind >= 2
    device.pull(cursor)
    device.pull(encode("another-epoch", Cursor(mode="i", position=0)))  # a cursor of another database
    after = scrape(client)
    assert moved(before, after, "fieldops_sync_pulls_total", mode="full") == 1
    assert moved(before, after, "fieldops_sync_pulls_total", mode="incremental") == 1
    assert moved(before, after, "fieldops_sync_pulls_total", mode="reset") == 1
    assert moved(before, after, "fieldops_sync_pull_lag_changes_count") == 1
    assert moved(before, after, "fieldops_sync_pull_lag_changes_sum") == behind
    assert moved(before, after, "fieldops_sync_pull_lag_seconds_count") == 1
    assert 0 <= moved(before, after, "fieldops_sync_pull_lag_seconds_sum") < 60


def test_requests_are_labelled_by_route_template_never_by_ids_tokens_or_paths(client, make):
    """The URL rule, the method and the status class; an unrouted path is `<unmatched>`; nothing personal leaks."""
    courier = make.courier(name="Zhang Wei Metrics")
    task = make.task(courier=courier)
    enrolled = make.device(courier)
    headers = make.headers("dispatcher")
    before = scrape(client)
    assert client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=headers).status_code == 200
    assert client.get("/api/v1/dispatch/tasks/t-nosuchtask", headers=headers).status_code == 404
    assert client.get("/wp-admin/secret-probe-path").status_code == 404
    after = scrape(client)
    route = "/api/v1/dispatch/tasks/<task_id>"
    assert moved(before, after, "fieldops_http_requests_total", route=route, method="GET", status="2xx") == 1
    assert moved(before, after, "fieldops_http_requests_total", route=route, method="GET", status="4xx") == 1
    assert moved(before, after, "fieldops_http_requests_total", route="<unmatched>", method="GET",
                 status="4xx") == 1
    assert moved(before, after, "fieldops_http_request_duration_seconds_count", route=route, method="GET") == 2
    text = client.get("/metrics").data.decode()
    for secret in (task["id"], courier["id"], "Zhang Wei", enrolled["device_id"], enrolled["token"],
                   make.token("dispatcher"), "t-nosuchtask", "secret-probe-path", task["recipient"]["phone"]):
        assert secret not in text


@pytest.fixture
def failing_job(monkeypatch):
    """A job (the test's own) that fails."""
    def work(now):
        raise RuntimeError("the upstream folder is not mounted")
    monkeypatch.setattr(jobs, "JOBS", [*jobs.JOBS, jobs.Job("test-fails", "every 1 min", work, "fails")])
    return "test-fails"


def test_job_runs_and_failures_by_job_and_each_jobs_last_run_from_the_database(client, failing_job):
    """Runs counted by outcome in this process; the last-run gauges read job_runs, whoever ran them."""
    before = scrape(client)
    jobs.run("retention")
    with pytest.raises(RuntimeError):
        jobs.run(failing_job)
    jobs.record_skipped("retention", "the previous run was still going")
    after = scrape(client)
    assert moved(before, after, "fieldops_job_runs_total", job="retention", outcome="ok") == 1
    assert moved(before, after, "fieldops_job_runs_total", job="retention", outcome="skipped") == 1
    assert moved(before, after, "fieldops_job_runs_total", job=failing_job, outcome="failed") == 1
    assert moved(before, after, "fieldops_job_run_seconds_count", job=failing_job) == 1
    assert value(after, "fieldops_job_last_run_failed", job=failing_job) == 1
    assert value(after, "fieldops_job_last_run_failed", job="retention") == 0
    assert value(after, "fieldops_job_last_success_timestamp_seconds", job="retention") > 0
    assert ("fieldops_job_last_success_timestamp_seconds", frozenset({("job", failing_job)})) not in after
    assert ("fieldops_job_last_run_failed", frozenset({("job", "grades")})) not in after  # never ran


def test_outbox_backlog_and_webhook_delivery_failures(client, make):
    """Events not yet fanned out, then pending deliveries, then a failed attempt each (loopback is forbidden)."""
    for url in ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"):
        response = client.post("/api/v1/admin/webhooks", json={"url": url, "event_types": ["*"]},
                               headers=make.headers("admin"))
        assert response.status_code == 201, response.json
    empty = scrape(client)
    assert value(empty, "fieldops_outbox_events_behind") == 0
    assert value(empty, "fieldops_outbox_deliveries", status="pending") == 0
    make.task(courier=make.courier())
    waiting = scrape(client)
    assert value(waiting, "fieldops_outbox_events_behind") >= 1
    counts = webhooks.deliver_due()
    assert counts["failed"] == counts["sent"] >= 2
    after = scrape(client)
    assert moved(waiting, after, "fieldops_webhook_attempts_total", outcome="failed") == counts["failed"]
    assert value(after, "fieldops_outbox_events_behind") == 0
    assert value(after, "fieldops_outbox_deliveries", status="pending") == counts["failed"]
    assert value(after, "fieldops_outbox_deliveries", status="dead") == 0


def test_only_loopback_may_scrape_unless_a_token_is_set_then_only_its_bearer(client, app):
    """No token: another address gets 403 metrics_loopback_only. A token: 401 without it, 200 with it from anywhere."""
    remote = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    refused = client.get("/metrics", **remote)
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert refused.json["code"] == "metrics_loopback_only"
    app.config["METRICS_TOKEN"] = "scrape-secret-1"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-secret-1"}):
        denied = client.get("/metrics", headers=headers, **remote)
        assert denied.status_code == 401 and denied.json["code"] == "metrics_token_required"
    assert client.get("/metrics").status_code == 401  # loopback needs it too, once set
    samples = scrape(client, headers={"Authorization": "Bearer scrape-secret-1"}, **remote)
    assert value(samples, "fieldops_outbox_events_behind") == 0
