"""The shared thread pool's gate (api.pool_gate): a probe measures how long the pool's queue
keeps a newcomer waiting, and admission refuses past the bound. The pool here has one thread,
held by a job that waits on an event, and the probe's clock is turned by hand: nothing depends
on the machine's speed."""

from __future__ import annotations

import threading

import anyio
import pytest
from anyio import to_thread
from prometheus_client import REGISTRY

from api.lanes import LaneFull
from api.pool_gate import PoolGate
from tests.unit.api.test_lanes import GATE_TIMEOUT, Clock, until


def _shed() -> float:
    return REGISTRY.get_sample_value("shanakht_requests_shed_total", {"lane": "pool"}) or 0.0


def test_an_idle_pool_admits_everything() -> None:
    gate = PoolGate(Clock())

    async def main() -> None:
        await gate.probe()

    anyio.run(main)
    assert gate.expected_wait() == 0.0
    gate.admit(0.001)  # nothing raised


def test_a_probe_stuck_behind_a_busy_pool_refuses_newcomers_and_is_counted() -> None:
    clock = Clock()
    gate = PoolGate(clock)
    held = threading.Event()
    before = _shed()

    async def main() -> None:
        to_thread.current_default_thread_limiter().total_tokens = 1
        async with anyio.create_task_group() as group:
            group.start_soon(to_thread.run_sync, held.wait, GATE_TIMEOUT)
            await until(lambda: to_thread.current_default_thread_limiter().borrowed_tokens == 1)
            group.start_soon(gate.probe)
            await until(
                lambda: to_thread.current_default_thread_limiter().statistics().tasks_waiting == 1
            )
            clock.advance(3.0)  # the probe has waited 3 s so far, still queued
            assert gate.expected_wait() == 3.0
            gate.admit(5.0)  # under the bound: admitted
            with pytest.raises(LaneFull) as refused:
                gate.admit(2.0)
            assert refused.value.lane == "pool"
            assert refused.value.retry_after >= 3
            gate.admit(0)  # 0: never refused
            clock.advance(1.0)
            held.set()  # the job ends; the probe gets its thread, 4 s after it was sent
        assert gate.expected_wait() == 4.0  # what it waited, until the next probe says less
        await gate.probe()  # the queue gone
        assert gate.expected_wait() == 0.0
        gate.admit(2.0)

    anyio.run(main)
    assert _shed() == before + 1
