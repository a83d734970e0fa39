#!/usr/bin/env python
"""A handheld from the command line: enroll, queue ops, sync, show state (sync.client underneath).

Exit status: 0 done; 1 the server refused (its problem's title, detail and code
are printed on one line) or the store is not enrolled; 2 the server cannot be reached.
"""
import argparse
import json
import os
import socket
import sqlite3
import sys
import urllib.error
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync.client import Handheld, HttpTransport, Reply, SyncFailed, Transport  # noqa: E402


class Unreachable(Exception):
    """Nothing answers at the server's address: retrying will not help a person at a prompt."""


class CliTransport:
    """Wraps the client's transport: fails fast when nothing listens, and notes what the server said."""

    def __init__(self, inner: Transport, server: str):
        """Observe the inner transport's requests to `server`."""
        self.inner, self.server = inner, server
        self.problem: Reply | None = None
        self.results: dict[int, dict] = {}
        self.pulled = 0

    def request(self, method, path, *, headers, body=None, query=None) -> Reply:
        """Send; a refused connection or an unknown host ends the command, other failures are retried."""
        try:
            reply = self.inner.request(method, path, headers=headers, body=body, query=query)
        except ConnectionError as exc:
            reason = getattr(exc.__cause__, "reason", exc.__cause__)
            if isinstance(reason, ConnectionRefusedError):
                raise Unreachable(f"cannot reach {self.server}: connection refused") from exc
            if isinstance(reason, socket.gaierror):
                raise Unreachable(f"cannot reach {self.server}: unknown host") from exc
            raise
        # The refusal a SyncFailed is about is always the latest answer (a HEAD's 404 is not one).
        self.problem = reply if reply.status >= 400 else None
        if path == "/sync/push" and reply.status == 200:
            self.results.update((r["seq"], r) for r in reply.json()["results"])
        elif path == "/sync/pull" and reply.status == 200:
            self.pulled += len(reply.json().get("changes", ()))
        return reply


def describe_problem(reply: Reply) -> str:
    """A refusal in one line: status, title, detail, code (and the protocol versions on a 426)."""
    try:
        problem = reply.json() or {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict) or "title" not in problem:
        return f"the server answered {reply.status}: {reply.body[:200].decode(errors='replace')}"
    line = f"{reply.status} {problem['title']}: {problem.get('detail', '')}".rstrip(": ")
    extras = [f"code {problem['code']}"] if problem.get("code") else []
    if problem.get("supported"):
        extras.append("server speaks protocol " + ", ".join(map(str, problem["supported"])))
    if problem.get("fields"):
        extras.append("fields " + json.dumps(problem["fields"], sort_keys=True))
    return line + (f" ({'; '.join(extras)})" if extras else "")


def sync_summary(handheld: Handheld, seen: CliTransport) -> dict:
    """Push and pull, then say what became of every op the server answered and what came down."""
    outcome = handheld.sync()
    statuses = Counter(r["status"] for r in seen.results.values())
    rejected = [{"seq": seq, "code": r.get("code"), "detail": r.get("detail")}
                for seq, r in sorted(seen.results.items()) if r["status"] == "rejected"]
    return {"pushed": outcome["pushed"], "applied": statuses["applied"], "rejected": len(rejected),
            "rejected_codes": dict(Counter(r["code"] for r in rejected)), "rejected_ops": rejected,
            "conflicts": statuses["conflict"], "pulled": seen.pulled, "pending": outcome["pending"],
            "last_seq": outcome["last_seq"], "scope": outcome["scope"]}


def main(argv=None, transport: Transport | None = None) -> int:
    """Parse the command and run it against the store file (transport: tests pass an in-process one)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="handheld.sqlite3", help="local store file")
    parser.add_argument("--server", default="http://127.0.0.1:8000/api/v1",
                        help="the API's base URL (default: %(default)s; serve-demo.sh with another "
                             "FIELDOPS_PORT: http://127.0.0.1:PORT/api/v1)")
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

    seen = CliTransport(transport or HttpTransport(args.server), args.server)
    try:
        handheld = Handheld(args.store, seen)
    except sqlite3.Error as exc:
        print(f"error: cannot open the store {args.store}: {exc}", file=sys.stderr)
        return 1
    try:
        status = _run(args, handheld, seen)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # `show | head`: the reader left; not the server's fault
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"error: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 2
    except SyncFailed as exc:
        print(f"error: {describe_problem(seen.problem) if seen.problem else exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        handheld.close()


def _run(args, handheld: Handheld, seen: CliTransport) -> int:
    """The command itself; errors are turned into one line by main."""
    if args.command == "enroll":
        print(f"enrolled as {handheld.enroll(args.code, args.name)}")
    elif args.command == "note":
        shas = [handheld.add_blob(Path(p).read_bytes()) for p in args.photo]
        print(f"queued seq {handheld.queue('task.note', args.task_id, {'text': args.text, 'photos': shas}, blobs=shas)}")
    elif args.command == "arrive":
        print(f"queued seq {handheld.queue('stop.arrive', args.task_id, {'lat': args.lat, 'lon': args.lon})}")
    elif args.command == "sync":
        if handheld.device_id is None:
            print("error: not enrolled: run 'handheld.py enroll CODE' first", file=sys.stderr)
            return 1
        print(json.dumps(sync_summary(handheld, seen), indent=2))
    elif args.command == "show":
        entities = handheld.entities()
        print(json.dumps({
            "device_id": handheld.device_id, "pending": handheld.pending(),
            "results": handheld.results(), "checksum": handheld.checksum(),
            "entities": {f"{e}:{i}": {"version": v["version"], "status": v["data"].get("status")}
                         for (e, i), v in sorted(entities.items())}}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
