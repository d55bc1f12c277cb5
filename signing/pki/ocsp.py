"""OCSP responses (RFC 6960) for the issuing CA's certificates, signed by a delegated responder.

The responder's certificate is issued by the CA with the OCSP-signing EKU and ocsp-nocheck
(`profiles.OCSP_RESPONDER`), so the CA's own key stays out of the hot path. A request's nonce
is echoed (RFC 8954) so a client can tell a fresh answer from a replayed one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

THIS_UPDATE_BACKDATE = timedelta(minutes=5)
VALIDITY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """What the CA knows of one serial it issued: good, or revoked when and why. (A serial it
    never issued is None from the lookup.) The answer names the certificate by the request's
    own hashes and serial, so the certificate itself need not be loaded."""

    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


StatusLookup = Callable[[int], CertificateStatus | None]


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def respond(
    request_der: bytes,
    *,
    issuer: x509.Certificate,
    responder: x509.Certificate,
    responder_key: ec.EllipticCurvePrivateKey,
    lookup: StatusLookup,
    now: datetime,
) -> bytes:
    """The DER OCSP response to a DER request; malformed requests get `malformedRequest`."""
    # (1) One request, well formed.
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    # (2) About a certificate of our issuer: the issuer name and key hashes must match.
    algorithm = request.hash_algorithm
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    key_hash = hashes.Hash(algorithm)
    # The hash of the subjectPublicKey BIT STRING's contents: for EC, the uncompressed point.
    key_hash.update(
        issuer.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    if (request.issuer_name_hash, request.issuer_key_hash) != (
        name_hash.finalize(),
        key_hash.finalize(),
    ):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    # (3) Its status: good, revoked (with reason), or unknown for a serial never issued.
    # Unknown: RFC 6960 2.2 allows it for a certificate this CA never issued; some clients then
    # try other sources, and we rely on them failing closed.
    known = lookup(request.serial_number)
    revoked = known is not None and known.revoked_at is not None
    if known is None:
        status = ocsp.OCSPCertStatus.UNKNOWN
    else:
        status = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
    this_update = now - THIS_UPDATE_BACKDATE
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash,
        issuer_key_hash=request.issuer_key_hash,
        serial_number=request.serial_number,
        algorithm=algorithm,
        cert_status=status,
        this_update=this_update,
        next_update=now + VALIDITY,
        revocation_time=known.revoked_at if known is not None and revoked else None,
        revocation_reason=known.reason if known is not None and revoked else None,
    )
    # (4) Signed by the delegated responder, naming itself by key hash, echoing any nonce.
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder).certificates(
        [responder]
    )
    for extension in request.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            builder = builder.add_extension(extension.value, critical=False)
    response = builder.sign(responder_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)
