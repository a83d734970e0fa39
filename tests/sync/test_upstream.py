"""scripts/sync_upstream.py (sync.upstream): manifests in, handovers out, safe to kill and rerun."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import Receipt, Task
from server.process import free_port
from sync.upstream import UpstreamSync
from tests.sync.test_handover import door_ops, inspect_ok, upload
from tests.sync.transport import FlaskTransport

SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "sync_upstream.py"
_spec = importlib.util.spec_from_file_location("sync_upstream_cli", SCRIPT)
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)


@pytest.fixture
def folders(tmp_path) -> dict:
    """The script's three folders."""
    return {"state": tmp_path / "state", "outbound": tmp_path / "out", "inbound": tmp_path / "in"}


def run(app, folders, token, capsys, **kw) -> tuple[int, dict | None]:
    """One pass of the script in process; (exit status, its JSON report or None)."""
    args = ["--token", token] + [a for name, path in folders.items() for a in (f"--{name}", str(path))]
    status = cli.main(args, transport=kw.get("transport") or FlaskTransport(app))
    out = capsys.readouterr().out.strip()
    return status, json.loads(out) if out else None


def deliver(device, task) -> None:
    """The whole handover at the door, pushed."""
    signature = upload(device)
    results = device.push(door_ops(device, task, signature))["results"]
    assert [r["status"] for r in results] == ["applied"] * 5


def refuse(device, task) -> None:
    """Inspected, then refused as damaged."""
    photo = upload(device, b"\x89PNG\r\n\x1a\n" + b"\x02" * 64)
    items = [dict(i, condition="damaged") for i in inspect_ok(task)["items"]]
    results = device.push([device.op("pod.inspect", task["id"], {"items": items, "customer_accepted": False,
                                                                 "photos": [photo]}),
                           device.op("pod.refuse", task["id"], {"reason": "damaged", "photos": [photo]})])["results"]
    assert [r["status"] for r in results] == ["applied"] * 2


def lines(folders) -> list[dict]:
    """Every outbound line, in file order."""
    return [json.loads(line) for path in sorted(folders["outbound"].glob("handovers-*.jsonl"))
            for line in path.read_text().splitlines()]


def receipt_number(task_id: str) -> str:
    """The task's sealed receipt number."""
    return db.session.scalar(select(Receipt.number).where(Receipt.task_id == task_id))


def test_a_pass_imports_manifests_and_writes_handovers_once(app, make, courier, device, folders, capsys):
    """Delivered and refused handovers become lines with waybill and receipt; manifests go to done/; again: nothing."""
    delivered, refused = make.task(courier=courier), make.task(courier=courier)
    make.task(courier=courier)  # assigned, never handed over: an event of another type
    deliver(device, delivered)
    refuse(device, refused)
    folders["inbound"].mkdir(parents=True)
    (folders["inbound"] / "orders.json").write_text(json.dumps([make.task_spec(waybill_no="UP-1"),
                                                                {"waybill_no": "UP-BAD"}]))
    (folders["inbound"] / "orders.csv.part").write_text("not yet complete")
    token = make.token("integration")
    status, report = run(app, folders, token, capsys)
    assert status == 0
    assert report["handovers_written"] == 2 and report["events_read"] == 2
    assert [(m["file"], m["status"], m["counts"]["created"], m["counts"]["quarantined"])
            for m in report["manifests"]] == [("orders.json", 200, 1, 1)]
    assert (folders["inbound"] / "done" / "orders.json").exists()
    assert json.loads((folders["inbound"] / "done" / "orders.json.report.json").read_text())["counts"]["rows"] == 2
    assert (folders["inbound"] / "orders.csv.part").exists()  # incomplete files are left alone
    assert db.session.scalar(select(Task.id).where(Task.waybill_no == "UP-1")) is not None
    written = lines(folders)
    assert [(w["waybill_no"], w["outcome"], w["receipt_number"]) for w in written] == [
        (delivered["waybill_no"], "delivered", receipt_number(delivered["id"])),
        (refused["waybill_no"], "refused", receipt_number(refused["id"]))]
    assert written[1]["refusal_reason"] == "damaged" and all(w["receipt_number"] for w in written)
    assert "recipient" not in json.dumps(written)  # no personal data leaves through this path
    # Run again: nothing new, nothing written twice, the cursor where it was.
    status, again = run(app, folders, token, capsys)
    assert status == 0 and (again["events_read"], again["manifests"]) == (0, [])
    assert again["cursor"] == report["cursor"] and lines(folders) == written


def test_killed_between_the_page_and_the_cursor_writes_no_line_twice(app, make, courier, device, folders, monkeypatch):
    """A kill after a page's file and before its cursor: the rerun rewrites that file (now longer), no duplicates."""
    first, second, third = (make.task(courier=courier) for _ in range(3))
    deliver(device, first)
    token = make.token("integration")
    upstream = UpstreamSync(FlaskTransport(app), token=token, page_size=2, **{
        "state_dir": folders["state"], "outbound": folders["outbound"], "inbound": folders["inbound"]})

    def killed(cursor):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(upstream, "_save_cursor", killed)
    with pytest.raises(KeyboardInterrupt):
        upstream.run()
    assert [w["waybill_no"] for w in lines(folders)] == [first["waybill_no"]] and upstream.cursor == 0
    monkeypatch.undo()
    deliver(device, second)
    deliver(device, third)
    report = upstream.run()
    assert [w["waybill_no"] for w in lines(folders)] == [t["waybill_no"] for t in (first, second, third)]
    assert report.handovers_written == 3 and upstream.cursor == report.cursor > 0


def test_the_server_down_mid_pass_leaves_the_manifest_for_the_next_run(app, make, folders, capsys):
    """A 5xx (or no answer) on the upload: exit 2, the file stays in the inbox; the next pass imports it once."""
    folders["inbound"].mkdir(parents=True)
    (folders["inbound"] / "m.json").write_text(json.dumps([make.task_spec(waybill_no="UP-DOWN")]))

    class Down(FlaskTransport):
        def request(self, method, path, **kw):
            if method == "POST":
                raise ConnectionError("connection reset")
            return super().request(method, path, **kw)

    token = make.token("integration")
    assert run(app, folders, token, capsys, transport=Down(app))[0] == 2
    assert (folders["inbound"] / "m.json").exists()
    status, report = run(app, folders, token, capsys)
    assert status == 0 and report["manifests"][0]["counts"]["created"] == 1


@pytest.mark.parametrize("role, status", [("quality", 403), (None, 401)])
def test_a_token_that_is_not_an_integrations_is_refused(app, make, folders, capsys, role, status):
    """Quality's token (403) or a bad one (401): exit 1 with the server's answer, nothing moved, no cursor."""
    folders["inbound"].mkdir(parents=True)
    (folders["inbound"] / "m.json").write_text("[]")
    token = make.token(role) if role else "fos_not-a-token"
    args = ["--token", token] + [a for name, path in folders.items() for a in (f"--{name}", str(path))]
    assert cli.main(args, transport=FlaskTransport(app)) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"error: the server refused: {status} ")
    assert (folders["inbound"] / "m.json").exists() and not (folders["state"] / "cursor").exists()


def test_unreachable_server_is_one_line_and_exit_2(tmp_path):
    """As a user runs it: nothing listening, one line on stderr, exit 2."""
    server = f"http://127.0.0.1:{free_port()}/api/v1"
    result = subprocess.run([sys.executable, str(SCRIPT), "--server", server, "--token", "x",
                             "--state", str(tmp_path / "s"), "--outbound", str(tmp_path / "o"),
                             "--inbound", str(tmp_path / "i")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: cannot sync with {server}:") and len(result.stderr.splitlines()) == 1


def test_a_saved_cursor_ahead_of_the_feed_stops_the_pass_and_keeps_the_cursor(app, make, folders, capsys):
    """The state folder of another server (or a restored database): exit 1 with the server's answer, nothing
    written, the cursor left for a person to look at, not moved."""
    folders["state"].mkdir(parents=True)
    (folders["state"] / "cursor").write_text("1000\n")
    args = ["--token", make.token("integration")] + [
        a for name, path in folders.items() for a in (f"--{name}", str(path))]
    assert cli.main(args, transport=FlaskTransport(app)) == 1
    assert "409" in capsys.readouterr().err
    assert (folders["state"] / "cursor").read_text() == "1000\n" and list(folders["outbound"].iterdir()) == []
