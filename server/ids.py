"""Identifiers and secrets."""
import base64
import hashlib
import os
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
ENROLLMENT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud safely
ENROLLMENT_CODE_LENGTH = 10


def new_id(prefix: str) -> str:
    """A sortable random id: 48 bits of milliseconds then 80 random bits, base32.

    Time-ordered ids keep B-tree inserts local and make id order a usable
    pagination order; the random part makes them unguessable.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}-{''.join(reversed(chars))}"


def new_token(prefix: str) -> str:
    """A 256-bit random bearer token with a readable kind prefix."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def new_enrollment_code() -> str:
    """A one-time enrollment code of about 50 random bits."""
    return "".join(secrets.choice(ENROLLMENT_CODE_ALPHABET) for _ in range(ENROLLMENT_CODE_LENGTH))


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret; only this is ever stored."""
    return hashlib.sha256(secret.encode()).hexdigest()
