"""Log lines: secrets redacted at the mechanism, one JSON line per request, levels and codes, gunicorn's too."""
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import text

from server.extensions import db
from server.logs import JsonFormatter
from server.process import ServerProcess, free_port
from tests import log_audit
from tests.log_audit import watch


def _access(lines: list[str]) -> list[dict]:
    """The access lines among the collected ones."""
    return [entry for entry in map(json.loads, lines) if entry["logger"] == "fieldops.access"]


def test_qr_request_is_logged_with_its_code_redacted(client, make, lines):
    """GET .../enrollments/<code>/qr.png: the live code is in no line; the path says [redacted]."""
    response = client.post(f"/api/v1/dispatch/couriers/{make.courier()['id']}/enrollments",
                           headers=make.headers("dispatcher"))
    code = response.json["code"]
    for path in (f"/api/v1/dispatch/enrollments/{code}/qr.png",
                 f"/api/v1/dispatch/enrollments/{code.lower()}/qr.svg"):
        assert client.get(path, headers=make.headers("dispatcher")).status_code == 200
    enrolled = client.post("/api/v1/devices/enroll", json={"code": code, "device_name": "PDA"})
    assert enrolled.status_code == 201
    logged = "\n".join(lines)
    assert code not in logged.upper() and enrolled.json["token"] not in logged
    paths = [entry["path"] for entry in _access(lines) if "/qr." in entry["path"]]
    assert paths == ["/api/v1/dispatch/enrollments/[redacted]/qr.png",
                          "/api/v1/dispatch/enrollments/[redacted]/qr.svg"]


def test_formatter_scrubs_tokens_and_codes_from_message_args_extra_and_traceback():
    """Anything shaped like our tokens or codes is redacted wherever it is in the record."""
    token, code = "fod_" + "x1-_" * 11, "ABCDEFGH23"
    try:
        raise ValueError(f"bad\n{token} and\n{code}")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "got %s for %s", (token, code), sys.exc_info(),
            extra={"body": {"token": token, "codes": [code]}, "header": f"Bearer {token}"})
    line = JsonFormatter().format(record)
    assert token not in line and code not in line and token[4:] not in line
    entry = json.loads(line)
    assert entry["msg"] == "got fod_[redacted] for [redacted]"
    assert entry["body"] == {"token": "fod_[redacted]", "codes": ["[redacted]"]}
    assert "ValueError" in entry["exc"] and "fod_[redacted]" in entry["exc"]


def test_terminal_colour_codes_stay_out_of_the_json():
    """Werkzeug's banner comes coloured; the line keeps its words, not the escape codes."""
    record = logging.getLogger("werkzeug").makeRecord(
        "werkzeug", logging.WARNING, __file__, 1, "%s", ("\x1b[31m\x1b[1mWARNING: This is a development server.\x1b[0m",),
        None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "WARNING: This is a development server."


def test_sql_errors_never_carry_their_parameters(app):
    """A failing statement's message (as error logs render it) hides the bound values."""
    secret = "fos_sql-parameter-secret-value"
    with pytest.raises(Exception) as failure:
        db.session.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": secret})
    db.session.rollback()
    assert secret not in str(failure.value) and "hidden" in str(failure.value)


def test_access_lines_carry_level_and_problem_code(client, make, lines, monkeypatch):
    """200 at INFO without a code; 404 at INFO, auth failures at WARNING, 500 at ERROR, each with its code."""
    client.get("/api/v1/dispatch/tasks", headers=make.headers("dispatcher"))
    client.get("/api/v1/dispatch/tasks/t-nope", headers=make.headers("dispatcher"))
    client.get("/api/v1/dispatch/tasks", headers={"Authorization": "Bearer fos_not-a-real-token"})
    client.get("/api/v1/dispatch/tasks", headers=make.headers("maintenance"))
    from server.services import vehicles

    def broken(**_query):
        raise RuntimeError("boom")
    monkeypatch.setattr(vehicles, "get_all", broken)
    client.get("/api/v1/dispatch/vehicles", headers=make.headers("dispatcher"))
    client.post("/api/v1/devices/enroll", json={"code": "WRONG23456", "device_name": "PDA"})
    seen = [(e["status"], e["level"], e.get("code"), e.get("auth_failure")) for e in _access(lines)]
    assert seen == [(200, "INFO", None, None), (404, "INFO", "task_not_found", None),
                    (401, "WARNING", "unauthorized", "unknown or revoked token"),
                    (403, "WARNING", "forbidden", None), (500, "ERROR", "internal_error", None),
                    (404, "WARNING", "enrollment_invalid", "bad enrollment code")]
    assert "fos_not-a-real-token" not in "\n".join(lines)


def _only_json(output: str) -> list[dict]:
    """Every non-empty line parsed as JSON (fails on a plain-text line)."""
    entries = []
    for line in output.splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON log line: {line!r}")
    return entries


def _get(url: str, headers: dict | None = None) -> int:
    """The status of a GET."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_development_server_logs_one_json_line_per_request(tmp_path, engine_name):
    """`fieldops serve`: JSON lines only, one per request (no werkzeug line beside the app's)."""
    if engine_name != "sqlite":
        pytest.skip("the server's logging is engine-independent; once on SQLite is enough")
    port, log_path = free_port(), tmp_path / "serve.log"
    env = dict(os.environ, FIELDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
               FIELDOPS_LOG_LEVEL="INFO")
    fieldops = [sys.executable, "-c", "from server.cli import main; main()"]
    subprocess.run(fieldops + ["db", "upgrade"], env=env, check=True, capture_output=True)
    watch(str(log_path))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(fieldops + ["serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                if _get(f"http://127.0.0.1:{port}/readyz") == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert _get(f"http://127.0.0.1:{port}/api/v1/me/tasks",
                    {"Authorization": "Bearer fod_dev-server-bad-token"}) == 401
    finally:
        proc.terminate()
        proc.wait(10)
    entries = _only_json(log_path.read_text())
    requests = [e for e in entries if "/me/tasks" in json.dumps(e)]
    assert len(requests) == 1 and requests[0]["logger"] == "fieldops.access"
    assert requests[0]["level"] == "WARNING" and requests[0]["code"] == "unauthorized"
    assert "fod_dev-server-bad-token" not in log_path.read_text()


def test_gunicorn_logs_are_json_lines_one_per_request(app, database_url, tmp_path):
    """Under gunicorn its own lines are JSON too, and a request is logged once (no gunicorn access line)."""
    log_path = tmp_path / "gunicorn.log"
    with ServerProcess(database_url, workers=1, log_path=str(log_path)) as server:
        assert _get(f"{server.base_url}/me/tasks", {"Authorization": "Bearer fod_gunicorn-bad"}) == 401
    entries = _only_json(log_path.read_text())
    assert any(e["logger"] == "gunicorn.error" and "Listening at" in e["msg"] for e in entries)
    requests = [e for e in entries if "/me/tasks" in json.dumps(e)]
    assert len(requests) == 1 and requests[0]["logger"] == "fieldops.access"
    assert requests[0]["code"] == "unauthorized"


def test_the_audit_finds_phone_numbers_and_addresses_however_they_are_written(client, make, lines):
    """The audit knows what the run stored, finds a phone by its digits and an address as JSON escapes it."""
    task = make.task(recipient={"name": "王小明", "phone": "+86 139 1234 5678", "address": "上海市黄浦区人民路123号",
                                "lat": 31.2, "lon": 121.4})
    assert {"+86 139 1234 5678", "上海市黄浦区人民路123号"} <= log_audit._personal
    # Formatted, not logged: a logged line would fail this run's audit.
    written = JsonFormatter().format(logging.LogRecord("t", logging.WARNING, __file__, 1, "reached %s at %s",
                                                       ("8613912345678", "上海市黄浦区人民路123号"), None))
    assert "人民路" not in written  # JSON escapes it: the audit must look for the escaped form too
    assert log_audit.personal_leaks(written, {"+86 139 1234 5678", "上海市黄浦区人民路123号"}) == {
        "+86 139 1234 5678", "上海市黄浦区人民路123号"}
    # Inside a longer number the digits are not that phone; generated junk is not recorded.
    assert log_audit.personal_leaks("id 9986139123456780", {"+86 139 1234 5678"}) == set()
    assert not log_audit._plausible_phone("0") and not log_audit._plausible_phone("11111111")
    assert not log_audit._plausible_address("0000000000")
    assert task["recipient"]["phone"] not in "\n".join(lines)  # the requests themselves logged neither


def test_the_audit_leaves_out_the_apps_own_words():
    """Hypothesis types the code's own constants into generated addresses; an address that is one of the app's
    messages ("Not UTF-8.") is the app's text in its logs, not a customer's; a real address is still searched."""
    literals = log_audit._source_literals()
    assert "Not UTF-8." in literals
    assert "上海市黄浦区人民路123号" not in literals and "+86 139 1234 5678" not in literals
