"""The issuing CA as a service: issue, revoke, publish the CRL, answer OCSP, on the database.

The root comes in only at `initialise` (from its offline directory); after that the service
works with the issuing CA's key from the key provider. Every issue, renewal and revocation
is an audit entry in the same transaction as the row it records, so neither exists without
the other. Certificates are named in entries by their serial in OpenSSL's colon form, which
cannot be mistaken for a CNIC by the audit log's guard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from signing.errors import SigningError
from signing.models import authorities, certificates, crls, trust_lists
from signing.pki.ca import (
    CRL_VALIDITY,
    Endpoints,
    Revocation,
    issue,
    make_crl,
    make_issuing,
    name,
)
from signing.pki.custody import RootCa
from signing.pki.keys import KeyProvider
from signing.pki.ocsp import CertificateStatus, respond
from signing.pki.profiles import OCSP_RESPONDER, PROFILES, QR_SIGNER, TSA, Profile
from signing.trustlist import REVOKED, TrustedSigner, TrustList, sign_trust_list
from signing.tsa import TimeStampAuthority

T = TypeVar("T")
TSA_NAME = "Punjab Time-Stamping Authority"
RESPONDER_RENEWAL = timedelta(days=30)  # renew the OCSP responder's certificate this early
TRUST_LIST_VALIDITY = timedelta(days=7)  # offline verifiers should refresh within a week
REASONS = {reason.name: reason for reason in x509.ReasonFlags if reason.name != "remove_from_crl"}


class PkiError(SigningError):
    """A PKI request that cannot be met; the message says why, for the operator."""


class PkiNotReady(PkiError):
    """`shanakht pki init` has not been run on this deployment."""

    code = "pki.not_ready"


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def serial_text(serial: int) -> str:
    """OpenSSL's form, "5a:3f:..": how people read serials, and never a run of digits."""
    raw = serial.to_bytes((serial.bit_length() + 7) // 8 or 1, "big")
    return ":".join(f"{b:02x}" for b in raw)


def parse_serial(text: str) -> int:
    """A serial as typed: hex, with or without colons; PkiError if it is not one."""
    cleaned = text.strip().lower().replace(":", "")
    try:
        serial = int(cleaned, 16)
    except ValueError:
        raise PkiError(f"{text!r} is not a certificate serial (hex)") from None
    if not 0 < serial < 2**160:
        raise PkiError(f"{text!r} is not a certificate serial (1 to 20 bytes)")
    return serial


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    serial: int
    profile: str
    certificate: x509.Certificate
    key_ref: str | None
    department: str | None
    holder: str | None
    revoked_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Signer:
    """A certificate the service signs with, its key, and the CA certificate that issued it
    (the chain a signature carries)."""

    serial: int
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    issuer: x509.Certificate


# `Authority.signer`'s one read, built once: it is asked for on every sealed document.
_SIGNER = (
    select(
        certificates.c.serial,
        certificates.c.certificate,
        certificates.c.key_ref,
        authorities.c.certificate.label("issuer_certificate"),
    )
    .join(authorities, authorities.c.serial == certificates.c.issuer)
    .where(
        certificates.c.profile == bindparam("profile"),
        certificates.c.department == bindparam("department"),
        certificates.c.revoked_at.is_(None),
        certificates.c.key_ref.is_not(None),
        certificates.c.not_after > bindparam("now"),
    )
    .order_by(certificates.c.issued_at.desc())
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class OcspSigner:
    issuer: x509.Certificate
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


class Held(Generic[T]):
    """One value kept for `ttl` seconds: the OCSP responder's and the TSA's certificate and
    key. OCSP and time-stamps are hot paths, and these change only at renewal, when the old
    certificate stays valid anyway; certificate status is never cached. One per process (the
    runtime holds them), shared by its threads."""

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._held: tuple[float, T] | None = None

    def get(self, load: Callable[[], T]) -> T:
        with self._lock:
            if self._held is not None and time.monotonic() < self._held[0]:
                return self._held[1]
        value = load()
        with self._lock:
            self._held = (time.monotonic() + self._ttl, value)
        return value

    def clear(self) -> None:
        """Forget the value (its certificate was revoked in this process)."""
        with self._lock:
            self._held = None


@dataclass
class SignerCaches:
    ocsp: Held[OcspSigner] = field(default_factory=Held)
    tsa: Held[TimeStampAuthority] = field(default_factory=Held)


_INIT_LOCK = 0x5348_4B50_4B49  # "SHKPKI": the advisory lock `initialise` takes on PostgreSQL


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a certificate is for: a common name, the department, and the officer's pseudonym
    (None for a department's own certificates: seals, QR signers)."""

    common_name: str
    department: str | None = None
    holder: str | None = None
    title: str | None = None


class Authority:
    def __init__(
        self,
        session: Session,
        *,
        keys: KeyProvider,
        audit: AuditLog,
        clock: Callable[[], datetime],
        endpoints: Endpoints,
        organisation: str = "Government of the Punjab",
        caches: SignerCaches | None = None,
    ) -> None:
        self._caches = caches or SignerCaches(Held(ttl=0.0), Held(ttl=0.0))
        self._db = session
        self._keys = keys
        self._audit = audit
        self._clock = clock
        self._endpoints = endpoints
        self._organisation = organisation

    # -- the hierarchy ------------------------------------------------------------------------

    def initialise(self, root: RootCa, *, actor: str) -> x509.Certificate:
        """Record the root, make the issuing CA, its OCSP responder and first CRL."""
        self._lock_for_initialisation()
        if self._issuing_row() is not None:
            raise PkiError("the PKI is initialised already")
        now = self._clock()
        self._db.execute(
            insert(authorities).values(
                serial=serial_hex(root.certificate.serial_number),
                kind="root",
                certificate=_der(root.certificate),
                key_ref=None,
                created_at=now,
            )
        )
        key_ref = self._keys.generate()
        issuing = make_issuing(
            name("Punjab Issuing CA", organisation=self._organisation),
            self._keys.private_key(key_ref).public_key(),
            root.certificate,
            root.key,
            now,
        )
        self._db.execute(
            insert(authorities).values(
                serial=serial_hex(issuing.serial_number),
                kind="issuing",
                certificate=_der(issuing),
                key_ref=key_ref,
                created_at=now,
            )
        )
        self._record("signing.ca.created", actor, issuing.serial_number, {"kind": "issuing"})
        self._new_responder(actor)
        self.issue(TSA, Subject(TSA_NAME), actor=actor)
        self.publish_crl()
        self.publish_trust_list()
        return issuing

    def initialised(self) -> bool:
        return self._issuing_row() is not None

    def root(self) -> x509.Certificate:
        row = self._db.execute(
            select(authorities.c.certificate).where(authorities.c.kind == "root")
        ).first()
        if row is None:
            raise PkiNotReady("the PKI is not initialised: run `shanakht pki init`")
        return x509.load_der_x509_certificate(row.certificate)

    def issuing(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        row = self._issuing_row()
        if row is None:
            raise PkiNotReady("the PKI is not initialised: run `shanakht pki init`")
        return x509.load_der_x509_certificate(row.certificate), self._keys.private_key(row.key_ref)

    def _lock(self) -> None:
        """Serialise the CA's writes: CRL and trust-list numbers, revocations, renewals. A row
        lock on the issuing CA on PostgreSQL; on SQLite, FOR UPDATE takes the write lock."""
        self._db.execute(
            select(authorities.c.serial).where(authorities.c.kind == "issuing").with_for_update()
        ).all()

    def _lock_for_initialisation(self) -> None:
        """Two `pki init` at once must not make two CAs. Before the first there is no issuing
        row for FOR UPDATE to lock, so PostgreSQL takes a transaction-scoped advisory lock;
        on SQLite, FOR UPDATE already takes the database's one write lock."""
        if self._db.get_bind().dialect.name == "postgresql":
            self._db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK})
        else:
            self._lock()

    def _issuing_row(self) -> Any:
        return self._db.execute(
            select(authorities.c.serial, authorities.c.certificate, authorities.c.key_ref)
            .where(authorities.c.kind == "issuing")
            .order_by(authorities.c.created_at.desc())
            .limit(1)
        ).first()

    # -- certificates -------------------------------------------------------------------------

    def issue(
        self,
        profile: Profile,
        subject: Subject,
        *,
        actor: str,
        csr: x509.CertificateSigningRequest | None = None,
    ) -> IssuedCertificate:
        """A certificate for a key the provider makes, or for the key in `csr`."""
        if profile.name not in PROFILES:
            raise PkiError(f"no certificate profile {profile.name!r}")
        key_ref = None
        if csr is None:
            key_ref = self._keys.generate()
            public = self._keys.private_key(key_ref).public_key()
        else:
            public = _checked_csr_key(csr)
        subject_name = name(
            subject.common_name,
            organisation=self._organisation,
            unit=subject.department,
            title=subject.title,
        )
        return self._certify(
            profile, subject_name, subject, public, key_ref, actor, "signing.certificate.issued"
        )

    def renew(self, serial: int, *, actor: str) -> IssuedCertificate:
        """A new certificate for the same key and subject, with a new validity; the old one
        stays valid until it expires or is revoked (what is signed with it keeps verifying)."""
        self._lock()  # so a revocation cannot land between the check below and the new one
        found = self.get(serial)
        if found is None:
            raise PkiError(f"no certificate {serial_text(serial)}")
        if found.revoked_at is not None:
            raise PkiError(f"{serial_text(serial)} is revoked: issue a new one instead")
        public = found.certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise PkiError(f"{serial_text(serial)} is not for an EC key")
        subject = Subject(_common_name(found), found.department, found.holder)
        return self._certify(
            PROFILES[found.profile],
            found.certificate.subject,
            subject,
            public,
            found.key_ref,
            actor,
            "signing.certificate.renewed",
            {"renews": serial_text(serial)},
        )

    def _certify(
        self,
        profile: Profile,
        subject_name: x509.Name,
        subject: Subject,
        public: ec.EllipticCurvePublicKey,
        key_ref: str | None,
        actor: str,
        action: str,
        extra: dict[str, str] | None = None,
    ) -> IssuedCertificate:
        self._lock()
        issuer, issuer_key = self.issuing()
        certificate = issue(
            profile, subject_name, public, issuer, issuer_key, self._clock(), self._endpoints
        )
        self._db.execute(
            insert(certificates).values(
                serial=serial_hex(certificate.serial_number),
                issuer=serial_hex(issuer.serial_number),
                profile=profile.name,
                common_name=subject.common_name,
                department=subject.department,
                holder=subject.holder,
                key_ref=key_ref,
                certificate=_der(certificate),
                issued_at=self._clock(),
                not_after=certificate.not_valid_after_utc,
            )
        )
        details = {"profile": profile.name, "department": subject.department or "", **(extra or {})}
        self._record(action, actor, certificate.serial_number, details, subject=subject.holder)
        if profile is QR_SIGNER:
            self.publish_trust_list()
        return IssuedCertificate(
            certificate.serial_number,
            profile.name,
            certificate,
            key_ref,
            subject.department,
            subject.holder,
            None,
            None,
        )

    def revoke(self, serial: int, reason: str, *, actor: str) -> IssuedCertificate:
        """Revoke with an RFC 5280 reason and publish a new CRL at once."""
        if reason not in REASONS:
            raise PkiError(
                f"unknown reason {reason!r}; reasons are {', '.join(sorted(REASONS))}",
                code="certificate.reason", field="reason",
            )  # fmt: skip
        self._lock()
        found = self.get(serial)
        if found is None:
            raise PkiError(
                f"no certificate {serial_text(serial)}",
                code="certificate.unknown", serial=serial_text(serial),
            )  # fmt: skip
        if found.revoked_at is not None:
            raise PkiError(
                f"{serial_text(serial)} was revoked already ({found.reason})",
                code="certificate.revoked", serial=serial_text(serial),
            )  # fmt: skip
        now = self._clock()
        self._db.execute(
            update(certificates)
            .where(certificates.c.serial == serial_hex(serial), certificates.c.revoked_at.is_(None))
            .values(revoked_at=now, reason=reason)
        )
        self._record(
            "signing.certificate.revoked",
            actor,
            serial,
            {"reason": reason, "profile": found.profile},
            subject=found.holder,
        )
        self.publish_crl()
        if found.profile == QR_SIGNER.name:
            self.publish_trust_list()
        if found.profile in (OCSP_RESPONDER.name, TSA.name):
            # The service's own signers: a replacement at once, or OCSP and time-stamps stop.
            self.issue(PROFILES[found.profile], Subject(_common_name(found)), actor=actor)
            self._caches.ocsp.clear()
            self._caches.tsa.clear()
        return self.get(serial) or found

    def get(self, serial: int) -> IssuedCertificate | None:
        row = self._db.execute(
            select(certificates).where(certificates.c.serial == serial_hex(serial))
        ).first()
        return _issued(row) if row is not None else None

    def listed(
        self, *, profile: str | None = None, department: str | None = None
    ) -> list[IssuedCertificate]:
        query = select(certificates).order_by(certificates.c.issued_at)
        if profile is not None:
            query = query.where(certificates.c.profile == profile)
        if department is not None:
            query = query.where(certificates.c.department == department)
        return [_issued(row) for row in self._db.execute(query)]

    def current(
        self, profile: Profile, *, department: str, holder: str | None = None
    ) -> IssuedCertificate | None:
        """The newest good certificate of `profile` in `department` (for `holder`, if given)
        whose key the service holds: the one it signs with."""
        query = (
            select(certificates)
            .where(
                certificates.c.profile == profile.name,
                certificates.c.department == department,
                certificates.c.revoked_at.is_(None),
                certificates.c.key_ref.is_not(None),
                certificates.c.not_after > self._clock(),
            )
            .order_by(certificates.c.issued_at.desc())
            .limit(1)
        )
        if holder is not None:
            query = query.where(certificates.c.holder == holder)
        row = self._db.execute(query).first()
        return _issued(row) if row is not None else None

    def signer(self, profile: Profile, *, department: str) -> Signer | None:
        """What `current` finds for a department's own certificate (a seal), with its key and
        its issuer's certificate, in one read: the one the service signs with now.

        Read afresh each time, never cached, so a revocation or a new certificate counts from
        the next signature; only what a row names for ever is kept, by the key provider (an
        opened key, by its reference) and by the DER parts of a signature (by certificate).
        """
        row = self._db.execute(
            _SIGNER, {"profile": profile.name, "department": department, "now": self._clock()}
        ).first()
        if row is None:
            return None
        return Signer(
            int(row.serial, 16),
            x509.load_der_x509_certificate(row.certificate),
            self._keys.private_key(row.key_ref),
            x509.load_der_x509_certificate(row.issuer_certificate),
        )

    def online_status(self, certificate: x509.Certificate) -> str:
        """For verdicts: "good", "revoked", or "unknown" (not a certificate of this CA)."""
        found = self.get(certificate.serial_number)
        if found is None or found.certificate != certificate:
            return "unknown"
        return "revoked" if found.revoked_at else "good"

    def private_key(self, issued: IssuedCertificate) -> ec.EllipticCurvePrivateKey:
        if issued.key_ref is None:
            raise PkiError(f"the key of {serial_text(issued.serial)} is its holder's, not ours")
        return self._keys.private_key(issued.key_ref)

    # -- status: CRL and OCSP -----------------------------------------------------------------

    def publish_crl(self) -> bytes:
        """A new CRL with the next number: after each revocation and on the schedule."""
        self._lock()
        issuer, issuer_key = self.issuing()
        rows = self._db.execute(
            select(certificates.c.serial, certificates.c.revoked_at, certificates.c.reason).where(
                certificates.c.issuer == serial_hex(issuer.serial_number),
                certificates.c.revoked_at.is_not(None),
            )
        )
        revoked = [Revocation(int(r.serial, 16), r.revoked_at, REASONS[r.reason]) for r in rows]
        number = (self._db.execute(select(func.max(crls.c.number))).scalar() or 0) + 1
        now = self._clock()
        crl = make_crl(issuer, issuer_key, revoked, number=number, now=now)
        der = crl.public_bytes(Encoding.DER)
        self._db.execute(
            insert(crls).values(
                number=number,
                issuer=serial_hex(issuer.serial_number),
                der=der,
                this_update=now,
                next_update=now + CRL_VALIDITY,
            )
        )
        return der

    def crl(self) -> bytes:
        """The newest CRL, as published."""
        der = self._db.execute(select(crls.c.der).order_by(crls.c.number.desc()).limit(1)).scalar()
        if der is None:
            raise PkiNotReady("no CRL yet: run `shanakht pki init`")
        return bytes(der)

    def refresh(self, *, actor: str) -> list[str]:
        """The schedule's work: a new CRL at half its life, a new OCSP responder certificate
        a month before the old one expires. Returns what it did."""
        self._lock()
        done = []
        now = self._clock()
        next_update = self._db.execute(select(func.max(crls.c.next_update))).scalar()
        if next_update is None or next_update - now < CRL_VALIDITY / 2:
            self.publish_crl()
            done.append("crl")
        due = self._db.execute(select(func.max(trust_lists.c.next_update))).scalar()
        if due is None or due - now < TRUST_LIST_VALIDITY / 2:
            self.publish_trust_list()
            done.append("trust-list")
        responder = self._responder()
        if responder is None or responder.certificate.not_valid_after_utc - now < (
            RESPONDER_RENEWAL
        ):
            self._new_responder(actor)
            done.append("ocsp-responder")
        stamper = self._current_of(TSA)
        if stamper is None or stamper.certificate.not_valid_after_utc - now < RESPONDER_RENEWAL:
            self.issue(TSA, Subject(TSA_NAME), actor=actor)
            done.append("tsa")
        return done

    def publish_trust_list(self) -> bytes:
        """A new trust list of every QR signer and its status, signed by the issuing CA: after
        a QR signer is issued or revoked, and on the schedule before the last one is due."""
        self._lock()
        issuer, issuer_key = self.issuing()
        now = self._clock().replace(microsecond=0)
        signers = tuple(
            TrustedSigner.of(
                issued.certificate,
                status=REVOKED if issued.revoked_at else "good",
                revoked_at=issued.revoked_at.replace(microsecond=0) if issued.revoked_at else None,
                reason=issued.reason,
            )
            for issued in self.listed(profile=QR_SIGNER.name)
        )
        sequence = (self._db.execute(select(func.max(trust_lists.c.sequence))).scalar() or 0) + 1
        trust = TrustList(sequence, now, now + TRUST_LIST_VALIDITY, self._organisation, signers)
        document = sign_trust_list(trust, key=issuer_key, certificate=issuer, chain=())
        self._db.execute(
            insert(trust_lists).values(
                sequence=sequence,
                document=document,
                issued_at=now,
                next_update=trust.next_update,
            )
        )
        return document

    def trust_list(self) -> bytes:
        """The newest trust list, as published."""
        document = self._db.execute(
            select(trust_lists.c.document).order_by(trust_lists.c.sequence.desc()).limit(1)
        ).scalar()
        if document is None:
            raise PkiNotReady("no trust list yet: run `shanakht pki init`")
        return bytes(document)

    def ocsp(self, request_der: bytes) -> bytes:
        """The signed OCSP response to a DER request (RFC 6960)."""
        signer = self._caches.ocsp.get(self._ocsp_signer)
        return respond(
            request_der,
            issuer=signer.issuer,
            responder=signer.certificate,
            responder_key=signer.key,
            lookup=self.status,
            now=self._clock(),
        )

    def _ocsp_signer(self) -> OcspSigner:
        issuer, _ = self.issuing()
        responder = self._responder()
        if responder is None:
            raise PkiNotReady("no OCSP responder certificate: run `shanakht pki init`")
        return OcspSigner(issuer, responder.certificate, self.private_key(responder))

    def tsa(self) -> TimeStampAuthority:
        """The service's own RFC 3161 time-stamp authority (the embedded default)."""
        return self._caches.tsa.get(self._tsa)

    def _tsa(self) -> TimeStampAuthority:
        issued = self._current_of(TSA)
        if issued is None:
            raise PkiNotReady("no time-stamping certificate: run `shanakht pki init`")
        issuing, _ = self.issuing()
        return TimeStampAuthority(
            self.private_key(issued), issued.certificate, [issuing], clock=self._clock
        )

    def status(self, serial: int) -> CertificateStatus | None:
        """One indexed read: what OCSP answers must be now, never from a cache."""
        row = self._db.execute(
            select(certificates.c.revoked_at, certificates.c.reason).where(
                certificates.c.serial == serial_hex(serial)
            )
        ).first()
        if row is None:
            return None
        return CertificateStatus(row.revoked_at, REASONS[row.reason] if row.reason else None)

    def _responder(self) -> IssuedCertificate | None:
        return self._current_of(OCSP_RESPONDER)

    def _current_of(self, profile: Profile) -> IssuedCertificate | None:
        """The newest usable certificate of one of the service's own profiles."""
        row = self._db.execute(
            select(certificates)
            .where(
                certificates.c.profile == profile.name,
                certificates.c.revoked_at.is_(None),
                certificates.c.key_ref.is_not(None),
                certificates.c.not_after > self._clock(),
            )
            .order_by(certificates.c.issued_at.desc())
            .limit(1)
        ).first()
        return _issued(row) if row is not None else None

    def _new_responder(self, actor: str) -> IssuedCertificate:
        return self.issue(OCSP_RESPONDER, Subject("Punjab PKI OCSP Responder"), actor=actor)

    # -- audit --------------------------------------------------------------------------------

    def _record(
        self,
        action: str,
        actor: str,
        serial: int,
        details: dict[str, str],
        *,
        subject: str | None = None,
    ) -> None:
        self._audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                subject=subject,
                outcome="success",
                details={"serial": serial_text(serial), **details},
            )
        )


def _common_name(issued: IssuedCertificate) -> str:
    return str(issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _checked_csr_key(csr: x509.CertificateSigningRequest) -> ec.EllipticCurvePublicKey:
    """The CSR's key, if the CSR proves possession of it and is one we issue for (P-256)."""
    if not csr.is_signature_valid:
        raise PkiError("the CSR's signature does not verify: it does not prove the key")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
        public.curve, ec.SECP256R1
    ):
        raise PkiError("the CSR must be for an ECDSA P-256 key")
    return public


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A CSR in PEM or DER; PkiError for anything else."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise PkiError("that is not a certificate signing request (PEM or DER)") from None


def _issued(row: Any) -> IssuedCertificate:
    return IssuedCertificate(
        int(row.serial, 16),
        row.profile,
        x509.load_der_x509_certificate(row.certificate),
        row.key_ref,
        row.department,
        row.holder,
        row.revoked_at,
        row.reason,
    )


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)
