"""OCSP responses judged by `openssl ocsp`: good, revoked, unknown, nonce echoed, bad requests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from signing.pki.ca import make_root, name
from signing.pki.ocsp import CertificateStatus, respond
from signing.pki.profiles import OCSP_RESPONDER, QR_SIGNER
from tests.unit.signing.pki_kit import NOW, Hierarchy, openssl, pem


@dataclass(frozen=True)
class Responder:
    pki: Hierarchy
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    statuses: dict[int, CertificateStatus]

    def answer(self, request_der: bytes) -> bytes:
        return respond(
            request_der,
            issuer=self.pki.issuing,
            responder=self.certificate,
            responder_key=self.key,
            lookup=self.statuses.get,
            now=NOW,
        )


@pytest.fixture(scope="module")
def pki() -> Hierarchy:
    return Hierarchy.make()


@pytest.fixture(scope="module")
def responder(pki: Hierarchy) -> Responder:
    key = ec.generate_private_key(ec.SECP256R1())
    return Responder(pki, pki.issue(OCSP_RESPONDER, "Punjab OCSP", key=key), key, {})


@pytest.fixture(scope="module")
def good(pki: Hierarchy, responder: Responder) -> x509.Certificate:
    cert = pki.issue(QR_SIGNER, "Good signer")
    responder.statuses[cert.serial_number] = CertificateStatus()
    return cert


@pytest.fixture(scope="module")
def revoked(pki: Hierarchy, responder: Responder) -> x509.Certificate:
    cert = pki.issue(QR_SIGNER, "Revoked signer")
    responder.statuses[cert.serial_number] = CertificateStatus(NOW, x509.ReasonFlags.key_compromise)
    return cert


def _ask(tmp_path: Path, responder: Responder, cert: x509.Certificate) -> str:
    """openssl makes the request (with a nonce), we answer, openssl checks the answer."""
    issuer = pem(tmp_path / "issuing.pem", responder.pki.issuing)
    subject = pem(tmp_path / "cert.pem", cert)
    request = tmp_path / "req.der"
    subprocess.run(
        [openssl(), "ocsp", "-issuer", str(issuer), "-cert", str(subject), "-reqout", str(request)],
        check=True,
        capture_output=True,
    )
    response = tmp_path / "resp.der"
    response.write_bytes(responder.answer(request.read_bytes()))
    trust = [
        "-CAfile",
        str(pem(tmp_path / "root.pem", responder.pki.root)),
        "-verify_other",
        str(issuer),
    ]
    # Against the original request: signature, chain to the root, and the nonce.
    checked = subprocess.run(
        [openssl(), "ocsp", "-reqin", str(request), "-respin", str(response), *trust],
        capture_output=True,
        text=True,
        check=False,
    )
    # The status line (naming the certificate makes openssl build a request of its own, with a
    # fresh nonce, so this second call leaves the nonce to the first).
    status = subprocess.run(
        [
            openssl(),
            "ocsp",
            "-respin",
            str(response),
            "-issuer",
            str(issuer),
            "-cert",
            str(subject),
            "-no_nonce",
            *trust,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return checked.stdout + checked.stderr + status.stdout + status.stderr


def test_good(tmp_path: Path, responder: Responder, good: x509.Certificate) -> None:
    out = _ask(tmp_path, responder, good)
    assert "Response verify OK" in out
    assert ": good" in out


def test_revoked_with_its_reason(
    tmp_path: Path, responder: Responder, revoked: x509.Certificate
) -> None:
    out = _ask(tmp_path, responder, revoked)
    assert "Response verify OK" in out
    assert ": revoked" in out
    assert "keyCompromise" in out


def test_unknown_serial(tmp_path: Path, pki: Hierarchy, responder: Responder) -> None:
    out = _ask(tmp_path, responder, pki.issue(QR_SIGNER, "Never recorded"))
    assert "Response verify OK" in out
    assert ": unknown" in out


def test_the_nonce_is_echoed(tmp_path: Path, responder: Responder, good: x509.Certificate) -> None:
    out = _ask(tmp_path, responder, good)
    assert "nonce verify error" not in out.lower()
    assert "WARNING: no nonce in response" not in out


def test_bad_requests_get_ocsp_errors_not_exceptions(
    responder: Responder, good: x509.Certificate
) -> None:
    def status(der: bytes) -> ocsp.OCSPResponseStatus:
        return ocsp.load_der_ocsp_response(responder.answer(der)).response_status

    assert status(b"not an ocsp request") == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    other_issuer = make_root(name("Other CA"), ec.generate_private_key(ec.SECP256R1()), NOW)
    foreign = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(good, other_issuer, hashes.SHA1())  # noqa: S303 (OCSP's CertID)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert status(foreign) == ocsp.OCSPResponseStatus.UNAUTHORIZED
