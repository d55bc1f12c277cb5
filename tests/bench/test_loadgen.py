"""The load generator tells a shed request from an error (bench/loadgen.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from api.lanes import LaneFull
from api.problems import _lane_full
from api.routes.oidc import BUSY, DATABASE_DOWN
from bench.loadgen import SHED, Answer, Shed, Tally, Window, _timed

# As the OAuth endpoints answer them (api.routes.oidc.oauth_error): the same error code for
# shed load and for the database down, told apart by the description.
SHED_BODY = json.dumps({"error": "temporarily_unavailable", "error_description": BUSY})
OAUTH_DATABASE_DOWN = json.dumps(
    {"error": "temporarily_unavailable", "error_description": DATABASE_DOWN}
)
PROBLEM_DATABASE_DOWN = json.dumps({"type": "about:blank", "title": "The database is not answering",
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


def test_the_pools_refusal_in_problem_details_is_counted_as_shed() -> None:
    """As api.problems answers a request the pool's gate refused (api/pool_gate.py)."""
    refused = asyncio.run(_lane_full(None, LaneFull("pool", 7.0)))  # type: ignore[arg-type]
    tally = Tally()
    assert _one(Answer(refused.status_code, bytes(refused.body)), tally) is SHED
    assert (tally.shed, tally.errors, tally.latencies) == (1, 0, [])


def test_any_other_503_is_an_error() -> None:
    """The database down, in the OAuth endpoints' error JSON or in problem details."""
    tally = Tally()
    for body in (OAUTH_DATABASE_DOWN, PROBLEM_DATABASE_DOWN):
        assert _one(Answer(503, body.encode()), tally) is None
    assert (tally.shed, tally.errors) == (0, 2)
    assert all(sample.startswith("503: ") for sample in tally.samples)


def test_an_expected_answer_is_a_latency() -> None:
    tally = Tally()
    answer = Answer(200, b'{"access_token": "x"}')
    assert _one(answer, tally) is answer
    assert (tally.shed, tally.errors, len(tally.latencies)) == (0, 0, 1)
