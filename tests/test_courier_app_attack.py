"""Attacks on what issue 25 added to the server (helper attack25): the pull entity `fee_code` under hostile text,
a withdrawn and a renamed code as the reference client (an old device) sees them, and /app under paths that try to
leave the build or be taken for the shell."""
import json
import random

import pytest

from server.extensions import db
from server.models import FeeCode
from sync.client import Handheld
from tests.sync.transport import FlaskTransport

HOSTILE = '<script>alert("费")</script><img src=x onerror=alert(1)>'


def _reference_handheld(app, client, make, path) -> Handheld:
    """The reference client (sync/client.py), enrolled for a new courier: an old device that knows no fee codes."""
    courier = make.courier()
    code = client.post(f"/api/v1/dispatch/couriers/{courier['id']}/enrollments",
                       headers=make.headers("dispatcher")).json["code"]
    handheld = Handheld(str(path), FlaskTransport(app), sleep=lambda s: None, rng=random.Random(1))
    handheld.enroll(code, "PDA")
    return handheld


def _fees(handheld: Handheld) -> dict[str, str]:
    return {key[1]: value["data"]["name"] for key, value in handheld.entities().items() if key[0] == "fee_code"}


def test_hostile_fee_names_reach_devices_as_data_and_the_old_client_keeps_its_checksum(app, client, make, tmp_path,
                                                                                       fee_codes):
    """Markup and a name at its full length are carried byte for byte (the app shows them as text); a rename, a
    withdrawal (a tombstone) and a code published again reach the reference client, whose scope checksum stays
    right through every step (pull raises DriftDetected otherwise)."""
    db.session.add(FeeCode(code="attack_markup", name=HOSTILE, active=True))
    db.session.add(FeeCode(code="attack_long", name="长" * 100, active=True))
    db.session.commit()
    handheld = _reference_handheld(app, client, make, tmp_path / "old.sqlite3")
    handheld.pull()
    held = _fees(handheld)
    assert held["attack_markup"] == HOSTILE
    assert held["attack_long"] == "长" * 100
    assert set(held) == {code for code, (_, active) in fee_codes.items() if active} | {"attack_markup", "attack_long"}

    db.session.get(FeeCode, "attack_markup").name = "楼层费"
    db.session.get(FeeCode, "attack_long").active = False
    db.session.commit()
    handheld.pull()
    held = _fees(handheld)
    assert held["attack_markup"] == "楼层费" and "attack_long" not in held

    db.session.get(FeeCode, "attack_long").active = True
    db.session.commit()
    handheld.pull()
    assert _fees(handheld)["attack_long"] == "长" * 100


def test_a_task_charging_a_withdrawn_fee_code_is_refused(client, make, fee_codes):
    """Dispatch cannot create a task with a code withdrawn since the device pulled it: published only."""
    code = next(code for code, (_, active) in sorted(fee_codes.items()) if active)
    db.session.get(FeeCode, code).active = False
    db.session.commit()
    response = client.post("/api/v1/dispatch/tasks", json=make.task_spec(fees=[{"code": code, "amount": 100}]),
                           headers=make.headers("dispatcher"))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == "validation_failed"
    assert f"'{code}' is not a published fee" in json.dumps(response.json, ensure_ascii=False)


@pytest.fixture
def build(app, tmp_path):
    """A build folder with the shell and one hashed asset; a secret beside it, outside the build."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>shell</title>", encoding="utf-8")
    (folder / "assets" / "index-AbC123.js").write_text("export {};", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    app.config["COURIER_APP_DIR"] = str(folder)
    return folder


@pytest.mark.parametrize("path", [
    "/app/..%2fsecret.txt", "/app/%2e%2e%2fsecret.txt", "/app/assets/..%2f..%2fsecret.txt", "/app/..\\secret.txt",
    "/app/assets/%2e%2e/%2e%2e/secret.txt", "/app/%252e%252e%252fsecret.txt", "/app//etc/passwd",
    "/app/index.html%00.js", "/app/assets/index-AbC123.js%2f..%2f..%2f..%2fsecret.txt",
])
def test_no_path_leaves_the_build(client, build, path):
    """Encoded, double-encoded, backslashed or NUL-laden: nothing outside the build is served, and no error page
    leaks the folder's name."""
    response = client.get(path)
    if response.status_code == 308:  # a double slash is merged: the redirect stays in the app, on this host
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Location"] in ("/app/etc/passwd", "http://localhost/app/etc/passwd")
        response = client.get(response.headers["Location"])
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"secret" not in response.data
    assert str(build).encode() not in response.data
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_the_enroll_link_in_a_query_is_the_shell_with_no_store_of_the_code(client, build):
    """An app link with `?enroll=CODE` (accepted by the core for old printouts) reaches the server: the shell,
    revalidated (no-cache), never kept by a shared cache with the code in its key for someone else."""
    response = client.get("/app/?enroll=ABCDE23456")
    assert response.status_code == 200 and b"shell" in response.data
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert b"ABCDE23456" not in response.data


def test_the_app_headers_stand_on_a_method_the_app_does_not_take(client, build):
    """A POST or PUT to the app's files is refused, with the app's headers still on the answer (routing answers a
    405 before the blueprint is known: its after_request never ran)."""
    for method in ("post", "put", "delete"):
        response = getattr(client, method)("/app/index.html", data=json.dumps({"x": 1}))
        assert response.status_code == 405, method
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
