"""Content-addressed attachments (signatures, photos): verified, typed by content, stored once."""
import hashlib
import os
import tempfile

from flask import current_app
from sqlalchemy.exc import IntegrityError

from server.auth import Actor
from server.errors import NotFound, ValidationFailed
from server.extensions import db
from server.models import Attachment

_SVG_FORBIDDEN = (b"<script", b"javascript:", b"onload=", b"onerror=", b"<foreignobject")


def sniff(data: bytes) -> str | None:
    """The content type by the bytes themselves: JPEG, PNG, or an SVG without scripts."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg"):
        lowered = data.lower()
        if b"<svg" in lowered and not any(bad in lowered for bad in _SVG_FORBIDDEN):
            return "image/svg+xml"
    return None


def _path(sha256: str) -> str:
    """Where the bytes of an attachment live."""
    return os.path.join(current_app.config["ATTACHMENTS_DIR"], sha256[:2], sha256)


def exists(*, sha256: str) -> bool:
    """Whether the attachment is stored."""
    return db.session.get(Attachment, sha256) is not None


def store(*, actor: Actor, sha256: str, data: bytes) -> tuple[Attachment, bool]:
    """Keep the bytes if they hash to sha256 and are an allowed type; (row, created)."""
    existing = db.session.get(Attachment, sha256)
    if existing is not None:
        return existing, False
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValidationFailed("The bytes do not hash to the name they were sent under.",
                               code="hash_mismatch", fields={"sha256": ["Does not match the body."]})
    content_type = sniff(data)
    if content_type is None:
        raise ValidationFailed("Only JPEG, PNG, or SVG (signatures, no scripts) are accepted.",
                               code="unsupported_content", fields={"body": ["Not JPEG, PNG or SVG."]})
    path = _path(sha256)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Write then rename: a crash never leaves a half file under the final name.
    with tempfile.NamedTemporaryFile(dir=os.path.dirname(path), delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)
    row = Attachment(sha256=sha256, size=len(data), content_type=content_type,
                     device_id=actor.device_id)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same upload raced us; the bytes are identical
        db.session.rollback()
        return db.session.get(Attachment, sha256), False
    return row, True


def read(*, sha256: str) -> tuple[Attachment, str]:
    """The row and file path of a stored attachment."""
    row = db.session.get(Attachment, sha256)
    if row is None:
        raise NotFound(f"No attachment {sha256}.", code="attachment_not_found")
    return row, _path(sha256)
