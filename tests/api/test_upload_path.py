"""An upload's bytes are on disk before its row, and never written while the upload holds a write transaction."""
import hashlib
import os


from server import storage
from server.extensions import db
from server.models import Attachment

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _put(client, headers, data: bytes):
    """Upload under the bytes' own hash."""
    return client.put(f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}", data=data, headers=headers)


def test_bytes_are_synced_before_the_transaction_that_records_them(client, handheld, monkeypatch):
    """The fsync'd write happens with no transaction open (on SQLite: not under the write lock); 201 after the row."""
    seen = []
    put = storage.LocalFolder.put

    def watched(self, sha256, data, content_type):
        seen.append(db.session().in_transaction())
        put(self, sha256, data, content_type)
        assert db.session.get(Attachment, sha256) is None  # the row comes after the bytes
        db.session.commit()  # the read above began a transaction; the upload's own begins after this

    monkeypatch.setattr(storage.LocalFolder, "put", watched)
    response = _put(client, handheld, PNG)
    assert response.status_code == 201 and seen == [False]
    sha256 = hashlib.sha256(PNG).hexdigest()
    assert db.session.get(Attachment, sha256).size == len(PNG)
    assert open(storage.backend().path(sha256), "rb").read() == PNG


def test_repeat_upload_is_200_and_writes_back_lost_bytes(client, handheld):
    """The lookup in its own read transaction still finds the row; bytes a folder lost are written again."""
    assert _put(client, handheld, PNG).status_code == 201
    path = storage.backend().path(hashlib.sha256(PNG).hexdigest())
    assert _put(client, handheld, PNG).status_code == 200
    os.remove(path)
    assert _put(client, handheld, PNG).status_code == 200
    assert open(path, "rb").read() == PNG


def test_an_upload_that_raced_another_is_200(client, handheld, monkeypatch):
    """Another upload of the same bytes commits its row between our lookup and our insert: 200, one row."""
    put = storage.LocalFolder.put
    sha256 = hashlib.sha256(PNG).hexdigest()

    def racing(self, sha, data, content_type):
        put(self, sha, data, content_type)
        db.session.add(Attachment(sha256=sha, size=len(data), content_type=content_type))
        db.session.commit()  # the other upload's row

    monkeypatch.setattr(storage.LocalFolder, "put", racing)
    assert _put(client, handheld, PNG).status_code == 200
    assert db.session.query(Attachment).filter_by(sha256=sha256).count() == 1
