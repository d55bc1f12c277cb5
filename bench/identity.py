"""Identity benchmark: password logins and token grants over HTTP, beside oidc-provider.

Targets (the issue, on this 2-core machine, load from a separate process over HTTP):
- password logins: >= 15/s per core with argon2id no weaker than Keycloak's default
  (m=7168 KiB, t=5, p=1, Shanakht's own), and >= 85% of the limit the hash itself sets
  (cores / seconds per hash, the hash timed in the same run);
- client_credentials and refresh_token grants: >= 500/s in all, p99 < 100 ms;
- resident memory < 250 MB per server process under that load.

Shanakht runs as two `shanakht serve` processes (one per core) on one data directory, SQLite by
default, PostgreSQL (a schema of its own) when SHANAKHT_DATABASE_URL is set; the load is spread
over both. The peer is panva's oidc-provider (bench/peers/oidc_provider), also two processes,
put through the same workloads. SHANAKHT_BENCH_SECONDS sets each measured phase (default 20).
Between them, the login phase also runs against `bench.login_floor` (FastAPI and Shanakht's own
hasher, the hash and nothing else): what the stack reaches, so that the gap to Shanakht is what
Shanakht's login does besides the hash.

The load comes from processes of their own: wrk (C, one per server and workload) for the
closed-loop phases, the logins and the grants, which find the most the servers can do (a Python
load generator spends about as much CPU a grant as the server, and 1.7 ms a login, on the same
two cores, and would measure itself as much as them); and `bench.loadgen` (Python) for the
grants paced at the target rate (latency counted from when each request was due, so no
coordinated omission).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from joserfc.jwk import ECKey, RSAKey

from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from bench import loadgen
from bench.audit_log import _postgres_schema
from identity.enrolment import REGISTER
from identity.nadra import CardStatus, CitizenRecord, ensure_registry, read_registry
from identity.oidc.clients import CLIENT_SECRET_BASIC, ESERVICE, SERVICE, NewClient
from identity.passwords import HashParameters, PasswordHasher
from identity.policy import Limit

SECONDS = float(os.environ.get("SHANAKHT_BENCH_SECONDS", "20"))
WARMUP = 3.0
CITIZENS = 300  # registered citizens; the login users cycle through them
LOGIN_USERS = 16  # concurrent virtual users in the login phase
GRANT_USERS = 32  # concurrent virtual users in each token-grant phase
HASH_SAMPLES = 30
PASSWORD = "Kinnow#Orchard2026"  # noqa: S105 (every bench citizen's, as in the tests)
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never reached: the code is read off the redirect
SERVICE_SCOPE = "locker.fetch"
ESERVICE_SCOPES = ("openid", "profile")
THROTTLE_LIMIT = 10**9  # the login throttles would answer 429 long before the load ends
RSS_EVERY = 0.1
RSS_TARGET_MB = 250.0
BUSY_ELSEWHERE = 0.25  # cores other processes may use during a phase before a warning
REPO = Path(__file__).resolve().parents[1]  # `bench` is not installed: run from here
PEER_DIR = REPO / "bench" / "peers" / "oidc_provider"
PEER_ACCOUNT = "bench"
PEER_RESOURCE = "urn:shanakht:bench"
PEER_SCOPES = "locker.fetch locker.read"
PEER_AUTH_SCOPE = "openid offline_access locker.read"  # offline_access: its refresh tokens

LOGINS = "password logins"
CLIENT_CREDENTIALS = "client_credentials"
REFRESH = "refresh_token"
BOTH = "both grants at once"
GRANT_TARGET = 500.0  # grants per second in all, the target
PACED = f"both grants paced at {GRANT_TARGET:.0f}"
PHASES = [LOGINS, CLIENT_CREDENTIALS, REFRESH, BOTH, PACED]

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# -- measuring ---------------------------------------------------------------------------------


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _hash_seconds() -> tuple[float, float]:
    """Median time of one argon2id verification at Shanakht's cost, in this process, and the
    cores other processes kept busy meanwhile (a stray job would inflate the median)."""
    hasher = PasswordHasher()
    encoded = hasher.hash(PASSWORD)
    for _ in range(3):
        hasher.verify(encoded, PASSWORD)
    samples = []
    machine, own, wall = _machine_busy_seconds(), time.process_time(), time.perf_counter()
    for _ in range(HASH_SAMPLES):
        start = time.perf_counter()
        hasher.verify(encoded, PASSWORD)
        samples.append(time.perf_counter() - start)
    elsewhere = (_machine_busy_seconds() - machine) - (time.process_time() - own)
    return statistics.median(samples), max(0.0, elsewhere) / (time.perf_counter() - wall)


def _quiet_hash_seconds() -> float:
    """The hash time, measured again (a few times at most) while other processes are busy."""
    for _ in range(5):
        seconds, elsewhere = _hash_seconds()
        if elsewhere <= BUSY_ELSEWHERE:
            return seconds
        print(f"  (other processes busy, {elsewhere:.2f} cores: timing the hash again)")
        time.sleep(2)
    return seconds


def _hash_some(count: int) -> int:
    hasher = PasswordHasher()
    encoded = hasher.hash(PASSWORD)
    for _ in range(count):
        hasher.verify(encoded, PASSWORD)
    return count


def _hashing_alone(cores: int) -> float:
    """Verifications per second with one process per core doing nothing else: what the
    cores really give at this cost (they share caches and memory bandwidth, so it falls
    short of cores / one hash's time), for reading the login results against."""
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_hash_some, [3] * cores))  # start-up and a first hash, untimed
        start = time.perf_counter()
        done = sum(pool.map(_hash_some, [HASH_SAMPLES * 2] * cores))
        return done / (time.perf_counter() - start)


def _rss_mb(pid: int) -> float:
    """VmRSS of a process in MB (10^6 bytes); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot, from /proc/stat (idle and iowait
    left out): with the servers' and the load generator's own, it shows other load."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal, less idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class Column:
    """One system's results: the table's column (rows keyed by phase and measure), its own
    hash time (the peer hashes with another binding), and the errors seen."""

    name: str
    hash_seconds: float  # one argon2id verification with this system's own binding
    database_elsewhere: bool = False  # PostgreSQL: its CPU shows as "everything else"
    rows: dict[tuple[str, str], float] = field(default_factory=dict)
    peak_rss: dict[int, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def phase(
        self, label: str, report: dict[str, Any], server_cpu: float, machine_cpu: float
    ) -> None:
        summary = report["all"]
        self.rows[label, "/s"] = summary["rate"]
        self.rows[label, "p50 ms"] = summary["p50_ms"]
        self.rows[label, "p99 ms"] = summary["p99_ms"]
        self.rows[label, "errors"] = summary["errors"]
        self.rows[label, "shed"] = summary["shed"]  # 503 temporarily_unavailable: not errors
        self.rows[label, "server CPU, cores"] = server_cpu
        self.rows[label, "load generator CPU, cores"] = report["cpu_cores"]
        # Anything else busy on the machine meanwhile (another job) makes the run unfair;
        # with PostgreSQL on this machine, its work counts here too.
        other = machine_cpu - server_cpu - report["cpu_cores"]
        self.rows[label, "everything else, cores"] = max(0.0, other)
        for kind, workload in report["workloads"].items():
            for sample in workload["error_samples"]:
                self.problems.append(f"{label} [{kind}]: {sample}")


def _run_phase(column: Column, label: str, plan: dict[str, Any], pids: list[int]) -> dict[str, Any]:
    """Run the load generator on `plan`, sampling the servers' RSS and CPU while it runs; the
    CPU they used inside the measured window tells lock-bound from CPU-bound."""
    plan = {"warmup": WARMUP, "duration": SECONDS, **plan}
    # (wall time, CPU seconds of all servers, busy CPU seconds of the whole machine)
    cpu: list[tuple[float, float, float]] = []

    def sample() -> None:
        for pid in pids:
            column.peak_rss[pid] = max(column.peak_rss.get(pid, 0.0), _rss_mb(pid))
        servers = sum(_cpu_seconds(pid) for pid in pids)
        cpu.append((time.time(), servers, _machine_busy_seconds()))

    try:
        report = loadgen.run_beside(plan, sample, RSS_EVERY)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc} in {label}") from None
    start, end = report["window"]
    inside = [row for row in cpu if start <= row[0] <= end]
    server_cpu = machine_cpu = float("nan")
    if len(inside) >= 2:
        (t0, s0, m0), (t1, s1, m1) = inside[0], inside[-1]
        server_cpu, machine_cpu = (s1 - s0) / (t1 - t0), (m1 - m0) / (t1 - t0)
    column.phase(label, report, server_cpu, machine_cpu)
    print(
        f"  {label}: {report['all']['rate']:,.1f}/s, p99 {report['all']['p99_ms']:.1f} ms, "
        f"{report['all']['errors']} errors, {report['all']['shed']} shed, "
        f"servers {server_cpu:.2f} cores",
        flush=True,
    )
    return report


# A request the server sheds (503 with the OAuth error `temporarily_unavailable` and the lanes'
# description, as `loadgen.shed` tells it) is counted apart: neither answered nor an error.
WRK_SHED = """\
local function is_shed(status, body)
  return status == 503 and body ~= nil
    and string.find(body, '"temporarily_unavailable"', 1, true) ~= nil
    and string.find(body, '"the service is busy', 1, true) ~= nil
end
"""
# The closed-loop grant phases, driven by wrk. A refresh token rotates on every use, so each
# wrk thread keeps a pool of them: it takes one for each request and puts back the new one the
# answer carries. wrk builds one request more than it has connections at the start, and answers
# still in flight when it stops are never read, so each pool starts with two spare tokens and
# a phase's tokens are spent by the end of it (each phase gets families of its own).
WRK_GRANTS = (
    WRK_SHED
    + """\
local auth = "Basic " .. os.getenv("BENCH_BASIC")
local grant = os.getenv("BENCH_GRANT")
local scope = os.getenv("BENCH_SCOPE") or ""
local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth}
local threads = {}
pool = {}
samples = {}
shed = 0

setup = function(thread)
  threads[#threads + 1] = thread
end

init = function(args)
  for token in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do
    pool[#pool + 1] = token
  end
end

request = function()
  local body = "grant_type=" .. grant
  if grant == "refresh_token" then
    body = body .. "&refresh_token=" .. (table.remove(pool) or "none-left")
  end
  if scope ~= "" then
    body = body .. "&scope=" .. scope
  end
  return wrk.format("POST", nil, headers, body)
end

response = function(status, headers, body)
  if is_shed(status, body) then
    shed = shed + 1
    return
  end
  if status ~= 200 then
    if #samples < 3 then
      samples[#samples + 1] = status .. ": " .. string.sub(string.gsub(body, "%s+", " "), 1, 200)
    end
    return
  end
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then
    pool[#pool + 1] = token
  end
end

done = function(summary, latency, requests)
  local shed_in_all = 0
  for _, thread in ipairs(threads) do
    for _, sample in ipairs(thread:get("samples")) do
      io.write("error: ", sample, "\\n")
    end
    shed_in_all = shed_in_all + thread:get("shed")
  end
  local e = summary.errors
  -- wrk counts every status >= 400 in e.status: a shed request is one of them, but no error
  io.write(string.format('{"answered": %d, "seconds": %f, "errors": %d, "shed": %d, '
    .. '"p50_ms": %f, "p99_ms": %f}\\n', summary.requests - e.status, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status - shed_in_all, shed_in_all,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
)
# Logins through wrk: every connection POSTs the login form again and again with the cookies
# one GET of the login page gave (Shanakht's CSRF cookie; the peer's interaction), Shanakht's
# cycling through the citizens of its wrk (BENCH_CNICS); a 303 (signed in) is an answer,
# anything else an error. The session cookie each success sets is never sent back, so no login
# first ends another's session.
WRK_LOGINS = (
    WRK_SHED
    + """\
local cnics = {}
local i = 0
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Cookie"] = os.getenv("BENCH_COOKIE"),
}
local form = os.getenv("BENCH_FORM")
local threads = {}
samples = {}
shed = 0

setup = function(thread)
  threads[#threads + 1] = thread
end

init = function(args)
  for cnic in string.gmatch(os.getenv("BENCH_CNICS") or "", "[^,]+") do
    cnics[#cnics + 1] = cnic
  end
end

request = function()
  i = i + 1
  local body = form
  if #cnics > 0 then
    body = "cnic=" .. cnics[(i % #cnics) + 1] .. "&" .. form
  end
  return wrk.format("POST", nil, headers, body)
end

response = function(status, headers, body)
  if is_shed(status, body) then
    shed = shed + 1
    return
  end
  if status ~= 303 and #samples < 3 then
    samples[#samples + 1] = status .. ": " .. string.sub(string.gsub(body, "%s+", " "), 1, 200)
  end
end
"""
    + WRK_GRANTS[WRK_GRANTS.index("done = function") :]
)
WRK_SPARE = 2  # refresh tokens each wrk starts with beyond one per connection (see above)


@dataclass(frozen=True)
class WrkLoad:
    """One wrk against one server: a workload over `connections` connections, its script
    told what to send by `env` (grants: `grant_env`; logins: `_login_env`)."""

    base: str
    user: dict[str, Any]  # the workload, as the load generator's plan has it
    connections: int
    env: dict[str, str] = field(default_factory=dict)


def grant_env(user: dict[str, Any], tokens: tuple[str, ...] = ()) -> dict[str, str]:
    """WRK_GRANTS's settings: the client, the grant, and the refresh tokens to start with."""
    basic = f"{user['client_id']}:{user['secret']}"
    return {
        "BENCH_BASIC": base64.b64encode(basic.encode()).decode(),
        "BENCH_GRANT": user["kind"],
        "BENCH_SCOPE": user.get("scope", ""),
        "BENCH_TOKENS": ",".join(tokens),
    }


def _wrk_run(loads: list[WrkLoad], script: Path, seconds: float) -> list[dict[str, Any]]:
    """The loads side by side, one wrk each: their reports (with `samples`, the first
    errors' answers)."""
    wrk = shutil.which("wrk") or "wrk"
    runs = []
    for load in loads:
        env = {**_clean_environ(), **load.env}
        argv = [wrk, "-t1", f"-c{load.connections}", f"-d{seconds:.0f}s", "--timeout", "30s"]
        runs.append(
            subprocess.Popen(
                [*argv, "-s", str(script), load.base + load.user["path"]],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    reports = []
    for run in runs:
        lines = run.communicate()[0].strip().splitlines()
        if run.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({run.returncode})")
        report: dict[str, Any] = json.loads(lines[-1])
        report["samples"] = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
        reports.append(report)
    return reports


def _login_load(
    base: str, start: str, post: str, form: dict[str, str], cnics: Sequence[str] = ()
) -> WrkLoad:
    """One server's share of the login phase for wrk: GET `start` once for the cookies (and,
    for the peer, the interaction it redirects to, `{location}` in `post`), then POST `form`
    to `post` on LOGIN_USERS // cores connections."""
    with httpx2.Client(base_url=base, timeout=30) as browser:
        page = browser.get(start)
        location = page.headers.get("location", "")
        form = dict(form)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if found:
            form["csrf"] = found.group(1)
        cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    if page.status_code not in (200, 303) or not cookies:
        raise RuntimeError(f"no login form at {base}{start}: {page.status_code}")
    env = {"BENCH_COOKIE": cookies, "BENCH_FORM": urlencode(form), "BENCH_CNICS": ",".join(cnics)}
    user = {"kind": "login", "path": post.format(location=location)}
    return WrkLoad(base, user, LOGIN_USERS // _cores(), env)


def _login_phase(column: Column, loads: list[WrkLoad], pids: list[int], work: Path) -> None:
    """Password logins as fast as they go, through wrk: a Python load generator spent about
    1.7 ms of CPU a login (0.13 cores at 78/s), out of the cores the hashes need."""
    script = work / "logins.lua"
    script.write_text(WRK_LOGINS)
    _wrk_run(loads, script, WARMUP)  # the servers warm up
    _wrk_phase(column, LOGINS, loads, pids, script)


def _wrk_phase(
    column: Column, label: str, loads: list[WrkLoad], pids: list[int], script: Path
) -> None:
    """A closed-loop phase through wrk, with the same rows as the load generator's phases:
    the rate is the sum of the wrks', p50 and p99 the worst of theirs (each wrk's own
    percentiles; they are not pooled)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    servers, machine, started = sum(map(_cpu_seconds, pids)), _machine_busy_seconds(), time.time()
    reports = _wrk_run(loads, script, SECONDS)
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_cpu = (sum(map(_cpu_seconds, pids)) - servers) / wall
    machine_cpu = (_machine_busy_seconds() - machine) / wall
    summary = {
        "rate": sum(r["answered"] / r["seconds"] for r in reports),  # 200s only
        "p50_ms": max(r["p50_ms"] for r in reports),
        "p99_ms": max(r["p99_ms"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "shed": sum(r["shed"] for r in reports),
    }
    workloads: dict[str, Any] = {}
    for load, report in zip(loads, reports, strict=True):
        samples = workloads.setdefault(load.user["kind"], {"error_samples": []})["error_samples"]
        samples += report["samples"][: 3 - len(samples)]
    column.phase(
        label,
        {"all": summary, "cpu_cores": used / wall, "workloads": workloads},
        server_cpu,
        machine_cpu,
    )
    print(
        f"  {label} (wrk): {summary['rate']:,.1f}/s, p99 {summary['p99_ms']:.1f} ms, "
        f"{summary['errors']} errors, {summary['shed']} shed, servers {server_cpu:.2f} cores, "
        f"wrk {used / wall:.2f}",
        flush=True,
    )


# -- servers -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def _clean_environ() -> dict[str, str]:
    """This process's environment without SHANAKHT_ settings: each server gets exactly the
    ones its column stands for (SHANAKHT_DATABASE_URL must not reach the SQLite column)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SHANAKHT_")}


@contextmanager
def _servers(
    commands: list[tuple[list[str], dict[str, str], Path]], ready_path: str, logs: Path
) -> Iterator[list[Server]]:
    """Start each (argv, env, cwd) on a port of its own; stop them all, by pid, at the end."""
    servers: list[Server] = []
    try:
        for argv, env, cwd in commands:
            port = int(env["PORT"])
            log = logs / f"server-{port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    argv, env={**_clean_environ(), **env}, cwd=cwd, stdout=out, stderr=out
                )
            servers.append(Server(f"http://127.0.0.1:{port}", process, log))
        for server in servers:
            _wait_ready(server, ready_path)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server on {server.base} exited:\n{tail}")
        try:
            if httpx2.get(server.base + path, timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on {server.base} did not become ready")


# -- Shanakht ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShanakhtSetup:
    cnics: list[str]
    service_secret: str
    eservice_secret: str


def _pick_citizens(records: dict[str, CitizenRecord], count: int) -> list[CitizenRecord]:
    """Citizens who can register today: an active card, not expired, with a mobile number."""
    today = date.today()
    usable = [
        r
        for r in records.values()
        if r.status == CardStatus.ACTIVE and r.card_expiry_date > today and r.mobile_numbers
    ]
    return usable[:count]


def _register(runtime: Runtime, record: CitizenRecord) -> None:
    """Register one citizen through the enrolment service, as tests/http/oidc_kit.py does."""
    details = record.card()
    mobile = record.mobile_numbers[0]
    with runtime.transaction() as session:
        ticket = runtime.enrolment(session).start_registration(details, mobile, client="bench")
    message = runtime.identity.sms.last_to(mobile)
    assert message is not None
    code = re.search(r"\b(\d{6})\b", message.text)
    assert code is not None
    with runtime.transaction() as session:
        runtime.enrolment(session).verify_code(ticket, REGISTER, code.group(1))
        runtime.enrolment(session).complete_registration(ticket, PASSWORD)


def _client(runtime: Runtime, new: NewClient) -> str:
    with runtime.transaction() as session:
        _client, secret = runtime.provider(session).clients.add(new)
    assert secret is not None
    return secret


def bench_settings(data_dir: Path, url: str | None, **changes: Any) -> Settings:
    """The development settings a bench's own runtime (its setup, or the bench itself) runs on.

    Every value is spelled out so that none comes from the caller's environment (pydantic
    settings read SHANAKHT_* variables): no master key, since a key here would seal keys the
    servers, started without it, could not open; audit checkpoints off, as the servers run
    them, so that a checkpoint's signing lands in no measurement. `changes` are further
    settings (a public URL) or differences (a soak keeps checkpoints, as its servers do).
    """
    values: dict[str, Any] = {
        "env": "development",
        "data_dir": data_dir,
        "database_url": url,
        "master_key": None,
        "audit_checkpoint_interval": 0,
    }
    return Settings(**(values | changes))


def bench_clients(runtime: Runtime) -> tuple[str, str]:
    """The department system (client_credentials) and the e-service (refresh) the grant
    phases use: their secrets."""
    service = _client(
        runtime,
        NewClient(
            id="bench-department",
            name="A department system",
            kind=SERVICE,
            auth_method=CLIENT_SECRET_BASIC,
            scopes=(SERVICE_SCOPE,),
        ),
    )
    eservice = _client(
        runtime,
        NewClient(
            id="bench-eservice",
            name="An e-service",
            kind=ESERVICE,
            auth_method=CLIENT_SECRET_BASIC,
            redirect_uris=(REDIRECT_URI,),
            scopes=ESERVICE_SCOPES,
        ),
    )
    return service, eservice


def _prepare_shanakht(settings: Settings) -> ShanakhtSetup:
    """Schema, keys, citizens and clients, straight through the services, before any server.

    The enrolment throttle per client address (30 an hour) is lifted for this setup runtime
    only: every registration here comes from the one address.
    """
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        runtime.identity.policy = replace(
            runtime.identity.policy,
            per_address_enrolment=Limit(THROTTLE_LIMIT, runtime.identity.policy.lockout),
        )
        records = read_registry(ensure_registry(runtime.identity.nadra_file))
        citizens = _pick_citizens(records, CITIZENS)
        for record in citizens:
            _register(runtime, record)
        service, eservice = bench_clients(runtime)
        return ShanakhtSetup([r.cnic for r in citizens], service, eservice)
    finally:
        runtime.close()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _authorize_query(client_id: str, scope: str, challenge: str, **extra: str) -> str:
    return urlencode(
        {
            **extra,
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


def _redeem(base: str, path: str, secret: str, client_id: str, code: str, verifier: str) -> str:
    response = httpx2.post(
        base + path,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


def _explain(response: httpx2.Response) -> str:
    """What a page that should have been a redirect said instead."""
    said = re.findall(r"<(?:h1|p)>(.*?)</(?:h1|p)>", response.text, re.S)
    request = f"{response.request.method} {response.url}"
    return f"{request}: {response.status_code} {said or response.text[:200]}"


def browser_code(
    base: str,
    client_id: str,
    scope: str,
    cnic: str,
    signed_in: Callable[[httpx2.Client], None] | None = None,
) -> tuple[str, str]:
    """The authorization code flow as a browser drives it (login, consent): the code and its
    PKCE verifier, for the caller to redeem. `signed_in`, if given, runs right after the login
    with the browser (a step-up made through the services, which renews the session cookie in
    it: the code then carries the raised acr)."""
    verifier, challenge = _pkce()
    with httpx2.Client(base_url=base) as browser:
        response = browser.get("/oauth/authorize?" + _authorize_query(client_id, scope, challenge))
        for _ in range(8):
            location = response.headers.get("location", "")
            if location.startswith(REDIRECT_URI):
                return _query(location)["code"], verifier
            assert response.status_code in (302, 303), _explain(response)
            page = browser.get(location)
            if page.status_code != 200:
                response = page
                continue
            found = _CSRF.search(page.text)
            assert found, page.text[:300]
            request_id = _query(str(page.url)).get("request", "")
            if page.url.path == "/login":
                form = {"cnic": cnic, "password": PASSWORD, "request": request_id}
                response = browser.post("/login", data={**form, "csrf": found.group(1)})
                if signed_in is not None:
                    signed_in(browser)
            elif page.url.path == "/consent":
                form = {"decision": "allow", "request": request_id, "csrf": found.group(1)}
                response = browser.post("/consent", data=form)
            else:
                raise AssertionError(f"unexpected page {page.url}")
    raise AssertionError(f"the authorization code flow did not come back: {_explain(response)}")


def _shanakht_refresh_token(base: str, cnic: str, secret: str) -> str:
    """The authorization code flow once, for a refresh token: each refresh user holds a family
    of its own."""
    code, verifier = browser_code(base, "bench-eservice", " ".join(ESERVICE_SCOPES), cnic)
    return _redeem(base, "/oauth/token", secret, "bench-eservice", code, verifier)


def _bench_shanakht(name: str, database_url: str | None, logs: Path, hash_s: float) -> Column:
    column = Column(name, hash_s, database_elsewhere=database_url is not None)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        # Every setting the servers' environment also gets, so that none comes from ours
        # (a master key there would seal keys the servers could not open).
        settings = bench_settings(data_dir, database_url)
        started = time.perf_counter()
        setup = _prepare_shanakht(settings)
        print(
            f"  set up {len(setup.cnics)} citizens and 2 clients "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        script = Path(sys.executable).parent / "shanakht"
        fallback = [sys.executable, "-c", "from api.cli import main; main()"]
        serve = [str(script)] if script.exists() else fallback
        commands = []
        for _ in range(_cores()):
            port = _free_port()
            env = {
                "PORT": str(port),
                "SHANAKHT_DATA_DIR": str(data_dir),
                "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
                "SHANAKHT_LOGIN_ATTEMPTS_PER_ACCOUNT": str(THROTTLE_LIMIT),
                "SHANAKHT_LOGIN_ATTEMPTS_PER_ADDRESS": str(THROTTLE_LIMIT),
                "SHANAKHT_LOG_LEVEL": "WARNING",  # no access log line per request, as the peer
            }
            if database_url:
                env["SHANAKHT_DATABASE_URL"] = database_url
            argv = [*serve, "serve", "--host", "127.0.0.1", "--port", str(port)]
            commands.append((argv, env, REPO))
        with _servers(commands, "/healthz", logs) as servers:
            bases = [s.base for s in servers]
            pids = [s.process.pid for s in servers]
            share = len(setup.cnics) // len(bases)
            logins = [
                _login_load(
                    base,
                    "/login",
                    "/login",
                    {"password": PASSWORD},
                    setup.cnics[i * share : (i + 1) * share],
                )
                for i, base in enumerate(bases)
            ]
            _login_phase(column, logins, pids, logs)
            service = {
                "kind": "client_credentials",
                "path": "/oauth/token",
                "client_id": "bench-department",
                "secret": setup.service_secret,
                "scope": SERVICE_SCOPE,
            }
            eservice = {
                "kind": "refresh_token",
                "path": "/oauth/token",
                "client_id": "bench-eservice",
                "secret": setup.eservice_secret,
            }

            def mint(i: int) -> str:
                cnic = setup.cnics[i % len(setup.cnics)]
                return _shanakht_refresh_token(bases[i % len(bases)], cnic, setup.eservice_secret)

            _grant_phases(column, bases, pids, service, eservice, mint, logs)
        _rss_rows(column, pids)
    return column


def _grant_phases(
    column: Column,
    bases: list[str],
    pids: list[int],
    service: dict[str, Any],
    eservice: dict[str, Any],
    mint: Callable[[int], str],
    work: Path,
) -> None:
    """client_credentials alone, refresh_token alone, both at once as fast as they go (the
    rate target; wrk), then both at once at the target rate (the latency target, from the
    load generator: at saturation a closed loop's latency is its queue, users / rate, whatever
    the server does).

    `mint(i)` makes a new refresh token family on bases[i % n], and every refresh user (or
    wrk) talks to the server its tokens came from: the peer keeps its tokens in each
    process's memory. Shanakht would take them anywhere.
    """
    n = len(bases)
    script = work / "grants.lua"
    script.write_text(WRK_GRANTS)

    def tokens(base: int, count: int) -> tuple[str, ...]:
        return tuple(mint(base + n * i) for i in range(count))

    def loads(user: dict[str, Any], connections: int) -> list[WrkLoad]:
        refresh = user["kind"] == "refresh_token"
        return [
            WrkLoad(
                bases[i],
                user,
                connections,
                grant_env(user, tokens(i, connections + WRK_SPARE) if refresh else ()),
            )
            for i in range(n)
        ]

    per_server = GRANT_USERS // n
    _wrk_run(loads(service, per_server), script, WARMUP)  # the servers warm up
    _wrk_phase(column, CLIENT_CREDENTIALS, loads(service, per_server), pids, script)
    _wrk_phase(column, REFRESH, loads(eservice, per_server), pids, script)
    both = loads(service, per_server // 2) + loads(eservice, per_server // 2)
    _wrk_phase(column, BOTH, both, pids, script)
    half = GRANT_USERS // 2
    ccs = [{**service, "base": bases[i % n]} for i in range(half)]
    refreshes = [{**eservice, "base": bases[i % n], "refresh_token": mint(i)} for i in range(half)]
    _run_phase(column, PACED, {"users": ccs + refreshes, "rate": GRANT_TARGET}, pids)


def _rss_rows(column: Column, pids: list[int]) -> None:
    for i, pid in enumerate(pids, start=1):
        column.rows["peak RSS MB (all phases)", f"process {i}"] = column.peak_rss.get(pid, 0.0)


# -- the floor: the stack doing the hash alone ---------------------------------------------------


FLOOR = "FastAPI + the hash only"


def _bench_floor(logs: Path, hash_s: float) -> Column:
    """The login phase against `bench.login_floor` (two uvicorn processes): what the stack
    reaches when a login is the hash and nothing else."""
    column = Column(FLOOR, hash_s)
    commands = []
    for _ in range(_cores()):
        port = _free_port()
        argv = [sys.executable, "-m", "uvicorn", "bench.login_floor:app", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        commands.append((argv, {"PORT": str(port)}, REPO))
    with _servers(commands, "/healthz", logs) as servers:
        loads = [_login_load(s.base, "/login", "/login", {"password": PASSWORD}) for s in servers]
        _login_phase(column, loads, [s.process.pid for s in servers], logs)
    return column  # no RSS rows: wrk's phases do not sample it, and this app holds nothing


# -- the peer: oidc-provider ---------------------------------------------------------------------


def _peer_unavailable() -> str | None:
    """Why the peer cannot run here, or None; installs its locked packages if they are missing."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return "node and npm are not installed"
    if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PEER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            return f"npm ci failed: {done.stderr.strip()[-300:]}"
    return None


def _node() -> str:
    node = shutil.which("node")
    assert node is not None  # _peer_unavailable said so
    return node


def _peer_version() -> str:
    package = PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    version: str = json.loads(package.read_text())["version"]
    return version


def _peer_jwks() -> dict[str, Any]:
    """Private signing keys for the peer: RS256 for ID tokens, ES256 for access tokens."""
    rsa = RSAKey.generate_key(2048, private=True)
    ec = ECKey.generate_key("P-256", private=True)
    return {
        "keys": [
            {**rsa.as_dict(private=True), "alg": "RS256", "use": "sig", "kid": "bench-rs256"},
            {**ec.as_dict(private=True), "alg": "ES256", "use": "sig", "kid": "bench-es256"},
        ]
    }


def _peer_refresh_token(base: str, secret: str) -> str:
    """The authorization code flow through the peer's interactions: login, consent, code."""
    verifier, challenge = _pkce()
    # OpenID Connect Core 11: offline_access counts only with prompt=consent.
    query = _authorize_query("bench-eservice", PEER_AUTH_SCOPE, challenge, prompt="consent")
    with httpx2.Client(base_url=base) as browser:
        response = browser.get(f"/auth?{query}")
        for _ in range(8):
            location = response.headers.get("location", "")
            if location.startswith(REDIRECT_URI):
                code = _query(location)["code"]
                return _redeem(base, "/token", secret, "bench-eservice", code, verifier)
            assert response.status_code in (302, 303), response.text[:300]
            path = urlsplit(location).path
            if path.startswith("/interaction/"):
                prompt = browser.get(path).text
                if prompt == "prompt=login":
                    form = {"login": PEER_ACCOUNT, "password": PASSWORD}
                    response = browser.post(f"{path}/login", data=form)
                else:
                    response = browser.post(f"{path}/confirm", data={})
            else:
                response = browser.get(location)
    raise AssertionError("the peer's authorization code flow did not come back")


_NODE_HASH_TIME = """
import argon2 from 'argon2';
const [m, t, p, n] = process.argv.slice(1).map(Number);
const options = { type: argon2.argon2id, memoryCost: m, timeCost: t, parallelism: p };
const encoded = await argon2.hash('a password', options);
for (let i = 0; i < 3; i += 1) await argon2.verify(encoded, 'a password');
const samples = [];
for (let i = 0; i < n; i += 1) {
  const start = process.hrtime.bigint();
  await argon2.verify(encoded, 'a password');
  samples.push(Number(process.hrtime.bigint() - start) / 1e9);
}
samples.sort((a, b) => a - b);
console.log(samples[Math.floor(n / 2)]);
"""


def _peer_hash_seconds() -> float:
    """Median argon2id verification in Node's argon2 binding, the peer's, at the same cost:
    a different build of the same algorithm, so the peer gets a limit of its own as well."""
    parameters = HashParameters()
    cost = [parameters.memory_kib, parameters.time_cost, parameters.parallelism, HASH_SAMPLES]
    done = subprocess.run(
        [_node(), "--input-type=module", "-e", _NODE_HASH_TIME, *map(str, cost)],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def _bench_peer(logs: Path) -> Column:
    column = Column(f"oidc-provider {_peer_version()}", _peer_hash_seconds())
    secrets_ = {"service": secrets.token_urlsafe(32), "eservice": secrets.token_urlsafe(32)}
    parameters = HashParameters()
    config = {
        "jwks": _peer_jwks(),
        "cookie_key": secrets.token_urlsafe(32),
        "clients": [
            {
                "client_id": "bench-department",
                "client_secret": secrets_["service"],
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": SERVICE_SCOPE,
            },
            {
                "client_id": "bench-eservice",
                "client_secret": secrets_["eservice"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        ],
        "account": {"id": PEER_ACCOUNT, "password": PASSWORD},
        "argon2": {
            "memory_kib": parameters.memory_kib,
            "time_cost": parameters.time_cost,
            "parallelism": parameters.parallelism,
        },
        "resource": PEER_RESOURCE,
        "resource_scopes": PEER_SCOPES,
    }
    config_file = logs / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    commands = [
        (
            [_node(), "server.mjs"],
            {"PORT": str(_free_port()), "BENCH_CONFIG": str(config_file)},
            PEER_DIR,
        )
        for _ in range(_cores())
    ]
    with _servers(commands, "/.well-known/openid-configuration", logs) as servers:
        bases = [s.base for s in servers]
        pids = [s.process.pid for s in servers]
        n = len(bases)
        logins = []
        for base in bases:
            _verifier, challenge = _pkce()
            start = f"/auth?{_authorize_query('bench-eservice', PEER_AUTH_SCOPE, challenge)}"
            form = {"login": PEER_ACCOUNT, "password": PASSWORD}
            logins.append(_login_load(base, start, "{location}/login", form))
        _login_phase(column, logins, pids, logs)
        service = {
            "kind": "client_credentials",
            "path": "/token",
            "client_id": "bench-department",
            "secret": secrets_["service"],
            "scope": SERVICE_SCOPE,
        }
        # scope narrows the refresh to the access token alone: Shanakht's refresh answers no
        # ID token, and oidc-provider would sign one for every refresh under `openid`.
        eservice = {
            "kind": "refresh_token",
            "path": "/token",
            "client_id": "bench-eservice",
            "secret": secrets_["eservice"],
            "scope": "locker.read",
        }

        def mint(i: int) -> str:
            return _peer_refresh_token(bases[i % n], secrets_["eservice"])

        _grant_phases(column, bases, pids, service, eservice, mint, logs)
    _rss_rows(column, pids)
    return column


# -- the table ---------------------------------------------------------------------------------


def _print_table(columns: list[Column], limit: float) -> None:
    for column in columns:
        rate = column.rows.get((LOGINS, "/s"))
        if rate is not None:
            column.rows[LOGINS, "% of the hash limit"] = 100 * rate / limit
            column.rows[LOGINS, "one hash, ms (its own binding)"] = column.hash_seconds * 1000
            own = _cores() / column.hash_seconds
            column.rows[LOGINS, "% of its own binding's limit"] = 100 * rate / own
    order = [
        "/s",
        "% of the hash limit",
        "one hash, ms (its own binding)",
        "% of its own binding's limit",
        "p50 ms",
        "p99 ms",
        "errors",
        "shed",
    ]
    keys = sorted(
        dict.fromkeys(k for c in columns for k in c.rows),
        key=lambda k: (PHASES.index(k[0]) if k[0] in PHASES else len(PHASES),
                       order.index(k[1]) if k[1] in order else len(order)),
    )  # fmt: skip
    names = [f"{phase}/s" if measure == "/s" else f"  {measure}" for phase, measure in keys]
    width = max(map(len, names))
    cell = max(22, *(len(c.name) for c in columns))
    print(f"{'':{width}}" + "".join(f"  {c.name:>{cell}}" for c in columns))
    shown = ""
    for name, key in zip(names, keys, strict=True):
        if key[1] != "/s" and key[0] != shown:
            print(key[0])  # a heading for measures that come without a rate
        shown = key[0]
        cells = "".join(
            f"  {c.rows[key]:>{cell},.1f}" if key in c.rows else f"  {'-':>{cell}}" for c in columns
        )
        print(f"{name:{width}}{cells}")


LEGEND = """\
rates count requests answered as expected inside the measured window; latency is per request,
  as the load generator saw it. Server CPU is both server processes'; everything else is the
  rest of the machine's busy CPU (PostgreSQL's own work, in its column). MB = 10^6 bytes."""

PEER_NOTE = """\
peer: oidc-provider, the last major that runs on Node 20 (9.x asks for Node 22). It keeps its
  state in its in-memory adapter (no disk, no audit log, no login throttles), so each refresh
  user stays on the process its tokens came from. Its access tokens are ES256 JWTs, as
  Shanakht's; its refreshes rotate, and ask for the resource scope only (no ID token, as
  Shanakht's). Its login is a minimal custom interaction: one fixed account, argon2id at the
  same cost (Node's argon2 binding), the login prompt finished; its session is made only when
  the authorization resumes, which the login phase does not do. Shanakht's login also counts
  two throttles, records the success, appends an audit entry and creates the session."""


def _targets(column: Column, cores: int, limit: float, alone: float) -> list[str]:
    rows = column.rows
    logins = rows[LOGINS, "/s"]
    grants = rows[BOTH, "/s"]
    p99 = rows[PACED, "p99 ms"]
    paced = rows[PACED, "/s"]
    paced_errors = rows[PACED, "errors"]
    rss = max(v for (phase, _), v in rows.items() if phase.startswith("peak RSS"))

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return [
        f"{column.name}:",
        f"  logins >= {15 * cores}/s ({cores} cores x 15): {logins:,.1f}/s, "
        f"{verdict(logins >= 15 * cores)}",
        f"  logins >= 85% of the hash limit ({0.85 * limit:,.1f}/s): "
        f"{100 * logins / limit:.0f}%, {verdict(logins >= 0.85 * limit)} "
        f"({100 * logins / alone:.0f}% of hashing alone)",
        f"  grants >= {GRANT_TARGET:.0f}/s in all: {grants:,.1f}/s, "
        f"{verdict(grants >= GRANT_TARGET)}; p99 < 100 ms at {GRANT_TARGET:.0f}/s: "
        f"{p99:.1f} ms ({paced:,.1f}/s served), "
        f"{verdict(p99 < 100 and paced >= 0.99 * GRANT_TARGET and paced_errors == 0)}",
        f"  RSS < {RSS_TARGET_MB:.0f} MB per process: peak {rss:.1f} MB, "
        f"{verdict(rss < RSS_TARGET_MB)}",
    ]


def main() -> None:
    cores = _cores()
    started = time.perf_counter()
    print(
        f"identity benchmark: {cores} cores, {cores} server processes per system, "
        f"{SECONDS:.0f} s per phase after {WARMUP:.0f} s warm-up, {LOGIN_USERS} login users, "
        f"{GRANT_USERS} grant users",
        flush=True,
    )
    hash_s = _quiet_hash_seconds()
    limit = cores / hash_s
    parameters = HashParameters()
    print(
        f"argon2id m={parameters.memory_kib} KiB, t={parameters.time_cost}, "
        f"p={parameters.parallelism}: one hash {hash_s * 1000:.1f} ms (median of {HASH_SAMPLES}); "
        f"limit {cores} / {hash_s * 1000:.1f} ms = {limit:,.1f} logins/s",
        flush=True,
    )
    alone = _hashing_alone(cores)
    print(
        f"hashing alone, {cores} processes and nothing else: {alone:,.1f}/s "
        f"({100 * alone / limit:.0f}% of the limit)",
        flush=True,
    )
    columns: list[Column] = []
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        print("Shanakht, SQLite", flush=True)
        columns.append(_bench_shanakht("Shanakht (SQLite)", None, logs, hash_s))
        print(FLOOR, flush=True)
        columns.append(_bench_floor(logs, hash_s))
        pg = os.environ.get("SHANAKHT_DATABASE_URL", "")
        if pg.startswith("postgresql"):
            print("Shanakht, PostgreSQL", flush=True)
            with _postgres_schema(pg) as url:
                columns.append(_bench_shanakht("Shanakht (PostgreSQL)", url, logs, hash_s))
        reason = _peer_unavailable()
        if reason is None:
            print(f"oidc-provider {_peer_version()}", flush=True)
            columns.append(_bench_peer(logs))
    print()
    _print_table(columns, limit)
    print()
    print(LEGEND)
    if reason is not None:
        print(f"peer: not run ({reason})")
    else:
        print(PEER_NOTE)
    targeted = [c for c in columns if c.name != FLOOR]  # the floor serves no grants
    for line in (t for c in targeted for t in _targets(c, cores, limit, alone)):
        print(line)
    others = [
        v
        for c in columns
        if not c.database_elsewhere
        for (_, measure), v in c.rows.items()
        if measure == "everything else, cores"
    ]
    if others and max(others) > BUSY_ELSEWHERE:
        print(
            f"warning: other processes kept up to {max(others):.2f} cores busy during a phase "
            "(PostgreSQL aside); the machine was not the benchmark's alone: compare with care"
        )
    problems = [f"{c.name}: {p}" for c in columns for p in c.problems]
    if problems:
        print("errors seen (first of each phase):")
        for problem in problems:
            print(f"  {problem}")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
