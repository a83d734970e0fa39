#!/usr/bin/env python
"""Outbox benchmark, per engine: committing events, reading the event feed, delivering webhooks to a receiver.

Emits N events (transactions of --per-commit), reads them back from the feed
in pages of 1,000, then W outbox workers (threads, each its own session) deliver
them to one `*` subscription: a receiver in a separate process that answers 200
at once. Prints events/s for each phase. Figures go into docs/benchmarks.md by
hand, with the command line that produced them.
"""
import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.loadgen import app_for, throwaway_database  # noqa: E402

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def run(engine: str, events_n: int, per_commit: int, workers: int) -> dict:
    """One engine's three figures."""
    from server.auth import SYSTEM
    from server.config import DEFAULT_FORBIDDEN_NETWORKS, parse_networks
    from server.extensions import db
    from server.services import events, webhooks

    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    port = int(receiver.stdout.readline())
    try:
        with tempfile.TemporaryDirectory() as workdir, throwaway_database(engine, workdir) as url:
            app = app_for(url, workdir)
            app.config["WEBHOOK_FORBIDDEN_NETWORKS"] = tuple(
                n for n in parse_networks(DEFAULT_FORBIDDEN_NETWORKS) if str(n) != "127.0.0.0/8")
            with app.app_context():
                webhooks.create(actor=SYSTEM, url=f"http://127.0.0.1:{port}/hook", event_types=["*"])
                started = time.perf_counter()
                for begin in range(0, events_n, per_commit):
                    for n in range(begin, min(begin + per_commit, events_n)):
                        events.emit("task.assigned", f"t-{n:026d}", {"task_id": f"t-{n:026d}", "courier_id": "c-x"})
                    db.session.commit()
                emit_s = time.perf_counter() - started
                started, cursor, read_n = time.perf_counter(), 0, 0
                while True:
                    page = events.read(cursor=cursor, types=None, limit=1000)
                    read_n += len(page["items"])
                    cursor = page["cursor"]
                    db.session.commit()
                    if not page["has_more"]:
                        break
                read_s = time.perf_counter() - started
                assert read_n == events_n, read_n
                webhooks._fan_out(webhooks.utcnow())
            app.config["WEBHOOK_MAX_PER_RUN"] = events_n
            sent = []

            def worker():
                with app.app_context():
                    sent.append(webhooks.deliver_due()["delivered"])

            started = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            deliver_s = time.perf_counter() - started
            assert sum(sent) == events_n, sent
            with app.app_context():
                db.engine.dispose()
    finally:
        receiver.terminate()
        receiver.wait()
    return {"engine": engine, "emit_per_s": events_n / emit_s, "read_per_s": events_n / read_s,
            "deliver_per_s": events_n / deliver_s, "per_worker": sent}


def main() -> None:
    """Parse arguments, run each engine, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--per-commit", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        r = run(engine, args.events, args.per_commit, args.workers)
        print(f"{r['engine']:10} emit+commit {r['emit_per_s']:8.0f} events/s   feed read {r['read_per_s']:8.0f} events/s"
              f"   delivered {r['deliver_per_s']:6.0f}/s with {args.workers} workers {r['per_worker']}")


if __name__ == "__main__":
    main()
