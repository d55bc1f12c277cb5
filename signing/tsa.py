"""An RFC 3161 time-stamp authority: TimeStampReq in, TimeStampResp out, as DER bytes.

A time-stamp token proves that a hash existed at a time, so a signature made with a certificate
that is later revoked or expires can still be shown to predate that (PAdES B-T and above). The
authority is a pure function of its key, its certificate, a clock and a serial generator; the
HTTP transport (POST application/timestamp-query, answer application/timestamp-reply) lives with
whoever serves it.

The token is a CMS SignedData over a DER TSTInfo (eContentType id-ct-TSTInfo), signed with
ECDSA P-256 and SHA-256, whose signed attributes are content-type, message-digest and ESS
signing-certificate-v2 (RFC 5816), which binds the TSA's certificate into what is signed. There
is no signing-time attribute: genTime is the time the token asserts, and a second signed time,
read a moment apart, would only invite the question which one is meant.

genTime is the clock's reading in UTC truncated to the millisecond (DER: "20260101093000.25Z",
trailing zeros dropped), and the token states an accuracy of one second. Accuracy is RFC 3161's
bound on how far genTime may be from true UTC, so it is the budget for the host clock's error
(NTP keeps that to milliseconds); truncating to whole seconds would spend all of it on rounding,
and would date a token stamped at 10:00:00.9 before a CAdES signing-time of 10:00:00.7.

Every request gets an answer, not an exception: a malformed one gets status rejection with
failInfo badDataFormat, an unsupported hash badAlg, a foreign reqPolicy unacceptedPolicy, any
extension unacceptedExtension (none is supported), and a clock outside the TSA certificate's
validity systemFailure, each with a statusString saying why in words. Only the caller's own
bugs raise: a clock giving naive times, a serial source giving an unusable number.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing.pki.profiles import POLICY_ARC

DEFAULT_POLICY: Final = f"{POLICY_ARC}.5.1"
ACCURACY_SECONDS: Final = 1
MAX_REQUEST_BYTES: Final = 16 * 1024  # a request is some 100 bytes; refuse to parse much more
MAX_SERIAL_BITS: Final = 160  # RFC 3161 2.4.2: TSA serial numbers up to 160 bits

# The imprint hashes accepted, with their digest sizes. SHA-1 is refused: a collision would let
# one token date a second, different document.
IMPRINT_SIZES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}

Clock = Callable[[], datetime]
SerialSource = Callable[[], int]


def random_serial() -> int:
    """127 random bits with the top bit of 128 set: positive, of fixed length, and unique
    without a counter that every instance of the TSA would have to share."""
    return secrets.randbits(127) | 1 << 127


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 2.4.2's TimeStampResp, whose token is OPTIONAL: asn1crypto's tsp.TimeStampResp
    requires it, so can neither write nor read a rejection. Parse responses with this one."""

    _fields = [  # noqa: RUF012 -- asn1crypto's schema is a class attribute by design
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class _Rejected(Exception):
    """Why a request is refused: a PKIFailureInfo bit name (asn1crypto's) and words."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _check_tsa_certificate(certificate: x509.Certificate) -> None:
    """RFC 3161 2.3: one EKU extension, critical, naming id-kp-timeStamping and nothing else.

    Checked once here rather than discovered by every relying party: tokens signed under any
    other certificate are refused by openssl and pyHanko alike.
    """
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise ValueError("the TSA certificate has no extended key usage") from None
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError("the TSA certificate's EKU must be timeStamping only, and critical")


class TimeStampAuthority:
    """Answers TimeStampReqs with tokens signed by `key`, certified by `certificate`.

    `chain` is the intermediates a verifier needs (the issuing CA), not the root: a verifier
    must bring its own roots. They travel in the token, with the TSA certificate, only when the
    request sets certReq, as RFC 3161 2.4.1 asks. `serials` must never repeat for this TSA.
    """

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        clock: Clock = _utc_now,
        policy: str = DEFAULT_POLICY,
        serials: SerialSource = random_serial,
    ) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise TypeError("the TSA key must be an ECDSA P-256 private key")
        if key.public_key() != certificate.public_key():
            raise ValueError("the key does not belong to the TSA certificate")
        _check_tsa_certificate(certificate)
        for intermediate in chain:
            if intermediate.subject == intermediate.issuer:
                raise ValueError("the chain carries intermediates only, not a root")
        self._key = key
        self._certificate = certificate
        self._clock = clock
        self._serials = serials
        self.policy = policy
        core.ObjectIdentifier(policy).dump()  # a malformed OID fails here, not per request

        asn1_cert = asn1_x509.Certificate.load(_der(certificate))
        # Parts that are the same in every token, kept as DER and loaded afresh per token, so no
        # asn1crypto object is ever shared between two responses.
        self._tsa_name = asn1_x509.GeneralName(
            name="directory_name", value=asn1_cert.subject
        ).dump()
        self._sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number},
        ).dump()
        self._signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                # hash_algorithm left out: SHA-256 is its DER default
                                "cert_hash": hashlib.sha256(_der(certificate)).digest(),
                                "issuer_serial": {
                                    "issuer": [
                                        asn1_x509.GeneralName(
                                            name="directory_name", value=asn1_cert.issuer
                                        )
                                    ],
                                    "serial_number": asn1_cert.serial_number,
                                },
                            }
                        ]
                    }
                ],
            }
        ).dump()
        self._certificates = cms.CertificateSet(
            [
                cms.CertificateChoices(name="certificate", value=asn1_x509.Certificate.load(der))
                for der in [_der(certificate), *(_der(c) for c in chain)]
            ]
        ).dump()

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for `request_der`: granted with a token, or a rejection."""
        try:
            request = self._parse(request_der)
            gen_time = self._now()
            token = self._token(request, gen_time)
        except _Rejected as refusal:
            return _rejection(refusal)
        response = TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        der: bytes = response.dump()
        return der

    # Checking the request.

    def _parse(self, request_der: bytes) -> tsp.TimeStampReq:
        if not isinstance(request_der, bytes) or len(request_der) > MAX_REQUEST_BYTES:
            raise _Rejected(
                "bad_data_format", f"a request is DER bytes, at most {MAX_REQUEST_BYTES}"
            )
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            request.native  # noqa: B018 -- asn1crypto is lazy: parse every field now
        except Exception:  # asn1crypto raises what its parser meets, not one class
            raise _Rejected("bad_data_format", "the request is not a DER TimeStampReq") from None
        if request["version"].native != "v1":
            raise _Rejected("bad_request", "only TimeStampReq version 1 is supported")
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]
        name = algorithm["algorithm"].native
        if name not in IMPRINT_SIZES or algorithm["parameters"].native is not None:
            raise _Rejected(
                "bad_alg", f"the imprint's hash must be one of {', '.join(IMPRINT_SIZES)}"
            )
        if len(imprint["hashed_message"].native) != IMPRINT_SIZES[name]:
            raise _Rejected("bad_data_format", f"the imprint is not a {name} digest")
        policy = request["req_policy"]
        if policy.native is not None and policy.dotted != self.policy:
            raise _Rejected("unaccepted_policy", f"this TSA stamps under policy {self.policy}")
        if request["extensions"].native is not None:
            raise _Rejected("unaccepted_extensions", "this TSA supports no request extensions")
        return request

    def _now(self) -> datetime:
        now = self._clock()
        if now.utcoffset() is None:
            raise ValueError("the TSA's clock must give timezone-aware times")
        now = now.astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if not (
            self._certificate.not_valid_before_utc <= now <= self._certificate.not_valid_after_utc
        ):
            raise _Rejected("system_failure", "the TSA's certificate is not valid at this time")
        return now

    # Building the token.

    def _tst_info(self, request: tsp.TimeStampReq, gen_time: datetime) -> bytes:
        serial = self._serials()
        if not 0 < serial < 1 << MAX_SERIAL_BITS:
            raise ValueError(f"a TSA serial number is positive and under {MAX_SERIAL_BITS} bits")
        fields: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy,
            # echoed as the request had it, but re-encoded as DER should it have come as BER
            "message_imprint": tsp.MessageImprint.load(request["message_imprint"].dump(force=True)),
            "serial_number": serial,
            "gen_time": gen_time,
            "accuracy": {"seconds": ACCURACY_SECONDS},
            # ordering is left out: FALSE is its DER default, and tokens are not ordered
            "tsa": asn1_x509.GeneralName.load(self._tsa_name),
        }
        if request["nonce"].native is not None:
            fields["nonce"] = request["nonce"].native
        der: bytes = tsp.TSTInfo(fields).dump()
        return der

    def _token(self, request: tsp.TimeStampReq, gen_time: datetime) -> cms.ContentInfo:
        tst_info = self._tst_info(request, gen_time)
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute(
                    {"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]}
                ),
                cms.CMSAttribute.load(self._signing_certificate),
            ]
        )
        # RFC 5652 5.4: the signature covers the attributes' DER as a SET, not as [0] IMPLICIT.
        signature = self._key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(self._sid),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }
        )
        signed_data: dict[str, Any] = {
            "version": "v3",  # RFC 5652 5.1: v3 since the content type is not id-data
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info),
            },
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = cms.CertificateSet.load(self._certificates)
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def _rejection(refusal: _Rejected) -> bytes:
    response = TimeStampResp(
        {
            "status": {
                "status": "rejection",
                "status_string": [refusal.text],
                "fail_info": {refusal.fail_info},
            }
        }
    )
    der: bytes = response.dump()
    return der


def request(
    data: bytes,
    *,
    hash_algorithm: str = "sha256",
    nonce: bool = True,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """A DER TimeStampReq for `data`, as a client sends one (the nonce, 64 random bits, as
    openssl makes it, lets the client match the token to its request)."""
    if hash_algorithm not in IMPRINT_SIZES:
        raise ValueError(f"hash_algorithm must be one of {', '.join(IMPRINT_SIZES)}")
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": hash_algorithm},
            "hashed_message": hashlib.new(hash_algorithm, data).digest(),
        },
        "cert_req": cert_req,
    }
    if nonce:
        fields["nonce"] = secrets.randbits(64)
    if policy is not None:
        fields["req_policy"] = policy
    der: bytes = tsp.TimeStampReq(fields).dump()
    return der
