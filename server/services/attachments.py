"""Content-addressed attachments (signatures, photos): verified, typed by content, stored once."""
import hashlib
import json
import os
import re
from datetime import datetime, timedelta
from typing import Iterator, NamedTuple
from xml.etree.ElementTree import ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.auth import Actor
from server.database import mark_read_only, reset_read_only
from server.errors import NotFound, ValidationFailed
from server.extensions import db
from server.models import Attachment, Complaint, OpLog, RefusedAttachment, TaskEvent, VehicleDefect
from server.storage import LocalFolder, backend

SVG = "image/svg+xml"
# JPEG and PNG may be shown inline; anything else (SVG) is only ever a download.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", SVG: ".svg"}
INLINE = frozenset({"image/jpeg", "image/png"})

_SVG_NS = "http://www.w3.org/2000/svg"
# Signature libraries declare xlink out of habit; declaring it is inert, any xlink attribute is refused.
_SVG_DECLARABLE = frozenset({_SVG_NS, "http://www.w3.org/1999/xlink"})
# A signature is a drawing: shapes and their paint, nothing that links, scripts, animates or embeds.
_SVG_ELEMENTS = frozenset({"svg", "g", "path", "polyline", "polygon", "line", "rect", "circle", "ellipse",
                           "title", "desc"})
_SVG_ATTRIBUTES = frozenset({
    "id", "version", "baseProfile", "width", "height", "viewBox", "preserveAspectRatio",
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "d", "points", "pathLength",
    "transform", "opacity", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
    "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
    "stroke-dashoffset", "shape-rendering", "vector-effect"})
# Numbers, lengths, colours, path data and transform lists need no more than these characters.
_SVG_VALUE = re.compile(r"[A-Za-z0-9_.,+\-#%()\s]*")
_SVG_VALUE_FORBIDDEN = ("url(", "javascript", "data:")


def sniff(data: bytes) -> str | None:
    """The content type by the bytes themselves: JPEG, PNG, or markup to be judged as SVG."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<"):
        return SVG
    return None


class _SvgBuilder(TreeBuilder):
    """An element tree builder that also notes namespace declarations and processing instructions."""

    def __init__(self):
        """Start with nothing noted."""
        super().__init__()
        self.namespaces: set[str] = set()
        self.instructions: list[str] = []

    def start_ns(self, prefix, uri):
        """Note a namespace declaration."""
        self.namespaces.add(uri)

    def pi(self, target, text=None):
        """Note a processing instruction (an xml-stylesheet would load CSS)."""
        self.instructions.append(target)
        return super().pi(target, text)


def _named(tag: str) -> tuple[str, str]:
    """(namespace, name) of an element tree tag or attribute; '' for no namespace."""
    ns, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return ns, name


def _shown(tag: str) -> str:
    """A tag or attribute as a refusal names it."""
    ns, name = _named(tag)
    return f"{name} (namespace {ns})" if ns not in ("", _SVG_NS) else name


def _svg_problem(data: bytes) -> str | None:
    """Why an SVG is not a plain drawing, or None when it is one."""
    builder = _SvgBuilder()
    # No DTD at all: no entity can be declared, expanded or fetched.
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        return f"a DOCTYPE or entity declaration is not allowed ({type(exc).__name__})"
    except (ParseError, ValueError, LookupError) as exc:  # ValueError, LookupError: encodings expat lacks
        return f"not well-formed XML ({exc})"
    if builder.instructions:
        return f"processing instruction <?{builder.instructions[0]}?> is not allowed"
    if extra := sorted(builder.namespaces - _SVG_DECLARABLE):
        return f"namespace {extra[0]} is not allowed"
    if _named(root.tag) != (_SVG_NS, "svg"):
        return f"the root element is {_shown(root.tag)}; it must be svg in the SVG namespace"
    for element in root.iter():
        ns, name = _named(element.tag)
        if ns != _SVG_NS or name not in _SVG_ELEMENTS:
            return f"element {_shown(element.tag)} is not allowed"
        for attribute, value in element.attrib.items():
            if attribute not in _SVG_ATTRIBUTES:
                return f"attribute {_shown(attribute)} is not allowed on {name}"
            # The parser has decoded character references; browsers also ignore whitespace inside schemes.
            squeezed = re.sub(r"\s+", "", value).lower()
            if bad := next((b for b in _SVG_VALUE_FORBIDDEN if b in squeezed), None):
                return f"attribute {attribute} on {name} contains {bad!r}"
            if not _SVG_VALUE.fullmatch(value):
                return f"attribute {attribute} on {name} has characters a drawing does not need"
    return None


def _bytes_lost(sha256: str) -> bool:
    """Whether a local folder has lost the bytes its row names (a host without the shared mount,
    a wiped disk). A bucket's PUT comes before the row and is strongly consistent: not asked."""
    store = backend()
    return isinstance(store, LocalFolder) and not os.path.exists(store.path(sha256))


def exists(*, sha256: str) -> bool:
    """Whether the attachment is stored (its row, and in a local folder its bytes: else the handheld uploads again)."""
    return db.session.get(Attachment, sha256) is not None and not _bytes_lost(sha256)


def store(*, actor: Actor, sha256: str, data: bytes) -> tuple[Attachment, bool]:
    """Keep the bytes if they hash to sha256 and are an allowed type; (row, created).

    Checked against the name even when the row exists: a repeat upload writes back bytes a
    local folder lost, and never other bytes under a known name."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValidationFailed("The bytes do not hash to the name they were sent under.",
                               code="hash_mismatch", fields={"sha256": ["Does not match the body."]})
    existing = _stored_row(sha256)
    if existing is not None:
        if _bytes_lost(sha256):
            backend().put(sha256, data, existing.content_type)
        return existing, False
    content_type = sniff(data)
    if content_type is None:
        _refuse(actor, sha256, "unsupported_content", "Only JPEG, PNG, or SVG (signatures, no scripts) are accepted.",
                "Not JPEG, PNG or SVG.")
    if content_type == SVG and (problem := _svg_problem(data)):
        _refuse(actor, sha256, "unsafe_svg", f"The SVG is not a plain drawing: {problem}.", problem)
    # The bytes before their row: a row always names complete bytes (the store shows none half-written).
    # Written (and synced) before the transaction that records them begins: on SQLite that transaction
    # holds the database's one write lock, which no fsync of a photo should hold up.
    backend().put(sha256, data, content_type)
    row = Attachment(sha256=sha256, size=len(data), content_type=content_type,
                     device_id=actor.device_id)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:  # the same upload raced us; the bytes are identical
        db.session.rollback()
        return db.session.get(Attachment, sha256), False
    return row, True


def _stored_row(sha256: str) -> Attachment | None:
    """The attachment's row, if any.

    Outside a transaction (an upload) it is read in a read-only one of its own, so
    the upload queues for SQLite's write lock only once its bytes are on disk and
    the row is all that is left to write. A row a concurrent upload adds after this
    read is caught by the insert's conflict (store: IntegrityError).
    """
    if db.session().in_transaction():
        return db.session.get(Attachment, sha256)
    read_only = mark_read_only(True)
    try:
        return db.session.get(Attachment, sha256)
    finally:
        db.session.commit()
        reset_read_only(read_only)


def _refuse(actor: Actor, sha256: str, code: str, detail: str, reason: str) -> None:
    """Remember that these bytes (they hash to their name) were refused, then raise the 422.

    The refusal is final for that sha256, so an op naming it can be rejected at
    once (push: attachment_refused) instead of waiting for an upload that cannot come.
    """
    db.session.merge(RefusedAttachment(sha256=sha256, code=code, reason=reason[:300],
                                       device_id=actor.device_id))
    try:
        db.session.commit()
    except IntegrityError:  # the same bytes refused for another upload at the same moment
        db.session.rollback()
    raise ValidationFailed(detail, code=code, fields={"body": [reason]})


class Download(NamedTuple):
    """How staff get an attachment's bytes: a file this host sends, or a short-lived signed URL of the bucket."""

    row: Attachment
    disposition: str  # "inline" or "attachment"
    download_name: str
    path: str | None = None
    url: str | None = None


def download(*, sha256: str) -> Download:
    """Where staff fetch a stored attachment: the local file, or a signed URL that answers with the checked type."""
    row = db.session.get(Attachment, sha256)
    if row is None:
        raise NotFound(f"No attachment {sha256}.", code="attachment_not_found")
    # Only JPEG and PNG may open in the browser; SVG (and anything later) is a download.
    disposition = "inline" if row.content_type in INLINE else "attachment"
    name = sha256 + EXTENSIONS[row.content_type]
    store = backend()
    if isinstance(store, LocalFolder):
        if not os.path.exists(store.path(sha256)):
            current_app.logger.error("attachment bytes missing", extra={"sha256": sha256})
            raise NotFound(f"Attachment {sha256} is recorded but its bytes are not in this host's folder; "
                           "the handheld uploads it again.", code="attachment_bytes_missing")
        return Download(row, disposition, name, path=store.path(sha256))
    url = store.signed_url(sha256, content_type=row.content_type, disposition=f"{disposition}; filename={name}")
    return Download(row, disposition, name, url=url)


def content(*, sha256: str) -> tuple[Download, bytes | None]:
    """download() for a page that must send the bytes from its own origin: with the bytes of an object in a bucket
    (None for a local file, which Download.path names)."""
    found = download(sha256=sha256)
    if found.url is None:
        return found, None
    return found, backend().read(sha256)


# session.info: the attachments this transaction found stored and holds (FOR KEY SHARE) until it ends.
_HELD = "fieldops.attachments.held"


def present(shas) -> set[str]:
    """Which of these attachments are stored; held (FOR KEY SHARE) until commit, so the collector cannot
    delete one that the caller's transaction is about to refer to.

    What the transaction holds already is not asked again: a push holds every file its batch
    names in one query (`hold`), and each op's check is then free.
    """
    if not shas:
        return set()
    held = db.session.info.setdefault(_HELD, set())
    unknown = [sha for sha in shas if sha not in held]
    if unknown:
        held.update(db.session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(unknown))
                                       .with_for_update(read=True, key_share=True)))
    return {sha for sha in shas if sha in held}


def hold(values) -> None:
    """Hold, in one query, every stored attachment that these (JSON) values may name: each string
    shaped like a sha256. A string that names no file costs nothing but its place in the query."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, str):
            if len(value) == 64 and _SHA256.fullmatch(value):
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(values)
    present(sorted(found))


def _forget_held(session, _transaction=None) -> None:
    """Locks end with their transaction; so does the record of them (a savepoint's rollback may
    have released some: all are forgotten, and asked again if needed)."""
    session.info.pop(_HELD, None)


def init_app(_app) -> None:
    """Install the held-attachment bookkeeping once per process (session events are per Session class)."""
    if not event.contains(Session, "after_commit", _forget_held):
        event.listen(Session, "after_soft_rollback", _forget_held)
        event.listen(Session, "after_commit", _forget_held)


_SHA256 = re.compile(r"[0-9a-f]{64}")
# Upload and reference may be stamped by different hosts: look this far before the upload.
_CLOCK_SLACK = timedelta(hours=1)


def _naming_rows(since: datetime) -> Iterator[object]:
    """Every value written since `since` that can name an attachment.

    Devices name files only in ops, and the op log keeps every op whatever became of it
    (a rejected op's photos stay: field data is never dropped); staff name them in task
    notes and defect repairs; customers their complaints' photos. A file is named after it was uploaded, never
    before.
    """
    yield from db.session.scalars(select(OpLog.payload).where(OpLog.received_at >= since))
    yield from db.session.scalars(select(TaskEvent.data).where(
        TaskEvent.kind == "note", TaskEvent.at >= since, TaskEvent.data.is_not(None)))
    yield from db.session.scalars(select(VehicleDefect.photos).where(VehicleDefect.resolved_at >= since))
    yield from db.session.scalars(select(Complaint.photo_sha256).where(
        Complaint.created_at >= since, Complaint.photo_sha256.is_not(None)))


def collect_garbage(*, now: datetime, grace: timedelta, batch: int = 500) -> dict:
    """Delete uploads older than the grace period that nothing names, row and file; mark the rest kept.

    Commits once per batch. Each upload is judged once: a kept one is never looked at again.
    """
    deleted = kept = 0
    while True:
        candidates = list(db.session.scalars(
            select(Attachment).where(Attachment.kept_at.is_(None), Attachment.created_at < now - grace)
            .order_by(Attachment.created_at).limit(batch).with_for_update()))
        if not candidates:
            return {"deleted": deleted, "kept": kept}
        wanted = {row.sha256 for row in candidates}
        named = set()
        for value in _naming_rows(min(row.created_at for row in candidates) - _CLOCK_SLACK):
            named.update(wanted.intersection(_SHA256.findall(json.dumps(value))))
        store = backend()
        aside = []
        try:
            for row in candidates:
                if row.sha256 in named:
                    row.kept_at = now
                    kept += 1
                else:
                    # Out of its name before its row goes: an upload of the same bytes after our commit
                    # writes them anew under the name, and what we delete below is only the old copy.
                    if store.set_aside(row.sha256):
                        aside.append(row.sha256)
                    db.session.delete(row)
                    deleted += 1
            db.session.commit()
        except Exception:
            db.session.rollback()
            for sha256 in aside:
                store.put_back(sha256)
            raise
        for sha256 in aside:
            store.discard(sha256)
