"""The CA hierarchy judged by an independent tool: `openssl verify` with the CRL."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.pki.ca import Endpoints, Revocation, issue, make_crl, make_issuing, make_root, name
from signing.pki.profiles import OCSP_RESPONDER, OFFICER_SIGNING, PROFILES, QR_SIGNER

NOW = datetime.now(UTC)
ENDPOINTS = Endpoints("https://shanakht.test")
OPENSSL = shutil.which("openssl")


def _pem(path: Path, *items: x509.Certificate | x509.CertificateRevocationList) -> Path:
    path.write_bytes(b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items))
    return path


@pytest.fixture(scope="module")
def hierarchy() -> dict:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = make_root(name("Punjab Root CA"), root_key, NOW)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = make_issuing(
        name("Punjab Issuing CA 1"), issuing_key.public_key(), root, root_key, NOW
    )
    return {"root": root, "issuing": issuing, "issuing_key": issuing_key}


def _verify(
    tmp_path: Path, h: dict, cert: x509.Certificate, crl: x509.CertificateRevocationList
) -> subprocess.CompletedProcess[str]:
    assert OPENSSL, "openssl must be installed: it is the independent judge here"
    return subprocess.run(
        [
            OPENSSL,
            "verify",
            "-crl_check",
            "-CAfile",
            str(_pem(tmp_path / "root.pem", h["root"])),
            "-untrusted",
            str(_pem(tmp_path / "issuing.pem", h["issuing"])),
            "-CRLfile",
            str(_pem(tmp_path / "crl.pem", crl)),
            str(_pem(tmp_path / "cert.pem", cert)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_verifies_and_a_revoked_one_does_not(
    tmp_path: Path, hierarchy: dict, profile: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(
        PROFILES[profile],
        name("Officer", unit="School Education Department"),
        key.public_key(),
        hierarchy["issuing"],
        hierarchy["issuing_key"],
        NOW,
        ENDPOINTS,
    )
    empty = make_crl(hierarchy["issuing"], hierarchy["issuing_key"], [], number=1, now=NOW)
    good = _verify(tmp_path, hierarchy, cert, empty)
    assert good.returncode == 0, good.stdout + good.stderr
    revoked = make_crl(
        hierarchy["issuing"],
        hierarchy["issuing_key"],
        [Revocation(cert.serial_number, NOW, x509.ReasonFlags.key_compromise)],
        number=2,
        now=NOW,
    )
    bad = _verify(tmp_path, hierarchy, cert, revoked)
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr


def test_a_certificate_from_another_ca_does_not_verify(tmp_path: Path, hierarchy: dict) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    rogue = make_root(name("Punjab Issuing CA 1"), other_key, NOW)  # same name, other key
    cert = issue(
        QR_SIGNER,
        name("QR signer"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        rogue,
        other_key,
        NOW,
        ENDPOINTS,
    )
    crl = make_crl(hierarchy["issuing"], hierarchy["issuing_key"], [], number=1, now=NOW)
    result = _verify(tmp_path, hierarchy, cert, crl)
    assert result.returncode != 0


def test_an_expired_certificate_does_not_verify(tmp_path: Path, hierarchy: dict) -> None:
    past = NOW - timedelta(days=3 * 365)
    cert = issue(
        OFFICER_SIGNING,
        name("Officer"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        hierarchy["issuing"],
        hierarchy["issuing_key"],
        past,
        ENDPOINTS,
    )
    crl = make_crl(hierarchy["issuing"], hierarchy["issuing_key"], [], number=1, now=NOW)
    result = _verify(tmp_path, hierarchy, cert, crl)
    assert result.returncode != 0
    assert "expired" in result.stdout + result.stderr


def test_profiles_carry_status_locations_and_policy(hierarchy: dict) -> None:
    cert = issue(
        QR_SIGNER,
        name("QR signer"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        hierarchy["issuing"],
        hierarchy["issuing_key"],
        NOW,
        ENDPOINTS,
    )
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
    responder = issue(
        OCSP_RESPONDER,
        name("OCSP"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        hierarchy["issuing"],
        hierarchy["issuing_key"],
        NOW,
        ENDPOINTS,
    )
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
