"""Attachments attacked as a careless operator would: bytes gone from the local folder under a row
that still names them (a second host without the shared mount, a restored database, a wiped disk)."""
import hashlib
import os


from server.extensions import db
from server.models import Attachment
from server.storage import LocalFolder
from tests.api.test_attachments import PNG, _put


def test_a_row_whose_local_bytes_are_gone_is_a_404_and_the_handhelds_reupload_repairs_it(app, client, handheld, make):
    """Dispatch gets problem+json 404 attachment_bytes_missing (was a 500 from send_file), the
    handheld's HEAD says not stored so it uploads again, and that upload writes the bytes back."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert _put(client, handheld, PNG).status_code == 201
    os.remove(LocalFolder(app.config["ATTACHMENTS_DIR"]).path(sha))
    lost = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher"))
    assert lost.status_code == 404 and lost.content_type == "application/problem+json"
    assert lost.json["code"] == "attachment_bytes_missing"
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 404
    assert _put(client, handheld, PNG).status_code == 200  # the row was there; the bytes are again
    served = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher"))
    assert served.status_code == 200 and served.data == PNG
    assert client.head(f"/api/v1/attachments/{sha}", headers=handheld).status_code == 200


def test_a_reupload_under_an_existing_row_is_still_checked_against_its_name(app, client, handheld):
    """The repair path writes nothing that does not hash to the name (no other bytes under a known sha)."""
    sha = hashlib.sha256(PNG).hexdigest()
    assert _put(client, handheld, PNG).status_code == 201
    path = LocalFolder(app.config["ATTACHMENTS_DIR"]).path(sha)
    os.remove(path)
    forged = client.put(f"/api/v1/attachments/{sha}", data=PNG + b"x", headers=handheld)
    assert forged.status_code == 422 and forged.json["code"] == "hash_mismatch"
    assert not os.path.exists(path)


def test_names_that_are_not_a_sha256_touch_no_file(app, client, handheld, make):
    """Upper-case, short, dotted and percent-encoded traversal names: 422 or 404, nothing written outside."""
    root = app.config["ATTACHMENTS_DIR"]
    def files():  # the folder's tree, and what sits beside it (where a traversal would land)
        return sorted(os.walk(root)), sorted(os.listdir(os.path.dirname(root)))

    before = files()
    for name in (hashlib.sha256(PNG).hexdigest().upper(), "abc", "..", "..%2F..%2Fetc", "%2e%2e"):
        upload = client.put(f"/api/v1/attachments/{name}", data=PNG, headers=handheld)
        assert upload.status_code in (404, 422) and upload.content_type == "application/problem+json", name
        served = client.get(f"/api/v1/dispatch/attachments/{name}", headers=make.headers("dispatcher"))
        assert served.status_code == 404 and served.content_type == "application/problem+json", name
    assert files() == before


def test_a_bucket_without_credentials_is_a_503_for_staff_not_a_500(app, client, make, monkeypatch):
    """A host configured for the bucket but given no keys (none in the environment either): the signed
    URL cannot be made, which is the store refusing us (503 storage_unavailable), not a server error."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    sha = hashlib.sha256(PNG).hexdigest()
    db.session.add(Attachment(sha256=sha, size=len(PNG), content_type="image/png"))
    db.session.commit()
    app.config.update(ATTACHMENTS_URL="s3://photos/p/", S3_ENDPOINT="http://127.0.0.1:9",
                      S3_ACCESS_KEY=None, S3_SECRET_KEY=None)
    served = client.get(f"/api/v1/dispatch/attachments/{sha}", headers=make.headers("dispatcher"))
    assert served.status_code == 503 and served.content_type == "application/problem+json"
    assert served.json["code"] == "storage_unavailable" and served.headers["Retry-After"] == "5"
