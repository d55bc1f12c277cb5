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


def test_forgiven_attempts_leave_a_count_of_failures_and_a_full_one_says_when(
    runtime: Runtime, clock: Clock
) -> None:
    """`hit` counts a try before it is judged, `forgive` takes back a right one: the limit is
    on failures, however many right tries came between them; `refuse_if_full` counts nothing
    and says how long the window has left."""
    key = "second_factor_sms_codes:x"
    for _ in range(5):  # right, right, ... : each forgiven
        with runtime.transaction() as session:
            Throttle(session, clock).hit(key, LIMIT)
            Throttle(session, clock).forgive(key)
    for _ in range(LIMIT.attempts - 1):
        _hit(runtime, clock, key)
    with runtime.transaction() as session:
        Throttle(session, clock).refuse_if_full(key, LIMIT)  # one failure still to go
    _hit(runtime, clock, key)
    clock.advance(minutes=4)
    with runtime.transaction() as session, pytest.raises(TooManyAttempts) as caught:
        Throttle(session, clock).refuse_if_full(key, LIMIT)
    assert caught.value.retry_after == 11 * 60
    with pytest.raises(TooManyAttempts):
        _hit(runtime, clock, key)
    clock.advance(minutes=11)
    with runtime.transaction() as session:
        Throttle(session, clock).refuse_if_full(key, LIMIT)
