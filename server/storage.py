"""Where attachment bytes live: a local folder (the embedded default) or an S3-compatible bucket.

Both are content-addressed (`<sha256[:2]>/<sha256>`), and both only ever show
complete bytes under a final name: the folder writes a temporary file and
renames it, a bucket's PUT is all or nothing (and the bucket checks the bytes
against their SHA-256 before it keeps them). The database row is the truth;
the bytes are written before their row and set aside (not deleted) before
their row goes, so a failed commit can put them back.
"""
import base64
import errno
import os
import tempfile

from flask import current_app

from server.config import BucketLocation, parse_attachments_url
from server.errors import DomainError

_ASIDE = ".gc"  # the suffix of bytes whose row is being deleted


class StorageUnavailable(DomainError):
    """The store did not answer, refused us, or could not write (a folder's permissions, a full volume):
    nothing was stored; retry shortly."""

    status, code, title = 503, "storage_unavailable", "Service unavailable"

    def __init__(self, reason: str):
        """reason: a short, safe name of the failure (an errno name, an S3 error code) for readiness and logs."""
        super().__init__("The attachment store could not be reached or could not keep the file; retry shortly.",
                         headers={"Retry-After": "5"})
        self.reason = reason


_PROBE = ".readyz"  # the readiness probe's name: never a content address (<sha256[:2]>/<sha256>)


class LocalFolder:
    """Attachment bytes in a folder on this host (one app host, or a shared mount)."""

    def __init__(self, root: str):
        """Keep files under root."""
        self.root = root

    def path(self, sha256: str) -> str:
        """Where the bytes of an attachment live."""
        return os.path.join(self.root, sha256[:2], sha256)

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        """Write then rename: a crash never leaves a half file under the final name."""
        path = self.path(sha256)
        with _store_errors("put"):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(_write_durably(os.path.dirname(path), data), path)

    def set_aside(self, sha256: str) -> bool:
        """Move the bytes out of their name (their row is about to go); whether there were any."""
        with _store_errors("set aside"):
            try:
                os.replace(self.path(sha256), self.path(sha256) + _ASIDE)
            except FileNotFoundError:
                return False
        return True

    def put_back(self, sha256: str) -> None:
        """Undo set_aside (the row's deletion did not commit)."""
        with _store_errors("put back"):
            os.replace(self.path(sha256) + _ASIDE, self.path(sha256))

    def discard(self, sha256: str) -> None:
        """Delete bytes set aside (their row is gone)."""
        with _store_errors("discard"):
            os.remove(self.path(sha256) + _ASIDE)

    def probe(self) -> None:
        """Write, sync and delete a small file in the folder, as an upload would; StorageUnavailable if it cannot."""
        with _store_errors("probe"):
            os.makedirs(self.root, exist_ok=True)
            os.remove(_write_durably(self.root, b"ready", prefix=_PROBE))


def _write_durably(folder: str, data: bytes, *, prefix: str = "tmp") -> str:
    """A new file in folder holding data, synced to disk; its path. Nothing is left behind if that fails."""
    fd, path = tempfile.mkstemp(dir=folder, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        os.remove(path)  # a full volume, say: no half file left to fill it further
        raise
    return path


class S3Bucket:
    """Attachment bytes in an S3-compatible bucket, shared by every app host."""

    def __init__(self, location: BucketLocation, client, signing_client, url_seconds: int):
        """A boto3 client for the store's operations, another for URLs handed to browsers."""
        self.bucket, self.prefix = location
        self.client, self.signing_client, self.url_seconds = client, signing_client, url_seconds

    def key(self, sha256: str) -> str:
        """The object key of an attachment."""
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        """One PUT: the object appears whole or not at all, and only if its bytes hash to sha256."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        with _store_errors("put"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=data,
                                   ContentType=content_type, ChecksumSHA256=checksum)

    def set_aside(self, sha256: str) -> bool:
        """Copy the object to its set-aside key and delete it (the store copies without the bytes passing here)."""
        from botocore.exceptions import ClientError

        key = self.key(sha256)
        with _store_errors("set aside"):
            try:
                self.client.copy_object(Bucket=self.bucket, Key=key + _ASIDE,
                                        CopySource={"Bucket": self.bucket, "Key": key})
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def put_back(self, sha256: str) -> None:
        """Undo set_aside."""
        key = self.key(sha256)
        with _store_errors("put back"):
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key + _ASIDE})
            self.client.delete_object(Bucket=self.bucket, Key=key + _ASIDE)

    def discard(self, sha256: str) -> None:
        """Delete the set-aside copy."""
        with _store_errors("discard"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256) + _ASIDE)

    def read(self, sha256: str) -> bytes:
        """The object's bytes (the console streams an image from its own origin: its CSP allows no other)."""
        with _store_errors("read"):
            return self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"].read()

    def signed_url(self, sha256: str, *, content_type: str, disposition: str) -> str:
        """A GET URL for the object that works for url_seconds, answering with the type and disposition given.

        Signing needs credentials: none found (no keys, no role) is the store refusing us, a 503."""
        with _store_errors("sign"):
            return self.signing_client.generate_presigned_url(
                "get_object", ExpiresIn=self.url_seconds,
                Params={"Bucket": self.bucket, "Key": self.key(sha256), "ResponseContentType": content_type,
                        "ResponseContentDisposition": disposition, "ResponseCacheControl": "private, no-store"})

    def probe(self) -> None:
        """PUT and DELETE a small object under the prefix, as an upload and the collector would;
        StorageUnavailable if the bucket does not answer or refuses either."""
        with _store_errors("probe"):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + _PROBE, Body=b"ready")
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _PROBE)


def _missing(exc) -> bool:
    """Whether a botocore ClientError says the object is not there."""
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


class _store_errors:
    """Turn either store's failures into StorageUnavailable (503): a bucket's (unreachable, refused) and a
    folder's (permissions, a read-only or full volume, an I/O error); logged without credentials or URLs."""

    def __init__(self, action: str):
        """Name the action for the log."""
        self.action = action

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, _tb):
        reason = _failure(exc) if exc is not None else None
        if reason is None:
            return False
        current_app.logger.warning("attachment store failed", extra={"action": self.action, "error": reason})
        raise StorageUnavailable(reason) from exc


def _failure(exc: BaseException) -> str | None:
    """A store failure's short name (an errno name, an S3 error code), or None for anything else (a bug)."""
    if isinstance(exc, OSError):
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    from botocore.exceptions import BotoCoreError, ClientError  # here: a folder's users never load botocore

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))[:80]
    return type(exc).__name__ if isinstance(exc, BotoCoreError) else None


def _s3_client(config, endpoint: str | None):
    """A boto3 S3 client for the configured credentials, with short timeouts and a few retries."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=config["S3_REGION"],
        aws_access_key_id=config["S3_ACCESS_KEY"], aws_secret_access_key=config["S3_SECRET_KEY"],
        config=BotoConfig(signature_version="s3v4", connect_timeout=3, read_timeout=20,
                          retries={"max_attempts": 3, "mode": "standard"},
                          # Self-hosted stores (SeaweedFS, MinIO) answer at one host name: path-style keys.
                          s3={"addressing_style": "path" if endpoint else "virtual"}))


def backend() -> LocalFolder | S3Bucket:
    """The attachment store the app's config names, made once per process and configuration."""
    config = current_app.config
    url = config.get("ATTACHMENTS_URL")
    settings = (url, config["ATTACHMENTS_DIR"], config.get("S3_ENDPOINT"), config.get("S3_PUBLIC_ENDPOINT"),
                config.get("S3_REGION"), config.get("S3_ACCESS_KEY"), config.get("S3_SECRET_KEY"),
                config.get("ATTACHMENT_URL_SECONDS"))
    cached = current_app.extensions.get("fieldops_storage")
    if cached is not None and cached[0] == settings:
        return cached[1]
    if not url:
        store = LocalFolder(config["ATTACHMENTS_DIR"])
    else:
        client = _s3_client(config, config.get("S3_ENDPOINT"))
        public = config.get("S3_PUBLIC_ENDPOINT")
        signing = _s3_client(config, public) if public and public != config.get("S3_ENDPOINT") else client
        store = S3Bucket(parse_attachments_url(url), client, signing, config["ATTACHMENT_URL_SECONDS"])
    current_app.extensions["fieldops_storage"] = (settings, store)
    return store
