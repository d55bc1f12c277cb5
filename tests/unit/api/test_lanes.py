"""The quick lane runs one piece of work at a time per event loop, off the loop, and refuses
at once the work it could not start within the maximum wait."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial

import anyio
import pytest
from prometheus_client import REGISTRY

from api.lanes import (
    QUICK_THREADS,
    SWITCH_INTERVAL,
    Lane,
    LaneFull,
    hand_over_quickly,
    quick,
)

GATE_TIMEOUT = 10  # only if a test fails: a thread waiting on a gate must not hang the run


def test_quick_work_runs_off_the_loop_one_at_a_time() -> None:
    running = 0
    most = 0
    guard = threading.Lock()
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def work(n: int) -> int:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.01)
        with guard:
            running -= 1
        return n * n

    results: dict[int, int] = {}

    async def one(n: int) -> None:
        results[n] = await quick(work, n, max_wait=0)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(one, n)

    anyio.run(main)
    assert results == {n: n * n for n in range(8)}
    assert most == QUICK_THREADS == 1
    assert loop_thread not in threads


def test_a_server_process_hands_the_gil_over_within_half_a_millisecond() -> None:
    before = sys.getswitchinterval()
    try:
        hand_over_quickly()
        assert sys.getswitchinterval() == SWITCH_INTERVAL == 0.0005
    finally:
        sys.setswitchinterval(before)


# -- shedding ----------------------------------------------------------------------------------


class Clock:
    """Time that moves only when a test (or a job it runs) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def shed_count() -> float:
    return REGISTRY.get_sample_value("shanakht_requests_shed_total", {"lane": "quick"}) or 0.0


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition` holds: the lane's bookkeeping is on the loop, so
    this waits on scheduling alone, never on the machine's speed."""
    with anyio.fail_after(GATE_TIMEOUT):
        while not condition():
            await anyio.sleep(0)


async def taught(clock: Clock, seconds: float) -> Lane:
    """A one-thread lane whose average job has taken `seconds` (one job, on `clock`)."""
    lane = Lane("quick", 1, clock)
    assert await lane.run(clock.advance, seconds, max_wait=0) is None
    assert lane.service == seconds
    return lane


def test_the_expected_wait_is_the_jobs_ahead_times_the_average_job() -> None:
    clock = Clock()
    gate = threading.Event()

    async def main() -> None:
        lane = await taught(clock, 1.0)
        assert lane.expected_wait() == 0.0, "an idle lane starts work at once"
        async with anyio.create_task_group() as group:
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=0))
            await until(lambda: lane.running == 1)
            assert lane.expected_wait() == 1.0, "behind the running job"
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=0))
            await until(lambda: lane.waiting == 1)
            assert lane.expected_wait() == 2.0, "behind the running job and the queued one"
            lane.admit(2.0)  # exactly at the bound: admitted
            with pytest.raises(LaneFull) as refused:
                lane.admit(1.5)
            assert refused.value.retry_after == 2
            gate.set()
        assert lane.expected_wait() == 0.0

    anyio.run(main)


def test_work_past_the_bound_is_refused_at_once_and_counted_and_never_runs() -> None:
    clock = Clock()
    gate = threading.Event()
    ran: list[str] = []
    before = shed_count()

    async def main() -> None:
        lane = await taught(clock, 1.5)
        async with anyio.create_task_group() as group:
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=2.0))
            await until(lambda: lane.running == 1)
            # 1.5 s behind the running job: admitted, queued
            group.start_soon(partial(lane.run, ran.append, "queued", max_wait=2.0))
            await until(lambda: lane.waiting == 1)
            # 3 s behind it and the queued one: refused without waiting at all
            with pytest.raises(LaneFull) as refused:
                await lane.run(ran.append, "refused", max_wait=2.0)
            assert lane.waiting == 1, "the refused request never joined the queue"
            gate.set()
        assert refused.value.lane == "quick"
        assert refused.value.expected_wait == 3.0
        assert refused.value.retry_after == 3

    anyio.run(main)
    assert ran == ["queued"]
    assert shed_count() == before + 1


def test_a_lane_stuck_on_one_job_refuses_newcomers_once_it_has_run_past_the_bound() -> None:
    """Before any job has finished there is no average: the running job's age is the guide."""
    clock = Clock()
    gate = threading.Event()

    async def main() -> None:
        lane = Lane("quick", 1, clock)
        async with anyio.create_task_group() as group:
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=2.0))
            await until(lambda: lane.running == 1)
            lane.admit(2.0)
            clock.advance(2.0)
            lane.admit(2.0)
            clock.advance(0.5)
            with pytest.raises(LaneFull) as refused:
                lane.admit(2.0)
            assert refused.value.retry_after == 3
            gate.set()

    anyio.run(main)


def test_admitted_work_is_served_however_long_it_then_waits() -> None:
    clock = Clock()
    gate = threading.Event()
    results: list[int] = []

    async def queued() -> None:
        results.append(await lane.run(int, "7", max_wait=2.0))

    lane = Lane("quick", 1, clock)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=2.0))
            await until(lambda: lane.running == 1)
            group.start_soon(queued)
            await until(lambda: lane.waiting == 1)
            clock.advance(600.0)  # far past the bound, while it waits
            gate.set()

    anyio.run(main)
    assert results == [7]


def test_a_maximum_wait_of_zero_never_refuses() -> None:
    clock = Clock()
    gate = threading.Event()

    async def main() -> None:
        lane = await taught(clock, 1000.0)
        async with anyio.create_task_group() as group:
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=0))
            await until(lambda: lane.running == 1)
            for _ in range(5):
                group.start_soon(partial(lane.run, int, "1", max_wait=0))
            await until(lambda: lane.waiting == 5)
            lane.admit(0)
            assert lane.expected_wait() == 6000.0
            gate.set()

    anyio.run(main)


def test_a_request_cancelled_in_the_queue_leaves_it_and_a_running_job_finishes() -> None:
    """A cancelled request (its client gone) stops waiting, and the queue's count follows; a
    cancelled job already started runs to its end before the request lets go, so nothing is
    left half done."""
    clock = Clock()
    gate = threading.Event()
    finished: list[str] = []

    def blocked() -> None:
        gate.wait(GATE_TIMEOUT)
        finished.append("running job")

    lane = Lane("quick", 1, clock)

    async def cancelled_while_running(request: anyio.CancelScope) -> None:
        with request:
            await lane.run(blocked, max_wait=0)
        finished.append("request let go")

    async def main() -> None:
        request = anyio.CancelScope()
        async with anyio.create_task_group() as group:
            group.start_soon(cancelled_while_running, request)
            await until(lambda: lane.running == 1)
            async with anyio.create_task_group() as queue:
                queue.start_soon(partial(lane.run, finished.append, "queued", max_wait=0))
                await until(lambda: lane.waiting == 1)
                queue.cancel_scope.cancel()
            assert lane.waiting == 0
            request.cancel()
            for _ in range(10):
                await anyio.sleep(0)
            assert lane.running == 1, "a started job is not abandoned"
            assert finished == []
            gate.set()
        assert lane.running == 0

    anyio.run(main)
    assert finished == ["running job", "request let go"]


@pytest.mark.parametrize(("wait", "retry_after"), [(0.2, 1), (2.01, 3), (3.0, 3), (900.0, 60)])
def test_retry_after_is_the_expected_wait_in_whole_seconds_within_a_minute(
    wait: float, retry_after: int
) -> None:
    assert LaneFull("quick", wait).retry_after == retry_after


def test_work_in_the_lane_sees_the_requests_context_variables() -> None:
    """The request id a log line carries is a context variable set by the middleware: work
    handed to the lane's thread runs in the request's context, not the thread's own."""
    request_id: ContextVar[str] = ContextVar("request_id", default="none")
    seen: list[str] = []

    async def request(name: str) -> None:
        request_id.set(name)
        await quick(lambda: seen.append(request_id.get()), max_wait=0)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(request, "first")
            group.start_soon(request, "second")

    anyio.run(main)
    assert sorted(seen) == ["first", "second"]
