"""CPU per token grant and per login (less its hash), in-process: a cost that noise does not move.

`python -m bench.identity` measures throughput over HTTP with two servers, which on a busy
machine says as much about the neighbours as about Shanakht. This drives the real ASGI app (every
middleware, the quick lane, the database) from a minimal in-process ASGI caller and divides the
process's CPU time (`time.process_time()`, all threads) by the requests made: the median of
several runs moves little when other processes compete for the cores, since waiting for a core
is not CPU time. The caller itself costs a few microseconds a request.

Measured:
- `client_credentials`: a department system (client_secret_basic) gets an access token;
- `refresh_token`: an e-service rotates its refresh token (one family, a chain of rotations);
- `login`: POST /login for a registered citizen, with a near-free argon2 (1 pass, 8 KiB)
  standing in for the real one, so what is left is the login's own work (two transactions,
  throttles, the audit entry, the session, the redirect); the stand-in's own cost is shown and
  subtracted.

    python -m bench.grant_cost                     # SQLite in a temporary directory
    SHANAKHT_DATABASE_URL=postgresql+psycopg://... python -m bench.grant_cost   # own schema
    python -m bench.grant_cost --requests 2000 --runs 7 --only client_credentials

`--count` gives figures no other process can move: SQL statements and Python function calls
per request (cProfile's count, the handler run on the event loop's thread so one profiler sees
it all). `--callgrind` counts instructions instead (valgrind, slow: use --requests 200 and
--only): the run is made twice under callgrind, with N requests and with none, and the
difference divided by N, so setup and imports cancel out.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import logging
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import event

from api.app import create_app
from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from api.web import CSRF_COOKIE, cookie_name
from audit import pseudonym
from bench.audit_log import _postgres_schema
from bench.identity import (
    ESERVICE_SCOPES,
    PASSWORD,
    SERVICE_SCOPE,
    THROTTLE_LIMIT,
    _pick_citizens,
    _register,
    bench_clients,
    bench_settings,
)
from identity.accounts import Accounts
from identity.login import ACR_LOW
from identity.nadra import ensure_registry, read_registry
from identity.oidc.tokens import Family
from identity.passwords import HashParameters, PasswordHasher
from identity.policy import Limit

KINDS = ("client_credentials", "refresh_token", "login")
STAND_IN_HASH = HashParameters(time_cost=1, memory_kib=8, parallelism=1)
Headers = list[tuple[bytes, bytes]]


@dataclass
class Answer:
    status: int
    headers: Headers
    body: bytes


async def call(app: Any, method: str, path: str, headers: Headers, body: bytes = b"") -> Answer:
    """One HTTP request through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    delivered = False
    answer = Answer(0, [], b"")

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer


def form(fields: dict[str, str]) -> tuple[Headers, bytes]:
    return [(b"content-type", b"application/x-www-form-urlencoded")], urlencode(fields).encode()


def basic(client_id: str, secret: str) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())


@dataclass
class Bench:
    """What the workloads need: the app, the clients' secrets, a citizen."""

    runtime: Runtime
    app: Any
    service_secret: str
    eservice_secret: str
    cnic: str
    citizen_id: str


def _set_up(settings: Settings) -> Bench:
    runtime = open_runtime(settings)
    prepare(runtime)
    runtime.identity.hasher = PasswordHasher(STAND_IN_HASH)
    unlimited = Limit(THROTTLE_LIMIT, runtime.identity.policy.lockout)
    runtime.identity.policy = replace(
        runtime.identity.policy,
        per_address_enrolment=unlimited,
        per_address=unlimited,
        per_account=unlimited,
    )
    record = _pick_citizens(read_registry(ensure_registry(runtime.identity.nadra_file)), 1)[0]
    _register(runtime, record)
    service, eservice = bench_clients(runtime)
    with runtime.transaction() as session:
        subject = pseudonym(record.cnic, key=runtime.pseudonym_key)
        account = Accounts(session, runtime.identity.sealer, runtime.row_seal).credentials(subject)
        assert account is not None
    return Bench(runtime, create_app(runtime), service, eservice, record.cnic, account.id)


def _first_refresh_token(bench: Bench) -> str:
    """A refresh token as the code exchange would leave it, made through the services (the
    browser flow it stands for is not what is measured)."""
    runtime = bench.runtime
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        client = provider.clients.get("bench-eservice")
        assert client is not None
        _cookie, sso = provider.sessions.create(
            bench.citizen_id, acr=ACR_LOW, amr=["pwd"], client_address="bench", user_agent="bench"
        )
        family = Family(client, bench.citizen_id, sso.id, os.urandom(16).hex(), None, ACR_LOW)
        token, row = provider.tokens._new_refresh_token(family, list(ESERVICE_SCOPES))
        provider.tokens._store(provider.tokens._sealed(row))
    return token


def _workload(bench: Bench, kind: str) -> Callable[[], Any]:
    """An async function making one request of `kind`, checking it did what it should."""
    if kind == "client_credentials":
        headers, body = form({"grant_type": "client_credentials", "scope": SERVICE_SCOPE})
        headers.append(basic("bench-department", bench.service_secret))

        async def grant() -> None:
            answer = await call(bench.app, "POST", "/oauth/token", headers, body)
            assert answer.status == 200, answer.body

        return grant
    if kind == "refresh_token":
        held = [_first_refresh_token(bench)]
        auth = basic("bench-eservice", bench.eservice_secret)

        async def rotate() -> None:
            headers, body = form({"grant_type": "refresh_token", "refresh_token": held[0]})
            answer = await call(bench.app, "POST", "/oauth/token", [*headers, auth], body)
            assert answer.status == 200, answer.body
            held[0] = re.search(rb'"refresh_token":"([^"]+)"', answer.body).group(1).decode()  # type: ignore[union-attr]

        return rotate
    if kind == "login":
        csrf = "bench-csrf-token-0123456789"
        cookie = f"{cookie_name(bench.runtime, CSRF_COOKIE)}={csrf}".encode()
        fields = {"cnic": bench.cnic, "password": PASSWORD, "csrf": csrf}
        headers, body = form(fields)
        headers.append((b"cookie", cookie))

        async def login() -> None:
            answer = await call(bench.app, "POST", "/login", headers, body)
            assert answer.status == 303, answer.body

        return login
    raise ValueError(kind)


def _cpu_per_request(work: Callable[[], Any], count: int) -> float:
    async def run() -> float:
        started = time.process_time()
        for _ in range(count):
            await work()
        return time.process_time() - started

    return asyncio.run(run()) / count


def _stand_in_hash_ms(count: int = 2000) -> float:
    hasher = PasswordHasher(STAND_IN_HASH)
    encoded = hasher.hash(PASSWORD)
    started = time.process_time()
    for _ in range(count):
        hasher.verify(encoded, PASSWORD)
    return (time.process_time() - started) / count * 1000


@contextlib.contextmanager
def _database() -> Iterator[str | None]:
    url = os.environ.get("SHANAKHT_DATABASE_URL")
    if not url:
        yield None
        return
    with _postgres_schema(url) as schema_url:
        yield schema_url


@contextlib.contextmanager
def _bench() -> Iterator[Bench]:
    logging.getLogger().setLevel(logging.WARNING)  # as the servers run: no access log lines
    with tempfile.TemporaryDirectory() as tmp, _database() as url:
        settings = bench_settings(Path(tmp) / "var", url)
        bench = _set_up(settings)
        try:
            yield bench
        finally:
            bench.runtime.close()


def measure(kinds: list[str], requests: int, runs: int, warmup: int) -> dict[str, list[float]]:
    """CPU ms per request of each kind, one figure per run."""
    results: dict[str, list[float]] = {}
    with _bench() as bench:
        for kind in kinds:
            work = _workload(bench, kind)
            _cpu_per_request(work, warmup)
            results[kind] = [_cpu_per_request(work, requests) * 1000 for _ in range(runs)]
    return results


def count(kinds: list[str], requests: int) -> dict[str, tuple[float, float]]:
    """(SQL statements, Python function calls) per request of each kind."""
    import fastapi.routing

    import api.routes.oidc

    async def inline(work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return work(*args, **kwargs)

    async def unshed(work: Callable[..., Any], *args: Any, max_wait: float = 0) -> Any:
        return work(*args)  # the quick lane, never full here

    # Handlers on this thread, so that the one profiler sees all their calls.
    vars(api.routes.oidc)["quick"] = unshed
    vars(fastapi.routing)["run_in_threadpool"] = inline
    results: dict[str, tuple[float, float]] = {}
    with _bench() as bench:
        statements = [0]

        def counted(*_args: Any) -> None:
            statements[0] += 1

        event.listen(bench.runtime.engine, "before_cursor_execute", counted)
        for kind in kinds:
            work = _workload(bench, kind)
            _cpu_per_request(work, 50)
            statements[0] = 0
            profile = cProfile.Profile()

            async def run(work: Callable[[], Any] = work) -> None:
                for _ in range(requests):
                    await work()

            profile.enable()
            asyncio.run(run())
            profile.disable()
            calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
            results[kind] = (statements[0] / requests, calls / requests)
    return results


def _instructions(kinds: list[str], requests: int) -> int:
    """Instructions callgrind counts for a run of this script with `requests` of each kind."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-m",
            "bench.grant_cost",
            "--inside-callgrind",
            "--requests",
            str(requests),
            "--only",
            ",".join(kinds),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="per run (default 2000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per kind (default 5)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--only", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--count", action="store_true", help="statements and Python calls")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--inside-callgrind", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
    database = "PostgreSQL" if os.environ.get("SHANAKHT_DATABASE_URL") else "SQLite"
    if args.inside_callgrind:
        measure(kinds, args.requests, 1, 20) if args.requests else measure(kinds, 0, 0, 20)
        return
    if args.count:
        print(f"per request ({database}, {args.requests} requests): SQL statements, Python calls")
        for kind, (statements, calls) in count(kinds, args.requests).items():
            print(f"  {kind:<20} {statements:6.2f} {calls:8.0f}")
        return
    if args.callgrind:
        print(f"instructions per request ({database}, callgrind, {args.requests} requests)")
        for kind in kinds:
            many = _instructions([kind], args.requests)
            none = _instructions([kind], 0)
            print(f"  {kind:<20} {(many - none) / args.requests / 1e6:8.2f} M", flush=True)
        return
    results = measure(kinds, args.requests, args.runs, args.warmup)
    print(f"CPU ms per request ({database}, {args.runs} runs of {args.requests}; median, min, max)")
    for kind, samples in results.items():
        print(
            f"  {kind:<20} {statistics.median(samples):7.3f}  "
            f"{min(samples):7.3f}  {max(samples):7.3f}"
        )
    if "login" in results:
        stand_in = _stand_in_hash_ms()
        login = statistics.median(results["login"]) - stand_in
        print(f"  login less its stand-in hash ({stand_in:.3f} ms): {login:.3f} ms")


if __name__ == "__main__":
    main()
