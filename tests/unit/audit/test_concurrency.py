"""Many writers at once: sequence numbers stay dense and unique, and the log still verifies."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from sqlalchemy import func, select

from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit import verify_log
from audit.models import entries
from tests.unit.audit.helpers import append, checkpoint, event

WRITERS = 6
APPENDS_EACH = 40


def _write_singles(runtime: Runtime, writer: int) -> list[int]:
    seqs = []
    for i in range(APPENDS_EACH):
        with runtime.sessions() as session, session.begin():
            seqs.append(runtime.audit_log(session).append(event(writer * 1000 + i)).seq)
    return seqs


def _process_writer(settings: Settings, writer: int) -> list[int]:
    runtime = open_runtime(settings)
    try:
        return _write_singles(runtime, writer)
    finally:
        runtime.close()


def _check(runtime: Runtime, seqs: list[int]) -> None:
    total = WRITERS * APPENDS_EACH
    assert sorted(seqs) == list(range(total)), "every writer got distinct, gap-free seqs"
    checkpoint(runtime)
    with runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(entries)).scalar_one() == total
        assert (
            verify_log(connection, runtime.audit_verifier, runtime.audit_signer.name).size == total
        )


def test_concurrent_threads(runtime: Runtime) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        results = pool.map(lambda w: _write_singles(runtime, w), range(WRITERS))
        seqs = [s for batch in results for s in batch]
    _check(runtime, seqs)


def test_concurrent_processes(runtime: Runtime, settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WRITERS, mp_context=context) as pool:
        futures = [pool.submit(_process_writer, settings, w) for w in range(WRITERS)]
        seqs = [s for future in futures for s in future.result()]
    _check(runtime, seqs)


def test_batches_interleave_with_singles(runtime: Runtime) -> None:
    def batches(_: int) -> None:
        append(runtime, 60, batch=7)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batches, range(4)))
    checkpoint(runtime)
    with runtime.engine.connect() as connection:
        assert verify_log(connection, runtime.audit_verifier, runtime.audit_signer.name).size == 240
