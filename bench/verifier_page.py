"""Verifier page benchmark: how long the school gate waits for a verdict, on a live server.

    python -m bench.verifier_page
        SHANAKHT_BENCH_VERIFIER_REQUESTS   pasted-code requests measured (default 400)

The issue's target: the verdict within 300 ms of the code's text reaching the server, and the
page under 200 KB with its scripts.

Set-up, straight through the services in a fresh data directory before the server starts (as
bench/signing.py does): the schema and keys, the PKI, an officer's and a QR signer's
certificate in `sed`, and one signed transfer order (its PDF and its QR text). Then one
`shanakht serve` process (uvicorn, SQLite), logging its access lines, which carry each
request's `duration_ms`: the server's own time, from the request's arrival in the outermost
middleware to the last byte of the verdict page. The client (httpx, one kept-alive connection,
one request at a time) gets the form once for its CSRF cookie and token, warms up, then posts
the code's text as the paste form does, checking every answer is the verdict page with the
expected verdict. Printed: median, p95 and max of the server's time and of the client's round
trip, for a genuine code (the full path: trust list, signature, online status from the CA's
database), an altered one and a URL's QR text; and, fewer times, a photo of the code and the
signed PDF (zxing-cpp, and for the PDF PDFium and the PAdES check). Then the page's weight: the
HTML of GET /verify and everything it loads, the qr-scanner worker module included.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx2
import qrcode
from cryptography.hazmat.primitives.asymmetric import ec

from api.migrate import prepare
from api.runtime import open_runtime
from api.settings import Settings
from audit import pseudonym
from bench.identity import REPO, _free_port, _servers
from signing.documents.orders import SignedOrder, Signer, sign_transfer_order
from signing.documents.pades import LocalTimeStamper
from signing.documents.transfer_order import TransferOrder
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from signing.qr import decode, encode

REQUESTS = int(os.environ.get("SHANAKHT_BENCH_VERIFIER_REQUESTS", "400"))
WARM_UP = 30
FILE_REQUESTS = 40
TARGET_MS = 300.0
WEIGHT_LIMIT = 200 * 1024
PASSPHRASE = "bench root passphrase"  # noqa: S105 (a throwaway root, in a temporary directory)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OUTCOME = re.compile(r'data-outcome="([a-z_]+)"')


def _signed(settings: Settings, tmp: Path) -> SignedOrder:
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        now = datetime.now(UTC).replace(microsecond=0)
        root = create_root(tmp / "root", PASSPHRASE, common_name="Bench Root", now=now)
        with runtime.transaction() as session:
            authority = runtime.authority(session)
            authority.initialise(root, actor="bench")
            officer = authority.issue(
                OFFICER_SIGNING, Subject("An Officer", "sed", None, "CEO (DEA)"), actor="bench"
            )
            qr = authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="bench")
            issuing, _ = authority.issuing()
            order = TransferOrder(
                order_no="SED/TR/2026/004512",
                order_date=date(2026, 3, 14),
                teacher_name="Muhammad Imran Akhtar",
                teacher_pseudonym=pseudonym("3520210000033", key=runtime.pseudonym_key),
                from_school="Govt. High School No. 1, Model Town, Lahore",
                to_school="Govt. Boys Higher Secondary School, Shahdara, Lahore",
                post="SST (Science)",
                authority="CEO (DEA) Lahore",
            )
            return sign_transfer_order(
                order,
                department="School Education Department",
                officer=Signer(authority.private_key(officer), officer.certificate, [issuing]),
                qr_signer=Signer(authority.private_key(qr), qr.certificate, [issuing]),
                now=now,
                timestamper=LocalTimeStamper(authority.tsa()),
            )
    finally:
        runtime.close()


def _altered(text: str) -> str:
    """The code with a field changed, under the real signer's kid but signed by another key:
    its signature no longer matches its contents."""
    kid, payload = decode(text)
    changed = dataclasses.replace(payload, fields={**payload.fields, "to": "Elsewhere"})
    return encode(changed, ec.generate_private_key(ec.SECP256R1()), kid)


def _png(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text, error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=6).save(out)
    return out.getvalue()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Client:
    """One browser at the gate: the CSRF cookie and token from the form, then the forms."""

    def __init__(self, base: str) -> None:
        self.http = httpx2.Client(base_url=base, timeout=30)
        form = self.http.get("/verify")
        form.raise_for_status()
        found = CSRF.search(form.text)
        if found is None:
            raise RuntimeError("the verifier page has no CSRF field")
        self.csrf = found.group(1)

    def paste(self, text: str, expect: str) -> float:
        started = time.perf_counter()
        answer = self.http.post("/verify", data={"csrf": self.csrf, "payload": text})
        elapsed = (time.perf_counter() - started) * 1000
        self._check(answer, expect)
        return elapsed

    def upload(self, name: str, data: bytes, expect: str) -> float:
        started = time.perf_counter()
        answer = self.http.post("/verify", data={"csrf": self.csrf}, files={"file": (name, data)})
        elapsed = (time.perf_counter() - started) * 1000
        self._check(answer, expect)
        return elapsed

    @staticmethod
    def _check(answer: httpx2.Response, expect: str) -> None:
        found = OUTCOME.search(answer.text)
        outcome = found.group(1) if found else None
        if answer.status_code != 200 or outcome != expect:
            raise RuntimeError(f"expected {expect}, got {answer.status_code} {outcome}")


def _server_times(log: Path, skip: int, count: int) -> list[float]:
    """duration_ms of the POST /verify access lines `skip` to `skip + count` in the log."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("route") == "/verify" and entry.get("method") == "POST":
            times.append(float(entry["duration_ms"]))
    return times[skip : skip + count]


def _row(label: str, server: list[float], client: list[float], target: bool) -> str:
    median, p95 = statistics.median(server), _percentile(server, 0.95)
    verdict = ""
    if target:
        verdict = "  target p95 <= 300 ms: " + ("met" if p95 <= TARGET_MS else "NOT met")
    return (
        f"{label:<34} {len(server):>4}  server median {median:6.1f} ms  p95 {p95:6.1f} ms  "
        f"max {max(server):6.1f} ms | round trip median {statistics.median(client):6.1f} ms  "
        f"p95 {_percentile(client, 0.95):6.1f} ms{verdict}"
    )


def _weight(http: httpx2.Client) -> tuple[int, list[tuple[str, int]]]:
    page = http.get("/verify")
    parts = [("/verify (HTML)", len(page.content))]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assets.append("/static/vendor/qr-scanner-worker.min.js")  # imported once the camera starts
    for path in assets:
        parts.append((path, len(http.get(path).content)))
    return sum(size for _, size in parts), parts


def main() -> None:
    started = time.perf_counter()
    print(f"verifier page benchmark: {REQUESTS} pasted codes, {FILE_REQUESTS} files of each kind")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        settings = Settings(
            env="development",
            data_dir=data_dir,
            master_key=None,
            audit_checkpoint_interval=0,
            public_url="http://127.0.0.1",
        )
        signed = _signed(settings, Path(tmp))
        port = _free_port()
        env = {
            "PORT": str(port),
            "SHANAKHT_DATA_DIR": str(data_dir),
            "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
            "SHANAKHT_LOG_LEVEL": "INFO",  # the access lines carry the server's own time
            "SHANAKHT_LOG_FORMAT": "json",
        }
        script = Path(sys.executable).parent / "shanakht"
        serve = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from api.cli import main; main()"]
        )
        argv = [*serve, "serve", "--host", "127.0.0.1", "--port", str(port)]
        logs = Path(tmp) / "logs"
        logs.mkdir()
        cases = [
            ("pasted code, authentic", signed.qr_text, "authentic", REQUESTS),
            ("pasted code, altered", _altered(signed.qr_text), "altered", REQUESTS // 4),
            ("pasted QR text of a URL", "https://example.com/order/4512", "not_shanakht", 50),
        ]
        rows = []
        with _servers([(argv, env, REPO)], "/healthz", logs) as (server,):
            client = Client(server.base)
            seen = 0
            for _ in range(WARM_UP):
                client.paste(signed.qr_text, "authentic")
            seen += WARM_UP
            for label, text, outcome, count in cases:
                round_trips = [client.paste(text, outcome) for _ in range(count)]
                time.sleep(0.3)  # the access lines are written after the answer
                server_ms = _server_times(server.log, seen, count)
                seen += count
                rows.append(_row(label, server_ms, round_trips, outcome == "authentic"))
            files = [
                ("photo of the code (PNG)", "photo.png", _png(signed.qr_text)),
                ("the signed PDF", "order.pdf", signed.pdf),
            ]
            for label, name, data in files:
                round_trips = [client.upload(name, data, "authentic") for _ in range(FILE_REQUESTS)]
                time.sleep(0.3)
                server_ms = _server_times(server.log, seen, FILE_REQUESTS)
                seen += FILE_REQUESTS
                rows.append(_row(f"{label}, authentic", server_ms, round_trips, False))
            total, parts = _weight(client.http)
    print()
    for row in rows:
        print(row)
    print()
    for path, size in parts:
        print(f"  {path:<44} {size / 1024:7.1f} KB")
    met = "met" if total < WEIGHT_LIMIT else "NOT met"
    print(f"page weight with its scripts: {total / 1024:.1f} KB (target < 200 KB): {met}")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
