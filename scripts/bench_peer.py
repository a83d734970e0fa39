#!/usr/bin/env python
"""Fieldops against a peer: the same offline-queued records pushed and pulled back through Fieldops and Kinto.

M devices each push N records (the op stream of tools/loadgen.py: the
realistic courier day) in batches, all devices at once, then pull back,
first through Fieldops (gunicorn, /sync/push and /sync/pull), then through
Mozilla's Kinto (gunicorn, /v1/batch and the collection's records), same
machine, same run, same PostgreSQL server, each on a throw-away database of
its own. Kinto is installed from PyPI into its own venv (.cache/kinto-venv,
made on first use, pinned) and configured by `kinto init --backend
postgresql` and `kinto migrate`. The raw insert floor inserts the same rows
into a plain table with psycopg, executemany and COPY, in the same batches
and with the same concurrency. Prints both rates, their ratio, and Fieldops's
rate as a fraction of the floor.

  python scripts/bench_peer.py                                   # 10 devices x 1,000 records, batches of 250
  python scripts/bench_peer.py --engine sqlite --no-kinto        # Fieldops on SQLite and an sqlite3 floor only
"""
import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_sync import _each_device_at_once, _pct, pull_phase, push_phase, upload_phase, verify_pushed  # noqa: E402

from server.process import ServerProcess  # noqa: E402
from tools.loadgen import KINTO_VERSION, KintoServer, app_for, make_ops, provision, throwaway_database  # noqa: E402

_FLOOR_TABLE = """CREATE TABLE {name} (
    device_id text NOT NULL, seq integer NOT NULL, op_id uuid NOT NULL UNIQUE, type text NOT NULL,
    entity_id text NOT NULL, device_time timestamptz NOT NULL, payload jsonb NOT NULL,
    PRIMARY KEY (device_id, seq))"""


def _load() -> str:
    """The machine's load averages (1, 5, 15 min)."""
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _batches(devices, records: int, batch: int) -> dict[str, list[list[tuple]]]:
    """Each device's records as rows (payload as JSON text), in the push's batches."""
    return {d.device_id: [[(d.device_id, op["seq"], op["op_id"], op["type"], op["entity_id"], op["device_time"],
                            orjson.dumps(op["payload"]).decode()) for op in make_ops(d, first, min(batch, records - first + 1))]
                          for first in range(1, records + 1, batch)] for d in devices}


def floor_postgresql(url: str, devices, records: int, batch: int) -> dict:
    """The same rows into a plain table, one transaction per batch, one connection per device, all at once."""
    import psycopg
    rows = _batches(devices, records, batch)
    out = {}
    for how in ("executemany", "copy"):
        name = f"floor_{how}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_FLOOR_TABLE.format(name=name))
        connections = {d.device_id: psycopg.connect(url) for d in devices}

        def insert(device, how=how, name=name, connections=connections):
            conn = connections[device.device_id]
            for chunk in rows[device.device_id]:
                with conn.transaction(), conn.cursor() as cur:
                    if how == "executemany":
                        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, %s, %s)", chunk)
                    else:
                        with cur.copy(f"COPY {name} FROM STDIN") as copy:
                            for row in chunk:
                                copy.write_row(row)

        wall = _each_device_at_once(devices, insert)
        for conn in connections.values():
            conn.close()
        out[how] = records * len(devices) / wall
    return out


def floor_sqlite(workdir: str, devices, records: int, batch: int) -> dict:
    """The same rows into a plain table of a WAL file with synchronous=FULL (as the server's), executemany."""
    rows = _batches(devices, records, batch)
    path = f"{workdir}/floor.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_FLOOR_TABLE.format(name="floor").replace("uuid", "text").replace("jsonb", "text")
                     .replace("timestamptz", "text"))
    lock = threading.Lock()  # one writer at a time, as SQLite allows; waiting in Python, not in busy retries

    def insert(device):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        for chunk in rows[device.device_id]:
            with lock:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO floor VALUES (?, ?, ?, ?, ?, ?, ?)", chunk)
                conn.execute("COMMIT")
        conn.close()

    wall = _each_device_at_once(devices, insert)
    return {"executemany": records * len(devices) / wall}


def kinto_phase(devices, records: int, batch: int, page: int, rounds: int, workers: int, workdir: str,
                venv: str | None) -> dict:
    """The same records through Kinto: pushed as /v1/batch creations, pulled back a page at a time."""
    with throwaway_database("postgresql", workdir, migrate=False) as url:
        kinto = KintoServer(venv, workdir, url, workers=workers).start()
        try:
            kinto.prepare([d.device_id for d in devices])
            latencies = []

            def push(device):
                for first in range(1, records + 1, batch):
                    ops = make_ops(device, first, min(batch, records - first + 1))
                    started = time.perf_counter()
                    kinto.push_batch(device.device_id, ops)
                    latencies.append(time.perf_counter() - started)

            wall = _each_device_at_once(devices, push)
            pulled = []

            def pull(device):
                for _ in range(rounds):
                    count = kinto.pull_records(device.device_id, page)
                    if count != records:
                        raise SystemExit(f"kinto: {device.device_id} pulled {count} records, pushed {records}")
                    pulled.append(count)

            pull_wall = _each_device_at_once(devices, pull)
        finally:
            kinto.stop()
    total = records * len(devices)
    return {"records": total, "seconds": wall, "records_per_s": total / wall, "p50_ms": _pct(latencies, 0.5) * 1000,
            "p99_ms": _pct(latencies, 0.99) * 1000, "pulled": sum(pulled), "pull_per_s": sum(pulled) / pull_wall,
            "pulls_per_s": len(pulled) / pull_wall}


def fieldops_phase(engine: str, args, workdir: str) -> dict:
    """Fieldops under gunicorn: uploads (timed apart), the push, the check, the pull back; then the floor."""
    with throwaway_database(engine, workdir, args.pg) as url:
        _, devices = provision(app_for(url, workdir), couriers=args.devices, ops_per_courier=args.records)
        with ServerProcess(url, workers=args.workers, attachments_dir=workdir + "/att",
                           log_path=workdir + "/gunicorn.log") as server:
            uploads = upload_phase(server.base_url, devices, 1, args.records)
            push = push_phase(server.base_url, devices, args.records, args.batch)
            scope = verify_pushed(url, workdir, devices, args.records)
            pull = pull_phase(server.base_url, devices, args.page, args.pull_rounds, scope)
            pull["pulls_per_s"] = len(devices) * args.pull_rounds / pull["seconds"]
        floor = floor_postgresql(url, devices, args.records, args.batch) if engine == "postgresql" \
            else floor_sqlite(workdir, devices, args.records, args.batch)
    return {"uploads": uploads, "push": push, "pull": pull, "floor": floor, "devices": devices}


def run(args) -> dict:
    """Fieldops, the floor, then Kinto (PostgreSQL only), one after the other on the same machine."""
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as workdir:
        fieldops = fieldops_phase(args.engine, args, workdir)
        load_mid = _load()
        kinto = None
        if args.engine == "postgresql" and not args.no_kinto:
            kinto = kinto_phase(fieldops["devices"], args.records, args.batch, args.page, args.pull_rounds,
                                args.workers, workdir, args.kinto_venv)
    del fieldops["devices"]
    floor = max(fieldops["floor"].values())
    result = {"engine": args.engine, "devices": args.devices, "records": args.records, "batch": args.batch,
              "workers": args.workers, "fieldops": fieldops, "kinto": kinto,
              "fieldops_share_of_floor": fieldops["push"]["ops_per_s"] / floor,
              "load": [load_before, load_mid, _load()]}
    if kinto:
        result["push_ratio"] = fieldops["push"]["ops_per_s"] / kinto["records_per_s"]
        result["pull_ratio"] = fieldops["pull"]["pulls_per_s"] / kinto["pulls_per_s"]
    return result


def report(r: dict) -> None:
    """The figures, one per line."""
    f, p, q = r["fieldops"], r["fieldops"]["push"], r["fieldops"]["pull"]
    print(f"bench_peer [{r['engine']}]: {r['devices']} devices x {r['records']} records, batches of {r['batch']}, "
          f"{r['workers']} gunicorn workers each; load average before / between / after: {' / '.join(r['load'])}")
    print(f"fieldops  push {p['ops_per_s']:8.0f} records/s  ({p['ops']} in {p['seconds']:.1f} s; per batch p50 "
          f"{p['p50_ms']:.0f} ms, p99 {p['p99_ms']:.0f} ms; its {f['uploads']['files']} files uploaded first, "
          f"{f['uploads']['seconds']:.1f} s)")
    print(f"fieldops  pull {q['changes_per_s']:8.0f} changes/s  ({q['pulls_per_s']:.1f} whole-scope pulls/s: "
          f"{q['changes']} changes, the devices' tasks and shifts as the records left them)")
    floors = ", ".join(f"{how} {rate:.0f} rows/s" for how, rate in f["floor"].items())
    print(f"floor     {floors} into a plain table; Fieldops push at {100 * r['fieldops_share_of_floor']:.1f}% "
          f"of the best")
    k = r["kinto"]
    if k:
        print(f"kinto     push {k['records_per_s']:8.0f} records/s  (Kinto {KINTO_VERSION}, /v1/batch; per batch p50 "
              f"{k['p50_ms']:.0f} ms, p99 {k['p99_ms']:.0f} ms)")
        print(f"kinto     pull {k['pull_per_s']:8.0f} records/s  ({k['pulls_per_s']:.1f} whole-collection pulls/s)")
        print(f"ratio     push Fieldops/Kinto = {r['push_ratio']:.2f}; whole pulls Fieldops/Kinto = "
              f"{r['pull_ratio']:.2f}")
    else:
        print("kinto     not run" + (" (Kinto's backend here is PostgreSQL)" if r["engine"] != "postgresql" else ""))


def main() -> int:
    """Parse, run, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="postgresql", choices=("postgresql", "sqlite"),
                        help="Fieldops's database (Kinto runs on PostgreSQL only)")
    parser.add_argument("--devices", type=int, default=10, help="M devices pushing at once")
    parser.add_argument("--records", type=int, default=1000, help="N offline-queued records per device")
    parser.add_argument("--batch", type=int, default=250, help="records per push (Kinto allows 500 a batch here)")
    parser.add_argument("--page", type=int, default=1000, help="page size when pulling back")
    parser.add_argument("--pull-rounds", type=int, default=3, help="whole pulls per device")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, for each server")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL to make the throw-away databases on")
    parser.add_argument("--no-kinto", action="store_true", help="Fieldops and the floor only")
    parser.add_argument("--kinto-venv", help="where Kinto's venv is (made if missing); default .cache/kinto-venv")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if not (1 <= args.devices <= 200 and 1 <= args.records <= 100_000 and 1 <= args.batch <= 500):
        parser.error("1-200 devices, 1-100,000 records, batches of 1-500")
    result = run(args)
    report(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
