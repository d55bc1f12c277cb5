"""The PKI as an administrator runs it (`shanakht pki ...`) and as relying parties see it
(`/pki/...`), judged by openssl: verify with CRL checks, and OCSP against the live server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.runtime import Runtime
from audit.models import entries
from identity.nadra import SCENARIOS, ensure_registry, read_registry
from signing.pki.ca import issue, name
from signing.pki.profiles import DEPARTMENT_SEAL
from tests.cli.serving import free_port, wait_ready
from tests.cli.test_cli import SHANAKHT, run
from tests.http.oidc_kit import register_citizen
from tests.unit.signing.pki_kit import ENDPOINTS, NOW, openssl

PASSPHRASE = "correct horse battery staple"
OCSP_REQUEST = "application/ocsp-request"
OFFICER = SCENARIOS["active_male"]


@dataclass(frozen=True)
class Pki:
    env: dict[str, str]
    root_dir: Path
    files: Path  # PEM copies for openssl

    def pem(self, name: str, der: bytes, kind: str = "CERTIFICATE") -> Path:
        path = self.files / name
        loaded = x509.load_der_x509_crl(der) if kind == "X509 CRL" else None
        if loaded is not None:
            path.write_bytes(loaded.public_bytes(serialization.Encoding.PEM))
        else:
            cert = x509.load_der_x509_certificate(der)
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path


@pytest.fixture
def web(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url="https://shanakht.test") as client:
        yield client


@pytest.fixture
def pki(runtime: Runtime, cli_env: dict[str, str], tmp_path: Path) -> Pki:
    env = {**cli_env, "SHANAKHT_ROOT_PASSPHRASE": PASSPHRASE}
    root_dir = tmp_path / "offline-root"
    code, output = run(env, "pki", "init", "--root-dir", str(root_dir))
    assert code == 0, output
    assert "issuing CA" in output
    code, output = run(env, "departments", "add", "sed", "--name", "School Education Department")
    assert code == 0, output
    files = tmp_path / "pem"
    files.mkdir()
    return Pki(env, root_dir, files)


def _chain(pki: Pki, web: TestClient) -> tuple[Path, Path, Path]:
    """(root, issuing CA, CRL) as PEM files, fetched as a relying party would."""
    root = pki.pem("root.pem", web.get("/pki/root-ca.crt").content)
    issuing = pki.pem("issuing.pem", web.get("/pki/issuing-ca.crt").content)
    crl = web.get("/pki/crl")
    assert crl.headers["content-type"] == "application/pkix-crl"
    return root, issuing, pki.pem("crl.pem", crl.content, "X509 CRL")


def _issue_seal(pki: Pki) -> tuple[Path, str]:
    out = pki.files / "seal.pem"
    code, output = run(pki.env, "pki", "issue", "department-seal", "--department", "sed",
                       "--out", str(out))  # fmt: skip
    assert code == 0, output
    serial = re.search(r"issued department-seal ([0-9a-f:]+)", output)
    assert serial, output
    return out, serial.group(1)


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [openssl(), *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


def _verify(root: Path, issuing: Path, crl: Path, leaf: Path) -> subprocess.CompletedProcess[str]:
    return _openssl("verify", "-CAfile", root, "-untrusted", issuing, "-crl_check",
                    "-CRLfile", crl, leaf)  # fmt: skip


def test_the_root_key_is_encrypted_under_the_passphrase_and_kept_private(pki: Pki) -> None:
    key = pki.root_dir / "root-ca.key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    opened = _openssl("pkey", "-in", key, "-passin", f"pass:{PASSPHRASE}", "-noout", "-text")
    assert opened.returncode == 0, opened.stderr
    assert "NIST CURVE: P-384" in opened.stdout
    assert _openssl("pkey", "-in", key, "-passin", "pass:wrong passphrase", "-noout").returncode


def test_init_again_with_a_wrong_passphrase_or_on_a_set_up_pki_is_refused(pki: Pki) -> None:
    wrong = {**pki.env, "SHANAKHT_ROOT_PASSPHRASE": "not the passphrase"}
    code, output = run(wrong, "pki", "init", "--root-dir", str(pki.root_dir))
    assert code == 2
    assert "passphrase is wrong" in output
    code, output = run(pki.env, "pki", "init", "--root-dir", str(pki.root_dir))
    assert code == 2
    assert "initialised already" in output
    short = {**pki.env, "SHANAKHT_ROOT_PASSPHRASE": "short"}
    code, output = run(short, "pki", "init", "--root-dir", str(pki.files / "another"))
    assert code == 2
    assert "at least 12 characters" in output


def test_an_issued_certificate_verifies_and_fails_once_revoked(
    pki: Pki, web: TestClient, runtime: Runtime
) -> None:
    seal, serial = _issue_seal(pki)
    root, issuing, crl = _chain(pki, web)
    verified = _verify(root, issuing, crl, seal)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().endswith("OK")
    code, output = run(pki.env, "pki", "revoke", serial, "--reason", "key_compromise")
    assert code == 0, output
    root, issuing, crl = _chain(pki, web)
    refused = _verify(root, issuing, crl, seal)
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr
    listing = _openssl("crl", "-in", crl, "-noout", "-text").stdout
    assert "Key Compromise" in listing
    assert "X509v3 CRL Number: \n                2" in listing
    code, output = run(pki.env, "pki", "revoke", serial, "--reason", "key_compromise")
    assert code == 2
    assert "revoked already" in output
    with runtime.transaction() as session:
        actions = session.execute(select(entries.c.entry)).scalars().all()
    recorded = b"".join(actions)
    assert b"signing.certificate.issued" in recorded
    assert b"signing.certificate.revoked" in recorded
    assert serial.encode() in recorded


def test_an_officer_needs_the_signing_officer_role_and_is_named_with_their_post(
    pki: Pki, runtime: Runtime
) -> None:
    records = read_registry(ensure_registry(runtime.identity.nadra_file))
    register_citizen(runtime, records[OFFICER])
    args = ["pki", "issue", "officer-signing", "--department", "sed", "--officer", OFFICER,
            "--post", "CEO (DEA) Lahore"]  # fmt: skip
    code, output = run(pki.env, *args)
    assert code == 2
    assert "does not hold signing.officer" in output
    assert run(pki.env, "roles", "grant", OFFICER, "sed", "signing.officer")[0] == 0
    out = pki.files / "officer.pem"
    code, output = run(pki.env, *args, "--out", str(out))
    assert code == 0, output
    subject = x509.load_pem_x509_certificate(out.read_bytes()).subject
    assert subject.get_attributes_for_oid(x509.NameOID.TITLE)[0].value == "CEO (DEA) Lahore"
    full_name = records[OFFICER].full_name
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == full_name
    assert OFFICER not in out.read_text()


def test_a_csr_is_certified_for_its_own_key_and_bad_ones_are_refused(pki: Pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name("Sahiwal seal"))
        .sign(key, hashes.SHA256())
    )
    csr_file = pki.files / "seal.csr"
    csr_file.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out = pki.files / "from-csr.pem"
    code, output = run(pki.env, "pki", "issue", "department-seal", "--department", "sed",
                       "--csr", str(csr_file), "--out", str(out))  # fmt: skip
    assert code == 0, output
    assert x509.load_pem_x509_certificate(out.read_bytes()).public_key() == key.public_key()
    csr_file.write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\nnonsense\n")
    code, output = run(pki.env, "pki", "issue", "department-seal", "--department", "sed",
                       "--csr", str(csr_file))  # fmt: skip
    assert code == 2
    assert "not a certificate signing request" in output
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name("RSA seal"))
        .sign(rsa_key, hashes.SHA256())
    )
    csr_file.write_bytes(rsa_csr.public_bytes(serialization.Encoding.PEM))
    code, output = run(pki.env, "pki", "issue", "department-seal", "--department", "sed",
                       "--csr", str(csr_file))  # fmt: skip
    assert code == 2
    assert "P-256" in output


def test_the_pki_endpoints_before_init_and_for_bad_ocsp_requests(
    runtime: Runtime, web: TestClient
) -> None:
    not_ready = web.get("/pki/crl")
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    wrong_type = web.post("/pki/ocsp", content=b"x", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415
    too_big = web.post(
        "/pki/ocsp", content=b"x" * 5000, headers={"content-type": "application/ocsp-request"}
    )
    assert too_big.status_code == 413


def test_ocsp_answers_malformed_requests_in_ocsp_not_with_an_error_page(
    pki: Pki, web: TestClient
) -> None:
    for response in (
        web.post(
            "/pki/ocsp", content=b"junk", headers={"content-type": "application/ocsp-request"}
        ),
        web.get("/pki/ocsp/not!base64"),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/ocsp-response"
        parsed = x509.ocsp.load_der_ocsp_response(response.content)
        assert parsed.response_status == x509.ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.fixture
def live(pki: Pki) -> Iterator[str]:
    """`shanakht serve` on a port of its own, for openssl to talk to."""
    port = free_port()
    assert SHANAKHT, "the console script is installed"
    server = subprocess.Popen(
        [SHANAKHT, "serve", "--port", str(port)],
        env={**os.environ, **pki.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", server)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=15)


def _ocsp(base: str, root: Path, issuing: Path, cert: Path) -> str:
    done = _openssl("ocsp", "-issuer", issuing, "-cert", cert, "-url", f"{base}/pki/ocsp",
                    "-CAfile", root, "-resp_text")  # fmt: skip
    assert "Response verify OK" in done.stderr, done.stdout + done.stderr
    return done.stdout


def test_openssl_ocsp_against_the_running_server(
    pki: Pki, web: TestClient, live: str, runtime: Runtime
) -> None:
    seal, serial = _issue_seal(pki)
    root, issuing, _crl = _chain(pki, web)
    answer = _ocsp(live, root, issuing, seal)
    assert f"{seal}: good" in answer
    assert "OCSP Nonce" in answer, "openssl sends a nonce by default; it must come back"
    assert run(pki.env, "pki", "revoke", serial, "--reason", "superseded")[0] == 0
    answer = _ocsp(live, root, issuing, seal)
    assert f"{seal}: revoked" in answer
    assert "Reason: superseded" in answer
    # A certificate under the same issuing CA that the CA has no record of: unknown.
    with runtime.sessions() as session:
        issuer, issuer_key = runtime.authority(session).issuing()
    stray = issue(DEPARTMENT_SEAL, name("stray"), ec.generate_private_key(ec.SECP256R1())
                  .public_key(), issuer, issuer_key, NOW, ENDPOINTS)  # fmt: skip
    stray_file = pki.files / "stray.pem"
    stray_file.write_bytes(stray.public_bytes(serialization.Encoding.PEM))
    assert f"{stray_file}: unknown" in _ocsp(live, root, issuing, stray_file)


def test_list_shows_each_certificate_with_its_status(pki: Pki) -> None:
    _seal, serial = _issue_seal(pki)
    assert run(pki.env, "pki", "revoke", serial, "--reason", "cessation_of_operation")[0] == 0
    code, output = run(pki.env, "pki", "list", "--department", "sed")
    assert code == 0, output
    (line,) = output.strip().splitlines()
    assert line.split("\t")[:4] == [
        serial,
        "department-seal",
        "sed",
        "revoked:cessation_of_operation",
    ]


def test_the_schedule_republishes_the_crl_and_renews_the_responder_in_time(
    pki: Pki, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        assert runtime.authority(session).refresh(actor="system:schedule") == []
    runtime.clock = lambda: NOW + timedelta(days=70)
    with runtime.transaction() as session:
        authority = runtime.authority(session)
        assert authority.refresh(actor="system:schedule") == ["crl", "trust-list", "ocsp-responder"]
        crl = x509.load_der_x509_crl(authority.crl())
    assert crl.last_update_utc > NOW + timedelta(days=69)


def test_renewal_certifies_the_same_key_again_and_is_audited(
    pki: Pki, web: TestClient, runtime: Runtime
) -> None:
    seal, serial = _issue_seal(pki)
    renewed_file = pki.files / "renewed.pem"
    code, output = run(pki.env, "pki", "renew", serial, "--out", str(renewed_file))
    assert code == 0, output
    old = x509.load_pem_x509_certificate(seal.read_bytes())
    new = x509.load_pem_x509_certificate(renewed_file.read_bytes())
    assert new.public_key() == old.public_key()
    assert new.subject == old.subject
    assert new.serial_number != old.serial_number
    root, issuing, crl = _chain(pki, web)
    verified = _verify(root, issuing, crl, renewed_file)
    assert verified.returncode == 0, verified.stderr
    with runtime.transaction() as session:
        recorded = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert b"signing.certificate.renewed" in recorded
    assert run(pki.env, "pki", "revoke", serial, "--reason", "superseded")[0] == 0
    code, output = run(pki.env, "pki", "renew", serial)
    assert code == 2
    assert "is revoked" in output


def test_revoking_the_ocsp_responder_puts_a_new_one_in_its_place(
    pki: Pki, web: TestClient, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        authority = runtime.authority(session)
        (old,) = authority.listed(profile="ocsp-responder")
        authority.revoke(old.serial, "key_compromise", actor="admin:test")
        (_, new) = authority.listed(profile="ocsp-responder")
    assert new.revoked_at is None
    seal, _serial = _issue_seal(pki)
    cert = x509.load_pem_x509_certificate(seal.read_bytes())
    with runtime.sessions() as session:
        issuer, _ = runtime.authority(session).issuing()
    request = (
        x509.ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answer = web.post("/pki/ocsp", content=request,
                      headers={"content-type": "application/ocsp-request"})  # fmt: skip
    parsed = x509.ocsp.load_der_ocsp_response(answer.content)
    assert parsed.certificates[0].serial_number == new.serial
