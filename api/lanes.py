"""Where a handler's blocking work runs: anyio's shared thread pool, or the quick lane.

FastAPI runs a plain-function handler in anyio's thread pool, up to 40 threads a process. That
suits work that waits on something outside (NADRA, the SMS gateway, an object store over HTTP,
the password hashing pool). It does not suit the token endpoints, which only compute and use the
database: one thread at a time holds the GIL, and one writer at a time SQLite's write lock, so
more threads add only switching, and a writer that must wait for the GIL after each SQLite
call holds the write lock the longer. Measured with `python -m bench.identity` (two server
processes on two cores, wrk, 16 connections each): client_credentials 977 grants/s in one
thread a process against 422/s in the pool, at half the CPU per grant. A request waiting for
the lane waits on the event loop, which costs nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

T = TypeVar("T")

QUICK_THREADS = 1  # two were slower than one on SQLite and no faster on PostgreSQL

# How long a thread that wants the GIL waits before the running one must hand it over (Python's
# default is 5 ms). A thread holding SQLite's write lock lets go of the GIL in every SQLite
# call and must win it back after; beside CPU-bound work (a PDF being signed, a QR being
# decoded) each win took up to 5 ms, so the lock was held 20-30 ms where 1-2 ms of work was
# done, and every other writer, in both processes, queued behind it. `python -m bench.soak`
# (the mixed workload at 214 requests/s, two processes): token grants p99 128 ms at 0.5 ms
# against 212-222 ms at 5 ms, uploads 69 against 140, the same CPU.
SWITCH_INTERVAL = 0.0005
_quick: RunVar[CapacityLimiter] = RunVar("shanakht_quick_lane")


def _quick_limiter() -> CapacityLimiter:
    """One lane per event loop (a limiter belongs to the loop that made it)."""
    try:
        return _quick.get()
    except LookupError:
        limiter = CapacityLimiter(QUICK_THREADS)
        _quick.set(limiter)
        return limiter


async def quick(work: Callable[..., T], *args: object) -> T:
    """Run `work(*args)` in the quick lane: only for work that never waits on another system
    (a wait there would stall every request queued behind it)."""
    return await to_thread.run_sync(work, *args, limiter=_quick_limiter())


def hand_over_quickly() -> None:
    """Set the process's GIL switch interval (see SWITCH_INTERVAL): once per server process."""
    sys.setswitchinterval(SWITCH_INTERVAL)
