"""Two app hosts on this machine (scripts/two_hosts.py): one PostgreSQL database, one SeaweedFS bucket,
two gunicorns, two schedulers; a courier day pushed through A and pulled through B, A killed, the rest
through B; what each part used."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from server.process import ServerProcess, _rss_kb
from tools.loadgen import app_for, call, files_for, make_ops, provision, throwaway_database, upload
from tools.seaweed import BUCKET, SeaweedServer


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
        """Watch the database `name` on the server at pg_base."""
        super().__init__(daemon=True)
        self.pg_base, self.name, self.most, self.stopping = pg_base, name, 0, threading.Event()

    def run(self):
        """Sample every 0.2 s until told to stop."""
        import psycopg
        with psycopg.connect(self.pg_base, autocommit=True) as conn:
            while not self.stopping.wait(0.2):
                count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                     (self.name,)).fetchone()[0]
                self.most = max(self.most, count)



def run(*, devices: int, ops: int, workers: int, batch: int, pg_base: str) -> dict:
    """Start everything, work the day through A then B (A killed between), stop everything; the figures."""
    half = ops // 2
    with tempfile.TemporaryDirectory(prefix="fieldops-two-hosts-") as workdir:
        seaweed = SeaweedServer(workdir).start()
        env = seaweed.env("two-hosts")
        try:
            with throwaway_database("postgresql", workdir, pg_base=pg_base) as url:
                app = app_for(url, workdir)
                _, handhelds = provision(app, couriers=devices, ops_per_courier=ops)
                with app.app_context():
                    from server.extensions import db
                    db.engine.dispose()
                connections = ConnectionCount(pg_base, url.rpartition("/")[2])
                connections.start()
                hosts = {name: ServerProcess(url, workers=workers, env=env,
                                             log_path=os.path.join(workdir, f"{name}-web.log"))
                         for name in ("A", "B")}
                schedulers = {name: _scheduler(url, env, workdir, name) for name in hosts}
                try:
                    for host in hosts.values():
                        host.start()
                    started = time.perf_counter()
                    through_a = _push_all(hosts["A"].base_url, handhelds, 1, half, batch)
                    rate_a = through_a / (time.perf_counter() - started)
                    started = time.perf_counter()
                    pulled = _pull_all(hosts["B"].base_url, handhelds)
                    pull_seconds = time.perf_counter() - started
                    worker_kb = max(hosts["A"].peak_rss_kb(), hosts["B"].peak_rss_kb())
                    scheduler_kb = max(_rss_kb(p.pid, "VmHWM") for p in schedulers.values())
                    hosts["A"].kill()
                    os.killpg(schedulers["A"].pid, signal.SIGKILL)
                    started = time.perf_counter()
                    through_b = _push_all(hosts["B"].base_url, handhelds, half + 1, ops - half, batch)
                    rate_b = through_b / (time.perf_counter() - started)
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
                objects = seaweed.client().list_objects_v2(Bucket=BUCKET, Prefix="two-hosts/").get("Contents", [])
                weed_kb = _rss_kb(seaweed.proc.pid, "VmHWM")
        finally:
            seaweed.stop()
    return {"through_a": through_a, "rate_a": rate_a, "pulled": pulled, "pull_seconds": pull_seconds,
            "through_b": through_b, "rate_b": rate_b, "worker_mib": worker_kb / 1024,
            "scheduler_mib": scheduler_kb / 1024, "seaweed_mib": weed_kb / 1024,
            "connections": connections.most, "objects": len(objects),
            "object_kib": sum(o["Size"] for o in objects) / 1024}
