#!/usr/bin/env python
"""Load test: N handhelds and a few dispatchers (locust, headless) against gunicorn on a throw-away database.

Loopback only, bounded in time and users. Prints requests/s and p50/p95/p99 per
endpoint, every error (failed requests, refused ops, the server's ERROR log
lines, gaps in the op log) and the server's RSS summed over gunicorn's process
group. Exit status 0 only with zero errors.

  python scripts/loadtest.py                          # 200 handhelds, 3 dispatchers, 60 s, SQLite
  python scripts/loadtest.py --engine postgresql --handhelds 50 --seconds 30
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
    for f in r["failures"]:
        print(f"  failed {f['occurrences']}x {f['method']} {f['name']}: {f['error'][:300]}")
    for line in r["server_errors"]:
        print(f"  server log: {line}")
    for line in r["op_log_problems"]:
        print(f"  op log: {line}")
    print(f"errors {r['errors']}")


def main() -> int:
    """Parse, run each engine, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="sqlite", help="sqlite, postgresql, or both comma-separated")
    parser.add_argument("--handhelds", type=int, default=200)
    parser.add_argument("--dispatchers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60, help="how long locust runs (1-3600)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--sync-wait", type=_pair, default=(5.0, 15.0),
                        help="seconds a handheld works offline between syncs, MIN,MAX")
    parser.add_argument("--dispatch-wait", type=_pair, default=(1.0, 3.0),
                        help="seconds between a dispatcher's actions, MIN,MAX")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL to make the throw-away database on")
    parser.add_argument("--spawn-rate", type=float, default=None,
                        help="users started a second (default: all within 5 s)")
    parser.add_argument("--steady", action="store_true",
                        help="latencies from the end of the ramp (locust --reset-stats); errors over the whole run")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", help="copy gunicorn's and locust's logs and CSVs into this folder")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600 or not 0 < args.handhelds <= 2000 or not 0 <= args.dispatchers <= 50:
        parser.error("bounded runs only: 1-3600 s, 1-2000 handhelds, 0-50 dispatchers")
    results = []
    for engine in args.engine.split(","):
        r = loadtest.run(engine=engine, handhelds=args.handhelds, dispatchers=args.dispatchers, seconds=args.seconds,
                         workers=args.workers, threads=args.threads, sync_wait=args.sync_wait,
                         spawn_rate=args.spawn_rate, steady=args.steady,
                         dispatch_wait=args.dispatch_wait, pg_base=args.pg,
                         keep=f"{args.keep}/{engine}" if args.keep else None)
        report(r)
        results.append(r)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
