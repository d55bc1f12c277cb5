"""Signing benchmark: QR signatures and offline verification against `openssl speed ecdsap256`,
OCSP over HTTP against two server processes, signed transfer-order PDFs per second.

    python -m bench.signing          (SHANAKHT_BENCH_SECONDS sets the OCSP phase's length)

The issue's targets: QR signing and offline verification at 25% or more of openssl's
per-core ECDSA P-256 rates, in-process; 1,000 OCSP responses a second over HTTP on this
machine; 20 signed transfer-order PDFs a second.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from api.migrate import prepare
from api.runtime import open_runtime
from api.settings import Settings
from bench.identity import REPO, _cores, _cpu_seconds, _free_port, _servers
from signing.documents.orders import Signer, sign_transfer_order
from signing.documents.pades import LocalTimeStamper
from signing.documents.transfer_order import DOCUMENT_TYPE, TransferOrder
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER, TSA
from signing.qr import QrPayload, encode, kid_for
from signing.qr.payload import FieldValue
from signing.trustlist import TrustedSigner, TrustList
from signing.tsa import TimeStampAuthority
from signing.verdict import Outcome, verify_qr

SECONDS = float(os.environ.get("SHANAKHT_BENCH_SECONDS", "15"))
OCSP_USERS = 32
ROUNDS = 5
PASSPHRASE = "bench root passphrase"  # noqa: S105 (a throwaway root, in a temporary directory)
OCSP_TARGET = 1000.0
PDF_TARGET = 20.0
QR_SHARE = 0.25

ORDER = TransferOrder(
    order_no="SED/TR/2026/004512",
    order_date=date(2026, 3, 14),
    teacher_name="Muhammad Imran Akhtar",
    teacher_pseudonym="p:" + "A" * 43,
    from_school="Govt. High School No. 1, Model Town, Lahore",
    to_school="Govt. Boys Higher Secondary School, Shahdara, Lahore",
    post="SST (Science)",
    authority="CEO (DEA) Lahore",
)


def _openssl_speed() -> tuple[float, float]:
    """openssl's ECDSA P-256 signs and verifies per second on one core: the physical limit."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "1", "ecdsap256"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if not found:
        raise RuntimeError(f"cannot read openssl speed's output:\n{out}")
    return float(found.group(1)), float(found.group(2))


def _rate(job: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second on this one core, over about `seconds`."""
    job()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            job()
        done += 100
    return done / elapsed


def _interleaved(sign: Callable[[], object], verify: Callable[[], object]) -> list[float]:
    """Medians of (openssl signs, openssl verifies, our signs, our verifies) per second over
    ROUNDS rounds, each measuring all four in turn: this machine's speed drifts by a third
    within a minute, so the ratio is only fair between numbers measured side by side."""
    rounds = [(*_openssl_speed(), _rate(sign), _rate(verify)) for _ in range(ROUNDS)]
    return [statistics.median(column) for column in zip(*rounds, strict=True)]


def main() -> None:
    started = time.perf_counter()
    cores = _cores()
    print(f"signing benchmark: {cores} cores")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="development",
            data_dir=Path(tmp) / "var",
            master_key=None,
            audit_checkpoint_interval=0,
            public_url="http://127.0.0.1",
        )
        runtime = open_runtime(settings)
        prepare(runtime)
        now = datetime.now(UTC).replace(microsecond=0)
        root = create_root(Path(tmp) / "root", PASSPHRASE, common_name="Bench Root", now=now)
        with runtime.transaction() as session:
            authority = runtime.authority(session)
            authority.initialise(root, actor="bench")
            qr_signer = authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="bench")
            seal = authority.issue(DEPARTMENT_SEAL, Subject("SED seal", "sed"), actor="bench")
            officer = authority.issue(
                OFFICER_SIGNING, Subject("An Officer", "sed", None, "CEO (DEA)"), actor="bench"
            )
            issuing, _ = authority.issuing()
            qr = Signer(authority.private_key(qr_signer), qr_signer.certificate, [issuing])
            signer = Signer(authority.private_key(officer), officer.certificate, [issuing])
            tsa = authority.issue(TSA, Subject("Bench TSA"), actor="bench")
            stamping = Signer(authority.private_key(tsa), tsa.certificate, [issuing])
        runtime.close()
        rows = _qr_rows(qr, now)
        rows += _pdf_rows(_PdfDesk.of(signer, qr, stamping), now)
        rows += _ocsp_rows(settings, seal.certificate, issuing)
    print()
    width = max(len(r[0]) for r in rows)
    for label, value, verdict in rows:
        print(f"{label:<{width}}  {value:>14}  {verdict}")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


def _qr_rows(qr: Signer, now: datetime) -> list[tuple[str, str, str]]:
    kid = kid_for(qr.certificate.public_bytes(serialization.Encoding.DER))
    key = qr.key
    payload = QrPayload(
        document_type=DOCUMENT_TYPE,
        document_hash=hashlib.sha256(b"order").digest(),
        issued_at=now,
        expires_at=now + timedelta(days=365),
        issuer="PK-PB",
        fields=dict[str, FieldValue](ORDER.qr_fields()),
    )
    text = encode(payload, key, kid)
    signer = TrustedSigner.of(qr.certificate)
    trust = TrustList(1, now, now + timedelta(days=1), "bench", (signer,))
    if verify_qr(text, trust, now=now).outcome is not Outcome.AUTHENTIC:
        raise RuntimeError("the benchmark's own QR code does not verify")
    sign_limit, verify_limit, signs, verifies = _interleaved(
        lambda: encode(payload, key, kid), lambda: verify_qr(text, trust, now=now)
    )
    return [
        ("openssl speed ecdsap256, one core: signs /s", f"{sign_limit:,.0f}", "the limit"),
        ("openssl speed ecdsap256, one core: verifies /s", f"{verify_limit:,.0f}", "the limit"),
        ("QR payload signing, one core /s", f"{signs:,.0f}",
         _share(signs, sign_limit, "of openssl's signs")),
        ("QR offline verification, one core /s", f"{verifies:,.0f}",
         _share(verifies, verify_limit, "of openssl's verifies")),
    ]  # fmt: skip


def _share(rate: float, limit: float, what: str) -> str:
    share = rate / limit
    met = "met" if share >= QR_SHARE else "NOT met"
    return f"{100 * share:.0f}% {what} (target {100 * QR_SHARE:.0f}%): {met}"


@dataclass(frozen=True)
class _PdfDesk:
    """What a worker process needs to sign orders: keys as PEM, certificates as DER (picklable)."""

    officer: tuple[bytes, bytes]
    qr_signer: tuple[bytes, bytes]
    tsa: tuple[bytes, bytes]
    issuing: bytes

    @classmethod
    def of(cls, officer: Signer, qr_signer: Signer, tsa: Signer) -> _PdfDesk:
        def pair(signer: Signer) -> tuple[bytes, bytes]:
            key = signer.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return key, signer.certificate.public_bytes(serialization.Encoding.DER)

        issuing = officer.chain[0].public_bytes(serialization.Encoding.DER)
        return cls(pair(officer), pair(qr_signer), pair(tsa), issuing)

    def signer(self, pair: tuple[bytes, bytes]) -> Signer:
        key = serialization.load_pem_private_key(pair[0], password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        issuing = x509.load_der_x509_certificate(self.issuing)
        return Signer(key, x509.load_der_x509_certificate(pair[1]), [issuing])


def _sign_orders(desk: _PdfDesk, now: datetime, seconds: float) -> int:
    """Sign transfer orders for `seconds` as the HTTP route does: render, QR, PAdES and an
    RFC 3161 time-stamp from the service's own TSA; how many were made."""
    officer, qr_signer, tsa = (desk.signer(p) for p in (desk.officer, desk.qr_signer, desk.tsa))
    stamper = LocalTimeStamper(TimeStampAuthority(tsa.key, tsa.certificate, tsa.chain))
    made, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sign_transfer_order(
            ORDER, department="School Education Department", officer=officer,
            qr_signer=qr_signer, now=now, timestamper=stamper,
        )  # fmt: skip
        made += 1
    return made


def _pdf_rows(desk: _PdfDesk, now: datetime) -> list[tuple[str, str, str]]:
    """Signed orders per second from one process per core, all at once: measured, not an
    estimate from one core."""
    cores = _cores()
    seconds = max(SECONDS / 2, 3.0)
    _sign_orders(desk, now, 0.5)  # warm: fonts, templates
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_sign_orders, [desk] * cores, [now] * cores, [0.5] * cores))
        started = time.perf_counter()
        made = sum(pool.map(_sign_orders, [desk] * cores, [now] * cores, [seconds] * cores))
        elapsed = time.perf_counter() - started
    rate = made / elapsed
    met = "met" if rate >= PDF_TARGET else "NOT met"
    return [
        (f"signed transfer-order PDFs, {cores} processes /s", f"{rate:,.1f}",
         f"render, QR, PAdES, time-stamp (target {PDF_TARGET:.0f}/s): {met}"),
    ]  # fmt: skip


def _ocsp_request(certificate: x509.Certificate, issuing: x509.Certificate) -> bytes:
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuing, hashes.SHA1())  # noqa: S303 (openssl ocsp's CertID)
        .add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = "%s"
wrk.headers["Content-Type"] = "application/ocsp-request"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "errors": %%d, "p50_ms": %%f, '
    .. '"p99_ms": %%f}\\n', summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _check_ocsp(
    base: str, der: bytes, certificate: x509.Certificate, issuing: x509.Certificate
) -> None:
    """One answer, read: successful, "good" for our serial, signed by a responder the issuing
    CA certified. RuntimeError otherwise (and cryptography's InvalidSignature)."""
    answer = httpx2.post(f"{base}/pki/ocsp", content=der,
                         headers={"content-type": "application/ocsp-request"})  # fmt: skip
    parsed = ocsp.load_der_ocsp_response(answer.content)
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RuntimeError(f"the OCSP responder said {parsed.response_status}")
    if (
        parsed.certificate_status is not ocsp.OCSPCertStatus.GOOD
        or parsed.serial_number != certificate.serial_number
        or not parsed.certificates
        or parsed.signature_hash_algorithm is None
    ):
        raise RuntimeError("the OCSP responder's answer is not a good one for our certificate")
    responder = parsed.certificates[0]
    responder.verify_directly_issued_by(issuing)
    key = responder.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise RuntimeError("the OCSP responder's key is not an EC key")
    key.verify(
        parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(parsed.signature_hash_algorithm)
    )


def _wrk(bases: list[str], script: Path, seconds: float) -> tuple[list[dict[str, float]], float]:
    """One wrk per server, side by side: their reports, and the CPU seconds wrk used (children
    reaped in here; the servers are reaped only after)."""
    wrk = shutil.which("wrk") or "wrk"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    connections = f"-c{OCSP_USERS // len(bases)}"
    runs = [
        subprocess.Popen(
            [wrk, "-t1", connections, f"-d{seconds:.0f}s", "-s", str(script), f"{base}/pki/ocsp"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for base in bases
    ]
    reports = [json.loads(run.communicate()[0].strip().splitlines()[-1]) for run in runs]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return reports, used


def _ocsp_rows(
    settings: Settings, certificate: x509.Certificate, issuing: x509.Certificate
) -> list[tuple[str, str, str]]:
    """OCSP over HTTP, driven by wrk (C, one thread per server): Python's own load generator
    spends as much CPU a request as the server does, and on two cores that halves the rate."""
    if shutil.which("wrk") is None:
        return [("OCSP responses over HTTP", "not run", "wrk is missing: apt-get install wrk")]
    der = _ocsp_request(certificate, issuing)
    body = "".join(f"\\{b:03d}" for b in der)
    script = Path(settings.data_dir) / "ocsp.lua"
    script.write_text(WRK_SCRIPT % body)
    commands = []
    for _ in range(_cores()):
        port = _free_port()
        env = {
            "PORT": str(port),
            "SHANAKHT_DATA_DIR": str(settings.data_dir),
            "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
            "SHANAKHT_LOG_LEVEL": "WARNING",
        }
        serve = [str(Path(sys.executable).parent / "shanakht"), "serve", "--host", "127.0.0.1",
                 "--port", str(port)]  # fmt: skip
        commands.append((serve, env, REPO))
    with tempfile.TemporaryDirectory() as logs, _servers(commands, "/healthz", Path(logs)) as up:
        bases = [server.base for server in up]
        pids = [server.process.pid for server in up]
        for base in bases:  # wrk counts any 200: first make sure the 200s are real answers
            _check_ocsp(base, der, certificate, issuing)
        _wrk(bases, script, 3)  # warm-up
        cpu = sum(_cpu_seconds(pid) for pid in pids)
        reports, wrk_cpu = _wrk(bases, script, SECONDS)
        server_cores = (sum(_cpu_seconds(pid) for pid in pids) - cpu) / SECONDS
    rate = sum(r["requests"] / r["seconds"] for r in reports)
    errors = sum(r["errors"] for r in reports)
    p50 = max(r["p50_ms"] for r in reports)
    p99 = max(r["p99_ms"] for r in reports)
    wrk_cores = wrk_cpu / SECONDS
    met = "met" if rate >= OCSP_TARGET and errors == 0 else "NOT met"
    return [
        (f"OCSP responses over HTTP, {_cores()} processes /s", f"{rate:,.0f}",
         f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors, servers {server_cores:.2f} "
         f"cores, wrk {wrk_cores:.2f} (target {OCSP_TARGET:,.0f}/s): {met}"),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
