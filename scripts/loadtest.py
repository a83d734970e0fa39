#!/usr/bin/env python
"""Load test: N handhelds and a few dispatchers (locust, headless) against gunicorn on a throw-away database.

Loopback only, bounded in time and users. Prints requests/s and p50/p95/p99 per
endpoint, every error (failed requests, refused ops, the server's ERROR log
lines, gaps in the op log) and the server's RSS summed over gunicorn's process
group. Exit status 0 only with zero errors.

  python scripts/loadtest.py                          # 200 handhelds, 3 dispatchers, 60 s, SQLite
  python scripts/loadtest.py --engine postgresql --handhelds 50 --seconds 30
  python scripts/loadtest.py --engine postgresql --pace real --handhelds 1000 --seconds 300
  python scripts/loadtest.py --engine postgresql --pace real --handhelds 500 --ramp-to 5000 --seconds 240

--pace real: each handheld's ops accrue at a courier's real rate (the stream's working day, ~940 ops over
~11.7 hours, from a random point of it; one in twenty back from a dead zone with a backlog), it syncs every
50-70 s, the users start over the first minute and latencies are the steady state's. --ramp-to N repeats
the run with 1.5x the handhelds each time (a fresh database each) until N, an error, or push p99 over
--p99-limit, and prints the last passing point in syncs/s and couriers. Locust runs in its own process
group; its CPU seconds are printed beside gunicorn's and the run's wall time.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import loadtest  # noqa: E402


def _pair(text: str) -> tuple[float, float]:
    """'5,15' -> (5.0, 15.0)."""
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def _ms(value: float | None) -> str:
    """A latency column."""
    return "-" if value is None else f"{value:.0f}"


def report(r: dict) -> None:
    """The figures as a table, then every error."""
    print(f"\n[{r['engine']}] {r['handhelds']} handhelds + {r['dispatchers']} dispatchers for {r['seconds']:g} s, "
          f"gunicorn {r['workers']} workers x {r['threads']} threads (provisioned in {r['provisioning_s']} s; "
          f"load average before {r['load_before']}, at the end {r['load_during']})")
    print(f"{'endpoint':42} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'errors':>6}")
    for e in sorted(r["endpoints"], key=lambda e: -e["requests"]) + [r["total"]]:
        name = "all" if e["name"] == "Aggregated" else f"{e['method']} {e['name'].split(' ', 1)[-1]}"
        print(f"{name:42} {e['requests']:8d} {e['rps']:7.1f} {_ms(e['p50_ms']):>7} {_ms(e['p95_ms']):>7} "
              f"{_ms(e['p99_ms']):>7} {_ms(e['max_ms']):>7} {e['failures']:6d}")
    c = r["counts"]
    print(f"ops applied {c['ops_applied']} of {c['ops_pushed']} pushed ({r['ops_applied_per_s']:.0f} ops/s), "
          f"busy stops {c['busy_stops']}, syncs {c['syncs']}, changes pulled {c['changes_pulled']}, "
          f"tasks created by dispatch {c['tasks_created']}, devices out of ops {c['devices_out_of_ops']}")
    print(f"server RSS (gunicorn's process group): peak {r['rss_peak_mb']:.0f} MB, at the end {r['rss_end_mb']:.0f} MB")
    cpu = r["cpu"]
    print(f"CPU over {r['wall_s']:g} s wall on {cpu['cores']} cores: server (gunicorn's process group) "
          f"{cpu['server_s']:g} s = {100 * cpu['server_share']:.0f}% of the cores, load generator (locust's "
          f"process group) {cpu['load_generator_s']:g} s = "
          f"{100 * cpu['load_generator_share']:.0f}%; {r['syncs_per_s']:g} syncs/s")
    for f in r["failures"]:
        print(f"  failed {f['occurrences']}x {f['method']} {f['name']}: {f['error'][:300]}")
    for line in r["server_errors"]:
        print(f"  server log: {line}")
    for line in r["op_log_problems"]:
        print(f"  op log: {line}")
    print(f"errors {r['errors']}")


def _push(r: dict) -> dict:
    """The push endpoint's row (empty if no push was made)."""
    return next((e for e in r["endpoints"] if e["name"] == "POST /sync/push"), {})


def _passes(r: dict, limit_ms: float) -> bool:
    """A step passes with zero errors and a measured push p99 within the limit (no push measured: not a pass)."""
    p99 = _push(r).get("p99_ms")
    return r["errors"] == 0 and p99 is not None and p99 <= limit_ms


def knee(runs: list[dict], limit_ms: float) -> None:
    """Each step of a --ramp-to, and the last one with zero errors and push p99 within the limit."""
    print(f"\nramp ({runs[0]['engine']}, {runs[0]['pace']} pace): push p99 limit {limit_ms:g} ms")
    print(f"{'couriers':>8} {'syncs/s':>8} {'push p50':>8} {'p95':>6} {'p99':>6} {'server CPU':>10} {'locust CPU':>10} "
          f"{'errors':>6}")
    passing = None
    for r in runs:
        p = _push(r)
        print(f"{r['handhelds']:8d} {r['syncs_per_s']:8.1f} {_ms(p.get('p50_ms')):>8} {_ms(p.get('p95_ms')):>6} "
              f"{_ms(p.get('p99_ms')):>6} {100 * r['cpu']['server_share']:9.0f}% "
              f"{100 * r['cpu']['load_generator_share']:9.0f}% {r['errors']:6d}")
        if _passes(r, limit_ms):
            passing = r
    if passing:
        print(f"last passing point: {passing['handhelds']} couriers, {passing['syncs_per_s']:g} syncs/s "
              f"(push p99 {_ms(_push(passing).get('p99_ms'))} ms)")
    else:
        print("no passing point: the first step already failed, or measured no push (run longer than the sync "
              "wait plus the users' start)")
    if passing is runs[-1] and _passes(runs[-1], limit_ms):
        print("the limit was not crossed: that point is the top of the ramp, not the knee")


def main() -> int:
    """Parse, run each engine, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="sqlite", help="sqlite, postgresql, or both comma-separated")
    parser.add_argument("--handhelds", type=int, default=200)
    parser.add_argument("--dispatchers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60, help="how long locust runs (1-3600)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--sync-wait", type=_pair, default=None,
                        help="seconds a handheld works offline between syncs, MIN,MAX (5,15; real pace 50,70)")
    parser.add_argument("--dispatch-wait", type=_pair, default=(1.0, 3.0),
                        help="seconds between a dispatcher's actions, MIN,MAX")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL to make the throw-away database on")
    parser.add_argument("--spawn-rate", type=float, default=None,
                        help="users started a second (default: all within 5 s)")
    parser.add_argument("--steady", action="store_true",
                        help="latencies from the end of the ramp (locust --reset-stats); errors over the whole run")
    parser.add_argument("--pace", choices=("compressed", "real"), default="compressed",
                        help="compressed: a sync pushes 5-40 ops (--sync-wait apart); real: a courier's real rate, "
                             "a sync every 50-70 s (unless --sync-wait is given), steady-state latencies")
    parser.add_argument("--provision-processes", type=int, default=2,
                        help="processes provisioning the couriers on PostgreSQL (SQLite: always one)")
    parser.add_argument("--ramp-to", type=int, default=0,
                        help="raise the handhelds 1.5x a run up to this many, stopping at push p99 > --p99-limit")
    parser.add_argument("--p99-limit", type=float, default=250, help="push p99 (ms) a --ramp-to step must stay within")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", help="copy gunicorn's and locust's logs and CSVs into this folder")
    args = parser.parse_args()
    args.sync_wait = args.sync_wait or ((50.0, 70.0) if args.pace == "real" else (5.0, 15.0))
    args.steady = args.steady or args.pace == "real"  # real pace: users start over the first minute
    if args.seconds < 2 * args.sync_wait[1] + 60:
        print(f"note: {args.seconds:g} s is short for syncs every {args.sync_wait[0]:g}-{args.sync_wait[1]:g} s: "
              f"after the users' start few syncs are measured (latencies and rates from a handful of requests)",
              file=sys.stderr)
    most = max(args.handhelds, args.ramp_to)
    if not 1 <= args.seconds <= 3600 or not 0 < most <= 10000 or not 0 <= args.dispatchers <= 50 \
            or not 1 <= args.provision_processes <= 8:
        parser.error("bounded runs only: 1-3600 s, 1-10000 handhelds, 0-50 dispatchers, 1-8 provisioning processes")
    results = []
    for engine in args.engine.split(","):
        handhelds, runs = args.handhelds, []
        while True:
            r = loadtest.run(engine=engine, handhelds=handhelds, dispatchers=args.dispatchers, seconds=args.seconds,
                             workers=args.workers, threads=args.threads, sync_wait=args.sync_wait,
                             spawn_rate=args.spawn_rate, steady=args.steady, pace=args.pace,
                             provision_processes=args.provision_processes,
                             dispatch_wait=args.dispatch_wait, pg_base=args.pg,
                             keep=f"{args.keep}/{engine}-{handhelds}" if args.keep else None)
            report(r)
            runs.append(r)
            if not args.ramp_to or handhelds >= args.ramp_to or not _passes(r, args.p99_limit):
                break
            handhelds = min(args.ramp_to, int(handhelds * 1.5))
        if args.ramp_to:
            knee(runs, args.p99_limit)
        results += runs
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
