"""Building the hierarchy's certificates and CRLs with `cryptography`'s X.509 builders.

Pure functions of keys, names and a time: storage, key custody and the CLI live elsewhere.
The root (ECDSA P-384, 20 years) certifies only the issuing CA (P-256, 10 years,
pathLen 0), which signs end-entity certificates, its CRL and its OCSP responder's certificate.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from signing.pki.profiles import OCSP_RESPONDER, Profile

ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
BACKDATE = timedelta(minutes=5)  # tolerate verifiers whose clocks run a little behind
CRL_VALIDITY = timedelta(days=1)

CaKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where relying parties fetch status and issuer certificates, under the public base URL."""

    base_url: str

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/pki/ocsp"

    @property
    def crl(self) -> str:
        return f"{self.base_url}/pki/crl"

    @property
    def issuer_certificate(self) -> str:
        return f"{self.base_url}/pki/issuing-ca.crt"


def new_serial() -> int:
    """159 random bits: unpredictable (CA/B Forum asks for 64+), positive, under 20 bytes."""
    return secrets.randbits(159) | 1 << 158


def name(
    common_name: str,
    *,
    organisation: str = "Government of the Punjab",
    unit: str | None = None,
    title: str | None = None,
) -> x509.Name:
    """A subject name; an officer's post goes in `title` (X.520 title), their name in CN."""
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "PK"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Punjab"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    if title:
        attributes.append(x509.NameAttribute(NameOID.TITLE, title))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_root(subject: x509.Name, key: CaKey, now: datetime) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(new_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA384())
    )


def make_issuing(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    root: x509.Certificate,
    root_key: CaKey,
    now: datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(new_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + ISSUING_VALIDITY, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.oid.CertificatePoliciesOID.ANY_POLICY, None)]
            ),
            critical=False,
        )
        .sign(root_key, hashes.SHA384())
    )


def issue(
    profile: Profile,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate,
    issuer_key: CaKey,
    now: datetime,
    endpoints: Endpoints,
    *,
    serial: int | None = None,
) -> x509.Certificate:
    """An end-entity certificate under `profile`, signed by the issuing CA."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial or new_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + profile.validity, issuer.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(profile.key_usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(list(profile.extended_key_usage)),
            critical=profile.critical_eku,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(profile.policy, None)]),
            critical=False,
        )
    )
    if profile is OCSP_RESPONDER:
        # RFC 6960 4.2.2.2.1: the responder's own certificate is not checked by OCSP.
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(endpoints.ocsp),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(endpoints.issuer_certificate),
                    ),
                ]
            ),
            critical=False,
        ).add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(endpoints.crl)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def make_crl(
    issuer: x509.Certificate,
    issuer_key: CaKey,
    revoked: Sequence[Revocation],
    *,
    number: int,
    now: datetime,
) -> x509.CertificateRevocationList:
    """The issuing CA's CRL (RFC 5280 5), with reason codes and a monotonic CRL number."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now - BACKDATE)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    for entry in revoked:
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked_cert)
    return builder.sign(issuer_key, hashes.SHA256())
