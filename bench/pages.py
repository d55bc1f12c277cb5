"""Page benchmark: every page's time to first byte, and its weight.

    python -m bench.pages
        SHANAKHT_BENCH_PAGE_REQUESTS   requests per page (default 200, after 20 not counted)

Targets (issue 6, on this 2-core machine, under light load): every page's first byte within
100 ms at p95; a page's total size (its HTML and the stylesheets and scripts it loads, not
its images) under 200 KB.

Set-up, straight through the services in a fresh data directory before the server starts (as
bench/identity.py does): one registered citizen who also holds an officer's and an
administrator's roles, and a document uploaded to their locker. Then one `shanakht serve`
process; the citizen signs in over HTTP (login form, then the SMS code from the development
outbox, so the officer's and administrator's pages answer too) and one client asks for each
page in turn, one request at a time: light load, so the figure is the page's own cost. The
first byte is timed from sending the request to having the response's head.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from api.migrate import prepare
from api.runtime import open_runtime
from api.settings import Settings
from audit import pseudonym
from bench.identity import (
    PASSWORD,
    _clean_environ,
    _free_port,
    _pick_citizens,
    _register,
    _servers,
)
from identity.cnic import normalise_cnic
from identity.nadra import ensure_registry, read_registry
from locker.access import Accessor

REQUESTS = int(os.environ.get("SHANAKHT_BENCH_PAGE_REQUESTS", "200"))
WARMUP = 20
TTFB_TARGET_MS = 100.0
WEIGHT_TARGET = 200 * 1024
DEPARTMENT = "sed"
ROLES = ("locker.issuer", "signing.officer", "identity.admin", "audit.reader")
PUBLIC = ["/", "/login", "/register", "/verify"]
SIGNED_IN = ["/account", "/documents", "/documents/{doc}", "/requests", "/access", "/nominees"]
DESKS = ["/officer", "/admin"]
_ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/[^"]+)"')


def _prepare(settings: Settings) -> tuple[str, str]:
    """The citizen's CNIC and the id of a document in their locker."""
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        record = _pick_citizens(read_registry(ensure_registry(runtime.identity.nadra_file)), 1)[0]
        _register(runtime, record)
        with runtime.transaction() as session:
            provider = runtime.provider(session)
            provider.roles.add_department(DEPARTMENT, "School Education Department")
            owner = pseudonym(normalise_cnic(record.cnic), key=runtime.pseudonym_key)
            account = provider.accounts.by_pseudonym(owner)
            assert account is not None
            for role in ROLES:
                provider.roles.grant(account.id, owner, DEPARTMENT, role, by="admin:bench")
            me = Accessor(account.pseudonym, "citizen", "owner")
            document = runtime.locker(session).upload(
                owner=account.pseudonym, doctype="other", title="A letter",
                content=iter([b"%PDF-1.4\n" + b"x" * 20_000 + b"\n%%EOF\n"]),
                content_type="application/pdf", who=me,
            )  # fmt: skip
        return record.cnic, document.id
    finally:
        runtime.close()


def _sign_in(client: httpx2.Client, settings: Settings, cnic: str) -> None:
    """Password, then the SMS code from the outbox: a session at the substantial level."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    signed = client.post("/login", data={"csrf": csrf.group(1), "cnic": cnic, "password": PASSWORD})
    assert signed.status_code in (200, 303), signed.text[:300]
    step = client.get("/login/second-factor?next=/account")
    ticket = re.search(r'name="ticket" value="([^"]*)"', step.text)
    runtime = open_runtime(settings)
    try:
        texts = runtime.identity.sms.messages()
    finally:
        runtime.close()
    code = re.search(r"\b(\d{6})\b", texts[-1].text)
    assert ticket is not None
    assert code is not None
    done = client.post(
        "/login/second-factor?method=sms&next=/account",
        data={"csrf": csrf.group(1), "ticket": ticket.group(1), "code": code.group(1)},
    )
    assert done.status_code == 303, done.text[:300]


def _first_bytes(client: httpx2.Client, path: str) -> tuple[int, list[float], bytes]:
    """Status, each request's time to the response head (ms), and the last body."""
    timings: list[float] = []
    status, body = 0, b""
    for i in range(WARMUP + REQUESTS):
        start = time.perf_counter()
        with client.stream("GET", path) as response:
            head = time.perf_counter()
            body = response.read()
            status = response.status_code
        if i >= WARMUP:
            timings.append((head - start) * 1000)
    return status, timings, body


def _weight(client: httpx2.Client, html: bytes) -> int:
    """The page and the stylesheets and scripts it loads (images excluded), in bytes."""
    assets = set(_ASSET.findall(html.decode("utf-8", "replace")))
    return len(html) + sum(len(client.get(a).content) for a in assets)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shanakht-bench-pages-") as tmp:
        data = Path(tmp) / "var"
        settings = Settings(data_dir=data, audit_checkpoint_interval=0)
        cnic, document = _prepare(settings)
        port = _free_port()
        env = {
            "PORT": str(port),
            "SHANAKHT_DATA_DIR": str(data),
            "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
            "SHANAKHT_LOG_LEVEL": "WARNING",  # no access log line per request
        }
        shanakht = str(Path(sys.executable).with_name("shanakht"))
        argv = [shanakht, "serve", "--host", "127.0.0.1", "--port", str(port)]
        logs = Path(tmp)
        with _servers([(argv, {**_clean_environ(), **env}, Path.cwd())], "/healthz", logs) as up:
            base = up[0].base
            settings = Settings(data_dir=data, public_url=base, audit_checkpoint_interval=0)
            rows = []
            with httpx2.Client(base_url=base, timeout=30) as anonymous:
                rows += [(p, *_first_bytes(anonymous, p)) for p in PUBLIC]
            with httpx2.Client(base_url=base, timeout=30) as browser:
                _sign_in(browser, settings, cnic)
                for path in SIGNED_IN + DESKS:
                    rows.append((path, *_first_bytes(browser, path.format(doc=document))))
                weights = {
                    p: _weight(browser, body) for p, status, _t, body in rows if status == 200
                }
        print(f"\nPages: time to first byte over {REQUESTS} requests each, one at a time\n")
        print(f"{'page':<22}{'status':>7}{'median ms':>11}{'p95 ms':>9}{'weight KB':>11}")
        missed = []
        for path, status, timings, _body in rows:
            weight = weights.get(path)
            p95 = _p95(timings)
            shown = f"{weight / 1024:.1f}" if weight is not None else "-"
            print(f"{path:<22}{status:>7}{statistics.median(timings):>11.1f}{p95:>9.1f}{shown:>11}")
            if status != 200:
                missed.append(f"{path} answered {status}")
            elif p95 > TTFB_TARGET_MS or (weight or 0) > WEIGHT_TARGET:
                missed.append(path)
        print(
            f"\ntargets: first byte p95 <= {TTFB_TARGET_MS:.0f} ms, weight <= 200 KB: "
            + ("met on every page" if not missed else "NOT met: " + ", ".join(missed))
        )


if __name__ == "__main__":
    main()
