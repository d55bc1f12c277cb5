"""The quick lane runs one piece of work at a time per event loop, off the loop."""

from __future__ import annotations

import sys
import threading
import time

import anyio

from api.lanes import QUICK_THREADS, SWITCH_INTERVAL, hand_over_quickly, quick


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
        results[n] = await quick(work, n)

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
