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
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.process import ServerProcess, _rss_kb  # noqa: E402
from tools.loadgen import app_for, call, files_for, make_ops, provision, throwaway_database, upload  # noqa: E402
from tools.seaweed import BUCKET, SeaweedServer  # noqa: E402


def _scheduler(url: str, env: dict, workdir: str, name: str) -> subprocess.Popen:
    """`fieldops scheduler` for one host."""
    with open(os.path.join(workdir, f"{name}-scheduler.log"), "ab") as log:
        return subprocess.Popen([sys.executable, "-c", "from server.cli import main; main()", "scheduler"],
                                env=dict(os.environ, **env, FIELDOPS_DATABASE_URL=url,
                                         FIELDOPS_INSTANCE_DIR=os.path.join(workdir, name),
                                         FIELDOPS_LOG_LEVEL="WARNING"),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _push_all(base_url: str, devices, first: int, count: int, batch: int) -> int:
    """Upload each device's files, then push its ops first..first+count-1 in batches; ops applied."""
    applied = 0
    for device in devices:
        upload(base_url, device, files_for(device, first, count))
        for start in range(first, first + count, batch):
            ops = make_ops(device, start, min(batch, first + count - start))
            status, body = call(base_url, "POST", "/sync/push", device.token,
                                {"device_id": device.device_id, "ops": ops,
                                 "device_now": ops[-1]["device_time"]})
            if status != 200 or body.get("stopped_at") is not None:
                raise RuntimeError(f"push through {base_url}: {status} {str(body)[:300]}")
            applied += len(body["results"])
    return applied


def _pull_all(base_url: str, devices) -> int:
    """Each device's whole scope, page by page; changes read."""
    read = 0
    for device in devices:
        cursor = ""
        while True:
            status, page = call(base_url, "GET", "/sync/pull", device.token, query=f"?limit=1000{cursor}")
            if status != 200:
                raise RuntimeError(f"pull through {base_url}: {status} {str(page)[:300]}")
            read += len(page["changes"])
            cursor = f"&cursor={page['cursor']}"
            if not page["has_more"]:
                break
    return read


class ConnectionCount(threading.Thread):
    """Samples how many connections the database has, keeping the highest."""

    def __init__(self, pg_base: str, name: str):
        super().__init__(daemon=True)
        self.pg_base, self.name, self.most, self.stopping = pg_base, name, 0, threading.Event()

    def run(self):
        import psycopg
        with psycopg.connect(self.pg_base, autocommit=True) as conn:
            while not self.stopping.wait(0.2):
                count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                     (self.name,)).fetchone()[0]
                self.most = max(self.most, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--ops", type=int, default=400, help="ops per device (half through A, half through B)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--pg", default=os.environ.get("FIELDOPS_TEST_DATABASE_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    half = args.ops // 2
    with tempfile.TemporaryDirectory(prefix="fieldops-two-hosts-") as workdir:
        seaweed = SeaweedServer(os.path.join(workdir)).start()
        env = seaweed.env("two-hosts")
        try:
            with throwaway_database("postgresql", workdir, pg_base=args.pg) as url:
                app = app_for(url, workdir)
                _, devices = provision(app, couriers=args.devices, ops_per_courier=args.ops)
                with app.app_context():
                    from server.extensions import db
                    db.engine.dispose()
                connections = ConnectionCount(args.pg, url.rpartition("/")[2])
                connections.start()
                hosts = {name: ServerProcess(url, workers=args.workers, env=env,
                                             log_path=os.path.join(workdir, f"{name}-web.log"))
                         for name in ("A", "B")}
                schedulers = {name: _scheduler(url, env, workdir, name) for name in hosts}
                try:
                    for host in hosts.values():
                        host.start()
                    started = time.perf_counter()
                    applied = _push_all(hosts["A"].base_url, devices, 1, half, args.batch)
                    first_rate = applied / (time.perf_counter() - started)
                    started = time.perf_counter()
                    pulled = _pull_all(hosts["B"].base_url, devices)
                    pull_seconds = time.perf_counter() - started
                    worker_kb = max(hosts["A"].peak_rss_kb(), hosts["B"].peak_rss_kb())
                    scheduler_kb = max(_rss_kb(p.pid, "VmHWM") for p in schedulers.values())
                    hosts["A"].kill()
                    os.killpg(schedulers["A"].pid, signal.SIGKILL)
                    started = time.perf_counter()
                    applied_b = _push_all(hosts["B"].base_url, devices, half + 1, args.ops - half, args.batch)
                    second_rate = applied_b / (time.perf_counter() - started)
                    worker_kb = max(worker_kb, hosts["B"].peak_rss_kb())
                    scheduler_kb = max(scheduler_kb, _rss_kb(schedulers["B"].pid, "VmHWM"))
                finally:
                    for host in hosts.values():
                        host.kill()
                    for proc in schedulers.values():
                        if proc.poll() is None:
                            os.killpg(proc.pid, signal.SIGKILL)
                            proc.wait(10)
                    connections.stopping.set()
                    connections.join(5)
                listing = seaweed.client().list_objects_v2(Bucket=BUCKET, Prefix="two-hosts/")
                objects = listing.get("Contents", [])
                weed_kb = _rss_kb(seaweed.proc.pid, "VmHWM")
        finally:
            seaweed.stop()
    print(f"devices {args.devices}, ops/device {args.ops}, gunicorn workers/host {args.workers}, batch {args.batch}")
    print(f"push through A (B serving too): {applied} ops, {first_rate:,.0f} ops/s")
    print(f"pull through B: {pulled} changes in {pull_seconds:.2f} s")
    print(f"push through B after A was killed: {applied_b} ops, {second_rate:,.0f} ops/s")
    print(f"peak RSS: gunicorn worker {worker_kb / 1024:.0f} MiB, scheduler {scheduler_kb / 1024:.0f} MiB, "
          f"SeaweedFS {weed_kb / 1024:.0f} MiB")
    print(f"most PostgreSQL connections to the database at once: {connections.most}")
    print(f"bucket: {len(objects)} objects, {sum(o['Size'] for o in objects) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
