"""scripts/handheld.py: one-line errors (server down, not enrolled, refusals) and what a sync did."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.process import free_port
from tests.sync.transport import FlaskTransport

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "handheld.py"


def _load_cli():
    """The script as a module, so the in-process tests drive its main() through a test client."""
    spec = importlib.util.spec_from_file_location("handheld_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handheld_cli = _load_cli()


def _run_script(*args) -> subprocess.CompletedProcess:
    """Run the script as a user would."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def _cli(app, store, *args, transport=None):
    """main() in process against the test app; returns (exit status, stdout, stderr)."""
    return handheld_cli.main(["--store", str(store), *args], transport=transport or FlaskTransport(app))


def _code(make, courier) -> str:
    """A one-time enrollment code for the courier."""
    response = make.client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                                headers=make.headers("dispatcher"))
    return response.json["code"]


def test_server_down_is_one_line_and_exit_2(tmp_path):
    """Nothing listening: no traceback, no minute of retries, the address and the reason."""
    server = f"http://127.0.0.1:{free_port()}/api/v1"
    result = _run_script("--store", str(tmp_path / "hh.sqlite3"), "--server", server, "enroll", "ABC123")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: cannot reach {server}: connection refused"
    assert result.stdout == ""


def test_show_into_a_closed_pipe_is_not_a_server_error(tmp_path):
    """`show | head`: the reader leaving is no 'cannot reach' and no exit 2."""
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()
    result = subprocess.run([sys.executable, str(SCRIPT), "--store", str(tmp_path / "hh.sqlite3"), "show"],
                            stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=60)
    reader.stdin.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_sync_before_enrolment_says_enroll_first(tmp_path):
    """A store that never enrolled is told what to do, without asking the server anything."""
    server = f"http://127.0.0.1:{free_port()}/api/v1"
    result = _run_script("--store", str(tmp_path / "hh.sqlite3"), "--server", server, "sync")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: not enrolled: run 'handheld.py enroll CODE' first"


def test_sync_reports_applied_rejected_conflicts_and_pulled(app, make, tmp_path, capsys):
    """The summary says what became of each op (rejections with their codes) and how much came down."""
    courier, stranger = make.courier(), make.courier()
    kept, cancelled = make.task(courier=courier), make.task(courier=courier)
    foreign = make.task(courier=stranger)
    store = tmp_path / "hh.sqlite3"
    assert _cli(app, store, "enroll", _code(make, courier)) == 0
    assert capsys.readouterr().out.startswith("enrolled as d-")
    assert _cli(app, store, "sync") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["pushed"] == 0 and first["pulled"] >= 2 and first["rejected"] == 0
    _on_shift(app, make, courier, store, capsys)  # seqs 1-3: the checks and shift.start
    make.client.post(f"/api/v1/dispatch/tasks/{cancelled['id']}/cancel", json={"reason": "customer called"},
                     headers=make.headers("dispatcher"))
    assert _cli(app, store, "arrive", kept["id"], "31.2", "121.4") == 0
    assert _cli(app, store, "arrive", cancelled["id"], "31.2", "121.4") == 0
    assert _cli(app, store, "note", foreign["id"], "not mine") == 1  # not on this handheld: nothing queued
    assert _cli(app, store, "pay", kept["id"], "100") == 0  # the server's rules refuse it: no inspection yet
    capsys.readouterr()
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pushed"] == 3 and summary["pending"] == 0
    assert (summary["applied"], summary["conflicts"], summary["rejected"]) == (1, 1, 1)
    [rejected] = summary["rejected_ops"]
    assert rejected["seq"] == 6 and summary["rejected_codes"] == {"inspection_required": 1}
    assert summary["pulled"] >= 2  # the arrival's task, and the cancelled one's tombstone
    assert summary["last_seq"] == 6


def test_refusals_are_one_line_with_title_detail_and_code(app, make, tmp_path, capsys):
    """A bad code, a revoked device (401) and an old protocol (426) each print the server's problem."""
    courier = make.courier()
    store = tmp_path / "hh.sqlite3"
    assert _cli(app, store, "enroll", "NOT-A-CODE") == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: ") and "\n" not in line and "code " in line

    assert _cli(app, store, "enroll", _code(make, courier)) == 0
    capsys.readouterr()

    class OldApp(FlaskTransport):
        """A handheld that speaks a protocol version the server no longer accepts."""

        def request(self, method, path, *, headers, body=None, query=None):
            return super().request(method, path, headers={**headers, "Fieldops-Protocol": "0"}, body=body,
                                   query=query)

    assert _cli(app, store, "sync", transport=OldApp(app)) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: 426 ") and "code protocol_unsupported" in line
    assert "server speaks protocol 1" in line and "\n" not in line

    device_id = json.loads(_show(app, store, capsys))["device_id"]
    revoked = make.client.post(f"/api/v1/dispatch/devices/{device_id}/revoke", headers=make.headers("admin"))
    assert revoked.status_code in (200, 204), revoked.json
    assert _cli(app, store, "sync") == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: 401 ") and "code " in line and "\n" not in line


def _show(app, store, capsys) -> str:
    """The `show` command's output."""
    assert _cli(app, store, "show") == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("status,body,expected", [
    (502, b"<html>bad gateway</html>", "the server answered 502: <html>bad gateway</html>"),
    (422, json.dumps({"title": "Validation failed", "status": 422, "detail": "Bad input.",
                      "code": "validation_failed", "fields": {"code": ["Missing."]}}).encode(),
     '422 Validation failed: Bad input. (code validation_failed; fields {"code": ["Missing."]})'),
])
def test_describe_problem(status, body, expected):
    """Problem+json and anything else both fit on one line."""
    assert handheld_cli.describe_problem(handheld_cli.Reply(status, {}, body)) == expected


PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64


def _enrolled(app, make, courier, store, capsys) -> None:
    """Enroll the store for the courier and pull its tasks."""
    assert _cli(app, store, "enroll", _code(make, courier)) == 0
    assert _cli(app, store, "sync") == 0
    capsys.readouterr()


def _err(capsys) -> str:
    """The one line of stderr of the last command."""
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _on_shift(app, make, courier, store, capsys) -> None:
    """Give the courier a van; on the enrolled handheld the day begins: the checks, shift.start, synced."""
    from server.services import checklists

    checklists.seed_defaults()
    van = make.vehicle()
    make.client.patch(f"/api/v1/dispatch/vehicles/{van['id']}", json={"courier_id": courier["id"]},
                      headers=make.headers("dispatcher"))
    assert _cli(app, store, "sync") == 0
    for args in (("check", "conduct.pre_shift", "31.23", "121.47"),
                 ("check", "vehicle.pre_trip", "31.23", "121.47", "--odometer", "1000"), ("shift", "start", "1000")):
        assert _cli(app, store, *args) == 0
    capsys.readouterr()
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["applied"], summary["rejected"]) == (3, 0)


def test_a_handover_without_a_shift_is_refused_offline_and_the_day_begins(app, make, tmp_path, capsys):
    """verify without a shift: one line naming the rule, nothing queued; check and shift commands open the day;
    a vehicle check's --fail grounds the van when the item is a safety item."""
    courier = make.courier()
    task = make.task(courier=courier)
    store = tmp_path / "hh.sqlite3"
    _enrolled(app, make, courier, store, capsys)
    assert _cli(app, store, "verify", task["id"], "Recipient") == 1
    assert "work_without_shift_check" in _err(capsys)
    assert json.loads(_show(app, store, capsys))["pending"] == 0
    _on_shift(app, make, courier, store, capsys)
    assert _cli(app, store, "verify", task["id"], "Recipient") == 0
    photo = tmp_path / "brakes.png"
    photo.write_bytes(PNG)
    assert _cli(app, store, "check", "vehicle.post_trip", "31.23", "121.47", "--odometer", "1010",
                "--fail", "technical_condition", "--photo", str(photo)) == 0
    assert _cli(app, store, "check", "vehicle.post_trip", "31.23", "121.47", "--fail", "brakes") == 1
    assert _err(capsys) == "error: the vehicle.post_trip checklist has no item brakes"
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["applied"], summary["rejected"]) == (2, 0)
    van = next(v for k, v in json.loads(_show(app, store, capsys))["entities"].items() if k.startswith("vehicle:"))
    assert van["status"] == "out_of_service"


def test_handover_at_the_door_with_the_pin_checked_offline(app, make, tmp_path, capsys):
    """verify (PIN missing or wrong: refused offline, nothing queued), inspect, pay, sign: delivered on sync."""
    courier = make.courier()
    task = make.task(courier=courier, gift_description="a mug")
    pin = make.client.post(f"/api/v1/dispatch/tasks/{task['id']}/handover-pin",
                           headers=make.headers("dispatcher")).json["pin"]
    store, signature = tmp_path / "hh.sqlite3", tmp_path / "signature.png"
    signature.write_bytes(PNG)
    _enrolled(app, make, courier, store, capsys)
    _on_shift(app, make, courier, store, capsys)
    assert _cli(app, store, "verify", task["id"], "Recipient") == 1
    assert _err(capsys) == "error: This task needs the handover PIN; ask the recipient for it."
    assert _cli(app, store, "verify", task["id"], "Recipient", "--pin", f"{(int(pin) + 1) % 10 ** 6:06d}") == 1
    assert _err(capsys) == "error: The PIN does not match; ask the recipient again."
    assert json.loads(_show(app, store, capsys))["pending"] == 0
    assert _cli(app, store, "verify", task["id"], "Recipient", "--pin", pin) == 0
    assert _cli(app, store, "inspect", task["id"]) == 0
    assert _cli(app, store, "pay", task["id"]) == 0
    assert _cli(app, store, "sign", task["id"], str(signature), "Recipient", "31.23", "121.47", "--gift-disclosed") == 0
    assert capsys.readouterr().out.split("\n")[-2] == "queued seq 7"  # after the checks and shift.start
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["pushed"], summary["applied"], summary["rejected"]) == (4, 4, 0)
    shown = json.loads(_show(app, store, capsys))["entities"][f"task:{task['id']}"]
    assert shown["status"] == "delivered" and shown["waybill_no"] == task["waybill_no"]
    assert (shown["lat"], shown["lon"], shown["pin_required"], shown["gift_description"]) == (
        task["recipient"]["lat"], task["recipient"]["lon"], True, "a mug")


def test_show_lists_each_parcel_and_scan_queues_one(app, make, tmp_path, capsys):
    """`show` gives each of a task's parcels by number with its pieces; `scan` queues parcel.scan for one of them
    (a number the task does not hold is refused offline, nothing queued), and the sync puts it on the journey."""
    courier = make.courier()
    task = make.task(courier=courier, parcels=[{"parcel_no": "SC-1", "count": 2}, {"parcel_no": "SC-2", "count": 1}])
    store = tmp_path / "hh.sqlite3"
    _enrolled(app, make, courier, store, capsys)
    assert json.loads(_show(app, store, capsys))["entities"][f"task:{task['id']}"]["parcels"] == {"SC-1": 2, "SC-2": 1}
    assert _cli(app, store, "scan", task["id"], "SC-3", "out_for_delivery") == 1
    assert _err(capsys) == f"error: Task {task['id']} has no parcel SC-3."
    assert json.loads(_show(app, store, capsys))["pending"] == 0
    assert _cli(app, store, "scan", task["id"], "SC-2", "out_for_delivery", "--note", "van 2") == 0
    assert capsys.readouterr().out == "queued seq 1\n"
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["pushed"], summary["applied"], summary["rejected"]) == (1, 1, 0)
    journey = make.client.get(f"/api/v1/dispatch/tasks/{task['id']}/journey", headers=make.headers("dispatcher"))
    assert [(i["parcel_no"], i["event"], i["source"]) for i in journey.json["journey"]] == [
        ("SC-2", "out_for_delivery", "handheld")]


def test_refuse_alternate_and_pickup(app, make, tmp_path, capsys):
    """refuse after a refused inspection with a damage photo; alternate on the customer's consent; a paid pickup."""
    from server.auth import customer
    from server.services import handover

    courier = make.courier()
    refused = make.task(courier=courier)
    dropped = make.task(courier=courier, cod_amount=0, fees=[])
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    handover.record_consent(actor=customer(None), task_id=dropped["id"], place="locker")
    store, photo = tmp_path / "hh.sqlite3", tmp_path / "photo.png"
    photo.write_bytes(PNG)
    _enrolled(app, make, courier, store, capsys)
    _on_shift(app, make, courier, store, capsys)
    parcel_no = refused["parcels"][0]["parcel_no"]
    assert _cli(app, store, "inspect", refused["id"], "--item", f"{parcel_no}:2:damaged", "--refused",
                "--photo", str(photo)) == 0
    assert _cli(app, store, "refuse", refused["id"], "damaged", "--note", "box crushed", "--photo", str(photo)) == 0
    assert _cli(app, store, "alternate", dropped["id"], "locker", "--via", "customer_link") == 0
    assert _cli(app, store, "pickup", pickup["id"], str(photo), "Sender", "--parcel", "PK1:2:books",
                "--fee", "delivery:1500", "--pay", "qr") == 0
    assert capsys.readouterr().out.splitlines() == [f"queued seq {n}" for n in range(4, 8)]
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["pushed"], summary["applied"], summary["rejected"]) == (4, 4, 0), summary
    statuses = {key: e.get("status") for key, e in json.loads(_show(app, store, capsys))["entities"].items()}
    assert (statuses[f"task:{refused['id']}"], statuses[f"task:{dropped['id']}"],
            statuses[f"task:{pickup['id']}"]) == ("refused", "delivered", "collected")
    # A refusal by the server comes back in the summary with its code.
    assert _cli(app, store, "pay", refused["id"], "100") == 0
    capsys.readouterr()
    assert _cli(app, store, "sync") == 0
    assert json.loads(capsys.readouterr().out)["rejected_codes"] == {"handover_closed": 1}


_NOT_HERE = "error: task T-NOT-HERE is not on this handheld: run 'handheld.py sync' first"


@pytest.mark.parametrize("args,exit_status,message", [
    *[(command, 1, _NOT_HERE) for command in (
        ["inspect", "T-NOT-HERE"], ["pay", "T-NOT-HERE"], ["arrive", "T-NOT-HERE", "31.2", "121.4"],
        ["note", "T-NOT-HERE", "hello"], ["verify", "T-NOT-HERE", "Li Lei"],
        ["sign", "T-NOT-HERE", "no-such-file.png", "Recipient", "31.2", "121.4"],
        ["refuse", "T-NOT-HERE", "damaged"], ["alternate", "T-NOT-HERE", "locker", "--via", "contact"],
        ["pickup", "T-NOT-HERE", "sig.png", "Sender", "--parcel", "PK1:1"])],
    (["inspect", "T1", "--item", "P1:two"], 2, "'P1:two': 'two' is not a whole number"),
    (["inspect", "T1", "--item", "P1:2:broken"], 2, "condition must be one of ok, damaged, missing"),
    (["pickup", "T1", "sig.png", "Sender", "--parcel", "PK1", "--fee", "rush"], 2, "expected CODE:AMOUNT (fen)"),
    (["alternate", "T1", "rooftop", "--via", "contact"], 2, "invalid choice: 'rooftop'"),
    (["alternate", "T1", "locker"], 2, "the following arguments are required: --via"),
])
def test_handover_commands_refuse_bad_input_in_one_line(app, tmp_path, capsys, args, exit_status, message):
    """Bad values, missing files and tasks not pulled yet: one line, no traceback, nothing queued."""
    store = tmp_path / "hh.sqlite3"
    if exit_status == 2:
        with pytest.raises(SystemExit) as stop:
            handheld_cli.main(["--store", str(store), *args], transport=None)
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
        return
    assert handheld_cli.main(["--store", str(store), *args], transport=FlaskTransport(app)) == exit_status
    err = _err(capsys)
    assert err.startswith("error: ") and message in err
    assert handheld_cli.main(["--store", str(store), "show"], transport=FlaskTransport(app)) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 0


def test_a_missing_signature_file_on_a_held_task_is_one_line(app, make, tmp_path, capsys):
    """The task is on the handheld but the signature file is not: one line, nothing queued."""
    courier = make.courier()
    task = make.task(courier=courier)
    store = tmp_path / "hh.sqlite3"
    _enrolled(app, make, courier, store, capsys)
    assert _cli(app, store, "sign", task["id"], str(tmp_path / "no-such-file.png"), "Recipient", "31.2", "121.4") == 1
    err = _err(capsys)
    assert err.startswith("error: ") and "No such file or directory" in err
    assert json.loads(_show(app, store, capsys))["pending"] == 0


def test_sync_and_show_print_each_handovers_receipt(app, make, tmp_path, capsys):
    """After the handovers are synced, `sync` lists each new receipt (task, waybill, number, page) once; `show`
    keeps it on its task; the page opens."""
    from sqlalchemy import select

    from server.extensions import db
    from server.models import Receipt
    from server.services import receipts

    courier = make.courier()
    delivered, open_task = make.task(courier=courier), make.task(courier=courier)
    pickup = make.task(courier=courier, kind="pickup", cod_amount=0, fees=[])
    store, signature = tmp_path / "hh.sqlite3", tmp_path / "signature.png"
    signature.write_bytes(PNG)
    _enrolled(app, make, courier, store, capsys)
    _on_shift(app, make, courier, store, capsys)
    for args in (("verify", delivered["id"], "Recipient"), ("inspect", delivered["id"]), ("pay", delivered["id"]),
                 ("sign", delivered["id"], str(signature), "Recipient", "31.23", "121.47"),
                 ("pickup", pickup["id"], str(signature), "Sender", "--parcel", "PK1:1")):
        assert _cli(app, store, *args) == 0
    capsys.readouterr()
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    issued = {row.task_id: row for row in db.session.scalars(select(Receipt))}
    assert summary["receipts"] == [
        {"task_id": task["id"], "waybill_no": task["waybill_no"], "number": issued[task["id"]].number,
         "url": f"http://localhost/r/{receipts.page_token(issued[task['id']])}"}
        for task in sorted((delivered, pickup), key=lambda t: t["id"])]
    for receipt in summary["receipts"]:
        assert make.client.get(receipt["url"].removeprefix("http://localhost")).status_code == 200
    entities = json.loads(_show(app, store, capsys))["entities"]
    assert {task_id: entities[f"task:{task_id}"]["receipt"] for task_id in (delivered["id"], pickup["id"])} == {
        r["task_id"]: {"number": r["number"], "url": r["url"]} for r in summary["receipts"]}
    assert entities[f"task:{open_task['id']}"]["receipt"] is None
    # Nothing new since: the next sync lists no receipt again.
    assert _cli(app, store, "sync") == 0
    assert json.loads(capsys.readouterr().out)["receipts"] == []


def test_show_lists_the_courier_s_violations_and_appeal_queues_violation_appeal(app, make, tmp_path, capsys):
    """A failed uniform item on the pre-shift check is a violation; `show` gives the courier's grade and each
    violation's id, code, status and appeal; `appeal ID REASON` queues violation.appeal (a create op), which the
    server takes: the violation is appealed. An id not on the record is refused offline; a second appeal is
    the server's appeal_exists, reported by sync (exit 0)."""
    from server.services import checklists

    checklists.seed_defaults()
    courier = make.courier()
    store = tmp_path / "hh.sqlite3"
    assert _cli(app, store, "enroll", _code(make, courier)) == 0
    assert _cli(app, store, "sync") == 0
    assert _cli(app, store, "check", "conduct.pre_shift", "31.23", "121.47", "--fail", "uniform") == 0
    assert _cli(app, store, "sync") == 0
    capsys.readouterr()
    assert _cli(app, store, "show") == 0
    record = json.loads(capsys.readouterr().out)["entities"][f"courier:{courier['id']}"]
    [violation] = record["violations"]
    assert (violation["code"], violation["severity"], violation["status"], violation["appeal"]) == (
        "conduct_item_failed", "minor", "open", None)
    assert record["grade"] in ("A", "B", "C") and "grade_why" in record and "status" not in record

    assert _cli(app, store, "appeal", str(violation["id"] + 1000), "not mine") == 1
    assert f"violation {violation['id'] + 1000} is not on your record" in capsys.readouterr().err
    assert _cli(app, store, "appeal", str(violation["id"]), "I wore it: the jacket was in the wash") == 0
    queued = capsys.readouterr().out
    assert queued.startswith("queued seq 2 (appeal ")
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["pushed"], summary["applied"], summary["rejected"]) == (1, 1, 0), summary
    assert _cli(app, store, "show") == 0
    [violation] = json.loads(capsys.readouterr().out)["entities"][f"courier:{courier['id']}"]["violations"]
    assert (violation["status"], violation["appeal"]) == ("appealed", "open")
    mine = make.client.get(f"/api/v1/dispatch/couriers/{courier['id']}/violations", headers=make.headers("quality"))
    assert mine.json["items"][0]["status"] == "appealed"

    assert _cli(app, store, "appeal", str(violation["id"]), "again") == 0
    assert _cli(app, store, "sync") == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert summary["rejected_codes"] == {"appeal_exists": 1}
