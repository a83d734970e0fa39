#!/usr/bin/env python
"""What recording metrics costs, in process: one 250-op push batch, and one request.

Run it twice to compare single-process and multiprocess (gunicorn) mode:
    python scripts/bench_metrics.py
    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) python scripts/bench_metrics.py
"""
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import metrics  # noqa: E402

BATCHES, REQUESTS = 2000, 20000


def main() -> None:
    """Time the record calls the push route and every request make."""
    mode = "multiprocess" if "PROMETHEUS_MULTIPROC_DIR" in os.environ else "single-process"
    ops = [{"seq": i, "type": "task.note"} for i in range(1, 251)]
    response = {"results": [{"seq": i, "status": "applied"} for i in range(1, 251)]}
    seconds = timeit.timeit(lambda: metrics.observe_push(ops=ops, response=response, known_types={"task.note"}),
                            number=BATCHES)
    print(f"{mode}: observe_push, 250 ops: {seconds / BATCHES * 1e6:.1f} µs per batch")

    def one_request():
        metrics.HTTP_REQUESTS.labels("/api/v1/sync/push", "POST", "2xx").inc()
        metrics.HTTP_LATENCY.labels("/api/v1/sync/push", "POST").observe(0.1)
    seconds = timeit.timeit(one_request, number=REQUESTS)
    print(f"{mode}: request counter + latency histogram: {seconds / REQUESTS * 1e6:.1f} µs per request")


if __name__ == "__main__":
    main()
