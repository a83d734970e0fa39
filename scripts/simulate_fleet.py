#!/usr/bin/env python
"""Simulate a fleet's day against a server and check that every device converged exactly once.

Against a running server:  simulate_fleet.py --server http://127.0.0.1:8000/api/v1 --token <dispatcher token>
Self-contained (spawns gunicorn on a throw-away database):  simulate_fleet.py --spawn [--engine postgresql]
Exit status 0 only if every check passed.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import fleet  # noqa: E402


def main() -> int:
    """Parse, run, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="API root of a running server")
    parser.add_argument("--token", help="a dispatcher's API token (with --server)")
    parser.add_argument("--spawn", action="store_true", help="start gunicorn on a throw-away database")
    parser.add_argument("--engine", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per courier")
    parser.add_argument("--steps", type=int, default=120, help="simulated steps in the day")
    parser.add_argument("--step-seconds", type=float, default=0.05, help="real seconds per step")
    parser.add_argument("--lose", type=float, default=0.15, help="share of answers lost")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    options = dict(devices=args.devices, tasks_per_device=args.tasks, steps=args.steps,
                   step_seconds=args.step_seconds, lose=args.lose, seed=args.seed)
    if args.spawn:
        from server.process import ServerProcess
        from tools.loadgen import app_for, throwaway_database
        with tempfile.TemporaryDirectory() as workdir, throwaway_database(args.engine, workdir) as url:
            app = app_for(url, workdir)
            with app.app_context():
                from server.services import staff
                _, token = staff.create(username="fleet-dispatch", role="dispatcher")
            with ServerProcess(url, workers=2, threads=4, attachments_dir=workdir + "/att",
                               log_path=workdir + "/gunicorn.log") as server:
                summary = fleet.run(server.base_url, token, workdir=workdir, **options)
    elif args.server and args.token:
        summary = fleet.run(args.server.rstrip("/"), args.token, **options)
    else:
        parser.error("give --spawn, or --server and --token")
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
