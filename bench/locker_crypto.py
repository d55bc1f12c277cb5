"""Locker encryption benchmark: `encrypt_stream` and `decrypt_stream` against
`openssl speed -evp aes-256-gcm` on the same core, the chunk size sweep that chose 64 KiB,
the memory a stream holds, and data keys re-wrapped per second.

    python -m bench.locker_crypto      (SHANAKHT_BENCH_LOCKER_MB sets the stream, 256 MB)

The issue's targets: the encryption layer at 25% or more of openssl's AES-256-GCM rate per
core (its 16384-byte column: the physical limit), re-wrap at 5,000 data keys a second or more.
Ours does more per byte than openssl's loop: it also hashes the plaintext with SHA-256 (the
digest the locker checks before serving) and re-cuts the caller's pieces into chunks.

The plaintext is a 16 MiB random pool handed over again and again in 1 MiB pieces, as a file
or S3 read would hand it, so no 256 MB is ever held and os.urandom is not what is timed. The
ciphertext for decryption is 64 MiB, held once and decrypted four times over.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from locker.crypto import (
    CHUNK_SIZE,
    Context,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    wrap,
)
from locker.kek import LocalKeks, rewrap

MIB = 1024 * 1024
STREAM = int(os.environ.get("SHANAKHT_BENCH_LOCKER_MB", "256")) * MIB
POOL = 16 * MIB
PIECE = 1 * MIB
HELD = 64 * MIB  # the ciphertext decrypted, again and again
ROUNDS = 5
SWEEP = (16 * 1024, 64 * 1024, 256 * 1024, 1 * MIB)
SWEEP_BYTES = 64 * MIB
REWRAP_KEYS = 20_000
SHARE_TARGET = 0.25
REWRAP_TARGET = 5_000.0
CONTEXT = Context("bench-document", 1, "bench-owner")


def _openssl_gcm() -> float:
    """openssl's AES-256-GCM bytes per second on one core, on 16384-byte blocks."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "1", "-bytes", "16384", "-evp", "aes-256-gcm"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = re.search(r"^type\s+(.*)$", out, re.MULTILINE)
    row = re.search(r"^AES-256-GCM\s+(.*)$", out, re.MULTILINE | re.IGNORECASE)
    if not header or not row:
        raise RuntimeError(f"cannot read openssl speed's output:\n{out}")
    columns = re.findall(r"(\d+) bytes", header.group(1))
    values = row.group(1).split()
    if "16384" not in columns or len(values) != len(columns):
        raise RuntimeError(f"no 16384-byte column in openssl speed's output:\n{out}")
    return float(values[columns.index("16384")].rstrip("k")) * 1000


def _plaintext(pool: bytes, size: int) -> Iterator[memoryview]:
    view, sent = memoryview(pool), 0
    while sent < size:
        for start in range(0, len(pool), PIECE):
            if sent >= size:
                return
            yield view[start : start + PIECE]
            sent += PIECE


def _encrypt_rate(pool: bytes, key: bytes, size: int, chunk_size: int = CHUNK_SIZE) -> float:
    started = time.perf_counter()
    for _ in encrypt_stream(_plaintext(pool, size), key, CONTEXT, chunk_size=chunk_size):
        pass
    return size / (time.perf_counter() - started)


def _sealed(pool: bytes, key: bytes, size: int, chunk_size: int = CHUNK_SIZE) -> bytes:
    return b"".join(encrypt_stream(_plaintext(pool, size), key, CONTEXT, chunk_size=chunk_size))


def _decrypt_rate(sealed: bytes, key: bytes, size: int) -> float:
    """Decrypt `sealed` (of `size` plaintext bytes) until STREAM bytes have come out, read in
    1 MiB pieces as a store hands them over."""
    view, done = memoryview(sealed), 0
    started = time.perf_counter()
    while done < STREAM:
        pieces = (view[i : i + PIECE] for i in range(0, len(view), PIECE))
        for _ in decrypt_stream(pieces, key, CONTEXT):
            pass
        done += size
    return done / (time.perf_counter() - started)


def _stream_rows(pool: bytes) -> list[tuple[str, str, str]]:
    key = new_data_key()
    sealed = _sealed(pool, key, HELD)
    rounds = [
        (_openssl_gcm(), _encrypt_rate(pool, key, STREAM), _decrypt_rate(sealed, key, HELD))
        for _ in range(ROUNDS)
    ]  # side by side: this machine's speed drifts by a third within a minute
    limit, encrypts, decrypts = (statistics.median(column) for column in zip(*rounds, strict=True))
    return [
        ("openssl speed -evp aes-256-gcm, 16 KiB, one core", _mbs(limit), "the limit"),
        (f"encrypt_stream {STREAM // MIB} MiB, one core", _mbs(encrypts), _share(encrypts, limit)),
        (f"decrypt_stream {STREAM // MIB} MiB, one core", _mbs(decrypts), _share(decrypts, limit)),
    ]


def _sweep_rows(pool: bytes) -> list[tuple[str, str, str]]:
    key = new_data_key()
    sealed = {size: _sealed(pool, key, SWEEP_BYTES, size) for size in SWEEP}
    rates: dict[int, list[tuple[float, float]]] = {size: [] for size in SWEEP}
    for _ in range(3):
        for size in SWEEP:
            encrypts = _encrypt_rate(pool, key, SWEEP_BYTES, size)
            started = time.perf_counter()
            view = memoryview(sealed[size])
            for _ in decrypt_stream((view[i : i + PIECE] for i in range(0, len(view), PIECE)),
                                    key, CONTEXT):  # fmt: skip
                pass
            rates[size].append((encrypts, SWEEP_BYTES / (time.perf_counter() - started)))
    return [
        (
            f"chunk {size // 1024} KiB: encrypt / decrypt",
            f"{statistics.median(r[0] for r in runs) / 1e6:,.0f} / "
            f"{statistics.median(r[1] for r in runs) / 1e6:,.0f}",
            "MB/s" + (" (the chunk size in use)" if size == CHUNK_SIZE else ""),
        )
        for size, runs in rates.items()
    ]


def _memory_row(pool: bytes) -> tuple[str, str, str]:
    """Python's peak allocation while a stream is encrypted and decrypted straight through."""
    key = new_data_key()
    tracemalloc.start()
    try:
        sealed = encrypt_stream(_plaintext(pool, STREAM), key, CONTEXT)
        opened = decrypt_stream(sealed, key, CONTEXT)
        for _ in opened:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if opened.sha256 != sealed.sha256:
        raise RuntimeError("the benchmark's own stream did not come back")
    return (
        f"peak memory, encrypt into decrypt of {STREAM // MIB} MiB",
        f"{peak / 1024:,.0f} KiB",
        "flat: a few chunks, whatever the size",
    )


def _rewrap_row() -> tuple[str, str, str]:
    with tempfile.TemporaryDirectory() as folder:
        keks = LocalKeks(Path(folder), os.urandom(32))
        wrapped = [
            wrap(new_data_key(), keks.current(), Context(f"doc-{n}", 1, "owner"))
            for n in range(REWRAP_KEYS)
        ]
        rates = []
        for _ in range(ROUNDS):
            keks.rotate()
            started = time.perf_counter()
            moved = [rewrap(blob, keks) for blob in wrapped]
            rates.append(REWRAP_KEYS / (time.perf_counter() - started))
            wrapped = [blob for blob in moved if blob is not None]
            if len(wrapped) != REWRAP_KEYS:
                raise RuntimeError("a data key was not re-wrapped")
    rate = statistics.median(rates)
    met = "met" if rate >= REWRAP_TARGET else "NOT met"
    return (
        "rewrap (unwrap + wrap), one core, keys/s",
        f"{rate:,.0f}",
        f"target {REWRAP_TARGET:,.0f}: {met}",
    )


def _mbs(rate: float) -> str:
    return f"{rate / 1e6:,.0f} MB/s"


def _share(rate: float, limit: float) -> str:
    share = rate / limit
    met = "met" if share >= SHARE_TARGET else "NOT met"
    return f"{100 * share:.0f}% of openssl (target {100 * SHARE_TARGET:.0f}%): {met}"


def main() -> None:
    started = time.perf_counter()
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})  # one core, and openssl (a child) inherits it
    print(f"locker encryption benchmark: pinned to core {core}")
    pool = os.urandom(POOL)
    rows = _stream_rows(pool)
    rows += _sweep_rows(pool)
    rows.append(_memory_row(pool))
    rows.append(_rewrap_row())
    print()
    width = max(len(r[0]) for r in rows)
    for label, value, verdict in rows:
        print(f"{label:<{width}}  {value:>14}  {verdict}")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
