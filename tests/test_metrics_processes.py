"""Metrics across processes: a real gunicorn with several workers (one scrape sums them all) and the scheduler."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from server.process import ServerProcess, free_port
from tests.test_metrics import scrape as scrape_app
from tests.test_metrics import value

HEALTHZ = ("fieldops_http_requests_total", frozenset({("route", "/healthz"), ("method", "GET"), ("status", "2xx")}))


def scrape(server: ServerProcess | int) -> dict:
    """GET /metrics from the server (or a port) as {(sample name, labels): value}."""
    port = server if isinstance(server, int) else server.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(server: ServerProcess, path: str) -> None:
    """One GET on a new connection; must answer 200 (a worker still starting on a loaded machine may take a while)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=60) as response:
        assert response.status == 200


def metrics_dir(server: ServerProcess) -> str:
    """The folder the workers write their counts to: where the counter files they map live (from /proc)."""
    for pid in server.worker_pids():
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path).startswith("counter_"):
                    return os.path.dirname(path)
    raise AssertionError("no worker maps a counter file")


def pids_with_counts(path: str) -> set[int]:
    """Processes that wrote counters to the multiprocess folder."""
    return {int(name.split("_")[-1].removesuffix(".db")) for name in os.listdir(path) if name.startswith("counter_")}


def test_one_scrape_sums_every_workers_counts_and_keeps_a_dead_workers(app, database_url, tmp_path):
    """One worker held on a half-sent request while the other serves 20; both counted; a killed worker's counts stay."""
    server = ServerProcess(database_url, workers=2, log_path=str(tmp_path / "gunicorn.log")).start()
    try:
        folder = metrics_dir(server)
        assert os.path.isdir(folder)
        held = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        held.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers unfinished: that worker waits
        for _ in range(20):
            get(server, "/healthz")
        held.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while b"\r\n" not in answer and (chunk := held.recv(100)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        held.close()
        workers = server.worker_pids()
        assert len(workers) == 2
        for _ in range(4):  # whichever worker answers, the sum is the same
            assert scrape(server)[HEALTHZ] == 21
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (len(server.worker_pids()) < 2 or workers[0] in server.worker_pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        get(server, "/healthz")
        for _ in range(4):
            assert scrape(server)[HEALTHZ] == 22  # the killed worker's 1 or 20 still counted
    finally:
        server.stop()
    assert not os.path.exists(folder)  # gunicorn made it, gunicorn removed it


def test_an_operators_folder_is_emptied_at_start_and_kept(app, database_url, tmp_path):
    """PROMETHEUS_MULTIPROC_DIR given: what a previous run left is removed at start; the folder stays after stop."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"left by an earlier gunicorn")
    server = ServerProcess(database_url, workers=2, log_path=str(tmp_path / "gunicorn.log"),
                           env={"PROMETHEUS_MULTIPROC_DIR": str(folder)}).start()
    try:
        assert metrics_dir(server) == str(folder)
        get(server, "/healthz")
        assert scrape(server)[HEALTHZ] == 1
        assert 4242 not in pids_with_counts(str(folder))
    finally:
        server.stop()
    assert folder.is_dir()


def test_the_scheduler_serves_its_job_counts_and_the_web_scrape_shows_its_last_runs(app, client, database_url,
                                                                                     tmp_path):
    """`fieldops scheduler` with FIELDOPS_SCHEDULER_METRICS_PORT counts its runs; /metrics reads them from job_runs."""
    port = free_port()
    env = dict(os.environ, FIELDOPS_DATABASE_URL=database_url, FIELDOPS_INSTANCE_DIR=str(tmp_path / "instance"),
               FIELDOPS_ATTACHMENTS_DIR=str(tmp_path / "attachments"), FIELDOPS_SCHEDULER_METRICS_PORT=str(port),
               FIELDOPS_JOB_SCHEDULES="missed-appointments=every 1 s; outbox=off; manifest-import=off")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(tmp_path / "scheduler.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from server.cli import main; main()", "scheduler"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    ok = ("fieldops_job_runs_total", frozenset({("job", "missed-appointments"), ("outcome", "ok")}))
    try:
        deadline, runs = time.monotonic() + 60, 0.0
        while runs < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                runs = scrape(port).get(ok, 0.0)
            except OSError:  # not listening yet
                continue
        assert runs >= 2, (tmp_path / "scheduler.log").read_text()[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    samples = scrape_app(client)
    assert value(samples, "fieldops_job_last_run_failed", job="missed-appointments") == 0
    assert value(samples, "fieldops_job_last_success_timestamp_seconds", job="missed-appointments") > time.time() - 120
