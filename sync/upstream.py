"""The reference upstream sync: what an order system's team schedules beside Fieldops (cron or the scheduler).

It speaks only the integration API, with an `integration` staff token:

- **Outbound**: the event feed (`GET /integrations/events`) from a saved cursor;
  each delivered or refused handover becomes one JSON line (waybill, outcome,
  receipt number, when) in the outbound folder.
- **Inbound**: every complete manifest (`*.csv`, `*.json`; the upstream writes
  another name and renames when done) in the inbound folder is posted to
  `POST /integrations/manifests`; its report goes beside it in `done/`.

Safe to kill at any moment and to run again. A page of events is written to
`handovers-<cursor it starts after>.jsonl` through a temporary file and a rename,
*then* the cursor is saved (also by a rename): killed in between, the next run
reads from the same cursor and rewrites the same file, with the same lines and
perhaps more, so no line is ever written twice or lost. A manifest is moved to
`done/` only after the server answered; posted again after a kill, the server's
import is idempotent by waybill and changes nothing.
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sync.client import Reply, Transport

HANDOVER_EVENTS = ("task.delivered", "task.refused")
MANIFEST_TYPES = {".csv": "text/csv", ".json": "application/json"}
_OUTCOME = {"task.delivered": "delivered", "task.refused": "refused"}


class UpstreamRefused(Exception):
    """The server answered with an error that retrying will not mend (a bad token, a forbidden route)."""

    def __init__(self, reply: Reply):
        """Keep the problem the server answered with."""
        try:
            problem = reply.json() or {}
        except ValueError:
            problem = {}
        self.status, self.code = reply.status, problem.get("code")
        super().__init__(f"{reply.status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())


@dataclass
class RunReport:
    """What one run did."""

    events_read: int = 0
    handovers_written: int = 0
    cursor: int = 0
    manifests: list[dict] = field(default_factory=list)


def _write_atomically(path: Path, text: str) -> None:
    """Replace path with text, never leaving a half-written file (write, fsync, rename)."""
    part = path.with_name(f".{path.name}.part")
    with open(part, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(part, path)


def handover_line(event: dict) -> dict:
    """The outbound record of a delivered or refused handover (event id first: a reader may de-duplicate by it)."""
    data = event["data"]
    return {"event_id": event["id"], "waybill_no": data["waybill_no"], "task_id": data["task_id"],
            "outcome": _OUTCOME[event["type"]], "receipt_number": data.get("receipt_number"),
            "completed_at": data.get("completed_at"), "alternate_place": data.get("alternate_place"),
            "refusal_reason": data.get("refusal_reason"), "courier_id": data.get("courier_id")}


class UpstreamSync:
    """One upstream system's side of the sync, its state kept in a folder."""

    def __init__(self, transport: Transport, *, token: str, state_dir: Path, outbound: Path, inbound: Path,
                 page_size: int = 500):
        """Bind to the server and the folders (made when missing)."""
        self.transport, self.page_size = transport, page_size
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.state_dir, self.outbound, self.inbound = Path(state_dir), Path(outbound), Path(inbound)
        for folder in (self.state_dir, self.outbound, self.inbound, self.inbound / "done", self.inbound / "failed"):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def cursor(self) -> int:
        """The event feed's cursor saved by the last page written (0 before the first)."""
        path = self.state_dir / "cursor"
        return int(path.read_text().strip() or 0) if path.exists() else 0

    def _save_cursor(self, cursor: int) -> None:
        """Remember the cursor, atomically."""
        _write_atomically(self.state_dir / "cursor", f"{cursor}\n")

    def _call(self, method: str, path: str, **kwargs) -> Reply:
        """One request; a 4xx other than 422 (and 429) is refused, 5xx and 429 are ConnectionError (try later)."""
        reply = self.transport.request(method, path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)
        if reply.status >= 500 or reply.status == 429:
            raise ConnectionError(f"the server answered {reply.status}; try again later")
        if reply.status >= 400 and reply.status != 422:
            raise UpstreamRefused(reply)
        return reply

    def pull_events(self, report: RunReport) -> None:
        """Read the feed from the saved cursor to its end, writing each page's handovers before moving the cursor."""
        while True:
            start = self.cursor
            page = self._call("GET", "/integrations/events", query={
                "cursor": start, "types": ",".join(HANDOVER_EVENTS), "limit": self.page_size}).json()
            lines = [handover_line(event) for event in page["items"] if event["type"] in HANDOVER_EVENTS]
            if lines:
                _write_atomically(self.outbound / f"handovers-{start:012d}.jsonl",
                                  "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
            if page["cursor"] != start:
                self._save_cursor(page["cursor"])
            report.events_read += len(page["items"])
            report.handovers_written += len(lines)
            report.cursor = page["cursor"]
            if not page["has_more"]:
                return

    def import_manifests(self, report: RunReport) -> None:
        """Post every complete manifest, oldest first; the answer decides where the file goes (done/ or failed/)."""
        files = sorted((p for p in self.inbound.iterdir()
                        if p.is_file() and p.suffix in MANIFEST_TYPES and not p.name.startswith(".")),
                       key=lambda p: (p.stat().st_mtime, p.name))
        for path in files:
            reply = self._call("POST", "/integrations/manifests", body=path.read_bytes(),
                               headers={"Content-Type": MANIFEST_TYPES[path.suffix]})
            answer = reply.json()
            folder = self.inbound / ("done" if reply.status == 200 else "failed")
            _write_atomically(folder / f"{path.name}.report.json", json.dumps(answer, ensure_ascii=False, indent=1))
            os.replace(path, folder / path.name)
            report.manifests.append({"file": path.name, "status": reply.status,
                                     "counts": answer.get("counts") if reply.status == 200 else None,
                                     "code": answer.get("code") if reply.status != 200 else None})

    def run(self) -> RunReport:
        """Manifests in, then handovers out: one whole pass."""
        report = RunReport(cursor=self.cursor)
        self.import_manifests(report)
        self.pull_events(report)
        return report
