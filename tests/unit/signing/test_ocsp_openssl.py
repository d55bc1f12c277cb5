"""OCSP responses judged by `openssl ocsp`: good, revoked, unknown, nonce echoed, bad requests."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from signing.pki.ca import Endpoints, issue, make_issuing, make_root, name
from signing.pki.ocsp import CertificateStatus, respond
from signing.pki.profiles import OCSP_RESPONDER, QR_SIGNER

NOW = datetime.now(UTC)
ENDPOINTS = Endpoints("https://shanakht.test")
OPENSSL = shutil.which("openssl")


def _write(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


@pytest.fixture(scope="module")
def pki() -> dict:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = make_root(name("Punjab Root CA"), root_key, NOW)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = make_issuing(
        name("Punjab Issuing CA 1"), issuing_key.public_key(), root, root_key, NOW
    )
    responder_key = ec.generate_private_key(ec.SECP256R1())
    responder = issue(
        OCSP_RESPONDER,
        name("Punjab OCSP"),
        responder_key.public_key(),
        issuing,
        issuing_key,
        NOW,
        ENDPOINTS,
    )
    good = issue(
        QR_SIGNER,
        name("Good signer"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        issuing,
        issuing_key,
        NOW,
        ENDPOINTS,
    )
    revoked = issue(
        QR_SIGNER,
        name("Revoked signer"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        issuing,
        issuing_key,
        NOW,
        ENDPOINTS,
    )
    stranger = issue(
        QR_SIGNER,
        name("Never recorded"),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        issuing,
        issuing_key,
        NOW,
        ENDPOINTS,
    )
    statuses = {
        good.serial_number: CertificateStatus(good),
        revoked.serial_number: CertificateStatus(revoked, NOW, x509.ReasonFlags.key_compromise),
    }
    return {
        "root": root,
        "issuing": issuing,
        "responder": responder,
        "responder_key": responder_key,
        "good": good,
        "revoked": revoked,
        "stranger": stranger,
        "statuses": statuses,
    }


def _ask(tmp_path: Path, pki: dict, cert: x509.Certificate) -> str:
    """openssl makes the request (with a nonce), we answer, openssl checks the answer."""
    assert OPENSSL, "openssl must be installed: it is the independent judge here"
    issuer = _write(tmp_path / "issuing.pem", pki["issuing"])
    subject = _write(tmp_path / "cert.pem", cert)
    request = tmp_path / "req.der"
    subprocess.run(
        [OPENSSL, "ocsp", "-issuer", str(issuer), "-cert", str(subject), "-reqout", str(request)],
        check=True,
        capture_output=True,
    )
    answer = respond(
        request.read_bytes(),
        issuer=pki["issuing"],
        responder=pki["responder"],
        responder_key=pki["responder_key"],
        lookup=pki["statuses"].get,
        now=NOW,
    )
    response = tmp_path / "resp.der"
    response.write_bytes(answer)
    trust = [
        "-CAfile",
        str(_write(tmp_path / "root.pem", pki["root"])),
        "-verify_other",
        str(issuer),
    ]
    # Against the original request: signature, chain to the root, and the nonce.
    checked = subprocess.run(
        [OPENSSL, "ocsp", "-reqin", str(request), "-respin", str(response), *trust],
        capture_output=True,
        text=True,
        check=False,
    )
    # The status line (naming the certificate makes openssl build a request of its own, with a
    # fresh nonce, so this second call leaves the nonce to the first).
    status = subprocess.run(
        [
            OPENSSL,
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


def test_good(tmp_path: Path, pki: dict) -> None:
    out = _ask(tmp_path, pki, pki["good"])
    assert "Response verify OK" in out
    assert ": good" in out


def test_revoked_with_its_reason(tmp_path: Path, pki: dict) -> None:
    out = _ask(tmp_path, pki, pki["revoked"])
    assert "Response verify OK" in out
    assert ": revoked" in out
    assert "keyCompromise" in out


def test_unknown_serial(tmp_path: Path, pki: dict) -> None:
    out = _ask(tmp_path, pki, pki["stranger"])
    assert "Response verify OK" in out
    assert ": unknown" in out


def test_the_nonce_is_echoed(tmp_path: Path, pki: dict) -> None:
    out = _ask(tmp_path, pki, pki["good"])
    assert "nonce verify error" not in out.lower()
    assert "WARNING: no nonce in response" not in out


def test_bad_requests_get_ocsp_errors_not_exceptions(pki: dict) -> None:
    def status(der: bytes) -> ocsp.OCSPResponseStatus:
        answer = respond(
            der,
            issuer=pki["issuing"],
            responder=pki["responder"],
            responder_key=pki["responder_key"],
            lookup=pki["statuses"].get,
            now=NOW,
        )
        return ocsp.load_der_ocsp_response(answer).response_status

    assert status(b"not an ocsp request") == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    other_issuer = make_root(name("Other CA"), ec.generate_private_key(ec.SECP256R1()), NOW)
    foreign = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(pki["good"], other_issuer, hashes.SHA1())  # noqa: S303 (OCSP's CertID)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert status(foreign) == ocsp.OCSPResponseStatus.UNAUTHORIZED
