"""Attachments in either store: the local folder (default) and an S3 bucket (a real SeaweedFS).

Tests taking the `storage` fixture run twice, once per store, with the same
assertions on what handhelds and staff see; what only one store has (signed
URLs, the folder's files) is checked beside.
"""
import contextlib
import hashlib
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import update

from server import jobs, storage as stores
from server.config import Config, parse_attachments_url
from server.extensions import db
from server.models import Attachment
from server.process import free_port
from server.clock import utcnow
from tests.storage_faults import SmallVolume, Unwritable
from tools.seaweed import SECRET_KEY

PNG = b"\x89PNG\r\n\x1a\n" + b"storage test " * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><path d="M1 1 L9 9"/></svg>'


def _put(client, headers, data: bytes, name: str | None = None):
    """Upload under the bytes' own hash (or another name)."""
    return client.put(f"/api/v1/attachments/{name or hashlib.sha256(data).hexdigest()}", data=data, headers=headers)


def _fetch(url: str) -> tuple[int, dict, bytes]:
    """GET a URL as a browser would after the redirect: status, headers, body."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _objects(app) -> dict[str, int]:
    """Every object under the test's prefix in the bucket: key (without prefix) -> size."""
    store = stores.backend()
    listing = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    return {item["Key"][len(store.prefix):]: item["Size"] for item in listing.get("Contents", [])}


def _staff_get(client, make, sha: str, role: str = "dispatcher") -> tuple[int, dict, bytes]:
    """What a member of staff gets for an attachment, following the store's signed URL if one is given."""
    response = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers(role))
    if response.status_code != 302:
        return response.status_code, dict(response.headers), response.data
    assert response.headers["Cache-Control"] == "private, no-store"
    return _fetch(response.headers["Location"])


def test_upload_is_kept_once_and_served_to_staff(app, client, handheld, make, storage):
    """201 then 200 for the same bytes, HEAD finds them, staff get them back byte for byte with their type."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 404
    assert _put(client, handheld, PNG).status_code == 201
    assert _put(client, handheld, PNG).status_code == 200
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 200
    status, headers, body = _staff_get(client, make, sha)
    assert (status, body) == (200, PNG)
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == f"inline; filename={sha}.png"
    if storage == "s3":
        assert _objects(app) == {f"{sha[:2]}/{sha}": len(PNG)}
    else:
        assert open(os.path.join(app.config["ATTACHMENTS_DIR"], sha[:2], sha), "rb").read() == PNG


def test_svg_is_only_ever_a_download(client, handheld, make, storage):
    """A checked SVG reaches staff as an attachment download from either store, never to be rendered."""
    sha = hashlib.sha256(SVG).hexdigest()
    assert _put(client, handheld, SVG).status_code == 201
    status, headers, body = _staff_get(client, make, sha, role="quality")
    assert (status, body) == (200, SVG)
    assert headers["Content-Type"].split(";")[0] == "image/svg+xml"
    assert headers["Content-Disposition"] == f"attachment; filename={sha}.svg"


def test_bytes_that_do_not_hash_to_their_name_leave_nothing(app, client, handheld, storage):
    """A mismatch is refused before anything is written: no row, no object, no file."""
    wrong = hashlib.sha256(b"something else").hexdigest()
    response = _put(client, handheld, PNG, name=wrong)
    assert response.status_code == 422 and response.json["code"] == "hash_mismatch"
    assert client.head(f"/api/v1/attachments/{wrong}", headers=handheld).status_code == 404
    if storage == "s3":
        assert _objects(app) == {}
    else:
        assert not os.path.exists(os.path.join(app.config["ATTACHMENTS_DIR"], wrong[:2]))


def test_gc_deletes_the_bytes_of_unnamed_uploads_only(app, client, handheld, make, storage):
    """attachments-gc removes an old orphan's row and bytes (no set-aside copy left), keeps a named one;
    the orphan's bytes can come back as a fresh upload."""
    courier = make.courier()
    task = make.task(courier=courier)
    orphan_data, named_data = PNG + b"orphan", PNG + b"named"
    orphan, named = (hashlib.sha256(d).hexdigest() for d in (orphan_data, named_data))
    for data in (orphan_data, named_data):
        assert _put(client, handheld, data).status_code == 201
    note = client.post(f"/api/v1/dispatch/tasks/{task['id']}/notes", json={"text": "see", "photos": [named]},
                       headers=make.headers("dispatcher"))
    assert note.status_code in (200, 201), note.json
    db.session.execute(update(Attachment).values(created_at=utcnow() - timedelta(hours=49)))
    db.session.commit()
    assert jobs.run("attachments-gc") == {"deleted": 1, "kept": 1}
    if storage == "s3":
        assert _objects(app) == {f"{named[:2]}/{named}": len(named_data)}
    else:
        folder = app.config["ATTACHMENTS_DIR"]
        assert sorted(os.listdir(os.path.join(folder, orphan[:2]))) == ([named] if orphan[:2] == named[:2] else [])
    assert client.head(f"/api/v1/attachments/{orphan}", headers=handheld).status_code == 404
    assert _staff_get(client, make, named)[2] == named_data
    assert _put(client, handheld, orphan_data).status_code == 201
    assert _staff_get(client, make, orphan)[2] == orphan_data


def test_gc_puts_the_bytes_back_when_its_commit_fails(app, client, handheld, make, storage, monkeypatch):
    """The bytes are set aside before the row's delete commits; a failed commit restores them under their name."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert _put(client, handheld, PNG).status_code == 201
    db.session.execute(update(Attachment).values(created_at=utcnow() - timedelta(hours=49)))
    db.session.commit()

    def failing_commit():
        raise RuntimeError("the database went away at commit")

    monkeypatch.setattr(db.session, "commit", failing_commit)
    with pytest.raises(RuntimeError, match="went away"):
        from server.services import attachments
        attachments.collect_garbage(now=utcnow(), grace=timedelta(hours=48))
    monkeypatch.undo()
    db.session.rollback()
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 200
    assert _staff_get(client, make, sha)[2] == PNG
    if storage == "s3":
        assert _objects(app) == {f"{sha[:2]}/{sha}": len(PNG)}


def test_signed_url_is_short_lived_and_cannot_be_altered(app, client, handheld, make, seaweed):
    """The store honours the URL for ATTACHMENT_URL_SECONDS only, and refuses it for another key or when expired."""
    app.config.update({k.removeprefix("FIELDOPS_"): v for k, v in seaweed.env("signed-url").items()})
    sha = hashlib.sha256(PNG).hexdigest()
    assert _put(client, handheld, PNG).status_code == 201
    location = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher")).location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["300"]  # the default FIELDOPS_ATTACHMENT_URL_SECONDS
    assert "fieldops-test-secret" not in location
    other = hashlib.sha256(b"another").hexdigest()
    assert _fetch(location.replace(sha, other))[0] == 403  # the signature covers the key
    app.config["ATTACHMENT_URL_SECONDS"] = 1
    short = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher")).location
    assert "X-Amz-Expires=1&" in short
    time.sleep(2.5)
    assert _fetch(short)[0] == 403
    assert _fetch(location)[0] == 200  # the 5-minute one still works


def test_unreachable_store_is_a_transient_refusal_with_nothing_kept(app, client, handheld, make, seaweed, lines):
    """With the store down an upload answers 503 storage_unavailable with Retry-After (a handheld retries),
    nothing is recorded, /readyz says so, and no log line holds the secret key."""
    app.config.update({k.removeprefix("FIELDOPS_"): v for k, v in seaweed.env("down").items()})
    app.config["S3_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    logging.getLogger().setLevel(logging.DEBUG)  # as FIELDOPS_LOG_LEVEL=DEBUG would
    try:
        response = _put(client, handheld, PNG)
        ready = client.get("/readyz")
    finally:
        logging.getLogger().setLevel(app.config["LOG_LEVEL"])
    assert response.status_code == 503 and response.json["code"] == "storage_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert client.head(f"/api/v1/attachments/{hashlib.sha256(PNG).hexdigest()}",
                       headers=handheld).status_code == 404
    assert ready.status_code == 503 and ready.json["storage"] == "unavailable"
    assert ready.json["reasons"] == {"storage": "EndpointConnectionError"} and ready.json["database"] == "ok"
    assert any("attachment store failed" in line for line in lines)
    assert not [line for line in lines if SECRET_KEY in line]


@pytest.mark.parametrize("fault", ["unwritable", "full"])
def test_a_folder_that_cannot_keep_the_file_answers_as_the_bucket_does_and_heals(app, client, handheld, tmp_path,
                                                                                 fault):
    """The local folder refusing writes (made unwritable, tests/storage_faults.py) or full (a 1 MiB tmpfs mounted
    on it and filled to the last byte) answers an upload as an unreachable bucket does: 503 storage_unavailable
    with Retry-After, nothing recorded; /readyz answers 503 naming the store and why. Once the fault is gone the
    same upload is kept and /readyz is 200, with no restart; neither the refused upload nor a probe leaves a file."""
    folder = str(tmp_path / "attachments")
    os.makedirs(folder)
    app.config["ATTACHMENTS_DIR"] = folder  # a folder of its own: the app fixture restores the setting
    data = PNG + fault.encode()
    sha = hashlib.sha256(data).hexdigest()
    with contextlib.ExitStack() as faults:
        if fault == "unwritable":
            end = faults.enter_context(Unwritable(folder)).end
        else:
            volume = faults.enter_context(SmallVolume(folder))
            volume.fill()
            end = volume.free
        refused = _put(client, handheld, data)
        ready = client.get("/readyz")
        recorded = client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code
        end()
        kept = _put(client, handheld, data)
        healed = client.get("/readyz")
        left = {name: sorted(os.listdir(os.path.join(folder, name))) for name in os.listdir(folder)}
    assert refused.status_code == 503 and refused.json["code"] == "storage_unavailable", refused.json
    assert refused.headers["Retry-After"] == "5" and refused.mimetype == "application/problem+json"
    assert recorded == 404
    assert ready.status_code == 503 and (ready.json["storage"], ready.json["database"]) == ("unavailable", "ok")
    assert ready.json["reasons"]["storage"] in (("EPERM", "EACCES") if fault == "unwritable" else ("ENOSPC",))
    assert kept.status_code == 201, kept.json
    assert healed.status_code == 200 and healed.json["storage"] == "ok", healed.json
    assert left == {sha[:2]: [sha]}


def test_readiness_and_logs_with_a_live_store(app, client, handheld, make, seaweed, lines):
    """/readyz checks the bucket; a whole upload, download and GC at DEBUG logs neither the secret nor a signature."""
    app.config.update({k.removeprefix("FIELDOPS_"): v for k, v in seaweed.env("logs").items()})
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["storage"] == "ok"
    assert _objects(app) == {}  # the probe's object is deleted
    logging.getLogger().setLevel(logging.DEBUG)  # as FIELDOPS_LOG_LEVEL=DEBUG would: botocore stays at WARNING
    try:
        assert _put(client, handheld, PNG).status_code == 201
        location = client.get(f"/api/v1/dispatch/attachments/{hashlib.sha256(PNG).hexdigest()}",
                              headers=make.headers("dispatcher")).location
        db.session.execute(update(Attachment).values(created_at=utcnow() - timedelta(hours=49)))
        db.session.commit()
        assert jobs.run("attachments-gc") == {"deleted": 1, "kept": 0}
    finally:
        logging.getLogger().setLevel(app.config["LOG_LEVEL"])
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["X-Amz-Signature"][0]
    assert lines and not [line for line in lines if SECRET_KEY in line or signature in line]


def test_attachments_url_is_checked_at_start(monkeypatch):
    """s3://bucket/prefix is taken apart; anything else stops the app at start-up, not at the first upload."""
    assert parse_attachments_url("s3://photos/depot-7/attachments/") == ("photos", "depot-7/attachments/")
    assert parse_attachments_url("s3://photos") == ("photos", "")
    for bad in ("/srv/attachments", "https://s3.example/photos", "s3:///prefix", "s3://photos/p?x=1"):
        monkeypatch.setenv("FIELDOPS_ATTACHMENTS_URL", bad)
        with pytest.raises(RuntimeError, match="FIELDOPS_ATTACHMENTS_URL"):
            Config()
    monkeypatch.setenv("FIELDOPS_ATTACHMENTS_URL", "s3://photos/p")
    monkeypatch.setenv("FIELDOPS_ATTACHMENT_URL_SECONDS", "0")
    with pytest.raises(RuntimeError, match="ATTACHMENT_URL_SECONDS"):
        Config()
