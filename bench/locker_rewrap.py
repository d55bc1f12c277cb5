"""Re-wrap benchmark: `locker.rewrap.rewrap_all` over 20,000 stored data keys in a SQLite
database, after a KEK rotation, the whole job timed (the count, every batch's read, unwrap,
wrap and compare-and-set write and commit, and the audit entry), not the crypto alone
(`bench/locker_crypto.py` times that).

    python -m bench.locker_rewrap      (SHANAKHT_BENCH_REWRAP_KEYS sets the keys, 20,000)

The issue's target: 5,000 data keys a second or more. Each round rotates the KEK first, so
every key moves in every round; the median of the rounds is the figure.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from api.migrate import upgrade
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from locker.crypto import Context, new_data_key, unwrap, wrap, wrapped_under
from locker.models import documents, versions
from locker.rewrap import BATCH_SIZE, rewrap_all

KEYS = int(os.environ.get("SHANAKHT_BENCH_REWRAP_KEYS", "20000"))
ROUNDS = 3
TARGET = 5_000.0
OWNER = "p:" + "E" * 43


def _fill(runtime: Runtime) -> None:
    """KEYS document versions, each with a data key wrapped as the locker wraps one (bound to
    its document, version and owner), and no content: the job never reads any."""
    now, kek = datetime.now(UTC), runtime.keks.current()
    ids = [f"{n:032x}" for n in range(KEYS)]
    with runtime.transaction() as session:
        session.execute(
            insert(documents),
            [
                {"id": i, "owner": OWNER, "doctype": "other", "issuer": "self", "uri": f"self-{i}",
                 "title": "bench", "status": "active", "issued_at": now}
                for i in ids
            ],
        )  # fmt: skip
        session.execute(
            insert(versions),
            [
                {"document_id": i, "version": 1, "object_key": f"documents/{i}/1",
                 "wrapped_key": wrap(new_data_key(), kek, Context(i, 1, OWNER)),
                 "sha256": bytes(32), "size": 0, "content_type": "application/pdf",
                 "created_at": now}
                for i in ids
            ],
        )  # fmt: skip


def _check(runtime: Runtime, kek_version: str) -> None:
    """Every key is under the new KEK and still opens in its own context."""
    with runtime.sessions() as session:
        rows = session.execute(select(versions.c.document_id, versions.c.wrapped_key)).all()
    if len(rows) != KEYS or any(wrapped_under(r.wrapped_key) != kek_version for r in rows):
        raise RuntimeError("a data key was not re-wrapped")
    for row in rows[:: max(1, KEYS // 100)]:
        unwrap(row.wrapped_key, runtime.keks.get, Context(row.document_id, 1, OWNER))


def _round(runtime: Runtime) -> float:
    new = runtime.keks.rotate()
    started = time.perf_counter()
    report = rewrap_all(runtime.transaction, runtime.keks, runtime.audit_log, actor="admin:bench")
    elapsed = time.perf_counter() - started
    if (report.rewrapped, report.kek_version) != (KEYS, new):
        raise RuntimeError(f"expected {KEYS} keys moved to {new}, got {report}")
    _check(runtime, new)
    return KEYS / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder) / "var",
            database_url=f"sqlite:///{Path(folder) / 'bench.db'}",
            audit_checkpoint_interval=0,
        )
        runtime = open_runtime(settings)
        try:
            upgrade(runtime.engine)
            _fill(runtime)
            rates = [_round(runtime) for _ in range(ROUNDS)]
        finally:
            runtime.close()
    rate = statistics.median(rates)
    met = "met" if rate >= TARGET else "NOT met"
    runs = ", ".join(f"{r:,.0f}" for r in rates)
    print(f"rewrap_all, {KEYS:,} keys in SQLite, batches of {BATCH_SIZE}: runs {runs} keys/s")
    print(f"median {rate:,.0f} data keys/s (target {TARGET:,.0f}: {met})")


if __name__ == "__main__":
    main()
