"""Two app hosts on this machine, and what each part uses: one PostgreSQL (a throw-away database), one
SeaweedFS bucket, two gunicorns, two schedulers.

Handhelds work a courier day (tools/loadgen.py: handovers with signatures and photos,
checklists, pickups): the first half of each device's ops is uploaded and pushed through
host A and pulled through host B; then A is SIGKILLed (gunicorn and scheduler) and the
second half goes through B alone. Prints the push rate of each phase, the peak RSS of a
gunicorn worker, a scheduler and SeaweedFS, the most PostgreSQL connections the run held,
and the bucket's bytes. Loopback only; everything it starts is stopped, the database dropped.

    python scripts/two_hosts.py --devices 10 --ops 400 --workers 2
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.two_hosts import run  # noqa: E402


def main() -> None:
    """Parse the sizes, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--ops", type=int, default=400, help="ops per device (half through A, half through B)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--pg", default=os.environ.get("FIELDOPS_TEST_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    f = run(devices=args.devices, ops=args.ops, workers=args.workers, batch=args.batch, pg_base=args.pg)
    print(f"devices {args.devices}, ops/device {args.ops}, gunicorn workers/host {args.workers}, batch {args.batch}")
    print(f"push through A (B serving too): {f['through_a']} ops, {f['rate_a']:,.0f} ops/s")
    print(f"pull through B: {f['pulled']} changes in {f['pull_seconds']:.2f} s")
    print(f"push through B after A was killed: {f['through_b']} ops, {f['rate_b']:,.0f} ops/s")
    print(f"peak RSS: gunicorn worker {f['worker_mib']:.0f} MiB, scheduler {f['scheduler_mib']:.0f} MiB, "
          f"SeaweedFS {f['seaweed_mib']:.0f} MiB")
    print(f"most PostgreSQL connections to the database at once: {f['connections']}")
    print(f"bucket: {f['objects']} objects, {f['object_kib']:.0f} KiB")


if __name__ == "__main__":
    main()
