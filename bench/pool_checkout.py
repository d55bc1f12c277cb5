"""What checking a pooled PostgreSQL connection costs: `pool_pre_ping` (a round trip at every
checkout, as before) against `api.database`'s socket check (now).

Two measures, on one PostgreSQL (SHANAKHT_DATABASE_URL, a schema of its own), in one process,
blocks alternated so that both sides see the same machine:
- the check alone, on an idle pooled connection: SQLAlchemy's `do_ping` against the poll;
- a client_credentials grant's unit of work as the token endpoint runs it
  (`Runtime.rerunnable`: a transaction, the client's row, the token, its audit entry), wall
  time, this process's CPU and the backend's (from /proc: PostgreSQL must run on this machine).

    SHANAKHT_DATABASE_URL=postgresql+psycopg://... python -m bench.pool_checkout [grants]
"""

from __future__ import annotations

import os
import select
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from api.database import _DEAD, session_factory
from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from bench.audit_log import _postgres_schema
from bench.identity import bench_settings
from identity.oidc.clients import CLIENT_SECRET_BASIC, SERVICE, NewClient
from identity.oidc.tokens import TokenResponse

BLOCKS = 6
CHECKS = 1000
TICK = os.sysconf("SC_CLK_TCK")


def _backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _checks(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None

        def ping() -> None:
            engine.dialect.do_ping(raw)

        def poll() -> None:
            poller = select.poll()
            poller.register(raw.fileno(), _DEAD)
            assert not poller.poll(0)

        checks: dict[str, Callable[[], None]] = {"pre-ping": ping, "socket check": poll}
        timed: dict[str, list[tuple[float, float]]] = {name: [] for name in checks}
        for _ in range(BLOCKS):
            for name, check in checks.items():
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(CHECKS):
                    check()
                timed[name].append(
                    (
                        (time.perf_counter() - wall) / CHECKS * 1e6,
                        (time.process_time() - cpu) / CHECKS * 1e6,
                    )
                )
    for name, rows in timed.items():
        print(
            f"{name:13s} one check: wall median {statistics.median(r[0] for r in rows):.1f} us "
            f"(best block {min(r[0] for r in rows):.1f}), "
            f"CPU {statistics.median(r[1] for r in rows):.1f} us"
        )


def _grants(runtime: Runtime, count: int) -> None:
    with runtime.transaction() as session:
        runtime.provider(session).clients.add(
            NewClient(
                id="dept",
                name="A department",
                kind=SERVICE,
                auth_method=CLIENT_SECRET_BASIC,
                scopes=("locker.fetch",),
            )
        )

    def grant(session: Session) -> TokenResponse:
        provider = runtime.provider(session)
        client = provider.clients.get("dept")
        assert client is not None
        return provider.tokens.client_credentials(client, scope="locker.fetch", dpop_jkt=None)

    pinging = create_engine(runtime.engine.url, pool_pre_ping=True)
    engines = {"pre-ping": pinging, "socket check": runtime.engine}
    timed: dict[str, list[tuple[float, float, float]]] = {name: [] for name in engines}
    try:
        for _ in range(BLOCKS):
            for name, engine in engines.items():
                runtime.engine, runtime.sessions = engine, session_factory(engine)
                for _ in range(30):  # the pool filled, the caches warm
                    runtime.rerunnable(grant)
                with engine.connect() as connection:
                    pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
                server, wall, cpu = _backend_cpu(pid), time.perf_counter(), time.process_time()
                for _ in range(count):
                    runtime.rerunnable(grant)
                timed[name].append(
                    (
                        (time.perf_counter() - wall) / count * 1e3,
                        (time.process_time() - cpu) / count * 1e3,
                        (_backend_cpu(pid) - server) / count * 1e3,
                    )
                )
    finally:
        pinging.dispose()
    for name, rows in timed.items():
        walls = ", ".join(f"{r[0]:.2f}" for r in rows)
        print(
            f"{name:13s} one grant, median of {BLOCKS} blocks of {count}: "
            f"wall {statistics.median(r[0] for r in rows):.2f} ms ({walls}), "
            f"client CPU {statistics.median(r[1] for r in rows):.2f} ms, "
            f"backend CPU {statistics.median(r[2] for r in rows):.2f} ms"
        )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    base = os.environ.get("SHANAKHT_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        sys.exit("SHANAKHT_DATABASE_URL must name a PostgreSQL database")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp, _postgres_schema(base) as url:
        settings = bench_settings(Path(tmp) / "var", url)
        runtime = open_runtime(settings)
        try:
            prepare(runtime)
            _checks(runtime.engine)
            _grants(runtime, count)
        finally:
            runtime.close()


if __name__ == "__main__":
    main()
