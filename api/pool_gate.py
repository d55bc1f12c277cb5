"""Admission to anyio's shared thread pool: a request is refused at once when the pool's queue
would keep it waiting longer than `SHANAKHT_POOL_MAX_WAIT`.

FastAPI runs every plain-function handler and dependency in anyio's pool (40 threads a process),
and that pool queues without bound. The soak on PostgreSQL at twice what the machine could serve
had downloads waiting 81 s and audit proofs 46 s (p50), answered long after their clients gave
up, each still costing its full work. The quick lane sheds its own load (api.lanes); this gate
does the same for the pool, for the routers that `api.app` puts behind it.

How long the queue is, in seconds, is measured, not estimated: every PROBE_INTERVAL a no-op goes
through the pool, first-in first-out behind whatever waits there, and the time it waited is the
queue's wait at that moment; a probe still waiting counts its age so far. No job's own time is
needed, so a slow upload and a quick page weigh what they really cost.

Only a request's admission is decided here (a router dependency, before any of the request's
work): a request once admitted runs everything it does in the pool however long it waits, so
nothing is left half done. Background jobs and the audit records of denials go through the pool
without this gate and are never refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from anyio import to_thread
from fastapi import Request

from api.lanes import admit_within

PROBE_INTERVAL = 0.25  # seconds between probes: a queue builds over seconds, not milliseconds


class PoolGate:
    """The pool's current queue wait, as the probes measure it, and the admission it decides."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waited = 0.0  # what the last probe to finish waited
        self._sent: float | None = None  # when the probe in flight was sent, if one is

    def expected_wait(self) -> float:
        """Seconds a job sent to the pool now is expected to wait before a thread takes it."""
        in_flight = 0.0 if self._sent is None else self._clock() - self._sent
        return max(self._waited, in_flight)

    async def probe(self) -> None:
        """Send one no-op through the pool and note how long it waited for a thread."""
        self._sent = sent = self._clock()
        try:
            started = await to_thread.run_sync(self._clock)
        finally:
            self._sent = None
        self._waited = max(0.0, started - sent)

    async def run(self) -> None:
        """Probe for as long as the app runs (a task of its lifespan)."""
        while True:
            await self.probe()
            await asyncio.sleep(PROBE_INTERVAL)

    def admit(self, max_wait: float) -> None:
        """Refuse (`LaneFull`, counted) if the pool would keep a newcomer waiting over
        `max_wait` seconds; `max_wait` 0 admits everything."""
        admit_within("pool", self.expected_wait, max_wait)


async def admitted(request: Request) -> None:
    """The router dependency: the app's gate admits this request or refuses it with 503."""
    gate: PoolGate = request.app.state.pool_gate
    gate.admit(request.app.state.runtime.settings.pool_max_wait)
