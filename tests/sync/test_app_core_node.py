"""The courier app's core (courier-app/src/core, JavaScript) against the real server over HTTP.

A second, independent implementation of docs/protocol.md must agree with this server, not only with the
in-memory server of its unit tests: Node runs courier-app/test/e2e/sync-real-server.mjs (IndexedDB from
fake-indexeddb) against the app served on a live port, and this test checks what the server recorded.
Skipped without Node or the app's node_modules (npm ci); FIELDOPS_REQUIRE_BROWSER=1 makes that a failure.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


APP_DIR = Path(__file__).resolve().parents[2] / "courier-app"
SCRIPT = APP_DIR / "test" / "e2e" / "sync-real-server.mjs"


def _node_missing() -> str | None:
    """Why the Node check cannot run here, or None."""
    if shutil.which("node") is None:
        return "node not found (the courier app needs Node 20)"
    if not (APP_DIR / "node_modules" / "fake-indexeddb").is_dir():
        return "courier-app/node_modules missing (cd courier-app && npm ci)"
    return None


@pytest.fixture
def node():
    """The node binary; skip (or fail under FIELDOPS_REQUIRE_BROWSER=1) without it."""
    reason = _node_missing()
    if reason:
        if os.environ.get("FIELDOPS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Node required (FIELDOPS_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
        pytest.skip(f"app core check skipped: {reason}")
    return shutil.which("node")


def test_app_core_enrolls_pulls_and_pushes_to_the_real_server(node, live_server, client, make):
    """Enroll from the QR's text, pull the task, queue an arrival and a note with a photo, push with the answer
    lost once: the server has the arrival and the note once, the resend was answered as duplicates."""
    courier = make.courier()
    task = make.task(courier)
    other = make.task(make.courier())  # another courier's task: never in this device's scope
    answer = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments", headers=make.headers("dispatcher"))
    assert answer.status_code == 201
    run = subprocess.run([node, str(SCRIPT)], cwd=APP_DIR, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "FIELDOPS_E2E_ORIGIN": live_server,
                              "FIELDOPS_E2E_CODE": answer.json["code"], "FIELDOPS_E2E_TASK": task["id"]})
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    assert out["other_server"] == "other_server"
    assert out["bad_code"] == "invalid_code"
    assert out["unknown_code"] == "enrollment_invalid"
    assert out["enrolled"]["courier_id"] == courier["id"]
    assert out["first_sync"]["error"] is None
    assert out["pulled_task"] == {"version": task["version"], "status": "assigned"}
    assert out["door_before_push"] == {"arrive": "shift_required", "status": "arrived", "amount_due": 6190,
                                       "pay": "shift_required"}
    # The push whose answer was lost went again, unchanged: the server answered it with the first results.
    assert out["second_sync"]["error"] is None
    assert [(op["seq"], op["type"], op["state"], op["duplicate"]) for op in out["queue"]] == [
        (1, "stop.arrive", "applied", True), (2, "task.note", "applied", True)]
    assert out["pending"] == 0
    assert out["local_task"]["status"] == "arrived"
    assert out["local_task"]["notes"][0] == "门口有狗 (node e2e)"
    assert out["blob_kept"] is False  # uploaded and answered: no longer kept on the device
    assert out["third_sync"] == {"pushed": 0, "rejected": 0, "pulled": 0, "error": None, "retryAfter": None}
    assert out["next_seq"] == 3

    # What the server recorded: one arrival, one note with the uploaded photo, at the version the device holds.
    dispatcher = make.headers("dispatcher")
    server_task = client.get(f"/api/v1/dispatch/tasks/{task['id']}", headers=dispatcher).json
    assert server_task["status"] == "arrived"
    assert server_task["version"] == out["local_task"]["version"]
    notes = [event for event in server_task["history"] if event["text"] == "门口有狗 (node e2e)"]
    assert len(notes) == 1
    assert notes[0]["data"]["photos"] == [out["photo"]]
    assert [event["kind"] for event in server_task["history"]].count("arrived") == 1
    head = client.head(f"/api/v1/attachments/{out['photo']}", headers={
        "Authorization": f"Bearer {make.device(courier)['token']}", "Fieldops-Protocol": "1"})
    assert head.status_code == 200
    ops = client.get(f"/api/v1/dispatch/ops?device_id={out['enrolled']['device_id']}", headers=dispatcher).json
    statuses = sorted((row["seq"], row["status"]) for row in ops["items"])
    # Each op applied once: the resend of the batch whose answer was lost was answered from the log, not applied.
    assert statuses == [(1, "applied"), (2, "applied")], statuses
    assert client.get(f"/api/v1/dispatch/tasks/{other['id']}", headers=dispatcher).json["status"] == "assigned"
