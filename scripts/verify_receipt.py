#!/usr/bin/env python3
"""Verify a Fieldops sealed receipt offline, with nothing but the published public keys.

    python verify_receipt.py RECEIPT.json KEYS.json

RECEIPT.json is the sealed receipt (the page's JSON form, /r/<token>.json):
{"receipt": {...}, "seal": {"alg": "Ed25519", "key_id": ..., "signature": ...}}.
KEYS.json is GET /api/v1/receipts/keys (a JWK Set). Exit 0 when the seal
verifies, 1 otherwise (with the reason on stderr). Needs only Python 3 and the
`cryptography` package: this file stands alone, copy it anywhere. The format is
in docs/receipts.md.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "fieldops.receipt.v1"
MAX_SAFE_INTEGER = 2 ** 53 - 1


class Invalid(Exception):
    """The receipt does not verify; the message says why."""


def check_values(value) -> None:
    """Refuse what the canonical form does not admit: floats, huge integers, non-ASCII keys."""
    if isinstance(value, float):
        raise Invalid("a receipt holds no floating-point numbers")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        raise Invalid("an integer is beyond 2**53 - 1")
    if isinstance(value, list):
        for item in value:
            check_values(item)
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.isascii() or not key.isprintable():
                raise Invalid("object keys must be printable ASCII")
            check_values(item)


def canonical_json(value) -> bytes:
    """Sorted keys, no whitespace, UTF-8, only the short escapes JSON requires (RFC 8785 for this subset)."""
    check_values(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def unb64url(text: str) -> bytes:
    """Base64url without padding, strictly."""
    if not isinstance(text, str):
        raise Invalid("expected base64url text")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except ValueError as exc:
        raise Invalid("bad base64url") from exc


def verify(document: dict, key_set: dict | list) -> str:
    """The receipt's number when its seal verifies with a key of the set; else raise Invalid."""
    if not isinstance(document, dict) or not isinstance(document.get("receipt"), dict) \
            or not isinstance(document.get("seal"), dict):
        raise Invalid("not a sealed receipt: expected {\"receipt\": {...}, \"seal\": {...}}")
    receipt, seal = document["receipt"], document["seal"]
    if receipt.get("format") != FORMAT or seal.get("alg") != "Ed25519":
        raise Invalid(f"not a {FORMAT} receipt sealed with Ed25519")
    if seal.get("key_id") != receipt.get("key_id"):
        raise Invalid("the seal names another key than the receipt")
    keys = key_set.get("keys", []) if isinstance(key_set, dict) else key_set
    matching = [key for key in keys if isinstance(key, dict) and key.get("kid") == receipt.get("key_id")
                and key.get("kty") == "OKP" and key.get("crv") == "Ed25519"]
    if not matching:
        raise Invalid(f"unknown key {receipt.get('key_id')!r}: not in the published keys")
    signature = unb64url(seal.get("signature"))
    try:
        public_key = Ed25519PublicKey.from_public_bytes(unb64url(matching[0].get("x")))
        public_key.verify(signature, canonical_json(receipt))
    except (InvalidSignature, ValueError) as exc:
        raise Invalid("the seal does not verify: the receipt was changed or not sealed by this key") from exc
    return receipt.get("number")


def main(argv: list[str]) -> int:
    """Verify RECEIPT.json against KEYS.json; 0 valid, 1 not."""
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 1
    try:
        with open(argv[1], encoding="utf-8") as receipt_file, open(argv[2], encoding="utf-8") as keys_file:
            number = verify(json.load(receipt_file), json.load(keys_file))
    except (OSError, ValueError, Invalid) as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    print(f"OK: receipt {number} verifies")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
