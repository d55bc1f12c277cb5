"""Signed QR codes for official documents, checkable offline against a trust list.

A document's key fields and the SHA-256 of its signed file, signed with ES256 as a COSE_Sign1
and packed as the EU Digital COVID Certificate packs its HC1 codes, under the prefix SHK1:.
Domain code only: the API and the apps call `encode`, `decode` and `verify`.
"""

from signing.errors import (
    MalformedPayload,
    PayloadExpired,
    SignatureInvalid,
    SigningError,
    UnknownSigner,
    UnsupportedVersion,
)
from signing.qr.codec import PREFIX, KeyLookup, decode, encode, kid_for, verify
from signing.qr.payload import QrPayload

__all__ = [
    "PREFIX",
    "KeyLookup",
    "MalformedPayload",
    "PayloadExpired",
    "QrPayload",
    "SignatureInvalid",
    "SigningError",
    "UnknownSigner",
    "UnsupportedVersion",
    "decode",
    "encode",
    "kid_for",
    "verify",
]
