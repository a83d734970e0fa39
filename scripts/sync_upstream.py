#!/usr/bin/env python
"""The reference upstream sync (sync.upstream underneath): manifests in, delivered and refused handovers out.

    FIELDOPS_INTEGRATION_TOKEN=... python scripts/sync_upstream.py --server http://127.0.0.1:8000/api/v1 \\
        --state var/upstream --outbound var/upstream/out --inbound var/upstream/in

Schedule it (cron, or every few minutes); safe to kill and to run again. The token
is an `integration` staff token (`fieldops create-staff --role integration NAME`).
Exit status: 0 done; 1 the server refused (a bad token, say); 2 the server cannot be
reached or answered 5xx (the next run carries on from where this one stopped).
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.client import HttpTransport, Transport  # noqa: E402
from sync.upstream import UpstreamRefused, UpstreamSync  # noqa: E402


def main(argv: list[str] | None = None, *, transport: Transport | None = None) -> int:
    """Run one pass; print what it did as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("FIELDOPS_URL", "http://127.0.0.1:8000/api/v1"))
    parser.add_argument("--token", default=os.environ.get("FIELDOPS_INTEGRATION_TOKEN"),
                        help="integration token (default: $FIELDOPS_INTEGRATION_TOKEN)")
    parser.add_argument("--state", type=Path, required=True, help="folder keeping the event cursor")
    parser.add_argument("--outbound", type=Path, required=True, help="folder for handovers-*.jsonl")
    parser.add_argument("--inbound", type=Path, required=True, help="folder of manifests (*.csv, *.json)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("no token: pass --token or set FIELDOPS_INTEGRATION_TOKEN")
    upstream = UpstreamSync(transport or HttpTransport(args.server), token=args.token, state_dir=args.state,
                            outbound=args.outbound, inbound=args.inbound)
    try:
        report = upstream.run()
    except UpstreamRefused as exc:
        print(f"error: the server refused: {exc}", file=sys.stderr)
        return 1
    except ConnectionError as exc:
        print(f"error: cannot sync with {args.server}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"events_read": report.events_read, "handovers_written": report.handovers_written,
                      "cursor": report.cursor, "manifests": report.manifests}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
