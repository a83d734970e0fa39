"""The load test behind scripts/loadtest.py: a throw-away database, gunicorn, locust headless, the figures.

Loopback only and bounded: locust runs for a fixed time with a fixed number of
users, then stops by itself (its process is killed if it overstays).
"""
import bisect
import csv
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from server.process import ServerProcess
from tools.loadgen import app_for, day_minutes, plan, provision_fleet, throwaway_database

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "tools" / "locustfile.py"


def ops_budget(seconds: float, sync_wait: tuple[float, float]) -> int:
    """Ops to provision per device: about what a run of `seconds` pushes if every sync is instant.

    A sync pushes 30 ops on average (5-40, a backlog of 100-250 one time in 20); syncs take time, so
    this is more than a device gets to push (one that runs out only pulls, and is counted). At least
    200, so that short runs work a real day.
    """
    syncs = seconds / max(sum(sync_wait) / 2, 0.1) + 1
    return max(int(syncs * 30), 200)


def real_pace_days(handhelds: int, seconds: float, seed: int = 0) -> tuple[list[float], list[int], list[int]]:
    """Each real-pace handheld's point of its working day (minute), the backlog it starts with, and its ops to provision.

    One handheld in twenty comes back from a dead zone with 100-250 ops queued (as the compressed pace's
    backlog); the others synced a minute ago. Ops to provision: what the day makes from its point over the
    run and ten more minutes (a dead zone delays ops, it does not add any), the backlog, and a few spare.
    """
    minutes, length = day_minutes()
    laps = minutes + [m + length for m in minutes]
    span = seconds / 60 + 10
    points, backlogs, ops = [], [], []
    for i in range(handhelds):
        rng = random.Random(f"{seed}:{i}")
        point = rng.uniform(0, length)
        backlog = rng.randint(100, 250) if rng.random() < 0.05 else 0
        made = bisect.bisect_right(laps, point + span) - bisect.bisect_right(laps, point)
        points.append(round(point, 3))
        backlogs.append(backlog)
        ops.append(made + backlog + 5)
    return points, backlogs, ops


def _load() -> str:
    """The machine's load averages (1, 5, 15 min), as uptime prints them."""
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _percentile(row: dict, key: str) -> float | None:
    """A percentile column of locust's stats CSV, None when it has no value ('N/A')."""
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return None


def _read_stats(prefix: str) -> tuple[list[dict], dict, list[dict]]:
    """Locust's CSV: the per-endpoint rows, the aggregated row, the failures."""
    endpoints, total = [], {}
    with open(prefix + "_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            item = {"method": row["Type"], "name": row["Name"], "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]), "rps": float(row["Requests/s"]),
                    "p50_ms": _percentile(row, "50%"), "p95_ms": _percentile(row, "95%"),
                    "p99_ms": _percentile(row, "99%"), "max_ms": _percentile(row, "100%")}
            if row["Name"] == "Aggregated":
                total = item
            else:
                endpoints.append(item)
    failures = []
    if os.path.exists(prefix + "_failures.csv"):
        with open(prefix + "_failures.csv", newline="") as fh:
            failures = [{"method": r["Method"], "name": r["Name"], "error": r["Error"],
                         "occurrences": int(r["Occurrences"])} for r in csv.DictReader(fh)]
    return endpoints, total, failures


class _RssSampler(threading.Thread):
    """Samples the server's process-group RSS every half second: the peak and the last value."""

    def __init__(self, server: ServerProcess):
        """Start sampling once start() is called; stop with stop()."""
        super().__init__(daemon=True)
        self.server, self.peak_kb, self.last_kb = server, 0, 0
        self._halt = threading.Event()

    def run(self):
        """Sample until stopped."""
        while not self._halt.wait(0.5):
            self.last_kb = self.server.group_rss_kb()
            self.peak_kb = max(self.peak_kb, self.last_kb)

    def stop(self):
        """Stop sampling."""
        self._halt.set()
        self.join(5)


def _server_errors(log_path: str) -> list[str]:
    """The app's ERROR lines (500s, worker crashes) in gunicorn's log: any is a defect."""
    if not os.path.exists(log_path):
        return []
    found = []
    with open(log_path, errors="replace") as log:
        for line in log:
            if '"level": "ERROR"' in line or '"level": "CRITICAL"' in line or "Traceback" in line \
                    or "WORKER TIMEOUT" in line or "was sent SIGKILL" in line:
                found.append(line.strip()[:400])
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used, with their reaped children's.

    Read from /proc/<pid>/stat (utime, stime, cutime, cstime): a gunicorn worker that exits
    and is reaped carries its time into the master's cutime/cstime, so nothing is lost.
    """
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(f) for f in fields[11:15])  # after the name: utime stime cutime cstime are fields 14-17
    return total / _TICKS


def _run_locust(argv: list[str], *, env: dict, log, timeout: float) -> tuple[int, float, float]:
    """Run locust in its own process group; returns (exit status, wall seconds, its CPU seconds).

    Its CPU (user + system, its own and that of the processes it waited for, e.g. the
    --processes workers) comes from wait4's rusage; a run that overstays is killed, group and all.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
                            start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _check_op_log(url: str, workdir: str) -> tuple[list[str], int]:
    """Each device's op log holds seqs 1..n once each, all applied (exactly once under load); and their count."""
    from server.extensions import db
    from server.services import oplog
    app = app_for(url, workdir)
    problems = []
    with app.app_context():
        rows = oplog.sequence_totals()
        for device_id, count, high, not_applied in rows:
            if count != high or not_applied:
                problems.append(f"device {device_id}: {count} ops for seqs up to {high}, {not_applied} not applied")
        applied = sum(count for _, count, _, _ in rows)
        db.engine.dispose()
    return problems, applied


def run(*, engine: str = "sqlite", handhelds: int = 200, dispatchers: int = 3, seconds: float = 60,
        workers: int = 4, threads: int = 1, spawn_rate: float | None = None, steady: bool = False,
        pace: str = "compressed", processes: int = 1, provision_processes: int = 1,
        sync_wait: tuple[float, float] = (5.0, 15.0), dispatch_wait: tuple[float, float] = (1.0, 3.0),
        pg_base: str = "postgresql://postgres@127.0.0.1:5432/test", keep: str | None = None,
        say=print) -> dict:
    """Provision, serve, load, measure; returns the figures and every error found."""
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="loadtest-") as workdir, \
            throwaway_database(engine, workdir, pg_base) as url:
        if pace == "real":
            points, backlogs, each = real_pace_days(handhelds, seconds)
            budget, stops = max(each), sum(plan(n)[0] for n in each) // handhelds
            say(f"provisioning {handhelds} couriers on {engine} at real pace: up to {budget} ops each "
                f"({sum(each) // handhelds} on average), {stops} tasks on average")
        else:
            points, backlogs, budget = [], [], ops_budget(seconds, sync_wait)
            each, stops = budget, plan(budget)[0]
            say(f"provisioning {handhelds} couriers on {engine}: {budget} ops and {stops} tasks each")
        started = time.perf_counter()
        token, devices = provision_fleet(url, workdir, couriers=handhelds, ops_per_courier=each,
                                         processes=provision_processes if engine != "sqlite" else 1)
        provisioning = time.perf_counter() - started
        plan_path = os.path.join(workdir, "plan.json")
        with open(plan_path, "w") as fh:
            json.dump({"devices": [{k: v for k, v in asdict(d).items() if k not in ("ops", "files", "_stream")}
                                   for d in devices],
                       "courier_ids": [d.courier_id for d in devices], "dispatcher_token": token,
                       "dispatchers": dispatchers, "ops_per_device": budget, "pace": pace,
                       "ops_each": each if pace == "real" else None, "day_points": points, "backlogs": backlogs,
                       "processes": processes,
                       "sync_wait": list(sync_wait), "dispatch_wait": list(dispatch_wait)}, fh, default=str)
        log_path = os.path.join(workdir, "gunicorn.log")
        users = handhelds + dispatchers
        # Real pace: users start over the first minute, as a fleet's syncs spread over their minute.
        rate = spawn_rate or (max(1.0, users / 60) if pace == "real" else max(1.0, users / 5))
        prefix = os.path.join(workdir, "locust")
        with ServerProcess(url, workers=workers, threads=threads, attachments_dir=workdir + "/att",
                           log_path=log_path) as server:
            sampler = _RssSampler(server)
            sampler.start()
            say(f"gunicorn: {workers} workers x {threads} threads; locust: {handhelds} handhelds, "
                f"{dispatchers} dispatchers, {seconds:g} s (load average {_load()})")
            server_cpu_before = group_cpu_s(server.group_pids())
            with open(os.path.join(workdir, "locust.log"), "wb") as locust_log:
                returncode, wall, locust_cpu = _run_locust(
                    [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                     "--host", f"http://127.0.0.1:{server.port}", "--users", str(users),
                     "--spawn-rate", f"{rate:g}", "--run-time", f"{seconds:g}s", "--stop-timeout", "60",
                     "--csv", prefix, "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
                     *(["--processes", str(processes)] if processes > 1 else []),
                     # steady: latencies from the moment every user has started (locust's
                     # --reset-stats); errors are counted over the whole run either way.
                     *(["--reset-stats"] if steady else [])],
                    env={**os.environ, "FIELDOPS_LOAD_PLAN": plan_path,
                         "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
                    log=locust_log, timeout=seconds + 180)
            server_cpu = group_cpu_s(server.group_pids()) - server_cpu_before
            load_during = _load()
            sampler.stop()
            rss_end_kb = server.group_rss_kb()
        if returncode != 0:
            tail = open(os.path.join(workdir, "locust.log"), errors="replace").read()[-3000:]
            raise RuntimeError(f"locust exited with {returncode}:\n{tail}")
        endpoints, total, failures = _read_stats(prefix)
        counts = {}
        for path in glob.glob(os.path.join(workdir, "counts-*.json")):  # one per locust process
            with open(path) as fh:
                for key, value in json.load(fh).items():
                    counts[key] = counts.get(key, 0) + value
        log_errors = _server_errors(log_path)
        op_log_problems, applied = _check_op_log(url, workdir)
        if keep:
            os.makedirs(keep, exist_ok=True)
            for name in ("gunicorn.log", "locust.log", "locust_stats.csv", "locust_failures.csv"):
                if os.path.exists(os.path.join(workdir, name)):
                    with open(os.path.join(workdir, name), "rb") as src, open(os.path.join(keep, name), "wb") as dst:
                        dst.write(src.read())
    if not total.get("requests"):  # locust ran but its users never reached the server
        op_log_problems.append("no request was made")
    errors = sum(f["occurrences"] for f in failures) + len(log_errors) + len(op_log_problems)
    # Between what was acknowledged and what was sent: a push still in flight when locust stopped
    # its users may have been applied without its answer being read.
    if not counts["ops_applied"] <= applied <= counts["ops_sent"]:
        op_log_problems.append(f"the op log holds {applied} applied ops; the answers acknowledged "
                               f"{counts['ops_applied']} of the {counts['ops_sent']} sent")
        errors += 1
    return {"engine": engine, "pace": pace, "handhelds": handhelds, "dispatchers": dispatchers, "seconds": seconds,
            "workers": workers, "threads": threads, "provisioning_s": round(provisioning, 1),
            "tasks_per_device": stops, "endpoints": endpoints, "total": total, "failures": failures,
            "server_errors": log_errors[:20], "op_log_problems": op_log_problems[:20], "counts": counts,
            "ops_applied_per_s": counts["ops_applied"] / seconds, "syncs_per_s": round(counts["syncs"] / wall, 2),
            "processes": processes, "ops_in_op_log": applied,
            "rss_peak_mb": round(sampler.peak_kb / 1024, 1), "rss_end_mb": round(rss_end_kb / 1024, 1),
            "load_before": load_before, "load_during": load_during, "wall_s": round(wall, 1),
            "cpu": {"server_s": round(server_cpu, 1), "load_generator_s": round(locust_cpu, 1),
                    "cores": os.cpu_count(), "server_share": round(server_cpu / (wall * os.cpu_count()), 3),
                    "load_generator_share": round(locust_cpu / (wall * os.cpu_count()), 3)},
            "errors": errors}
