"""scripts/loadtest.py, scripts/bench_sync.py and scripts/bench_peer.py, run small: they finish, parse, and report no error.

These are the benchmark smoke run of .ci/run (through the suite, both engines): a
tiny load test and a tiny bench_sync fail CI on any error, never on a time.

The figures themselves are never asserted (the machine is shared); what is
asserted is that each run loads the server for real (requests on every
handheld endpoint, ops applied), finds zero errors, and prints what it promises.
In the full tier bench_peer also builds Kinto's venv (about a minute the
first time) and runs it; the short tier runs the Fieldops half and the floor.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_BASE_URL
from tools.loadgen import day_minutes, plan, provision_fleet, throwaway_database
from tools.loadtest import _server_errors, group_cpu_s, real_pace_days

ROOT = Path(__file__).resolve().parent.parent
SHORT = os.environ.get("FIELDOPS_TEST_TIER") == "short"


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """A script of scripts/ with this venv's Python, from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _once(engine_name: str) -> None:
    """Engine-independent checks run in the SQLite pass only."""
    if engine_name != "sqlite":
        pytest.skip("engine-independent; once on SQLite is enough")


def test_loadtest_runs_clean(engine_name, database_url, tmp_path):
    """A few handhelds and a dispatcher for a few seconds: every endpoint answers, zero errors, figures parse."""
    out = tmp_path / "load.json"
    done = _run("scripts/loadtest.py", "--engine", engine_name, "--pg", PG_BASE_URL, "--handhelds", "3",
                "--dispatchers", "1", "--seconds", "4", "--workers", "2", "--sync-wait", "0.3,0.8",
                "--dispatch-wait", "0.2,0.5", "--json", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("errors 0")
    (result,) = json.loads(out.read_text())
    assert result["engine"] == engine_name and result["errors"] == 0
    assert result["failures"] == [] and result["server_errors"] == [] and result["op_log_problems"] == []
    by_name = {e["name"]: e for e in result["endpoints"]}
    for name in ("POST /sync/push", "GET /sync/pull (full)", "PUT /attachments/{sha256}"):
        assert by_name[name]["requests"] > 0 and by_name[name]["failures"] == 0, name
        assert 0 < by_name[name]["p50_ms"] <= by_name[name]["p95_ms"] <= by_name[name]["p99_ms"], name
        assert f"{name.split(' ')[0]} {name.split(' ', 1)[1]}" in done.stdout
    counts = result["counts"]
    assert counts["ops_applied"] == counts["ops_pushed"] > 0
    assert counts["ops_applied"] <= result["ops_in_op_log"] <= counts["ops_sent"]
    assert result["total"]["rps"] > 0 and result["rss_peak_mb"] > 50  # master and two workers
    assert "server RSS (gunicorn's process group): peak" in done.stdout
    # Locust in its own process group: its CPU beside gunicorn's, over the run's wall time.
    cpu = result["cpu"]
    assert cpu["server_s"] > 0 and cpu["load_generator_s"] > 0 and result["wall_s"] >= 4
    assert cpu["server_share"] == pytest.approx(cpu["server_s"] / (result["wall_s"] * cpu["cores"]), abs=0.01)
    assert result["syncs_per_s"] > 0 and "CPU over" in done.stdout and "load generator (locust's" in done.stdout


def test_bench_sync_tiny_run(engine_name, database_url):
    """Two devices, a hundred ops each, through push and pull: bench_sync exits 0 only if every op applied."""
    done = _run("scripts/bench_sync.py", "--engines", engine_name, "--devices", "2", "--ops", "100",
                "--batch", "50", "--tasks", "20", "--pull-rounds", "1", "--backlog", "")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"[{engine_name}] push" in done.stdout and f"[{engine_name}] pull" in done.stdout


def test_real_pace_days_cover_what_a_run_makes(engine_name):
    """Each handheld's ops to provision cover what its day makes from its point over the run, and its backlog."""
    _once(engine_name)
    minutes, length = day_minutes()
    assert 900 <= len(minutes) <= 1100 and 600 <= length <= 720  # ~1,000 ops over ~10-12 hours
    points, backlogs, ops = real_pace_days(400, 300)
    assert (points, backlogs, ops) == real_pace_days(400, 300)  # the plan is the same every run
    assert all(0 <= p < length for p in points)
    assert 5 <= sum(1 for b in backlogs if b) <= 40 and all(b == 0 or 100 <= b <= 250 for b in backlogs)
    rate = len(minutes) / length  # ops a minute
    typical = sorted(o for o, b in zip(ops, backlogs, strict=True) if not b)[len(ops) // 4]
    assert typical <= rate * (300 / 60 + 10) * 3 + 5  # a few ops a minute, not a compressed day


def test_group_cpu_counts_this_process(engine_name):
    """CPU seconds read from /proc grow with work; a missing process counts nothing."""
    _once(engine_name)
    before = group_cpu_s([os.getpid()])
    sum(i * i for i in range(3_000_000))
    assert group_cpu_s([os.getpid()]) > before
    assert group_cpu_s([2**22 + 7]) == 0


def test_provisioning_in_two_processes(engine_name, tmp_path):
    """Couriers provisioned by two processes: each its own device, token and tasks, in courier order."""
    if engine_name != "postgresql":
        pytest.skip("parallel provisioning is for PostgreSQL (SQLite has one writer)")
    with throwaway_database("postgresql", str(tmp_path), PG_BASE_URL) as url:
        token, devices = provision_fleet(url, str(tmp_path), couriers=4, ops_per_courier=[10, 20, 10, 30],
                                         processes=2)
    assert token and len(devices) == 4 and len({d.device_id for d in devices}) == 4
    assert len({d.token for d in devices}) == 4
    assert [len(d.task_ids) for d in devices] == [plan(n)[0] for n in (10, 20, 10, 30)]


def test_loadtest_counts_server_errors(tmp_path, engine_name):
    """ERROR lines, tracebacks and killed workers in gunicorn's log are errors; access lines are not."""
    _once(engine_name)
    log = tmp_path / "gunicorn.log"
    log.write_text('{"level": "INFO", "msg": "request", "status": 200}\n'
                   '{"level": "ERROR", "msg": "unhandled", "status": 500}\n'
                   'Traceback (most recent call last):\n'
                   '{"level": "CRITICAL", "msg": "WORKER TIMEOUT (pid:12)"}\n')
    assert len(_server_errors(str(log))) == 3
    assert _server_errors(str(tmp_path / "missing.log")) == []


def test_loadtest_refuses_unbounded_runs(engine_name):
    """Bounded in time and users: a run of an hour and a half is refused before anything starts."""
    _once(engine_name)
    done = _run("scripts/loadtest.py", "--seconds", "5400", timeout=60)
    assert done.returncode == 2 and "bounded runs only" in done.stderr


def test_bench_peer_help(engine_name):
    """--help names what it compares."""
    _once(engine_name)
    done = _run("scripts/bench_peer.py", "--help", timeout=60)
    assert done.returncode == 0
    assert "Kinto" in done.stdout and "--no-kinto" in done.stdout and "floor" in done.stdout


def test_bench_peer_tiny_run(engine_name, database_url, tmp_path):
    """Two devices, a hundred records each: both rates (Kinto in the full tier), the floor, the ratio."""
    if engine_name != "postgresql":  # its --engine sqlite works too, but CI time is kept for the engine it compares on
        pytest.skip("bench_peer compares on PostgreSQL, Kinto's backend")
    with_kinto = not SHORT
    out = tmp_path / "peer.json"
    done = _run("scripts/bench_peer.py", "--engine", engine_name, "--pg", PG_BASE_URL, "--devices", "2",
                "--records", "100", "--batch", "50", "--pull-rounds", "1", "--json", str(out),
                *([] if with_kinto else ["--no-kinto"]), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    push = result["fieldops"]["push"]
    assert push["ops"] == 200 and push["ops_per_s"] > 0
    assert set(result["fieldops"]["floor"]) == {"executemany", "copy"}
    assert result["fieldops_share_of_floor"] == pytest.approx(push["ops_per_s"] / max(result["fieldops"]["floor"].values()))
    assert "fieldops  push" in done.stdout and "floor     executemany" in done.stdout
    if with_kinto:
        assert result["kinto"]["records"] == 200 and result["kinto"]["pulled"] == 200
        assert result["push_ratio"] == pytest.approx(push["ops_per_s"] / result["kinto"]["records_per_s"])
        assert "ratio     push Fieldops/Kinto = " in done.stdout
    else:
        assert result["kinto"] is None and "kinto     not run" in done.stdout
