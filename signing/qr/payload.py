"""What a document's QR code says: the data model and its CBOR claims set.

The payload is a CWT claims set (RFC 8392) so the standard claims keep their standard keys and a
verifier written against the EU Digital COVID Certificate stack reads the envelope unchanged.
Everything about the document itself sits in one private claim, an array rather than a map
because a QR code pays for every byte and the positions never change within a version:

    {
      1: issuer,                   ; iss, tstr, e.g. "PK-PB" (the province)
      4: expires_at,               ; exp, uint seconds since the epoch; absent if no expiry
      6: issued_at,                ; iat, uint seconds since the epoch
      -65537: [                    ; the document claim, the first private-use key (< -65536)
        version,                   ; uint, 1; first, so a reader can refuse a newer layout
        document_type,             ; tstr, e.g. "teacher-transfer-order"
        document_hash,             ; bstr .size 32, SHA-256 of the signed document
        fields,                    ; { * tstr => tstr / int }, the order's key fields
      ],
    }

The map is encoded deterministically (cbor2's canonical mode), so equal payloads give equal
bytes. RFC 8392 lets a NumericDate be a float; here it is an integer, which is why times are
whole seconds. Parsing refuses unknown claims, duplicate keys, indefinite lengths and trailing
bytes: the signer is the only writer of this layout, so anything else is damage or forgery.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

import cbor2

from signing.errors import MalformedPayload, UnsupportedVersion

VERSION = 1
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_DOCUMENT = -65537  # RFC 8392 9.1: integer keys below -65536 are for private use
KNOWN_CLAIMS = frozenset({CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_DOCUMENT})
REQUIRED_CLAIMS = frozenset({CLAIM_ISS, CLAIM_IAT, CLAIM_DOCUMENT})

HASH_SIZE = 32
MAX_FIELDS = 32
MAX_VALUE_CHARS = 200
MAX_PAYLOAD_BYTES = 4096  # far above any order's; keeps the signed COSE well under the zlib cap
MAX_CBOR_DEPTH = 8  # ours nest 3 deep: claims map, document array, fields map
MAX_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # a CBOR integer without a bignum tag

FIELD_KEY = re.compile(r"[a-z][a-z0-9_]{0,15}")
DOCUMENT_TYPE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
ISSUER = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
MAX_NAME_CHARS = 64

FieldValue = str | int


def strict_loads(data: bytes) -> Any:
    """One CBOR item and nothing after it; no duplicate keys, indefinite lengths or deep nesting.

    cbor2's `loads` quietly ignores bytes after the first item, so this reads with a decoder
    and checks where it stopped.
    """
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(
            stream,
            max_depth=MAX_CBOR_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedPayload("not well-formed CBOR") from exc
    if stream.tell() != len(data):
        raise MalformedPayload("bytes follow the CBOR item")
    return item


def _is_int(value: object) -> TypeGuard[int]:
    """An integer that CBOR carries without a tag (bool is an int to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX


def _check_text(name: str, value: object, max_chars: int) -> None:
    if not isinstance(value, str) or len(value) > max_chars:
        raise MalformedPayload(f"{name} must be text of at most {max_chars} characters")
    # Control characters have no place on a printed order; lone surrogates cannot be UTF-8.
    # Format characters (Cf) stay: Urdu names need the zero-width non-joiner.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise MalformedPayload(f"{name} holds a control character")


def _check_time(name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise MalformedPayload(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise MalformedPayload(f"{name} must be whole seconds")
    if not 0 <= value.timestamp() <= MAX_NUMERIC_DATE:
        raise MalformedPayload(f"{name} is outside 1970..9999")


def _from_numeric_date(name: str, value: object) -> datetime:
    if not _is_int(value) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise MalformedPayload(f"{name} must be whole seconds since the epoch")
    return datetime.fromtimestamp(value, tz=UTC)


@dataclass(frozen=True, kw_only=True)
class QrPayload:
    """A document's key fields and hash, as signed into its QR code. Checked when built."""

    version: int = VERSION
    document_type: str
    document_hash: bytes
    issued_at: datetime
    expires_at: datetime | None
    fields: dict[str, FieldValue] = field(hash=False)
    issuer: str

    def __post_init__(self) -> None:
        if not _is_int(self.version):
            raise MalformedPayload("version must be an integer")
        if self.version != VERSION:
            raise UnsupportedVersion(f"payload version {self.version}; this code reads {VERSION}")
        _check_text("document_type", self.document_type, MAX_NAME_CHARS)
        if not DOCUMENT_TYPE.fullmatch(self.document_type):
            raise MalformedPayload("document_type is lower-case words joined by '-'")
        if not isinstance(self.document_hash, bytes) or len(self.document_hash) != HASH_SIZE:
            raise MalformedPayload(f"document_hash must be {HASH_SIZE} bytes (SHA-256)")
        _check_time("issued_at", self.issued_at)
        if self.expires_at is not None:
            _check_time("expires_at", self.expires_at)
            if self.expires_at <= self.issued_at:
                raise MalformedPayload("expires_at must be after issued_at")
        _check_text("issuer", self.issuer, MAX_NAME_CHARS)
        if not ISSUER.fullmatch(self.issuer):
            raise MalformedPayload("issuer is letters and digits joined by '-' or '.'")
        if not isinstance(self.fields, Mapping) or len(self.fields) > MAX_FIELDS:
            raise MalformedPayload(f"fields must be a map of at most {MAX_FIELDS} entries")
        for key, value in self.fields.items():
            if not isinstance(key, str) or not FIELD_KEY.fullmatch(key):
                raise MalformedPayload("a field key is 1-16 of a-z, 0-9, '_', starting a-z")
            if not _is_int(value):
                _check_text(f"field {key!r}", value, MAX_VALUE_CHARS)
        # A private copy, so the caller's dict cannot change a built payload, in canonical CBOR
        # key order (shorter keys first, then bytewise), so `to_cbor` need not sort each time.
        canonical = sorted(self.fields.items(), key=lambda kv: (len(kv[0].encode()), kv[0]))
        object.__setattr__(self, "fields", dict(canonical))
        if len(self.to_cbor()) > MAX_PAYLOAD_BYTES:
            raise MalformedPayload(f"the payload encodes to more than {MAX_PAYLOAD_BYTES} bytes")

    def to_cbor(self) -> bytes:
        """The CWT claims set in the layout of the module docstring, in canonical CBOR: the
        claims are written in canonical key order (1, 4, 6, then -65537, whose head is longer)
        and the fields were put in it when built; a test holds this to cbor2's canonical mode."""
        claims: dict[int, object] = {CLAIM_ISS: self.issuer}
        if self.expires_at is not None:
            claims[CLAIM_EXP] = int(self.expires_at.timestamp())
        claims[CLAIM_IAT] = int(self.issued_at.timestamp())
        claims[CLAIM_DOCUMENT] = [
            self.version,
            self.document_type,
            self.document_hash,
            self.fields,
        ]
        return cbor2.dumps(claims)

    @classmethod
    def from_cbor(cls, data: bytes) -> QrPayload:
        """Parse and check a claims set; MalformedPayload or UnsupportedVersion if it is not one."""
        claims = strict_loads(data)
        if not isinstance(claims, Mapping):
            raise MalformedPayload("the payload is not a CBOR map")
        document = claims.get(CLAIM_DOCUMENT)
        if not isinstance(document, list | tuple) or not document:
            raise MalformedPayload("the payload has no document claim")
        # The version before anything else: a newer layout may differ in every other respect.
        version = document[0]
        if not _is_int(version):
            raise MalformedPayload("the document claim does not start with a version")
        if version != VERSION:
            raise UnsupportedVersion(f"payload version {version}; this code reads {VERSION}")
        keys = set(claims)
        if not REQUIRED_CLAIMS <= keys <= KNOWN_CLAIMS:
            raise MalformedPayload("the payload's claims are not iss, iat, [exp] and the document")
        if len(document) != 4:
            raise MalformedPayload("the document claim is [version, type, hash, fields]")
        _, document_type, document_hash, fields = document
        if not isinstance(fields, Mapping):
            raise MalformedPayload("the document's fields are not a map")
        return cls(
            version=version,
            document_type=document_type,
            document_hash=document_hash,
            issued_at=_from_numeric_date("iat", claims[CLAIM_IAT]),
            # A present exp is read even if it is null, so a null can never mean "no expiry".
            expires_at=_from_numeric_date("exp", claims[CLAIM_EXP])
            if CLAIM_EXP in claims
            else None,
            fields=dict(fields),
            issuer=claims[CLAIM_ISS],
        )
