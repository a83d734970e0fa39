#!/usr/bin/env python
"""Sync benchmark: M devices push N ops through HTTP (gunicorn) and pull them back, per engine.

Prints push ops/s and p50/p99 per batch, pull changes/s, a device's catch-up from its cursor of
before the day's pushes (a day offline), peak worker RSS, the
raw insert floor for the same rows, and server memory for a 2,000- vs a
20,000-op offline backlog. Figures go into docs/benchmarks.md by hand, with
the command line that produced them.
"""
import argparse
import json
import re
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.process import ServerProcess  # noqa: E402
from tools.loadgen import (PROTOCOL_HEADERS, KintoServer, app_for, call, files_for, make_ops,  # noqa: E402
                           provision, throwaway_database, upload)


def _pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _each_device_at_once(devices, work) -> float:
    """Run work(device) in a thread per device; returns the wall time."""
    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def upload_phase(base_url, devices, first_seq, ops_per_device) -> dict:
    """Every device uploads the signatures and photos its ops name, all devices at once (before their push)."""
    files = {d.device_id: files_for(d, first_seq, ops_per_device) for d in devices}
    wall = _each_device_at_once(devices, lambda d: upload(base_url, d, files[d.device_id]))
    total = sum(len(f) for f in files.values())
    return {"files": total, "seconds": wall, "files_per_s": total / wall if wall else 0.0}


def push_phase(base_url, devices, ops_per_device, batch) -> dict:
    """Every device pushes its ops in batches, all devices at once.

    Bodies are encoded before the clock starts and answers are only checked for
    status and a stop in the timed loop: on a 2-core machine a load generator
    that encodes and parses ~400 KB of JSON per request competes with the server
    for CPU. verify_pushed() checks every op in the database afterwards.
    """
    bodies = {d.device_id: [json.dumps({"device_id": d.device_id, "device_now": datetime.now(timezone.utc).isoformat(),
                                         "ops": make_ops(d, seq, min(batch, ops_per_device - seq + 1))}).encode()
                             for seq in range(1, ops_per_device + 1, batch)] for d in devices}
    latencies, errors = [], []
    lock = threading.Lock()

    def run(device):
        headers = {**PROTOCOL_HEADERS, "Authorization": f"Bearer {device.token}"}
        for body in bodies[device.device_id]:
            started = time.perf_counter()
            req = urllib.request.Request(base_url + "/sync/push", data=body, method="POST", headers=headers)
            with urllib.request.urlopen(req, timeout=120) as resp:
                answer = resp.read()
            took = time.perf_counter() - started
            if b'"stopped_at"' in answer or b'"expected_seq"' in answer:
                errors.append(answer[:200])
                return
            with lock:
                latencies.append(took)

    wall = _each_device_at_once(devices, run)
    if errors:
        raise SystemExit(f"push failed: {errors[:3]}")
    total = ops_per_device * len(devices)
    return {"ops": total, "seconds": wall, "ops_per_s": total / wall,
            "p50_ms": _pct(latencies, 0.5) * 1000, "p99_ms": _pct(latencies, 0.99) * 1000}


def verify_pushed(url, workdir, devices, ops_per_device) -> dict[str, int]:
    """Every device's seqs 1..N are in the op log exactly once, all applied, and none of its work was outside a
    shift or on a van off the road (its days start with the checks and a shift); returns each device's tasks in scope.

    The rejected ops, if any, are named by type and code.
    """
    from sqlalchemy import func, select

    from schemas.vocab import WORK_CHECK_CODES
    from server.clock import local_day_start, utcnow
    from server.extensions import db
    from server.models import OpLog, Task, Violation
    from server.services import tasks
    app = app_for(url, workdir)
    scope = {}
    with app.app_context():
        day_start = local_day_start(utcnow())
        for device in devices:
            scope[device.device_id] = db.session.scalar(select(func.count()).select_from(Task).where(
                tasks.in_courier_scope(device.courier_id, day_start)))
            count, low, high = db.session.execute(
                select(func.count(), func.min(OpLog.seq), func.max(OpLog.seq))
                .where(OpLog.device_id == device.device_id, OpLog.in_sequence.is_(True),
                       OpLog.status == "applied")).one()
            if (count, low, high) != (ops_per_device, 1, ops_per_device):
                refused = db.session.execute(select(OpLog.seq, OpLog.type, OpLog.status, OpLog.result).where(
                    OpLog.device_id == device.device_id, OpLog.status != "applied").order_by(OpLog.seq).limit(5)).all()
                named = [(r.seq, r.type, r.status, (r.result or {}).get("code")) for r in refused]
                raise SystemExit(f"device {device.device_id}: op log has {count} applied ops "
                                 f"({low}..{high}), expected 1..{ops_per_device}; not applied: {named}")
            flagged = db.session.scalars(select(Violation.code).where(
                Violation.courier_id == device.courier_id, Violation.code.in_(WORK_CHECK_CODES)).limit(5)).all()
            if flagged:
                raise SystemExit(f"device {device.device_id}: work flagged {flagged}: the mix must work in its shifts")
        db.engine.dispose()
    return scope


def pull_phase(base_url, devices, page, rounds, scope) -> dict:
    """Every device pulls its whole scope from no cursor, rounds times over, all devices at once.

    scope: each device's tasks in scope (finished tasks of earlier days have left it).
    """
    counts, latencies = [], []

    def run(device):
        for _ in range(rounds):
            pull_scope(device)

    def pull_scope(device):
        cursor, n = None, 0
        while True:
            query = "?" + urllib.parse.urlencode({"limit": page, **({"cursor": cursor} if cursor else {})})
            started = time.perf_counter()
            status, body = call(base_url, "GET", "/sync/pull", device.token, query=query)
            latencies.append(time.perf_counter() - started)
            assert status == 200, body
            n += len(body["changes"])
            cursor = body["cursor"]
            if not body["has_more"]:
                break
        if n < scope[device.device_id]:
            raise SystemExit(f"device {device.device_id} pulled {n} changes, fewer than its "
                             f"{scope[device.device_id]} tasks in scope")
        counts.append(n)

    cpu = time.process_time()
    wall = _each_device_at_once(devices, run)
    return {"changes": sum(counts), "seconds": wall, "changes_per_s": sum(counts) / wall,
            "p50_ms": _pct(latencies, 0.5) * 1000, "p99_ms": _pct(latencies, 0.99) * 1000,
            "client_cpu_s": time.process_time() - cpu}


def pull_cursor(base_url, device, page) -> str:
    """The device pulls its whole scope; the cursor it is left with."""
    cursor = None
    while True:
        query = "?" + urllib.parse.urlencode({"limit": page, **({"cursor": cursor} if cursor else {})})
        status, body = call(base_url, "GET", "/sync/pull", device.token, query=query)
        assert status == 200, body
        cursor = body["cursor"]
        if not body["has_more"]:
            return cursor


def catch_up_phase(base_url, device, cursor, page) -> dict:
    """The device, alone, pulls from the cursor it held before the day's pushes (a day offline) to the end."""
    changes, pages = 0, 0
    started = time.perf_counter()
    while True:
        query = "?" + urllib.parse.urlencode({"limit": page, "cursor": cursor})
        status, body = call(base_url, "GET", "/sync/pull", device.token, query=query)
        assert status == 200, body
        assert not body.get("reset"), "the old cursor was reset"
        changes, pages, cursor = changes + len(body["changes"]), pages + 1, body["cursor"]
        if not body["has_more"]:
            break
    seconds = time.perf_counter() - started
    return {"changes": changes, "pages": pages, "seconds": seconds,
            "s_per_1000": seconds / changes * 1000 if changes else 0.0}


def raw_insert_floor(url, workdir, devices, ops_per_device) -> dict:
    """The same op-log rows, and an event row for each task op, inserted straight into the database in batches.

    No HTTP, no rules. Op ids are fresh: the pushed ops' rows are in the same op log.
    """
    from sqlalchemy import insert

    from server.clock import utcnow
    from server.extensions import db
    from server.models import Device, OpLog, TaskEvent
    app = app_for(url, workdir)
    with app.app_context():
        ghost = [Device(courier_id=d.courier_id, name="floor", token_hash=f"floor-{d.device_id}")
                 for d in devices]
        db.session.add_all(ghost)
        db.session.commit()
        started = time.perf_counter()
        for device, shadow in zip(devices, ghost, strict=True):
            tasks = set(device.task_ids)
            for first in range(1, ops_per_device + 1, 500):
                ops = make_ops(device, first, min(500, ops_per_device - first + 1))
                now = utcnow()
                db.session.execute(insert(OpLog), [
                    {"device_id": shadow.id, "courier_id": device.courier_id, "seq": op["seq"],
                     "op_id": str(uuid.uuid4()), "type": op["type"], "entity_id": op["entity_id"],
                     "payload": op["payload"], "payload_hash": "x" * 64, "received_at": now,
                     "status": "applied", "result": {"seq": op["seq"]}, "in_sequence": True} for op in ops])
                db.session.execute(insert(TaskEvent), [
                    {"task_id": op["entity_id"], "at": now, "kind": "note", "actor_kind": "courier",
                     "actor_id": device.courier_id, "text": op["payload"].get("text")} for op in ops
                    if op["entity_id"] in tasks])
                db.session.commit()
        wall = time.perf_counter() - started
        db.engine.dispose()
    total = ops_per_device * len(devices)
    return {"ops": total, "seconds": wall, "ops_per_s": total / wall}


def backlog_phase(base_url, server, device, backlogs, batch) -> list[dict]:
    """One device comes back with a large queue; worker peak RSS after each backlog size.

    Its signatures and photos are uploaded first, timed apart.
    """
    out, seq = [], 1
    for size in backlogs:
        uploads = upload_phase(base_url, [device], seq, size)
        started = time.perf_counter()
        end = seq + size
        while seq < end:
            ops = make_ops(device, seq, min(batch, end - seq))
            status, body = call(base_url, "POST", "/sync/push", device.token,
                                {"device_id": device.device_id, "ops": ops})
            assert status == 200 and body["last_seq"] == ops[-1]["seq"], body
            seq += len(ops)
        out.append({"backlog": size, "seconds": time.perf_counter() - started, "uploads": uploads,
                    "worker_peak_rss_mb": server.peak_rss_kb() / 1024})
    return out


def kinto_phase(devices, ops_per_device, batch, workers, workdir) -> dict:
    """The same records pushed through Kinto's /v1/batch, on its own database of the same PostgreSQL."""
    with throwaway_database("postgresql", workdir, migrate=False) as url:
        kinto = KintoServer(None, workdir, url, workers=workers).start()
        try:
            kinto.prepare([d.device_id for d in devices])
            latencies = []

            def run(device):
                for first in range(1, ops_per_device + 1, batch):
                    started = time.perf_counter()
                    kinto.push_batch(device.device_id, make_ops(device, first, min(batch, ops_per_device - first + 1)))
                    latencies.append(time.perf_counter() - started)

            wall = _each_device_at_once(devices, run)
        finally:
            kinto.stop()
    total = ops_per_device * len(devices)
    return {"ops": total, "seconds": wall, "ops_per_s": total / wall,
            "p50_ms": _pct(latencies, 0.5) * 1000, "p99_ms": _pct(latencies, 0.99) * 1000}


def read_phases(base_url) -> dict[str, int]:
    """SQLite's push read phases so far, by outcome, from /metrics (all workers; empty on PostgreSQL)."""
    with urllib.request.urlopen(base_url.removesuffix("/api/v1") + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    found = re.findall(r'^fieldops_sync_push_read_phases_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    return {outcome: int(float(count)) for outcome, count in found}


def run_engine(engine, args) -> dict:
    """All phases on one engine."""
    with tempfile.TemporaryDirectory() as workdir, throwaway_database(engine, workdir) as url:
        app = app_for(url, workdir)
        _, devices = provision(app, couriers=args.devices, tasks_per_courier=args.tasks, ops_per_courier=args.ops)
        _, (backlog_device,) = provision(app, couriers=1, tasks_per_courier=20, ops_per_courier=sum(args.backlog))
        with ServerProcess(url, workers=args.workers, attachments_dir=workdir + "/att",
                           log_path=workdir + "/gunicorn.log") as server:
            # Yesterday's cursor: the first device's, taken before the day's uploads and pushes.
            old_cursor = pull_cursor(server.base_url, devices[0], args.page)
            uploads = upload_phase(server.base_url, devices, 1, args.ops)
            push = push_phase(server.base_url, devices, args.ops, args.batch)
            push["read_phases"] = read_phases(server.base_url)
            scope = verify_pushed(url, workdir, devices, args.ops)
            # The first round is timed on its own: it includes each worker's first
            # pull (database connection, statement compilation); the steady-state
            # figure is the rounds after it.
            pull_first = pull_phase(server.base_url, devices, args.page, 1, scope)
            pull = pull_phase(server.base_url, devices, args.page, args.pull_rounds, scope)
            pull["first_round_per_s"] = pull_first["changes_per_s"]
            catch_up = catch_up_phase(server.base_url, devices[0], old_cursor, args.page)
            rss = server.peak_rss_kb() / 1024
            backlog = backlog_phase(server.base_url, server, backlog_device, args.backlog, 500) \
                if args.backlog else []
        floor = raw_insert_floor(url, workdir, devices, args.ops)
        kinto = kinto_phase(devices, args.ops, args.batch, args.workers, workdir) \
            if args.kinto and engine == "postgresql" else None
    return {"engine": engine, "uploads": uploads, "push": push, "pull": pull, "floor": floor, "rss_mb": rss, "backlog": backlog,
            "kinto": kinto, "catch_up": catch_up}


def main() -> int:
    """Parse arguments, run the engines, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--devices", type=int, default=10, help="M simulated devices")
    parser.add_argument("--ops", type=int, default=2000, help="N ops per device")
    parser.add_argument("--batch", type=int, default=250, help="ops per push (100-500)")
    parser.add_argument("--tasks", type=int, default=200, help="tasks in each device's scope")
    parser.add_argument("--page", type=int, default=1000, help="pull page size")
    parser.add_argument("--pull-rounds", type=int, default=10,
                        help="times each device pulls its whole scope (more rounds, steadier figure)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--kinto", action="store_true",
                        help="also push the same records through Kinto on PostgreSQL (installs it into .cache/kinto-venv)")
    parser.add_argument("--backlog", default="2000,20000",
                        help="offline backlogs to push in sequence (comma list; empty to skip)")
    args = parser.parse_args()
    args.backlog = [int(b) for b in args.backlog.split(",") if b]
    print(f"bench_sync: {args.devices} devices x {args.ops} ops, batch {args.batch}, "
          f"{args.tasks} tasks/device, {args.workers} gunicorn workers")
    for engine in args.engines.split(","):
        r = run_engine(engine, args)
        p, q, f, u = r["push"], r["pull"], r["floor"], r["uploads"]
        print(f"[{engine}] uploads {u['files']} signatures and photos in {u['seconds']:.1f}s "
              f"({u['files_per_s']:.0f} files/s), before the push")
        print(f"[{engine}] push  {p['ops_per_s']:8.0f} ops/s   ({p['ops']} ops in {p['seconds']:.1f}s; "
              f"per batch p50 {p['p50_ms']:.0f} ms, p99 {p['p99_ms']:.0f} ms)")
        if p["read_phases"]:
            print(f"[{engine}] push read phases (read, then write): "
                  + ", ".join(f"{n} {outcome}" for outcome, n in sorted(p["read_phases"].items())))
        print(f"[{engine}] pull  {q['changes_per_s']:8.0f} changes/s ({q['changes']} changes in {q['seconds']:.1f}s;"
              f" per page p50 {q['p50_ms']:.0f} ms, p99 {q['p99_ms']:.0f} ms; "
              f"first round, workers cold: {q['first_round_per_s']:.0f} changes/s; "
              f"load generator CPU {q['client_cpu_s']:.1f}s)")
        c = r["catch_up"]
        print(f"[{engine}] catch-up after a day offline: {c['changes']} changes in {c['pages']} pages, "
              f"{c['seconds'] * 1000:.0f} ms ({c['s_per_1000']:.2f} s per 1,000 changes)")
        print(f"[{engine}] floor {f['ops_per_s']:8.0f} ops/s raw insert of the same rows "
              f"(engine at {100 * p['ops_per_s'] / f['ops_per_s']:.0f}% of the floor)")
        print(f"[{engine}] peak worker RSS after push+pull: {r['rss_mb']:.0f} MB")
        if r["kinto"]:
            k = r["kinto"]
            print(f"[{engine}] kinto {k['ops_per_s']:8.0f} records/s via /v1/batch (same records, "
                  f"{args.workers} gunicorn workers; p50 {k['p50_ms']:.0f} ms, p99 {k['p99_ms']:.0f} ms); "
                  f"Fieldops/Kinto = {p['ops_per_s'] / k['ops_per_s']:.2f}")
        for b in r["backlog"]:
            print(f"[{engine}] backlog {b['backlog']:6d} ops pushed in {b['seconds']:.1f}s "
                  f"(its {b['uploads']['files']} files uploaded first in {b['uploads']['seconds']:.1f}s); "
                  f"worker peak RSS {b['worker_peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
