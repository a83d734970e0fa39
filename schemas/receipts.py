"""Sealed receipts on the wire: the sealed receipt itself, dispatch's view of it, the published keys."""
from marshmallow import fields

from schemas.common import Schema
from schemas.vocab import RECEIPT_KINDS


class SealOut(Schema):
    """The seal: an Ed25519 signature (base64url, no padding) over the receipt's canonical JSON."""

    alg = fields.String(metadata={"enum": ["Ed25519"]})
    key_id = fields.String(metadata={"description": "The published key (GET /receipts/keys) that verifies it"})
    signature = fields.String()


class SealedReceiptOut(Schema):
    """What was signed (re-create its canonical JSON to verify; docs/receipts.md) and the seal."""

    receipt = fields.Dict(metadata={"description": "format, number, issued_at, kind, key_id, evidence"})
    seal = fields.Nested(SealOut)


class ReceiptOut(SealedReceiptOut):
    """A receipt for dispatch: the sealed receipt, whether it verifies now, and the customer's page."""

    number = fields.String()
    kind = fields.String(metadata={"enum": list(RECEIPT_KINDS)})
    task_id = fields.String()
    issued_at = fields.AwareDateTime()
    verified = fields.Boolean()
    url = fields.String(allow_none=True, metadata={
        "description": "The public page (its QR: /receipts/{number}/qr.png|svg); null if its address cannot be "
                       "recovered (FIELDOPS_SECRET_KEY changed)"})


class PublicKeyOut(Schema):
    """A published receipt key as a JWK (RFC 8037), with its id and when it sealed receipts."""

    kty = fields.String(metadata={"enum": ["OKP"]})
    crv = fields.String(metadata={"enum": ["Ed25519"]})
    alg = fields.String(metadata={"enum": ["EdDSA"]})
    use = fields.String(metadata={"enum": ["sig"]})
    kid = fields.String(metadata={"description": "First 16 hex digits of SHA-256 of the raw public key"})
    x = fields.String(metadata={"description": "The 32-byte public key, base64url without padding"})
    status = fields.String(metadata={"enum": ["active", "retired"]})
    valid_from = fields.AwareDateTime()
    valid_until = fields.AwareDateTime(allow_none=True, metadata={"description": "null while it signs"})


class KeySetOut(Schema):
    """Every key that has sealed receipts, oldest first (a JWK Set)."""

    keys = fields.List(fields.Nested(PublicKeyOut))
