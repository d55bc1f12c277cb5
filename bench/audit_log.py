"""Audit log benchmark: appends, verification and proofs on SQLite (and PostgreSQL).

Targets (issue 2, on this 2-core machine with SQLite): >= 2,000 single appends/s, each its own
transaction; >= 20,000/s in batches; `audit verify` >= 100,000 entries/s with < 100 MB
resident over 1,000,000 entries; an inclusion proof on a 1,000,000-entry log < 5 ms at p99.

The peer, where it installs, is pymerkle's SQLite-backed tree, measured in the same run on the
same leaves. Set SHANAKHT_BENCH_ENTRIES for a smaller log; SHANAKHT_DATABASE_URL (PostgreSQL)
adds a PostgreSQL column.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.migrate import upgrade
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit import AuditEvent

ENTRIES = int(os.environ.get("SHANAKHT_BENCH_ENTRIES", "1000000"))
SINGLES = 5_000
BATCH = 1_000
PROOFS = 2_000


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        actor="client:education-department",
        action="locker.document.read",
        subject=f"p:{i:043d}",
        resource=f"shanakht:sed-transfer-order-{i}",
        purpose="once-only fetch for a transfer application",
        details={"consent": f"c-{i}", "fields": ["name", "post"]},
    )


@contextmanager
def _postgres_schema(base_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(q * 1000) - 1]


def _timed(fn: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _bench_backend(runtime: Runtime) -> dict[str, float]:
    results: dict[str, float] = {}
    counter = iter(range(10**12))

    def single() -> None:
        with runtime.sessions() as session, session.begin():
            runtime.audit_log(session).append(_event(next(counter)))

    latencies = _timed(single, SINGLES)
    results["single appends/s"] = SINGLES / sum(latencies)
    results["single append p99 ms"] = _percentile(latencies, 0.99) * 1000

    remaining = ENTRIES - SINGLES
    start = time.perf_counter()
    while remaining > 0:
        n = min(BATCH, remaining)
        with runtime.sessions() as session, session.begin():
            runtime.audit_log(session).append_many(_event(next(counter)) for _ in range(n))
        remaining -= n
    results[f"batched appends/s ({BATCH}/tx)"] = (ENTRIES - SINGLES) / (time.perf_counter() - start)
    with runtime.sessions() as session, session.begin():
        runtime.audit_log(session).checkpoint()

    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.verify_child",
            runtime.settings.resolved_database_url,
            runtime.audit_signer.verifier_key,
            runtime.settings.resolved_audit_origin,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    verified = json.loads(child.stdout)
    assert verified["entries"] == ENTRIES
    results["verify entries/s"] = ENTRIES / verified["seconds"]
    results["verify peak RSS MiB"] = verified["peak_mib"]

    rng = random.Random(7)
    with runtime.sessions() as session:
        log = runtime.audit_log(session)
        samples = _timed(lambda: log.inclusion_proof(rng.randrange(ENTRIES), ENTRIES), PROOFS)
    results["inclusion proof p50 ms"] = statistics.median(samples) * 1000
    results["inclusion proof p99 ms"] = _percentile(samples, 0.99) * 1000
    return results


def _bench_pymerkle(leaves: int) -> dict[str, float]:
    """The peer: pymerkle's SqliteTree on the same entry bytes."""
    try:
        from pymerkle import SqliteTree
    except ImportError:
        return {}
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = SqliteTree(os.path.join(tmp, "merkle.db"))
        data = [json.dumps({"i": i}).encode() for i in range(leaves)]
        start = time.perf_counter()
        for i in range(0, leaves, BATCH):
            tree.append_entries(data[i : i + BATCH])
        results[f"batched appends/s ({BATCH}/tx)"] = leaves / (time.perf_counter() - start)
        singles = min(SINGLES, 2_000)
        start = time.perf_counter()
        for i in range(singles):
            tree.append_entry(data[i])
        results["single appends/s"] = singles / (time.perf_counter() - start)
        size = tree.get_size()
        rng = random.Random(7)
        count = 200
        samples = _timed(lambda: tree.prove_inclusion(rng.randrange(1, size + 1), size), count)
        results["inclusion proof p50 ms"] = statistics.median(samples) * 1000
        results["inclusion proof p99 ms"] = _percentile(samples, 0.99) * 1000
        tree.con.close()
    return results


def _run(url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "var", database_url=url, audit_checkpoint_interval=0
        )
        runtime = open_runtime(settings)
        upgrade(runtime.engine)
        try:
            return _bench_backend(runtime)
        finally:
            runtime.close()


def main() -> None:
    columns: dict[str, dict[str, float]] = {}
    print(f"audit log benchmark: {ENTRIES:,} entries", flush=True)
    columns["SQLite"] = _run(None)
    pg = os.environ.get("SHANAKHT_DATABASE_URL", "")
    if pg.startswith("postgresql"):
        with _postgres_schema(pg) as url:
            columns["PostgreSQL"] = _run(url)
    peer = _bench_pymerkle(min(ENTRIES, 100_000))
    if peer:
        columns["pymerkle SqliteTree (100k)"] = peer
    rows = list(dict.fromkeys(k for col in columns.values() for k in col))
    width = max(map(len, rows))
    print(f"{'':{width}}" + "".join(f"  {name:>26}" for name in columns))
    for row in rows:
        cells = "".join(
            f"  {columns[c][row]:>26,.1f}" if row in columns[c] else f"  {'-':>26}" for c in columns
        )
        print(f"{row:{width}}{cells}")


if __name__ == "__main__":
    main()
