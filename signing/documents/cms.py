"""Detached CMS signatures (CAdES-B) for any file, and the pyHanko plumbing PAdES shares.

A detached signature travels beside the file it signs, so the file stays byte for byte what the
department issued, which is what the locker stores and fetches. CAdES-B rather than bare CMS:
its signed attributes (content-type, message-digest, signing-time, signing-certificate-v2) bind
the signer's certificate into what was signed, so a certificate with the same key but another
name cannot be swapped in afterwards. `openssl cms -verify` and any CAdES validator read it.

pyHanko does the CMS work; its synchronous paths run an event loop of their own, so these
functions must be called from a thread, not from inside a running loop.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from asn1crypto import cms, keys  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign import signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import (
    cms_basic_validation,
    collect_timing_info,
)
from pyhanko.sign.validation.status import SignatureStatus, StandardCMSSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.documents.errors import DocumentAltered, MalformedSignature, UntrustedSigner

DIGEST = "sha256"
DIGEST_BYTES = 32
CADES_ATTRIBUTES = frozenset(
    {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
)
MAX_SIGNATURE_BYTES = 256 * 1024  # a signature with its chain is a few kB; refuse to parse more


# pyHanko's currency is asn1crypto: conversions, a signer and a validation context.


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def crypto_certificate(certificate: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def _asn1_key(key: ec.EllipticCurvePrivateKey) -> keys.PrivateKeyInfo:
    """The key as PKCS#8 DER, in memory only: a key file on disk, even a temporary one, is a
    copy of the key that nothing looks after."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keys.PrivateKeyInfo.load(der)


def _store(certificates: Sequence[x509.Certificate]) -> SimpleCertificateStore:
    store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    store.register_multiple(asn1_certificate(c) for c in certificates)
    return store


def simple_signer(
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> signers.SimpleSigner:
    """A pyHanko signer whose CMS carries `certificate` and `chain`, but never a root.

    A verifier must bring its own roots, so an embedded root would only add bytes, and could
    mislead a careless verifier into trusting it.
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the signing key must be an elliptic-curve private key")
    if key.public_key() != certificate.public_key():
        raise ValueError("the key does not belong to the certificate")
    return signers.SimpleSigner(
        signing_cert=asn1_certificate(certificate),
        signing_key=_asn1_key(key),
        cert_registry=_store(chain),
        embed_roots=False,
    )


def validation_context(trust_roots: Sequence[x509.Certificate], now: datetime) -> ValidationContext:
    """Offline validation at `now` against the given roots only.

    Nothing is fetched, so soft-fail revocation checks nothing here: revocation is the online
    verifier's question (OCSP), and an offline check says so by not claiming to answer it.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return ValidationContext(
        trust_roots=[asn1_certificate(c) for c in trust_roots],
        moment=now,
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def outside_event_loop() -> None:
    """Refuse to run inside a running event loop, loudly.

    pyHanko's synchronous paths call asyncio.run, which fails there; inside validate_pdf that
    failure would be caught and reported as a bad signature, which it is not. Call these
    functions from a worker thread (anyio.to_thread.run_sync, or a plain `def` route).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("signing.documents runs pyHanko's own event loop: call it from a thread")


def trust_problem(status: SignatureStatus) -> str | None:
    """Why pyHanko did not find a trusted path at the validation time, or None if it did."""
    if status.trust_problem_indic is None and status.validation_path is not None:
        return None
    indication = status.trust_problem_indic
    reason = str(indication) if indication is not None else "no path to a trust root"
    return f"the signer's certificate is not trusted at the validation time ({reason})"


# Signing and verifying.


def sign_detached(
    data: bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> bytes:
    """A DER ContentInfo holding a detached CAdES-B SignedData over `data`, SHA-256 and ECDSA.

    `chain` is the intermediates to carry (the issuing CA), not the root.
    """
    if not isinstance(data, bytes):
        raise TypeError("sign_detached signs bytes")
    return sign_digest(hashlib.sha256(data).digest(), key=key, certificate=certificate, chain=chain)


def sign_digest(
    sha256: bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> bytes:
    """`sign_detached` for content already hashed: the locker hashes a document while it
    encrypts it as a stream, and never holds the whole of it.

    The structure is the one pyHanko makes: SignedData v1, one SignerInfo by issuer and
    serial, CAdES-B signed attributes, certificates without the root; the tests hold it to
    `openssl cms -verify`, to pyHanko's validator, and byte for byte to asn1crypto's own
    encoding of it. A department's seal is asked for on every issued document, so it is not
    built by pyHanko's signer (9 ms a seal, its generic machinery) nor by asn1crypto object
    by object (0.9 ms, its copying and re-tagging), but from DER parts asn1crypto encoded:
    those one certificate repeats once per certificate (`_signer_parts`), the rest once.
    """
    if len(sha256) != DIGEST_BYTES:
        raise ValueError("a SHA-256 digest is 32 bytes")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the signing key must be an elliptic-curve private key")
    if key.public_key() != certificate.public_key():
        raise ValueError("the key does not belong to the certificate")
    parts = _signer_parts(_der(certificate), tuple(_der(c) for c in chain))
    now = datetime.now(UTC).replace(microsecond=0)
    # DER orders a SET OF by the encodings of its members (X.690 11.6), as asn1crypto does.
    attributes = _tlv(
        _SET,
        b"".join(
            sorted(
                (
                    _CONTENT_TYPE_DATA,
                    _signing_time(now),
                    _MESSAGE_DIGEST_HEAD + sha256,
                    parts.signing_certificate,
                )
            )
        ),
    )
    signature = key.sign(attributes, ec.ECDSA(hashes.SHA256()))
    signer_info = _tlv(
        _SEQUENCE,
        parts.signer_head
        + _implicit_0(attributes)
        + _SIGNATURE_ALGORITHM
        + _tlv(_OCTET_STRING, signature),
    )
    signed_data = _tlv(_SEQUENCE, _SIGNED_DATA_HEAD + parts.certificates + _tlv(_SET, signer_info))
    return _tlv(_SEQUENCE, _SIGNED_DATA_TYPE + _tlv(_CONTEXT_0, signed_data))


# DER tags of the structures around the parts, and the parts every signature shares.
_SEQUENCE, _SET, _OCTET_STRING, _CONTEXT_0 = 0x30, 0x31, 0x04, 0xA0  # [0], constructed
_CONTENT_TYPE_DATA: bytes = cms.CMSAttribute({"type": "content_type", "values": ["data"]}).dump()
_MESSAGE_DIGEST_HEAD: bytes = cms.CMSAttribute(
    {"type": "message_digest", "values": [bytes(DIGEST_BYTES)]}
).dump()[:-DIGEST_BYTES]
_SIGNATURE_ALGORITHM: bytes = cms.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
_SIGNED_DATA_HEAD: bytes = (
    cms.CMSVersion("v1").dump()
    + cms.DigestAlgorithms([{"algorithm": DIGEST}]).dump()
    + cms.EncapsulatedContentInfo({"content_type": "data"}).dump()
)
_SIGNED_DATA_TYPE: bytes = cms.ContentType("signed_data").dump()


class _SignerParts(NamedTuple):
    certificates: bytes  # the SignedData's [0] IMPLICIT CertificateSet
    signer_head: bytes  # the SignerInfo's version, signer identifier and digest algorithm
    signing_certificate: bytes  # the CAdES signing-certificate-v2 attribute


@functools.lru_cache(maxsize=64)
def _signer_parts(certificate: bytes, chain: tuple[bytes, ...]) -> _SignerParts:
    """What every signature by one certificate repeats, encoded once: the certificate set
    (the chain less any root), the signer's identifier, and the CAdES signing-certificate-v2
    attribute that binds it."""
    signer = asn1_x509.Certificate.load(certificate)
    carried = [der for der in chain if not _self_signed(x509.load_der_x509_certificate(der))]
    certificates = cms.CertificateSet(
        [
            cms.CertificateChoices({"certificate": asn1_x509.Certificate.load(der)})
            for der in dict.fromkeys((certificate, *carried))
        ]
    )
    issuer_serial = {"issuer": signer.issuer, "serial_number": signer.serial_number}
    signer_id = cms.SignerIdentifier({"issuer_and_serial_number": issuer_serial})
    signing_certificate = cms.CMSAttribute(
        {
            "type": "signing_certificate_v2",
            "values": [
                {
                    "certs": [
                        {
                            "hash_algorithm": {"algorithm": DIGEST},
                            "cert_hash": hashlib.sha256(certificate).digest(),
                            "issuer_serial": {
                                "issuer": [
                                    asn1_x509.GeneralName({"directory_name": signer.issuer})
                                ],
                                "serial_number": signer.serial_number,
                            },
                        }
                    ]
                }
            ],
        }
    )
    return _SignerParts(
        certificates=_implicit_0(certificates.dump()),
        signer_head=cms.CMSVersion("v1").dump()
        + signer_id.dump()
        + cms.DigestAlgorithm({"algorithm": DIGEST}).dump(),
        signing_certificate=signing_certificate.dump(),
    )


@functools.lru_cache(maxsize=4)
def _signing_time(moment: datetime) -> bytes:
    """The signing-time attribute, encoded once a second rather than once a signature."""
    encoded: bytes = cms.CMSAttribute({"type": "signing_time", "values": [_time(moment)]}).dump()
    return encoded


@functools.lru_cache(maxsize=64)
def _der(certificate: x509.Certificate) -> bytes:
    """A certificate's DER, kept: re-encoding it cost more than the ECDSA signature."""
    return certificate.public_bytes(serialization.Encoding.DER)


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element (X.690 8.1): its tag, its length in the short or long form, then it."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _implicit_0(encoded: bytes) -> bytes:
    """A constructed SET re-tagged [0] IMPLICIT (signedAttrs, certificates): only the tag
    octet changes."""
    if encoded[0] != _SET:
        raise ValueError("only a SET is re-tagged here")
    return bytes((_CONTEXT_0,)) + encoded[1:]


def _self_signed(certificate: x509.Certificate) -> bool:
    """A root: a verifier brings its own, so one is never carried (as pyHanko's embed_roots)."""
    return certificate.subject == certificate.issuer


def _time(moment: datetime) -> cms.Time:
    """RFC 5652 11.3: UTCTime through 2049, GeneralizedTime after."""
    return cms.Time({"utc_time" if moment.year < 2050 else "generalized_time": moment})


def _signed_data(signature: bytes) -> cms.SignedData:
    """The SignedData of a DER ContentInfo, parsed all the way down (asn1crypto is lazy, and
    would otherwise fail half-way through validation), with one signer and CAdES attributes."""
    if not isinstance(signature, bytes) or len(signature) > MAX_SIGNATURE_BYTES:
        raise MalformedSignature(f"a signature is DER bytes, at most {MAX_SIGNATURE_BYTES}")
    try:
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedSignature("not a CMS SignedData")
        signed_data = info["content"]
        signed_data.native  # noqa: B018 -- parses every nested field, so errors surface here
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedSignature(f"not a DER CMS structure: {exc}") from None
    if signed_data["encap_content_info"]["content"].native is not None:
        raise MalformedSignature("the signature is not detached: it carries content")
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise MalformedSignature(f"expected one signer, found {len(signer_infos)}")
    attributes = signer_infos[0]["signed_attrs"]
    present = {attribute["type"].native for attribute in attributes}
    missing = CADES_ATTRIBUTES - present
    if missing:
        raise MalformedSignature(f"not CAdES-B: no {', '.join(sorted(missing))} attribute")
    return signed_data


def verify_detached(
    signature: bytes,
    data: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
) -> x509.Certificate:
    """The certificate that signed `data`, if `signature` proves it and the signer is trusted.

    Raises MalformedSignature, DocumentAltered or UntrustedSigner (all SigningError). Checked
    offline at `now`: the chain must be valid then; revocation is not checked.
    """
    if not isinstance(data, bytes):
        raise TypeError("verify_detached checks bytes")
    sha256 = hashlib.sha256(data).digest()
    return verify_digest(signature, sha256, trust_roots=trust_roots, now=now)


def verify_digest(
    signature: bytes,
    sha256: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
) -> x509.Certificate:
    """`verify_detached` for content known by its SHA-256 (a locker document's, checked while
    it was stored and again whenever it is served)."""
    outside_event_loop()
    signed_data = _signed_data(signature)
    if signed_data["signer_infos"][0]["digest_algorithm"]["algorithm"].native != DIGEST:
        raise MalformedSignature("the signature's digest is not SHA-256")
    context = validation_context(trust_roots, now)
    try:
        status = asyncio.run(_validate(signed_data, sha256, context))
    except (SignatureValidationError, PyHankoSigningError, ValueError) as exc:
        raise MalformedSignature(f"the signature cannot be checked: {exc}") from None
    if not (status.intact and status.valid):
        raise DocumentAltered("the data or the signed attributes do not match the signature")
    problem = trust_problem(status)
    if problem is not None:
        raise UntrustedSigner(problem)
    return crypto_certificate(status.signing_cert)


async def _validate(
    signed_data: cms.SignedData, sha256: bytes, context: ValidationContext
) -> StandardCMSSignatureStatus:
    """pyHanko's async_validate_detached_cms, given the digest instead of the content."""
    status_kwargs = await collect_timing_info(
        signed_data["signer_infos"][0],
        ts_validation_context=context,
        raw_digest=lambda _algorithm: sha256,  # the caller checked it is SHA-256
    )
    status_kwargs = await cms_basic_validation(
        signed_data,
        raw_digest=sha256,
        validation_context=context,
        status_kwargs=status_kwargs,
        key_usage_settings=StandardCMSSignatureStatus.default_usage_constraints(None),
    )
    return StandardCMSSignatureStatus(**status_kwargs)
