"""Secrets the service must read back, sealed at rest: AES-GCM under a key derived from SECRET_KEY, never stored.

Webhook signing secrets, receipt page tokens and handover PINs are shown again
(signing, a QR code, the customer page), so a hash will not do; each is sealed
under its own purpose's key and bound to the row it belongs to, so a sealed
value copied to another row does not open.
"""
import base64
import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_VERSION = "v1."


def _derived(purpose: str) -> bytes:
    """The purpose's 32-byte key, derived from SECRET_KEY (as it is now: a changed key derives anew)."""
    return _derive(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=32)
def _derive(secret_key: str, purpose: str) -> bytes:
    """HKDF-SHA256 of the secret for the purpose; a push seals and digests hundreds of values with a few keys."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret_key.encode())


def _key(purpose: str) -> AESGCM:
    """The purpose's sealing key."""
    return AESGCM(_derived(purpose))


def seal(value: str, *, purpose: str, bound_to: str) -> str:
    """Encrypt a secret for the database, bound to its row's id."""
    nonce = os.urandom(12)
    sealed = _key(purpose).encrypt(nonce, value.encode(), bound_to.encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, *, purpose: str, bound_to: str) -> str:
    """The secret; ValueError if it cannot be opened (SECRET_KEY changed, or another row's value)."""
    raw = base64.urlsafe_b64decode(sealed.removeprefix(_VERSION))
    try:
        return _key(purpose).decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
    except InvalidTag:
        raise ValueError("the sealed value cannot be opened (FIELDOPS_SECRET_KEY changed?)") from None


def keyed_digest(value: str, *, purpose: str) -> str:
    """A fingerprint of a secret that only this service can compute (HMAC-SHA256 under a key derived
    from SECRET_KEY): equal secrets give equal digests, and a stored one cannot be searched for the
    secret (a 6-digit PIN is 10^6 guesses) without the key."""
    return hmac.new(_derived(purpose), value.encode(), hashlib.sha256).hexdigest()
