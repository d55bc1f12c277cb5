"""The attempt counter: one window per key, shared through the database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.runtime import Runtime
from identity.errors import TooManyAttempts
from identity.policy import Limit
from identity.throttle import Throttle
from tests.unit.identity.conftest import Clock

LIMIT = Limit(3, timedelta(minutes=15))


def _hit(runtime: Runtime, clock: Clock, key: str = "login:account:x") -> None:
    with runtime.transaction() as session:
        Throttle(session, clock).hit(key, LIMIT)


def test_the_limit_refuses_the_attempt_after_it_and_says_when_to_retry(
    runtime: Runtime, clock: Clock
) -> None:
    for _ in range(LIMIT.attempts):
        _hit(runtime, clock)
    clock.advance(minutes=5)
    with pytest.raises(TooManyAttempts) as caught:
        _hit(runtime, clock)
    assert caught.value.retry_after == 10 * 60
    _hit(runtime, clock, key="login:account:someone-else")


def test_refused_attempts_do_not_push_the_window_out(runtime: Runtime, clock: Clock) -> None:
    for _ in range(LIMIT.attempts):
        _hit(runtime, clock)
    for _ in range(14):
        clock.advance(minutes=1)
        with pytest.raises(TooManyAttempts):
            _hit(runtime, clock)
    clock.advance(minutes=1)
    for _ in range(LIMIT.attempts):  # a fresh window, counted from this attempt
        _hit(runtime, clock)
    with pytest.raises(TooManyAttempts) as caught:
        _hit(runtime, clock)
    assert caught.value.retry_after == 15 * 60
