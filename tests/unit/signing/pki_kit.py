"""A throwaway CA hierarchy for the signing tests, and PEM files for openssl to judge."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.pki.ca import Endpoints, issue, make_issuing, make_root, name
from signing.pki.profiles import Profile

NOW = datetime.now(UTC)
ENDPOINTS = Endpoints("https://shanakht.test")


def openssl() -> str:
    found = shutil.which("openssl")
    assert found, "openssl must be installed: it is the independent judge here"
    return found


def pem(path: Path, *items: x509.Certificate | x509.CertificateRevocationList) -> Path:
    path.write_bytes(b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items))
    return path


@dataclass(frozen=True)
class Hierarchy:
    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls) -> Hierarchy:
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = make_root(name("Punjab Root CA"), root_key, NOW)
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        issuing = make_issuing(
            name("Punjab Issuing CA 1"), issuing_key.public_key(), root, root_key, NOW
        )
        return cls(root, issuing, issuing_key)

    def issue(
        self,
        profile: Profile,
        common_name: str,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        now: datetime = NOW,
    ) -> x509.Certificate:
        """A certificate of `profile` for a fresh key (or `key`), from the issuing CA."""
        public = (key or ec.generate_private_key(ec.SECP256R1())).public_key()
        return issue(
            profile, name(common_name), public, self.issuing, self.issuing_key, now, ENDPOINTS
        )
