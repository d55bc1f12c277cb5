"""The load generator tells a shed request from an error (bench/loadgen.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.loadgen import SHED, Answer, Shed, Tally, Window, _timed

SHED_BODY = json.dumps({"error": "temporarily_unavailable", "error_description": "busy"})
DATABASE_DOWN = json.dumps({"type": "about:blank", "title": "The database is not answering",
                            "status": 503})  # fmt: skip


def _one(answer: Answer, tally: Tally) -> Any:
    now = time.perf_counter()
    window = Window(now - 60, now + 60)

    async def send() -> Answer:
        return answer

    return asyncio.run(_timed(window, tally, send, 200, {}))


def test_a_shed_answer_is_counted_as_shed_not_as_an_error_nor_a_latency() -> None:
    tally = Tally()
    assert _one(Answer(503, SHED_BODY.encode()), tally) is SHED
    assert isinstance(SHED, Shed)
    assert (tally.shed, tally.errors, tally.latencies) == (1, 0, [])


def test_any_other_503_is_an_error() -> None:
    tally = Tally()
    assert _one(Answer(503, DATABASE_DOWN.encode()), tally) is None
    assert (tally.shed, tally.errors) == (0, 1)
    assert tally.samples[0].startswith("503: ")


def test_an_expected_answer_is_a_latency() -> None:
    tally = Tally()
    answer = Answer(200, b'{"access_token": "x"}')
    assert _one(answer, tally) is answer
    assert (tally.shed, tally.errors, len(tally.latencies)) == (0, 0, 1)
