"""Locker HTTP benchmark: documents through the real API, on the local store and on S3.

    python -m bench.locker_http
        SHANAKHT_BENCH_SECONDS           each 100 KB upload window (default 10; 3, the median)
        SHANAKHT_BENCH_LOCKER_STORES     which columns: "local,s3" (the default), "local", "s3"
        SHANAKHT_BENCH_LOCKER_HUGE_MB    the memory test's document (default 1000)
        SHANAKHT_BENCH_PYSPY=DIR         py-spy records every server process in every phase
        SHANAKHT_BENCH_PYSPY_FLAGS       more flags for it: "--gil", "--idle"

Targets (the issue, on the local store, on this 2-core machine):
- a 100 MB document: issued (uploaded) at >= 200 MB/s and downloaded at >= 200 MB/s;
- 100 KB documents: >= 300 uploads per second;
- server memory growth < 50 MB while a 1 GB document is uploaded and while it is downloaded.

The same figures on S3 are printed beside them, S3 being moto's server mode (`python -m
moto.server`, one Python werkzeug process that keeps objects in memory), started here as a
child process: it is far slower than MinIO or AWS, so that column shows the S3 path working and
what it costs the server, not what a real object store allows. It has no targets.

Set-up, straight through the services in a fresh data directory before any server starts (as
bench/identity.py does): the schema and keys, one registered citizen, the department lgcd with
an initialised PKI and its department-seal certificate, a department system
(`client_secret_basic`, scope locker.issue.birth) and an e-service (scopes openid locker).
Then `shanakht serve` runs once per core (uvicorn, SQLite in WAL mode in that directory, one
public URL so one issuer). The tokens are real, asked for over HTTP: the department system's
from the client_credentials grant, the citizen's from the authorization code flow with PKCE
(login page, consent page, code, token endpoint), renewed by the refresh_token grant as it ages.

Large documents go to one server process: a department issues them (PUT /locker/issued/birth,
a raw body with a Content-Length) and the citizen downloads them (GET
/locker/documents/{id}/content). The client (bench/locker_http_client.py, a process of its own)
sends views of a random pool and reads into one reused buffer; every download's SHA-256 is
checked against the upload's, and the server's answer and its Repr-Digest against both. First
one small document each way (the first use of every path is not charged to what follows), then
the 1 GB document once each way while the server's RSS (VmRSS) is sampled every 50 ms: growth
is the peak over the RSS just before the transfer. Then a 100 MB document each way, 3 times:
the median run. The 100 KB rate is a closed loop of 16 kept-alive connections spread over the
server processes, each sending the next document when the last is answered, for a warm-up and
then the measured window; the median of 3 windows. It is measured for a department issuing
(each document also sealed: a detached CMS signature over its SHA-256) and for a citizen
uploading. Every phase also shows the CPU the server, the client, moto and every other process
on the machine used meanwhile: this machine is shared, and a busy neighbour is named.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx2

from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from bench.identity import (
    REDIRECT_URI,
    Server,
    _cores,
    _cpu_seconds,
    _free_port,
    _machine_busy_seconds,
    _pick_citizens,
    _register,
    _rss_mb,
    _servers,
    browser_code,
)
from identity.nadra import ensure_registry, read_registry
from identity.oidc.clients import CLIENT_SECRET_BASIC, ESERVICE, SERVICE, NewClient
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL

SECONDS = float(os.environ.get("SHANAKHT_BENCH_SECONDS", "10"))
STORES = [s.strip() for s in os.environ.get("SHANAKHT_BENCH_LOCKER_STORES", "local,s3").split(",")]
PYSPY_DIR = os.environ.get("SHANAKHT_BENCH_PYSPY", "")
PYSPY_FLAGS = os.environ.get("SHANAKHT_BENCH_PYSPY_FLAGS", "").split()
HUGE = int(float(os.environ.get("SHANAKHT_BENCH_LOCKER_HUGE_MB", "1000")) * 10**6)
BIG = 100 * 10**6
SMALL = 100 * 10**3
RUNS = 3
WARMUP = 2.0
USERS = 16
RSS_EVERY = 0.05
BUSY_ELSEWHERE = 0.25  # cores other processes may use during a phase before a warning
TOKEN_AGE = 240.0  # seconds a token is used before a fresh one is asked for (they last 600)
REPO = Path(__file__).resolve().parents[1]
PDF_HEAD = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"

DEPARTMENT, DOCTYPE = "lgcd", "birth"
SERVICE_ID, PORTAL_ID = "bench-lgcd-crms", "bench-portal"
CITIZEN_SCOPE = "openid locker"
S3_ACCESS, S3_SECRET, S3_BUCKET = "bench-access", "bench-secret", "bench-locker"

UPLOAD_TARGET = 200.0  # MB/s, 100 MB, each way
RATE_TARGET = 300.0  # 100 KB uploads per second
GROWTH_TARGET = 50.0  # MB of server RSS over its level before a 1 GB transfer


# -- set-up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    cnic: str
    service_secret: str
    portal_secret: str


def _client(runtime: Runtime, new: NewClient) -> str:
    with runtime.transaction() as session:
        _made, secret = runtime.provider(session).clients.add(new)
    assert secret is not None
    return secret


def _prepare(settings: Settings, root_dir: Path) -> Setup:
    """Schema, keys, a citizen, the department's PKI and seal, and the two clients."""
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        [record] = _pick_citizens(read_registry(ensure_registry(runtime.identity.nadra_file)), 1)
        _register(runtime, record)
        root = create_root(root_dir, "a long bench root passphrase", common_name="Bench Root",
                           now=runtime.clock())  # fmt: skip
        with runtime.transaction() as session:
            runtime.provider(session).roles.add_department(DEPARTMENT, "Local Government")
            authority = runtime.authority(session)
            authority.initialise(root, actor="admin:bench")
            authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", DEPARTMENT), actor="admin:bench")
        service = _client(
            runtime,
            NewClient(
                id=SERVICE_ID, name="A department's records system", kind=SERVICE,
                auth_method=CLIENT_SECRET_BASIC, scopes=(f"locker.issue.{DOCTYPE}",),
                department=DEPARTMENT,
            ),
        )  # fmt: skip
        portal = _client(
            runtime,
            NewClient(
                id=PORTAL_ID, name="A locker portal", kind=ESERVICE,
                auth_method=CLIENT_SECRET_BASIC, redirect_uris=(REDIRECT_URI,),
                scopes=tuple(CITIZEN_SCOPE.split()),
            ),
        )  # fmt: skip
        return Setup(record.cnic, service, portal)
    finally:
        runtime.close()


# -- tokens ------------------------------------------------------------------------------------


def _token(base: str, client_id: str, secret: str, form: dict[str, str]) -> dict[str, Any]:
    response = httpx2.post(f"{base}/oauth/token", data=form, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _citizen_tokens(base: str, cnic: str, secret: str) -> dict[str, Any]:
    """The authorization code flow as a browser drives it (login, consent), then the code
    redeemed at the token endpoint: the citizen's access and refresh tokens."""
    code, verifier = browser_code(base, PORTAL_ID, CITIZEN_SCOPE, cnic)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}  # fmt: skip
    return _token(base, PORTAL_ID, secret, form)


@dataclass
class Tokens:
    """The department system's and the citizen's access tokens, renewed before they expire:
    a new client_credentials grant for the one, a refresh_token grant for the other."""

    base: str
    setup: Setup
    _issuer: tuple[float, str] | None = None
    _citizen: tuple[float, str, str] | None = None

    def issuer(self) -> str:
        if self._issuer is None or time.monotonic() - self._issuer[0] > TOKEN_AGE:
            form = {"grant_type": "client_credentials", "scope": f"locker.issue.{DOCTYPE}"}
            answer = _token(self.base, SERVICE_ID, self.setup.service_secret, form)
            self._issuer = (time.monotonic(), answer["access_token"])
        return self._issuer[1]

    def citizen(self) -> str:
        if self._citizen is None:
            answer = _citizen_tokens(self.base, self.setup.cnic, self.setup.portal_secret)
            self._citizen = (time.monotonic(), answer["access_token"], answer["refresh_token"])
        elif time.monotonic() - self._citizen[0] > TOKEN_AGE:
            form = {"grant_type": "refresh_token", "refresh_token": self._citizen[2]}
            answer = _token(self.base, PORTAL_ID, self.setup.portal_secret, form)
            self._citizen = (time.monotonic(), answer["access_token"], answer["refresh_token"])
        return self._citizen[1]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Watch:
    """What the processes did while the client ran: each server's peak RSS (MB), and samples
    of (wall time, CPU seconds of the servers, of the object store, of the whole machine)."""

    peak_rss: dict[int, float] = field(default_factory=dict)
    cpu: list[tuple[float, float, float, float]] = field(default_factory=list)
    strangers: list[tuple[str, float]] = field(default_factory=list)  # (name, cores), busiest first

    def cores(self, window: list[float]) -> tuple[float, float, float]:
        """Cores the servers, the store and the whole machine kept busy inside `window`."""
        inside = [c for c in self.cpu if window[0] - RSS_EVERY <= c[0] <= window[1] + RSS_EVERY]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return float("nan"), float("nan"), float("nan")
        first, last = inside[0], inside[-1]
        seconds = last[0] - first[0]
        server, store, machine = (
            (b - a) / seconds for a, b in zip(first[1:], last[1:], strict=True)
        )
        return server, store, machine


@contextmanager
def _profiled(label: str, pids: list[int]) -> Iterator[None]:
    """With SHANAKHT_BENCH_PYSPY=DIR, py-spy records each server process meanwhile, into
    DIR/<label>-<pid>.txt as collapsed stacks, one line a stack (100 Hz, not pausing it), of
    the threads py-spy deems busy; SHANAKHT_BENCH_PYSPY_FLAGS adds flags (`--gil`: only the
    thread holding the GIL, so CPU in Python; `--idle`: every thread, so where requests wait)."""
    if not PYSPY_DIR:
        yield
        return
    folder = Path(PYSPY_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None:
        raise RuntimeError("SHANAKHT_BENCH_PYSPY is set but py-spy is not installed")
    options = ["--rate", "100", "--format", "raw", "--nonblocking", *PYSPY_FLAGS]
    recorders = [
        subprocess.Popen(
            [spy, "record", "--pid", str(pid), *options, "-o", str(folder / f"{label}-{pid}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        for recorder in recorders:
            recorder.wait(30)


def _run_client(
    plan: dict[str, Any], pids: list[int], store_pid: int | None, label: str
) -> tuple[Any, Watch]:
    """Run bench/locker_http_client.py on `plan`, sampling the servers every 50 ms."""
    watch = Watch()
    done = threading.Event()

    def sample() -> None:
        while True:
            for pid in pids:
                watch.peak_rss[pid] = max(watch.peak_rss.get(pid, 0.0), _rss_mb(pid))
            store = _cpu_seconds(store_pid) if store_pid else 0.0
            servers = sum(_cpu_seconds(p) for p in pids)
            watch.cpu.append((time.time(), servers, store, _machine_busy_seconds()))
            if done.wait(RSS_EVERY):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    strangers, started = _strangers(), time.monotonic()
    sampler.start()
    try:
        with _profiled(label, pids):
            finished = subprocess.run(
                [sys.executable, "-m", "bench.locker_http_client"],
                cwd=REPO,
                input=json.dumps(plan),
                capture_output=True,
                text=True,
                check=False,
            )
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - started
    for pid, (name, cpu) in _strangers().items():
        if pid in strangers and strangers[pid][0] == name:
            watch.strangers.append((name, (cpu - strangers[pid][1]) / seconds))
    watch.strangers.sort(key=lambda s: -s[1])
    if finished.returncode != 0:
        raise RuntimeError(f"the client failed ({finished.returncode}):\n{finished.stderr}")
    return json.loads(finished.stdout), watch


def _strangers() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every process that is neither this one nor its child (the
    servers, moto, the client): what else is running on the machine, by name."""
    me, found = os.getpid(), {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                head, _, rest = stat.read().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        if int(fields[1]) == me:
            continue
        ticks = int(fields[11]) + int(fields[12])
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                name = cmdline.read(200).replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            name = ""
        name = (name or head.partition("(")[2])[:60]
        found[int(entry.name)] = (name, ticks / os.sysconf("SC_CLK_TCK"))
    return found


@dataclass
class Column:
    name: str
    rows: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Target:
    server: Server
    others: list[Server]
    tokens: Tokens
    store_pid: int | None

    @property
    def pids(self) -> list[int]:
        return [self.server.process.pid]

    @property
    def all_pids(self) -> list[int]:
        return [s.process.pid for s in (self.server, *self.others)]

    @property
    def bases(self) -> list[str]:
        return [s.base for s in (self.server, *self.others)]


def _issue_plan(target: Target, doc_id: str, size: int) -> dict[str, Any]:
    query = f"doc_id={quote(doc_id, safe='')}&title=Bench+document"
    headers = {**_bearer(target.tokens.issuer()), "Content-Type": "application/pdf",
               "Shanakht-Cnic": target.tokens.setup.cnic}  # fmt: skip
    return {
        "op": "upload",
        "method": "PUT",
        "url": f"{target.server.base}/locker/issued/{DOCTYPE}?{query}",
        "headers": headers,
        "size": size,
        "head": base64.b64encode(PDF_HEAD).decode(),
    }


def _issue(target: Target, doc_id: str, size: int, label: str) -> tuple[dict[str, Any], Watch]:
    plan = _issue_plan(target, doc_id, size)
    report, watch = _run_client(plan, target.pids, target.store_pid, label)
    if report["status"] != 201:
        raise RuntimeError(f"issuing {doc_id} answered {report['status']}: {report['answer']}")
    answer = report["answer"]
    if (answer["sha256"], answer["size"]) != (report["sha256"], size):
        raise RuntimeError(f"the server recorded another document than the one sent: {answer}")
    return report, watch


def _download(target: Target, sent: dict[str, Any], label: str) -> tuple[dict[str, Any], Watch]:
    document_id = sent["answer"]["id"]
    plan = {
        "op": "download",
        "url": f"{target.server.base}/locker/documents/{document_id}/content",
        "headers": _bearer(target.tokens.citizen()),
    }
    report, watch = _run_client(plan, target.pids, target.store_pid, label)
    if report["status"] != 200:
        raise RuntimeError(f"downloading {document_id} answered {report['status']}: {report}")
    expected = base64.b64encode(base64.urlsafe_b64decode(sent["sha256"] + "=")).decode()
    if not report["complete"] or report["size"] != sent["size"]:
        raise RuntimeError(f"the download was cut short: {report['size']} of {sent['size']}")
    if report["sha256"] != sent["sha256"] or report["repr_digest"] != f"sha-256=:{expected}:":
        raise RuntimeError("the downloaded bytes are not the ones uploaded")
    return report, watch


class Figures(NamedTuple):
    """A phase's rate, and the cores each party kept busy meanwhile."""

    rate: float
    server: float
    client: float
    store: float
    other: float  # the rest of the machine: another job on it makes the figures unfair
    busy: str  # the busiest of those other processes, by name


def _figures(rate: float, report: dict[str, Any], watch: Watch) -> Figures:
    server, store, machine = watch.cores(report["window"])
    client = report["cpu_cores"]
    other = max(0.0, machine - server - client - store)
    busy = "; ".join(f"{name}: {cores:.2f}" for name, cores in watch.strangers[:3] if cores > 0.05)
    return Figures(rate, server, client, store, other, busy)


def _cpu_rows(column: Column, name: str, figures: Figures, moto: bool) -> None:
    column.rows[f"  {name}: server CPU, cores"] = figures.server
    column.rows[f"  {name}: client CPU, cores"] = figures.client
    column.rows[f"  {name}: moto CPU, cores"] = figures.store if moto else float("nan")
    column.rows[f"  {name}: other processes, cores"] = figures.other
    if figures.other > BUSY_ELSEWHERE:
        column.notes.append(f"{name}: other processes busy meanwhile ({figures.busy or '?'})")


def _warm(column: Column, target: Target) -> None:
    """One small document issued and read, so that the first use of each path (imports,
    caches, a database connection, a worker thread) is not charged to the 1 GB transfer."""
    sent, _ = _issue(target, "WARM.0", SMALL, "warm-issue")
    _download(target, sent, "warm-download")
    time.sleep(1.0)
    column.rows["server RSS after start and warm-up, MB"] = _rss_mb(target.server.process.pid)


def _huge(column: Column, target: Target) -> None:
    """The 1 GB document once each way, the server's RSS sampled all along."""
    pid = target.server.process.pid
    name = _size(HUGE)
    moto = target.store_pid is not None
    before = _rss_mb(pid)
    sent, up = _issue(target, "HUGE.0", HUGE, "huge-issue")
    after_up = _rss_mb(pid)
    got, down = _download(target, sent, "huge-download")
    after_down = _rss_mb(pid)
    for (report, watch), what in (((sent, up), "issue (upload)"), ((got, down), "download")):
        figures = _figures(_mbs(report), report, watch)
        column.rows[f"{name} {what}, MB/s"] = figures.rate
        column.rows[f"  {name} {what}: RSS growth at peak, MB"] = watch.peak_rss[pid] - before
        _cpu_rows(column, f"{name} {what}", figures, moto)
    column.rows[f"  {name}: RSS growth after both, MB"] = after_down - before
    print(
        f"  {name}: up {_mbs(sent):,.0f} MB/s, down {_mbs(got):,.0f} MB/s; RSS {before:,.1f} MB "
        f"before, peaks {up.peak_rss[pid]:,.1f} / {down.peak_rss[pid]:,.1f} MB, "
        f"{after_up:,.1f} / {after_down:,.1f} MB after",
        flush=True,
    )


def _size(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:,.4g} {unit}"
    return f"{size} bytes"


def _mbs(report: dict[str, Any]) -> float:
    return float(report["size"]) / float(report["seconds"]) / 1e6


def _median(runs: list[Figures]) -> Figures:
    """The run with the median rate, as it was (its CPU figures are that run's)."""
    return sorted(runs, key=lambda f: f.rate)[len(runs) // 2]


def _big(column: Column, target: Target) -> None:
    """A 100 MB document issued, then downloaded, RUNS times; the median run of each."""
    ups, downs = [], []
    for run in range(RUNS):
        sent, up_watch = _issue(target, f"BIG.{run}", BIG, f"big-issue-{run}")
        got, down_watch = _download(target, sent, f"big-download-{run}")
        ups.append(_figures(_mbs(sent), sent, up_watch))
        downs.append(_figures(_mbs(got), got, down_watch))
        print(f"  100 MB run {run + 1}: up {ups[-1].rate:,.0f} MB/s, down {downs[-1].rate:,.0f} "
              "MB/s", flush=True)  # fmt: skip
    for name, runs in (("100 MB issue (upload)", ups), ("100 MB download", downs)):
        median = _median(runs)
        column.rows[f"{name}, MB/s"] = median.rate
        _cpu_rows(column, name, median, target.store_pid is not None)
        column.notes.append(f"{name}, MB/s: runs " + ", ".join(f"{r.rate:,.0f}" for r in runs))


def _rate(column: Column, target: Target, kind: str) -> None:
    """100 KB documents in a closed loop of USERS connections; the median of RUNS windows."""
    body = base64.b64encode(PDF_HEAD + os.urandom(SMALL - len(PDF_HEAD))).decode()
    runs = []
    for run in range(RUNS):
        if kind == "issue":
            path = f"/locker/issued/{DOCTYPE}?doc_id=S{run}.{{user}}.{{n}}&title=Bench+document"
            headers = {**_bearer(target.tokens.issuer()), "Content-Type": "application/pdf",
                       "Shanakht-Cnic": target.tokens.setup.cnic}  # fmt: skip
            method = "PUT"
        else:
            path = "/locker/documents?title=Bench+upload&doctype=other"
            headers = {**_bearer(target.tokens.citizen()), "Content-Type": "application/pdf"}
            method = "POST"
        plan = {"op": "rate", "method": method, "path": path, "headers": headers, "body": body,
                "bases": target.bases, "users": USERS, "expect": 201, "warmup": WARMUP,
                "seconds": SECONDS}  # fmt: skip
        report, watch = _run_client(plan, target.all_pids, target.store_pid, f"{kind}-{run}")
        runs.append((report, _figures(report["rate"], report, watch)))
        print(f"  100 KB {kind} run {run + 1}: {report['rate']:,.1f}/s, p99 "
              f"{report['p99_ms']:,.1f} ms, {report['errors']} errors", flush=True)  # fmt: skip
        for sample in report["error_samples"]:
            column.notes.append(f"100 KB {kind}: {sample}")
    report, figures = sorted(runs, key=lambda r: r[1].rate)[len(runs) // 2]
    label = "100 KB issues/s" if kind == "issue" else "100 KB citizen uploads/s"
    short = label.removesuffix("/s")
    column.rows[f"{label} ({USERS} connections)"] = figures.rate
    column.rows[f"  {short}: p50 ms"] = report["p50_ms"]
    column.rows[f"  {short}: p99 ms"] = report["p99_ms"]
    column.rows[f"  {short}: errors"] = report["errors"]
    _cpu_rows(column, short, figures, target.store_pid is not None)
    column.notes.append(f"{label}: runs " + ", ".join(f"{r[1].rate:,.1f}" for r in runs))


# -- servers -----------------------------------------------------------------------------------


@contextmanager
def _moto(logs: Path) -> Iterator[tuple[str, int]]:
    """moto's S3 server in a child process: its URL and pid."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    with (logs / "moto.log").open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"moto's server did not start: {(logs / 'moto.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1):
                    break
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _store_env(endpoint: str | None) -> dict[str, str]:
    if endpoint is None:
        return {"SHANAKHT_STORE": "local"}
    return {
        "SHANAKHT_STORE": "s3",
        "SHANAKHT_S3_ENDPOINT_URL": endpoint,
        "SHANAKHT_S3_BUCKET": S3_BUCKET,
        "SHANAKHT_S3_ACCESS_KEY": S3_ACCESS,
        "SHANAKHT_S3_SECRET_KEY": S3_SECRET,
    }


def _bench(name: str, endpoint: str | None, store_pid: int | None, logs: Path) -> Column:
    column = Column(name)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        store = _store_env(endpoint)
        # Every setting the servers' environment also gets, so that none comes from ours (a
        # master key there would seal keys the servers could not open).
        settings = Settings.model_validate(
            {
                "env": "development",
                "data_dir": data_dir,
                "database_url": None,
                "master_key": None,
                "audit_checkpoint_interval": 0,
                **{k.removeprefix("SHANAKHT_").lower(): v for k, v in store.items()},
            }
        )
        setup = _prepare(settings, Path(tmp) / "root")
        script = Path(sys.executable).parent / "shanakht"
        fallback = [sys.executable, "-c", "from api.cli import main; main()"]
        serve = [str(script)] if script.exists() else fallback
        commands = []
        ports = [_free_port() for _ in range(_cores())]
        for port in ports:
            env = {
                "PORT": str(port),
                "SHANAKHT_DATA_DIR": str(data_dir),
                # One public URL, so one issuer: a token from one process works on the others.
                "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
                "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
                "SHANAKHT_LOG_LEVEL": "WARNING",  # no access log line per request
                **store,
            }
            argv = [*serve, "serve", "--host", "127.0.0.1", "--port", str(port)]
            commands.append((argv, env, REPO))
        with _servers(commands, "/healthz", logs) as servers:
            target = Target(servers[0], servers[1:], Tokens(servers[0].base, setup), store_pid)
            _warm(column, target)
            _huge(column, target)
            _big(column, target)
            _rate(column, target, "issue")
            _rate(column, target, "upload")
    return column


# -- the table ---------------------------------------------------------------------------------


def _print_table(columns: list[Column]) -> None:
    labels = [
        label
        for label in dict.fromkeys(label for c in columns for label in c.rows)
        if any(not math.isnan(c.rows.get(label, math.nan)) for c in columns)
    ]
    width = max(map(len, labels))
    cell = max(14, *(len(c.name) for c in columns))
    print(f"{'':{width}}" + "".join(f"  {c.name:>{cell}}" for c in columns))
    for label in labels:
        cells = "".join(
            f"  {c.rows[label]:>{cell},.1f}"
            if label in c.rows and not math.isnan(c.rows[label])
            else f"  {'-':>{cell}}"
            for c in columns
        )
        print(f"{label:{width}}{cells}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _targets(column: Column) -> list[str]:
    rows = column.rows
    up, down = rows["100 MB issue (upload), MB/s"], rows["100 MB download, MB/s"]
    issues = rows[f"100 KB issues/s ({USERS} connections)"]
    uploads = rows[f"100 KB citizen uploads/s ({USERS} connections)"]
    name = _size(HUGE)
    growth = max(
        rows[f"  {name} issue (upload): RSS growth at peak, MB"],
        rows[f"  {name} download: RSS growth at peak, MB"],
    )
    return [
        f"{column.name}:",
        f"  100 MB upload >= {UPLOAD_TARGET:.0f} MB/s: {up:,.0f} MB/s, "
        f"{_verdict(up >= UPLOAD_TARGET)}",
        f"  100 MB download >= {UPLOAD_TARGET:.0f} MB/s: {down:,.0f} MB/s, "
        f"{_verdict(down >= UPLOAD_TARGET)}",
        f"  100 KB uploads >= {RATE_TARGET:.0f}/s: issued {issues:,.1f}/s, "
        f"{_verdict(issues >= RATE_TARGET)}; citizen uploads {uploads:,.1f}/s, "
        f"{_verdict(uploads >= RATE_TARGET)}",
        f"  RSS growth < {GROWTH_TARGET:.0f} MB moving {name}: {growth:,.1f} MB, "
        f"{_verdict(growth < GROWTH_TARGET)}",
    ]


LEGEND = """\
MB = 10^6 bytes. Transfer rates are the document's bytes over the client's time from the first
  byte sent to the last byte of the answer (upload: the server has encrypted, stored, synced and
  recorded it; download: decrypted, checked and sent). CPU rows are in cores over that time;
  client CPU includes hashing every downloaded byte. RSS is the one server process that moved
  the document; growth is over its RSS just before the transfer. 100 KB rates are both server
  processes', answers with 201 inside the measured window."""

MOTO_NOTE = """\
S3 here is moto's server mode: one Python process that parses every request with werkzeug and
  keeps objects in memory; it is much slower than MinIO or AWS S3, and usually the bottleneck
  (see its CPU rows: near one core means moto is what limits the column). No targets apply."""


def main() -> None:
    started = time.perf_counter()
    cores = _cores()
    print(
        f"locker HTTP benchmark: {cores} cores, {cores} server processes, stores: "
        f"{', '.join(STORES)}; 100 MB x {RUNS}, {_size(HUGE)} x 1, 100 KB: {USERS} "
        f"connections, {RUNS} x ({WARMUP:.0f} s warm-up + {SECONDS:.0f} s)",
        flush=True,
    )
    columns: list[Column] = []
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        if "local" in STORES:
            print("local store (SQLite)", flush=True)
            columns.append(_bench("local", None, None, logs))
        if "s3" in STORES:
            print("S3 (moto server mode, SQLite)", flush=True)
            with _moto(logs) as (endpoint, pid):
                columns.append(_bench("S3 (moto)", endpoint, pid, logs))
    print()
    _print_table(columns)
    print()
    print(LEGEND)
    if any(c.name.startswith("S3") for c in columns):
        print(MOTO_NOTE)
    for column in columns:
        for note in column.notes:
            print(f"{column.name}: {note}")
    for column in columns:
        if column.name == "local":
            for line in _targets(column):
                print(line)
    others = [
        v
        for c in columns
        for label, v in c.rows.items()
        if label.endswith("other processes, cores")
    ]
    if others and max(others) > BUSY_ELSEWHERE:
        print(
            f"warning: other processes kept up to {max(others):.2f} cores busy during a phase: "
            "the machine was not the benchmark's alone, compare with care"
        )
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
