"""The signed, versioned trust list an offline verifier checks QR codes against.

A verifier at a counter may have no network, so it carries the list of QR signer certificates
it trusts, signed by the issuing CA and pinned to the root. Like the EU DCC's trust list, the
list names signers by certificate, not by bare key, so a verifier can check each one against
the PKI itself instead of trusting the list's word for it.

Format (for a verifier written elsewhere). The document is a JWS Compact Serialization
(RFC 7515 7.1), ASCII, three base64url segments without padding joined by ".":

    protected header (JSON object with exactly these members):
      "alg": "ES256"                        ; ECDSA P-256 SHA-256, signature r || s (RFC 7518)
      "typ": "shanakht-trust-list+json"
      "x5c": [ <signer cert>, <CA cert>... ] ; standard base64 (with padding) of DER; the
                                            ; first signs the JWS and must be a CA certificate
                                            ; (in practice the issuing CA) chaining to the root
                                            ; the verifier pins; the rest help build that chain
    payload (UTF-8 JSON, written with sorted keys and no whitespace):
      {
        "issued_at":   "2026-03-14T05:30:00Z",  ; RFC 3339, UTC, "Z", whole seconds
        "issuer":      "PK-PB",                 ; who publishes the list, free text
        "next_update": "2026-03-15T05:30:00Z",  ; a fresher list is due by then
        "sequence":    42,                      ; integer 0..2^53-1, never decreases
        "signers": [
          {
            "certificate": "MIIC...",           ; standard base64 of the QR signer's DER
            "reason":      null | "text",       ; why revoked; null when good
            "revoked_at":  null | "2026-...Z",  ; when revoked; null exactly when good
            "status":      "good" | "revoked"
          }, ...
        ]
      }

A signer's kid is SHA-256 of its certificate's DER, first 8 bytes (`signing.qr.kid_for`): it
is computed by the verifier and never read from the document, so a list cannot point a kid at
a certificate that does not hash to it.

To accept a list a verifier (1) checks the header as above, (2) verifies the JWS signature
with the key of x5c[0], (3) validates x5c[0] up to its pinned root at its own clock,
(4) validates every signer certificate up to the same root through the certificates in x5c,
with the QR signer profile's EKU (document signing) and policy OID, (5) refuses a list whose
sequence is below the last one it accepted, or equal to it with different contents, and one
issued more than 5 minutes in its future. A list past next_update is still used, and shown as
out of date: an offline verifier that stopped working would be worse than one that says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from signing.errors import SigningError
from signing.pki.profiles import QR_SIGNER
from signing.qr import kid_for

TYP: Final = "shanakht-trust-list+json"
ALG: Final = "ES256"
GOOD: Final = "good"
REVOKED: Final = "revoked"
STATUSES: Final = frozenset({GOOD, REVOKED})
CLOCK_SKEW = timedelta(minutes=5)  # as ca.BACKDATE: a signer's clock may run a little ahead
MAX_SEQUENCE = 2**53 - 1  # the largest integer every JSON reader holds exactly
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024  # thousands of signers; refuses a memory bomb
MAX_CHAIN = 4  # x5c: the signing CA, and at most a few certificates above it
MAX_TEXT_CHARS = 200
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
HEADER_MEMBERS = frozenset({"alg", "typ", "x5c"})
PAYLOAD_MEMBERS = frozenset({"sequence", "issued_at", "next_update", "issuer", "signers"})
SIGNER_MEMBERS = frozenset({"certificate", "status", "revoked_at", "reason"})

T = TypeVar("T")


class TrustListInvalid(SigningError):
    """A trust list that must not be used: unreadable, badly signed, unchained, or rolled back."""


# The model.


def _check_time(name: str, value: object) -> None:
    """Aware and whole seconds, because the document carries RFC 3339 seconds and nothing finer:
    a time that does not survive the round trip would make equal lists compare unequal."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise ValueError(f"{name} must be whole seconds")


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_CHARS:
        raise ValueError(f"{name} must be text of 1 to {MAX_TEXT_CHARS} characters")
    # As in QR fields: no control characters, but format characters stay (Urdu needs ZWNJ).
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError(f"{name} holds a control character")


@dataclass(frozen=True)
class TrustedSigner:
    """One QR signer certificate and what the CA says of it. Build with `TrustedSigner.of`."""

    kid: bytes
    certificate: x509.Certificate
    status: str
    revoked_at: datetime | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.certificate, x509.Certificate):
            raise ValueError("certificate must be an x509.Certificate")
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        if self.kid != kid_for(der):
            raise ValueError("kid must be kid_for(certificate DER): it is computed, not chosen")
        key = self.certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("a QR signer's key is P-256: QR codes are signed ES256")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}")
        if (self.status == REVOKED) != (self.revoked_at is not None):
            raise ValueError("revoked_at is given exactly when the status is revoked")
        if self.revoked_at is not None:
            _check_time("revoked_at", self.revoked_at)
        if self.reason is not None:
            if self.status != REVOKED:
                raise ValueError("only a revoked signer has a reason")
            _check_text("reason", self.reason)

    @classmethod
    def of(
        cls,
        certificate: x509.Certificate,
        *,
        status: str = GOOD,
        revoked_at: datetime | None = None,
        reason: str | None = None,
    ) -> TrustedSigner:
        """A signer whose kid is computed from its certificate, the only way a kid is made."""
        kid = kid_for(certificate.public_bytes(serialization.Encoding.DER))
        return cls(kid, certificate, status, revoked_at, reason)

    @property
    def revoked(self) -> bool:
        return self.status == REVOKED


@dataclass(frozen=True)
class TrustList:
    """The signers a verifier trusts, as of `issued_at`, in a sequence that only moves forward."""

    sequence: int
    issued_at: datetime
    next_update: datetime
    issuer: str
    signers: tuple[TrustedSigner, ...]
    _by_kid: Mapping[bytes, TrustedSigner] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if type(self.sequence) is not int or not 0 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence must be an integer from 0 to {MAX_SEQUENCE}")
        _check_time("issued_at", self.issued_at)
        _check_time("next_update", self.next_update)
        if self.next_update <= self.issued_at:
            raise ValueError("next_update must be after issued_at")
        _check_text("issuer", self.issuer)
        if not isinstance(self.signers, tuple) or not all(
            isinstance(s, TrustedSigner) for s in self.signers
        ):
            raise ValueError("signers must be a tuple of TrustedSigner")
        by_kid = {signer.kid: signer for signer in self.signers}
        if len(by_kid) != len(self.signers):
            raise ValueError("a signer is listed twice")
        object.__setattr__(self, "_by_kid", by_kid)

    def signer(self, kid: bytes) -> TrustedSigner | None:
        """The signer a QR's kid names, or None: a dict lookup, since verifiers scan in bulk."""
        return self._by_kid.get(kid)

    def is_stale(self, now: datetime) -> bool:
        """Past next_update: still usable offline, but revocations since may be missing."""
        return now >= self.next_update


# Writing.


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64_der(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def canonical_payload(trust: TrustList) -> bytes:
    """The payload's bytes: sorted keys and no whitespace, so one list has one encoding."""
    document = {
        "sequence": trust.sequence,
        "issued_at": _rfc3339(trust.issued_at),
        "next_update": _rfc3339(trust.next_update),
        "issuer": trust.issuer,
        "signers": [
            {
                "certificate": _b64_der(signer.certificate),
                "status": signer.status,
                "revoked_at": None if signer.revoked_at is None else _rfc3339(signer.revoked_at),
                "reason": signer.reason,
            }
            for signer in trust.signers
        ],
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _registry() -> jws.JWSRegistry:
    """ES256 only, and room for a real list: joserfc's defaults cap the header at 512 bytes,
    less than one certificate in x5c, and the payload at 128 kB, about a hundred signers."""
    registry = jws.JWSRegistry(algorithms=[ALG])
    registry.max_header_length = 64 * 1024
    registry.max_payload_length = MAX_DOCUMENT_BYTES
    return registry


_REGISTRY = _registry()


def sign_trust_list(
    trust: TrustList,
    *,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
) -> bytes:
    """The JWS of the module docstring, signed by `key`, the private key of `certificate`.

    `certificate` is the CA certificate the list is signed under (the issuing CA's), `chain`
    the certificates from it towards the root. Nothing is checked against a root here: the
    signer is the CA, and `load_trust_list` is where trust is decided.
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("ES256 signs with a P-256 key")
    if key.public_key() != certificate.public_key():
        raise ValueError("the key is not the certificate's: no verifier could check the list")
    header = {"alg": ALG, "typ": TYP, "x5c": [_b64_der(c) for c in (certificate, *chain)]}
    text = jws.serialize_compact(
        header, canonical_payload(trust), ECKey.import_key(key), registry=_REGISTRY
    )
    return text.encode("ascii")


# Reading: every step turns whatever it meets into TrustListInvalid.


def _strict_json(data: bytes, what: str) -> Any:
    """JSON with no duplicate member and no NaN: two readers must never see two lists."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise ValueError("duplicate member")
        return result

    def constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TrustListInvalid(f"the {what} is not well-formed JSON: {exc}") from None


def _b64url(segment: bytes, what: str) -> bytes:
    if not re.fullmatch(rb"[A-Za-z0-9_-]*", segment) or len(segment) % 4 == 1:
        raise TrustListInvalid(f"the {what} is not base64url")
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


JSON_NAMES: Final = {dict: "an object", list: "an array", str: "a string", int: "an integer"}


def _typed(value: object, kind: type[T], what: str) -> T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TrustListInvalid(f"{what} must be {JSON_NAMES.get(kind, kind.__name__)} in JSON")
    return value


def _certificate(value: object, what: str) -> x509.Certificate:
    text = _typed(value, str, what)
    try:
        der = base64.b64decode(text, validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise TrustListInvalid(f"{what} is not a base64 DER certificate") from exc


def _read_header(segment: bytes) -> list[x509.Certificate]:
    """The header's certificates, once alg, typ and nothing else are as documented."""
    header = _typed(_strict_json(_b64url(segment, "header"), "header"), dict, "the header")
    if set(header) != HEADER_MEMBERS:
        raise TrustListInvalid(f"the header must hold exactly {sorted(HEADER_MEMBERS)}")
    if header["alg"] != ALG:
        raise TrustListInvalid(f"the algorithm must be {ALG}")
    if header["typ"] != TYP:
        raise TrustListInvalid(f"the type must be {TYP}")
    x5c = _typed(header["x5c"], list, "x5c")
    if not 1 <= len(x5c) <= MAX_CHAIN:
        raise TrustListInvalid(f"x5c must hold 1 to {MAX_CHAIN} certificates")
    return [_certificate(item, f"x5c[{i}]") for i, item in enumerate(x5c)]


def _check_jws_signature(document: bytes, signer: x509.Certificate) -> bytes:
    """The payload bytes, once the JWS verifies under the x5c leaf's key."""
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TrustListInvalid("the trust list's signer does not have a P-256 key")
    try:
        verified = jws.deserialize_compact(document, ECKey.import_key(key), registry=_REGISTRY)
    except (JoseError, ValueError, TypeError) as exc:
        raise TrustListInvalid(
            f"the trust list's signature does not verify under x5c[0] ({type(exc).__name__})"
        ) from None
    return verified.payload


# Chain checks. cryptography's verifier (PolicyBuilder) is built for TLS, but since 45 its
# extension policies are ours to set: a client verifier (no DNS name to match) whose end-entity
# policy replaces the clientAuth EKU check with the profile's own checks. Path building,
# signatures, validity, basicConstraints, pathLen and unknown critical extensions stay its job.


def _key_usage(*, ca: bool) -> Callable[[Policy, x509.Certificate, x509.KeyUsage], None]:
    def check(_policy: Policy, _certificate: x509.Certificate, usage: x509.KeyUsage) -> None:
        if not usage.digital_signature:
            raise ValueError("keyUsage lacks digitalSignature")
        if usage.key_cert_sign != ca:
            raise ValueError("keyCertSign is asserted" if not ca else "keyUsage lacks keyCertSign")

    return check


def _qr_signer_eku(
    _policy: Policy, _certificate: x509.Certificate, eku: x509.ExtendedKeyUsage
) -> None:
    if not set(QR_SIGNER.extended_key_usage) <= set(eku):
        raise ValueError(f"not a {QR_SIGNER.name}: its EKU lacks document signing")


def _qr_signer_policy(
    _policy: Policy, _certificate: x509.Certificate, policies: x509.CertificatePolicies
) -> None:
    if QR_SIGNER.policy not in {p.policy_identifier for p in policies}:
        raise ValueError(
            f"not a {QR_SIGNER.name}: it lacks policy {QR_SIGNER.policy.dotted_string}"
        )


_ANY = Criticality.AGNOSTIC
# The list's own signer is a CA key, the issuing CA's: a key that can sign signers can sign the
# list of them; any lesser end-entity key could un-revoke a signer or remove one.
LIST_SIGNER_POLICY = ExtensionPolicy.webpki_defaults_ca().require_present(
    x509.KeyUsage, _ANY, _key_usage(ca=True)
)
QR_SIGNER_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, _ANY, None)  # WebPKI wants one; we name no host
    .require_present(x509.KeyUsage, _ANY, _key_usage(ca=False))
    .require_present(x509.ExtendedKeyUsage, _ANY, _qr_signer_eku)
    .require_present(x509.CertificatePolicies, _ANY, _qr_signer_policy)
)


def _validate(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    *,
    root: x509.Certificate,
    at: datetime,
    ee_policy: ExtensionPolicy,
) -> list[x509.Certificate]:
    """The chain from `leaf` to the pinned `root`, as of `at`, or VerificationError.

    cryptography's own path validation rather than links checked by hand with
    `verify_directly_issued_by`: it also enforces validity on every link, basicConstraints and
    pathLen, keyUsage on CAs, name chaining and unknown critical extensions, which a hand-made
    loop tends to forget one of. Its client verifier wants the clientAuth EKU only through the
    end-entity extension policy, which we replace (cryptography 45+), so a non-TLS profile fits.
    """
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(at)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    return verifier.verify(leaf, intermediates).chain


def _check_list_signer(x5c: list[x509.Certificate], root: x509.Certificate, now: datetime) -> None:
    try:
        _validate(x5c[0], x5c[1:], root=root, at=now, ee_policy=LIST_SIGNER_POLICY)
    except VerificationError as exc:
        raise TrustListInvalid(
            f"the trust list's signer is not a CA under the pinned root: {exc}"
        ) from None


def _within_validity(certificate: x509.Certificate, now: datetime) -> datetime:
    """`now`, or the nearest instant of the certificate's validity if `now` is outside it.

    A signer stays on the list after its certificate expires, since codes it signed while valid
    stay checkable; `verdict` then compares each code's issued_at with the validity period. So
    an expired signer is validated as of its last valid second, not refused for being old.
    """
    return min(max(now, certificate.not_valid_before_utc), certificate.not_valid_after_utc)


def _check_signer(
    signer: TrustedSigner, x5c: list[x509.Certificate], root: x509.Certificate, now: datetime
) -> None:
    certificate = signer.certificate
    at = _within_validity(certificate, now)
    try:
        chain = _validate(certificate, x5c, root=root, at=at, ee_policy=QR_SIGNER_POLICY)
    except VerificationError as exc:
        raise TrustListInvalid(
            f"signer {signer.kid.hex()} is not a QR signer under the pinned root: {exc}"
        ) from None
    if chain[1] not in x5c:
        raise TrustListInvalid(f"signer {signer.kid.hex()} was not issued by a CA in x5c")


# The payload.


def _time(value: object, what: str) -> datetime:
    text = _typed(value, str, what)
    if not RFC3339_UTC.fullmatch(text):
        raise TrustListInvalid(
            f"{what} must be RFC 3339 UTC whole seconds, like 2026-03-14T05:30:00Z"
        )
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TrustListInvalid(f"{what} is not a real date and time") from None


def _signer(value: object, index: int) -> TrustedSigner:
    what = f"signers[{index}]"
    entry = _typed(value, dict, what)
    if set(entry) != SIGNER_MEMBERS:
        raise TrustListInvalid(f"{what} must hold exactly {sorted(SIGNER_MEMBERS)}")
    revoked_at = entry["revoked_at"]
    reason = entry["reason"]
    try:
        return TrustedSigner.of(
            _certificate(entry["certificate"], f"{what}.certificate"),
            status=_typed(entry["status"], str, f"{what}.status"),
            revoked_at=None if revoked_at is None else _time(revoked_at, f"{what}.revoked_at"),
            reason=None if reason is None else _typed(reason, str, f"{what}.reason"),
        )
    except ValueError as exc:
        raise TrustListInvalid(f"{what}: {exc}") from None


def _read_payload(payload: bytes) -> TrustList:
    body = _typed(_strict_json(payload, "payload"), dict, "the payload")
    if set(body) != PAYLOAD_MEMBERS:
        raise TrustListInvalid(f"the payload must hold exactly {sorted(PAYLOAD_MEMBERS)}")
    signers = _typed(body["signers"], list, "signers")
    try:
        return TrustList(
            sequence=_typed(body["sequence"], int, "sequence"),
            issued_at=_time(body["issued_at"], "issued_at"),
            next_update=_time(body["next_update"], "next_update"),
            issuer=_typed(body["issuer"], str, "issuer"),
            signers=tuple(_signer(entry, i) for i, entry in enumerate(signers)),
        )
    except ValueError as exc:
        raise TrustListInvalid(f"the payload is not a valid trust list: {exc}") from None


def _check_freshness(trust: TrustList, now: datetime, previous: TrustList | None) -> None:
    if trust.issued_at > now + CLOCK_SKEW:
        raise TrustListInvalid(
            f"the trust list is issued at {_rfc3339(trust.issued_at)}, in the future"
        )
    if previous is None:
        return
    if trust.sequence < previous.sequence:
        raise TrustListInvalid(
            f"rollback: sequence {trust.sequence} is older than {previous.sequence}, already held"
        )
    if trust.sequence == previous.sequence and trust != previous:
        raise TrustListInvalid(
            f"two different trust lists carry sequence {trust.sequence}: the signer equivocates"
        )


def load_trust_list(
    document: bytes,
    *,
    root: x509.Certificate,
    now: datetime,
    previous: TrustList | None = None,
) -> TrustList:
    """The trust list in `document`, checked as the module docstring says, or TrustListInvalid.

    `root` is pinned by the verifier (shipped with the app), never taken from the document;
    `previous` is the last list it accepted, so an attacker cannot replay an older one that
    still shows a since-revoked signer as good.
    """
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    try:
        return _load(document, root, now, previous)
    except TrustListInvalid:
        raise
    except Exception as exc:  # a parser's surprise is a refusal, never a crash or a pass
        raise TrustListInvalid(f"the trust list is unreadable ({type(exc).__name__})") from exc


def _load(
    document: bytes, root: x509.Certificate, now: datetime, previous: TrustList | None
) -> TrustList:
    if not isinstance(document, bytes):
        raise TrustListInvalid("a trust list is bytes")
    if len(document) > MAX_DOCUMENT_BYTES:
        raise TrustListInvalid(f"a trust list is at most {MAX_DOCUMENT_BYTES} bytes")
    segments = document.split(b".")
    if len(segments) != 3:
        raise TrustListInvalid("not a JWS compact serialization (three segments)")
    x5c = _read_header(segments[0])
    payload = _check_jws_signature(document, x5c[0])
    _check_list_signer(x5c, root, now)
    trust = _read_payload(payload)
    for signer in trust.signers:
        _check_signer(signer, x5c, root, now)
    _check_freshness(trust, now, previous)
    return trust
