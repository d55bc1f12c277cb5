"""Certificate profiles: what each kind of certificate may do, for how long, under which policy.

Every end-entity certificate names the OCSP responder and the CA certificate (AIA) and the CRL
(CDP) under the one configured public base URL, so a verifier anywhere can check it without
being told where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

# The policies' arc: a UUID OID (ITU-T X.667, "2.25.<uuid as integer>"), unique without
# registration, until the province registers an arc of its own.
POLICY_ARC = "2.25.147690647522220071957832447961311447649"
DOCUMENT_SIGNING_EKU = ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")  # Microsoft document signing


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    policy: ObjectIdentifier
    validity: timedelta
    key_usage: x509.KeyUsage
    extended_key_usage: tuple[ObjectIdentifier, ...]
    critical_eku: bool = False  # RFC 3161 2.3 requires a critical EKU of a TSA certificate


def _usage(*, signature: bool = False, non_repudiation: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


DEPARTMENT_SEAL = Profile(
    name="department-seal",
    policy=ObjectIdentifier(f"{POLICY_ARC}.1"),
    validity=timedelta(days=3 * 365),
    key_usage=_usage(signature=True, non_repudiation=True),
    extended_key_usage=(DOCUMENT_SIGNING_EKU,),
)
OFFICER_SIGNING = Profile(
    name="officer-signing",
    policy=ObjectIdentifier(f"{POLICY_ARC}.2"),
    validity=timedelta(days=2 * 365),
    key_usage=_usage(signature=True, non_repudiation=True),
    extended_key_usage=(DOCUMENT_SIGNING_EKU, ExtendedKeyUsageOID.EMAIL_PROTECTION),
)
QR_SIGNER = Profile(
    name="qr-signer",
    policy=ObjectIdentifier(f"{POLICY_ARC}.3"),
    validity=timedelta(days=2 * 365),
    key_usage=_usage(signature=True),
    extended_key_usage=(DOCUMENT_SIGNING_EKU,),
)
OCSP_RESPONDER = Profile(
    name="ocsp-responder",
    policy=ObjectIdentifier(f"{POLICY_ARC}.4"),
    validity=timedelta(days=90),  # short-lived: it carries id-pkix-ocsp-nocheck
    key_usage=_usage(signature=True),
    extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
)

TSA = Profile(
    name="timestamping",
    policy=ObjectIdentifier(f"{POLICY_ARC}.5"),
    validity=timedelta(days=3 * 365),
    # A token commits the TSA to a claim (this imprint existed at genTime) that it must not be
    # able to disown later: content commitment, as for a seal, beside digitalSignature.
    key_usage=_usage(signature=True, non_repudiation=True),
    # RFC 3161 2.3: timeStamping only, and critical, so the key cannot sign anything else.
    extended_key_usage=(ExtendedKeyUsageOID.TIME_STAMPING,),
    critical_eku=True,
)

PROFILES = {p.name: p for p in (DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER, OCSP_RESPONDER, TSA)}
