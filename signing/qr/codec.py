"""Signed QR texts: the EU Digital COVID Certificate's encoding with our own prefix.

A printed order must be checkable offline, by an app holding only a trust list of signer keys,
and by code that was not written here. So this is the DCC's HC1 stack, layer for layer:

    "SHK1:" + base45(zlib(COSE_Sign1))
    COSE_Sign1 = #6.18([
        protected:   bstr .cbor {1: -7, 4: kid},   ; alg ES256, kid
        unprotected: {},
        payload:     bstr .cbor claims,             ; see signing.qr.payload
        signature:   bstr .size 64,                 ; r || s, as COSE has it (not DER)
    ])

Base45 (RFC 9285) is used because its 45 characters are exactly QR's alphanumeric set, which
packs 2 characters into 11 bits: base45 then costs 8.25 bits per byte, against 10.7 for base64
text, which QR must store as 8-bit bytes. zlib is there because the DCC has it, with one
addition: a preset dictionary of the words orders are made of (`signing.qr.dictionary`,
RFC 1950's FDICT, named in the stream by its Adler-32). Plain zlib saved 13 of a transfer
order's 359 bytes, since its text is too short to repeat itself and its hash and signature are
random; with the dictionary it saves about 90, and the code fits version 15 at level Q.

The key id is the first 8 bytes of SHA-256 of the signer certificate (`kid_for`), as in the
DCC, so a verifier picks one key from its trust list instead of trying them all. It sits in the
protected header so that the signature covers which key it claims to be by.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.errors import MalformedPayload, PayloadExpired, SignatureInvalid, UnknownSigner
from signing.qr import base45
from signing.qr.dictionary import DICTIONARY_V1, DICTIONARY_V1_ID
from signing.qr.payload import QrPayload, strict_loads

PREFIX = "SHK1:"
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
ALG_ES256 = -7
COORDINATE_SIZE = 32  # P-256: r and s are 32 bytes each
SIGNATURE_SIZE = 2 * COORDINATE_SIZE
KID_SIZE = 8
MAX_KID_BYTES = 64
MAX_TEXT_CHARS = 4296  # the most a QR code holds (version 40-L, alphanumeric mode)
MAX_COSE_BYTES = 8 * 1024  # the zlib cap: a QR code's worth of zlib cannot honestly inflate past it

_ES256 = ec.ECDSA(hashes.SHA256())
_FDICT = 0x20  # RFC 1950: the flag byte's bit that says a preset dictionary was used

KeyLookup = Callable[[bytes], ec.EllipticCurvePublicKey | None]
"""Given a kid, the trust list's P-256 public key for it, or None if it names no signer."""


@dataclass(frozen=True)
class _Sign1:
    """A COSE_Sign1 whose structure has been checked but whose signature has not."""

    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes


def kid_for(certificate_der: bytes) -> bytes:
    """The key id a QR names its signer by: SHA-256 of the signer certificate's DER, first 8 bytes.

    The certificate is parsed first, so a PEM file or a bare key passed by mistake is refused
    rather than turned into a kid that no verifier will ever find.
    """
    try:
        x509.load_der_x509_certificate(certificate_der)
    except ValueError as exc:
        raise ValueError("not a DER-encoded X.509 certificate") from exc
    return hashlib.sha256(certificate_der).digest()[:KID_SIZE]


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 4.4: what is signed, ["Signature1", protected, external_aad = b"", payload]."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


@functools.lru_cache(maxsize=64)
def _protected(kid: bytes) -> bytes:
    """The protected header, the same for every code a signer signs: made once per kid."""
    return cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid}, canonical=True)


def encode(payload: QrPayload, private_key: ec.EllipticCurvePrivateKey, kid: bytes) -> str:
    """Sign `payload` with ES256 under `kid` and return the QR text, "SHK1:..."."""
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError("ES256 signs with a P-256 key")
    if not isinstance(kid, bytes) or not 1 <= len(kid) <= MAX_KID_BYTES:
        raise ValueError(f"the kid must be 1 to {MAX_KID_BYTES} bytes")
    protected = _protected(kid)
    claims = payload.to_cbor()
    der = private_key.sign(_sig_structure(protected, claims), _ES256)
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(COORDINATE_SIZE, "big") + s.to_bytes(COORDINATE_SIZE, "big")
    cose = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, claims, signature]))
    return PREFIX + base45.encode(_deflate(cose))


def _deflate(cose: bytes) -> bytes:
    """zlib at level 9 with the preset dictionary (its id goes in the stream's header). The
    default memory level: level 9's larger tables cost 85 us a code to set up, and gain
    nothing on a few hundred bytes."""
    compressor = zlib.compressobj(
        9, zlib.DEFLATED, zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1
    )
    return compressor.compress(cose) + compressor.flush()


def _inflate(compressed: bytes) -> bytes:
    """zlib, refusing to produce more than MAX_COSE_BYTES: a few hundred bytes of zlib can
    inflate to gigabytes, and a verifier must not be made to try."""
    if len(compressed) >= 6 and compressed[1] & _FDICT:
        dictionary_id = int.from_bytes(compressed[2:6], "big")
        if dictionary_id != DICTIONARY_V1_ID:
            raise MalformedPayload(f"made with an unknown zlib dictionary ({dictionary_id:08x})")
    # The dictionary is loaded only if the stream's header asks for it (FDICT).
    inflater = zlib.decompressobj(zdict=DICTIONARY_V1)
    try:
        cose = inflater.decompress(compressed, MAX_COSE_BYTES + 1)
    except zlib.error as exc:
        raise MalformedPayload("not a zlib stream") from exc
    if len(cose) > MAX_COSE_BYTES:
        raise MalformedPayload(f"inflates to more than {MAX_COSE_BYTES} bytes")
    if not inflater.eof:
        raise MalformedPayload("the zlib stream is cut short")
    if inflater.unused_data:
        raise MalformedPayload("bytes follow the zlib stream")
    return cose


def _parse_sign1(cose: bytes) -> _Sign1:
    """A COSE_Sign1 of exactly our shape: ES256, a kid, an attached payload, a raw signature."""
    item = strict_loads(cose)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise MalformedPayload(f"CBOR tag {item.tag} is not COSE_Sign1 (18)")
        item = item.value
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise MalformedPayload("a COSE_Sign1 is an array of 4")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise MalformedPayload("the protected header is not a byte string")
    header = strict_loads(protected)
    if not isinstance(header, Mapping) or set(header) != {HEADER_ALG, HEADER_KID}:
        raise MalformedPayload("the protected header must hold alg and kid, and only those")
    alg = header[HEADER_ALG]
    if type(alg) is not int or alg != ALG_ES256:
        raise MalformedPayload("the algorithm must be ES256 (-7)")
    kid = header[HEADER_KID]
    if not isinstance(kid, bytes) or not 1 <= len(kid) <= MAX_KID_BYTES:
        raise MalformedPayload(f"the kid must be 1 to {MAX_KID_BYTES} bytes")
    # Nothing unsigned is read, so nothing unsigned is accepted: a kid here could mislead.
    if not isinstance(unprotected, Mapping) or unprotected:
        raise MalformedPayload("the unprotected header must be empty")
    if not isinstance(payload, bytes):
        raise MalformedPayload("the payload must be attached, as a byte string")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise MalformedPayload(f"an ES256 signature is r || s, {SIGNATURE_SIZE} bytes (not DER)")
    return _Sign1(protected=protected, kid=kid, payload=payload, signature=signature)


def _open(text: str) -> _Sign1:
    """Steps 1 to 4 of verification, the ones that need no key."""
    # (1) Our prefix, and no more than a QR code can hold.
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise MalformedPayload(f"not a Shanakht QR text (no {PREFIX} prefix)")
    if len(text) > MAX_TEXT_CHARS:
        raise MalformedPayload(f"longer than a QR code can hold ({MAX_TEXT_CHARS} characters)")
    body = text[len(PREFIX) :]
    # (2) base45, strictly: no character outside the alphabet, not even a newline.
    try:
        compressed = base45.decode(body)
    except ValueError as exc:
        raise MalformedPayload(f"not valid base45: {exc}") from exc
    # (3) zlib, capped; (4) a COSE_Sign1 of our shape.
    return _parse_sign1(_inflate(compressed))


def decode(text: str) -> tuple[bytes, QrPayload]:
    """The kid and payload of a QR text, WITHOUT checking the signature or expiry.

    For showing what a code claims while its signer's key is found, never for trusting it.
    """
    sign1 = _open(text)
    return sign1.kid, QrPayload.from_cbor(sign1.payload)


def verify(text: str, key_for: KeyLookup, now: datetime) -> QrPayload:
    """The payload of a QR text signed by a key on the trust list and not expired at `now`.

    Fails closed, raising a SigningError subclass at the first step that does not hold.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    # (1)-(4) Prefix, base45, zlib and COSE structure: MalformedPayload.
    sign1 = _open(text)
    # (5) The signer, by kid, from the caller's trust list.
    key = key_for(sign1.kid)
    if key is None:
        raise UnknownSigner(f"no signer with kid {sign1.kid.hex()}")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UnknownSigner(f"the key for kid {sign1.kid.hex()} is not a P-256 key")
    # (6) The signature over the bytes as received, never over a re-encoding of them.
    r = int.from_bytes(sign1.signature[:COORDINATE_SIZE], "big")
    s = int.from_bytes(sign1.signature[COORDINATE_SIZE:], "big")
    try:
        key.verify(
            encode_dss_signature(r, s),
            _sig_structure(sign1.protected, sign1.payload),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise SignatureInvalid("the QR's signature does not verify") from None
    # (7) The signed claims: a version we read, and fields of the right shapes.
    payload = QrPayload.from_cbor(sign1.payload)
    # (8) Expiry against the caller's clock: expired at the exp second itself.
    if payload.expires_at is not None and now >= payload.expires_at:
        raise PayloadExpired(f"expired at {payload.expires_at.isoformat()}")
    return payload
