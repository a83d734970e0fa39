#!/usr/bin/env python
"""A handheld from the command line: enroll, queue ops, sync, show state (sync.client underneath)."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.client import Handheld, HttpTransport  # noqa: E402


def main(argv=None) -> int:
    """Parse the command and run it against the store file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="handheld.sqlite3", help="local store file")
    parser.add_argument("--server", default="http://127.0.0.1:8000/api/v1")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="enroll with a one-time code")
    enroll.add_argument("code")
    enroll.add_argument("--name", default="cli-handheld")
    note = sub.add_parser("note", help="queue a note on a task")
    note.add_argument("task_id")
    note.add_argument("text")
    note.add_argument("--photo", action="append", default=[], help="JPEG/PNG file to attach")
    arrive = sub.add_parser("arrive", help="queue an arrival at a task's stop")
    arrive.add_argument("task_id")
    arrive.add_argument("lat", type=float)
    arrive.add_argument("lon", type=float)
    sub.add_parser("sync", help="push the queue, pull changes")
    sub.add_parser("show", help="print the local queue and store")
    args = parser.parse_args(argv)

    handheld = Handheld(args.store, HttpTransport(args.server))
    if args.command == "enroll":
        print(f"enrolled as {handheld.enroll(args.code, args.name)}")
    elif args.command == "note":
        shas = [handheld.add_blob(Path(p).read_bytes()) for p in args.photo]
        print(f"queued seq {handheld.queue('task.note', args.task_id, {'text': args.text, 'photos': shas}, blobs=shas)}")
    elif args.command == "arrive":
        print(f"queued seq {handheld.queue('stop.arrive', args.task_id, {'lat': args.lat, 'lon': args.lon})}")
    elif args.command == "sync":
        print(json.dumps(handheld.sync(), indent=2))
    elif args.command == "show":
        entities = handheld.entities()
        print(json.dumps({
            "device_id": handheld.device_id, "pending": handheld.pending(),
            "results": handheld.results(), "checksum": handheld.checksum(),
            "entities": {f"{e}:{i}": {"version": v["version"], "status": v["data"].get("status")}
                         for (e, i), v in sorted(entities.items())}}, indent=2, default=str))
    handheld.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
