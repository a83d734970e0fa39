"""Measure how long the schedulers go without a leader when the leader is SIGKILLed.

Starts two `fieldops scheduler` processes on the database of FIELDOPS_DATABASE_URL
(migrated to head), waits for one to hold the lease, kills it, and prints the time
until the other holds it; then stops the other with SIGTERM and checks it released
the lease. Example:
    FIELDOPS_DATABASE_URL=postgresql://postgres@127.0.0.1/fo_failover python scripts/scheduler_failover.py --rounds 3
"""
import argparse
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, text


def holder(engine) -> int | None:
    """The pid holding an unexpired lease, if any."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT holder, expires_at FROM scheduler_lease WHERE name = 'scheduler'")).first()
    if row is None or row.holder is None:
        return None
    return int(row.holder.split(":")[1])


def wait(what, timeout: float, step: float = 0.05):
    """Poll until what() is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(step)
    raise SystemExit(f"nothing within {timeout} s")


def main() -> None:
    """Rounds of: two schedulers, kill the leader, time the takeover."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine = create_engine(os.environ["FIELDOPS_DATABASE_URL"])
    lease = int(os.environ.get("FIELDOPS_SCHEDULER_LEASE_SECONDS", "30"))
    command = [sys.executable, "-c", "from server.cli import main; main()", "scheduler"]
    env = dict(os.environ, FIELDOPS_LOG_LEVEL="WARNING")
    for round_ in range(1, args.rounds + 1):
        procs = {p.pid: p for p in (subprocess.Popen(command, env=env) for _ in range(2))}
        leader = wait(lambda procs=procs: holder(engine) in procs and holder(engine), 120)
        time.sleep(lease / 3 + 1)  # the leader has renewed at least once
        procs[leader].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[leader].wait()
        other = next(pid for pid in procs if pid != leader)
        wait(lambda other=other: holder(engine) == other, 3 * lease)
        took = time.monotonic() - killed
        procs[other].send_signal(signal.SIGTERM)
        code = procs[other].wait(60)
        print(f"round {round_}: lease {lease} s, bound {lease + lease / 3:.1f} s, taken over after {took:.1f} s; "
              f"SIGTERM exit {code}, lease released: {holder(engine) is None}")


if __name__ == "__main__":
    main()
