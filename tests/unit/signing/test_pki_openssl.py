"""The CA hierarchy judged by an independent tool: `openssl verify` with the CRL."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signing.pki.ca import Revocation, issue, make_crl, make_root, name
from signing.pki.profiles import OCSP_RESPONDER, OFFICER_SIGNING, PROFILES, QR_SIGNER
from tests.unit.signing.pki_kit import ENDPOINTS, NOW, Hierarchy, openssl, pem


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return Hierarchy.make()


def _verify(
    tmp_path: Path, h: Hierarchy, cert: x509.Certificate, crl: x509.CertificateRevocationList
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            openssl(),
            "verify",
            "-crl_check",
            "-CAfile",
            str(pem(tmp_path / "root.pem", h.root)),
            "-untrusted",
            str(pem(tmp_path / "issuing.pem", h.issuing)),
            "-CRLfile",
            str(pem(tmp_path / "crl.pem", crl)),
            str(pem(tmp_path / "cert.pem", cert)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _crl(h: Hierarchy, *revoked: Revocation, number: int = 1) -> x509.CertificateRevocationList:
    return make_crl(h.issuing, h.issuing_key, list(revoked), number=number, now=NOW)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_verifies_and_a_revoked_one_does_not(
    tmp_path: Path, hierarchy: Hierarchy, profile: str
) -> None:
    cert = hierarchy.issue(PROFILES[profile], "Officer")
    good = _verify(tmp_path, hierarchy, cert, _crl(hierarchy))
    assert good.returncode == 0, good.stdout + good.stderr
    revocation = Revocation(cert.serial_number, NOW, x509.ReasonFlags.key_compromise)
    bad = _verify(tmp_path, hierarchy, cert, _crl(hierarchy, revocation, number=2))
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr


def test_a_certificate_from_another_ca_does_not_verify(
    tmp_path: Path, hierarchy: Hierarchy
) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    rogue = make_root(name("Punjab Issuing CA 1"), other_key, NOW)  # same name, other key
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = issue(QR_SIGNER, name("QR signer"), public, rogue, other_key, NOW, ENDPOINTS)
    result = _verify(tmp_path, hierarchy, cert, _crl(hierarchy))
    assert result.returncode != 0


def test_an_expired_certificate_does_not_verify(tmp_path: Path, hierarchy: Hierarchy) -> None:
    cert = hierarchy.issue(OFFICER_SIGNING, "Officer", now=NOW - timedelta(days=3 * 365))
    result = _verify(tmp_path, hierarchy, cert, _crl(hierarchy))
    assert result.returncode != 0
    assert "expired" in result.stdout + result.stderr


def test_profiles_carry_status_locations_and_policy(hierarchy: Hierarchy) -> None:
    cert = hierarchy.issue(QR_SIGNER, "QR signer")
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {d.access_location.value for d in aia} == {
        "https://shanakht.test/pki/ocsp",
        "https://shanakht.test/pki/issuing-ca.crt",
    }
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "https://shanakht.test/pki/crl"
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert policies[0].policy_identifier == QR_SIGNER.policy
    assert 20 >= len(cert.serial_number.to_bytes(20, "big").lstrip(b"\0")) >= 16
    responder = hierarchy.issue(OCSP_RESPONDER, "OCSP")
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    with pytest.raises(x509.ExtensionNotFound):
        responder.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
