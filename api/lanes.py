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

Nothing, that is, until more arrives than the lane can serve: then the queue grows without
bound, and every request in it is answered long after its client gave up (the soak on
PostgreSQL: token grants at a p50 of 308 s), each still costing the lane its full work. So the
lane sheds load: a request that would wait longer than the configured maximum
(`SHANAKHT_QUICK_LANE_MAX_WAIT`) is refused at once with `LaneFull`, which the routes answer
503 with Retry-After. See `Lane.expected_wait` for how the wait is judged.

The default maximum, 2 s, is well inside what a client commonly waits for an answer (httpx's
default time-out is 5 s), so an admitted request is answered while its client still listens;
and it is about 900 grants of work at the 2.2 ms a grant bench/soak.py assumes, so a burst of
that size rides through without a refusal. Past that the backlog is not a burst but more
work than the lane does, which waiting cannot cure.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import TypeVar

from anyio import CancelScope, CapacityLimiter, WouldBlock
from anyio.lowlevel import RunVar

from api import metrics
from api.metrics import LaneName

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

# Weight of the newest job in the running average of service times: about the last ten jobs
# count, so the estimate follows a change of load (a slower database, a burst of refresh
# grants) within milliseconds at the lane's rates, without one slow job swinging it.
SERVICE_WEIGHT = 0.2
# Retry-After is the expected wait rounded up, between these: at least a second (the header
# counts whole seconds), and at most a minute, so a lane stuck behind one job does not send
# clients away for longer than an operator needs to notice.
RETRY_AFTER_MIN = 1
RETRY_AFTER_MAX = 60


class LaneFull(Exception):
    """The lane would not start this work within the maximum wait, so it was refused before
    anything of it ran: the caller answers 503 with `retry_after` (seconds)."""

    def __init__(self, lane: LaneName, expected_wait: float) -> None:
        super().__init__(f"the {lane} lane is full: about {expected_wait:.1f} s to wait")
        self.lane = lane
        self.expected_wait = expected_wait
        self.retry_after = min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, math.ceil(expected_wait)))


# The lanes' threads, one executor per thread count and process: made on first use, and made
# anew in a process forked from one that had made it (a forked child has none of its parent's
# threads, and an executor whose idle thread is gone would queue work for ever).
_executors: dict[tuple[int, int], ThreadPoolExecutor] = {}
_executors_made = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    key = (os.getpid(), threads)
    found = _executors.get(key)
    if found is None:
        with _executors_made:  # two event loops (tests) may ask at once
            found = _executors.get(key)
            if found is None:
                found = ThreadPoolExecutor(threads, thread_name_prefix=f"shanakht-lane-{threads}")
                _executors[key] = found
    return found


def admit_within(name: LaneName, expected_wait: Callable[[], float], max_wait: float) -> None:
    """Refuse (`LaneFull`, counted under `name`) if `expected_wait()` is over `max_wait`
    seconds; `max_wait` 0 admits everything (and asks nothing). For the lanes and the pool's
    gate alike."""
    if max_wait <= 0:
        return
    wait = expected_wait()
    if wait > max_wait:
        metrics.shed(name)
        raise LaneFull(name, wait)


class Lane:
    """`threads` threads for one kind of work, with a queue on the event loop in front, that
    refuses work it could not start in time.

    Its bookkeeping is done on the event loop only (the work runs in a thread, but the lane's
    own limiter is taken and given back on the loop), so it needs no lock; `clock` is there for
    tests to turn by hand.

    The work runs in a plain `ThreadPoolExecutor` of `threads` threads (one per process for
    each thread count), handed over with `loop.run_in_executor`: anyio's `to_thread` cost
    about 145 us a hop here against about 85 us, for a worker-thread cache and a limiter the
    lane does not need (it has its own queue). So a lane runs on asyncio, as the servers do."""

    def __init__(
        self, name: LaneName, threads: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.threads = threads
        self.clock = clock
        self._turns = CapacityLimiter(threads)  # the queue: who may start
        self.waiting = 0  # admitted, not started
        self._started: dict[int, float] = {}  # a running job's key -> when it started
        self._next_key = 0
        self.service: float | None = None  # running average of a job's time in the lane

    @property
    def running(self) -> int:
        return len(self._started)

    def expected_wait(self) -> float:
        """How long a request arriving now would wait before its work started.

        Queue depth alone would be a bound in the wrong unit: 200 grants queued are 0.2 s of
        work on a fast day and 5 s on a slow one, and a client cares about the time. So: the
        jobs that must finish before this one starts (those queued, and the running one it
        takes a thread from) times the running average of what a job took, shared among the
        threads.

        A lane can also be stuck behind one job (a lock held in the database): the average,
        made of normal jobs, then promises a short wait while the running job has been at it
        for seconds. So the wait is at least as long as every thread has been busy with its
        current job (the youngest's age): work that has already run far past the usual is
        expected to run about as long again, and a request arriving then is better refused
        than queued behind it. Before the first job finishes there is no average, and only
        that second term counts."""
        ahead = self.waiting + self.running - self.threads + 1
        if ahead <= 0:
            return 0.0
        queued = ahead * (self.service or 0.0) / self.threads
        now = self.clock()
        stuck = min((now - started for started in self._started.values()), default=0.0)
        return max(queued, stuck)

    def admit(self, max_wait: float) -> None:
        """Refuse (`LaneFull`, counted) if the expected wait is over `max_wait` seconds;
        `max_wait` 0 admits everything."""
        admit_within(self.name, self.expected_wait, max_wait)

    async def run(self, work: Callable[..., T], *args: object, max_wait: float) -> T:
        """Run `work(*args)` in one of the lane's threads once its turn comes, or refuse it
        at once (`LaneFull`) if that turn is not expected within `max_wait` seconds. Only the
        decision on arrival can refuse: a request once admitted is served, however long it
        then waits, and once its work has started it runs to the end (a cancellation of the
        request waits for it), so nothing is left half done."""
        self.admit(max_wait)
        try:  # a free thread and nobody queued: no trip round the loop to take it
            self._turns.acquire_nowait()
        except WouldBlock:
            self.waiting += 1
            try:
                await self._turns.acquire()
            finally:
                self.waiting -= 1
        key = self._next_key
        self._next_key += 1
        started = self._started[key] = self.clock()
        try:
            # In the request's context (its request id for the log lines the work writes).
            done = asyncio.get_running_loop().run_in_executor(
                _executor(self.threads), copy_context().run, work, *args
            )
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The request was cancelled (its client gone) while its work ran: the work is
                # not abandoned half done, and the request lets go only once it has ended.
                with CancelScope(shield=True):
                    await asyncio.wait((done,))
                raise
        finally:
            del self._started[key]
            took = self.clock() - started
            average = took if self.service is None else self.service
            self.service = average + SERVICE_WEIGHT * (took - average)
            self._turns.release()


_quick: RunVar[Lane] = RunVar("shanakht_quick_lane")


def quick_lane() -> Lane:
    """One lane per event loop (a limiter belongs to the loop that made it)."""
    try:
        return _quick.get()
    except LookupError:
        lane = Lane("quick", QUICK_THREADS)
        _quick.set(lane)
        return lane


async def quick(work: Callable[..., T], *args: object, max_wait: float) -> T:
    """Run `work(*args)` in the quick lane: only for work that never waits on another system
    (a wait there would stall every request queued behind it). Raises `LaneFull` instead when
    the lane would not start it within `max_wait` seconds (0: no limit)."""
    return await quick_lane().run(work, *args, max_wait=max_wait)


def hand_over_quickly() -> None:
    """Set the process's GIL switch interval (see SWITCH_INTERVAL): once per server process."""
    sys.setswitchinterval(SWITCH_INTERVAL)
