"""Fixed-window attempt counters in the database, so every server process shares them."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.orm import Session

from audit.prepared import Prepared
from identity.errors import TooManyAttempts
from identity.models import throttles
from identity.policy import Limit
from identity.upsert import upsert_for


class Throttle:
    def __init__(self, session: Session, clock: Callable[[], datetime]) -> None:
        self._session = session
        self._clock = clock

    def hit(self, key: str, limit: Limit) -> None:
        """Count one attempt under `key`; raise TooManyAttempts once the limit is passed.

        One upsert counts the attempt and reads the window back: the row lock it takes
        serialises attempts under one key on PostgreSQL as SQLite's write lock does, and a
        login pays one statement per counter, not three. A refused attempt only adds to a
        count already past the limit and never moves the window, so a throttled client cannot
        push its own window further out.
        """
        now = self._clock()
        window_start, hits = self._count(key, limit, now)
        if hits > limit.attempts:
            retry = (window_start + limit.window - now).total_seconds()
            raise TooManyAttempts(retry_after=max(1, math.ceil(retry)))

    def full(self, key: str, limit: Limit) -> bool:
        """Whether `key` has reached its limit in the current window, counting nothing."""
        return self._wait(key, limit) is not None

    def refuse_if_full(self, key: str, limit: Limit) -> None:
        """Raise TooManyAttempts, with the time left in the window, if `key` has reached its
        limit; count nothing. For work that would be wasted on an attempt `hit` will refuse."""
        wait = self._wait(key, limit)
        if wait is not None:
            raise TooManyAttempts(retry_after=wait)

    def forgive(self, key: str) -> None:
        """Take back one attempt `hit` counted under `key`, as it turned out right: the count
        is then of failures only, while `hit` still bounds them before each try is judged
        (so tries made at once cannot slip past the limit)."""
        self._session.execute(
            update(throttles)
            .where(throttles.c.key == key, throttles.c.hits > 0)
            .values(hits=throttles.c.hits - 1)
        )

    def add(self, key: str, limit: Limit) -> int:
        """Count one event under `key` whatever the limit; return the count in this window.

        For counting failures, where a lockout is `full` once the count reaches the limit;
        `hit` counts attempts and refuses the one past the limit.
        """
        return self._count(key, limit, self._clock())[1]

    def restart(self, key: str) -> None:
        """Start `key`'s window now, keeping its count: a lockout then lasts its whole window
        from the failure that caused it, not from the first failure counted."""
        self._session.execute(
            update(throttles).where(throttles.c.key == key).values(window_start=self._clock())
        )

    def clear(self, key: str) -> None:
        """Forget `key`'s count (a success after failures)."""
        self._session.execute(delete(throttles).where(throttles.c.key == key))

    def _wait(self, key: str, limit: Limit) -> int | None:
        """Seconds until `key`'s window ends if it has reached its limit; None if it has not."""
        row = self._session.execute(
            select(throttles.c.window_start, throttles.c.hits).where(throttles.c.key == key)
        ).one_or_none()
        now = self._clock()
        if row is None or now - row.window_start >= limit.window or row.hits < limit.attempts:
            return None
        left: datetime = row.window_start + limit.window
        return max(1, math.ceil((left - now).total_seconds()))

    def _count(self, key: str, limit: Limit, now: datetime) -> tuple[datetime, int]:
        """Count one under `key`, in a fresh window if the last one has passed: the window's
        start and the count in it, read back from the same statement."""
        connection = self._session.connection()
        values = {"key": key, "now": now, "stale_before": now - limit.window}
        window_start, hits = _counting(connection.dialect.name).one(connection, values)
        return window_start, int(hits)


@functools.cache
def _counting(dialect: str) -> Prepared:
    """`Throttle._count`'s upsert, built once per database: every login runs it two or three
    times, and building it (and its cache key) each time cost more than running it."""
    moment = throttles.c.window_start.type
    now = bindparam("now", type_=moment)
    stale = throttles.c.window_start <= bindparam("stale_before", type_=moment)
    return Prepared(
        upsert_for(dialect, throttles)
        .values(key=bindparam("key"), window_start=now, hits=1)
        .on_conflict_do_update(
            index_elements=[throttles.c.key],
            set_={
                "window_start": case((stale, now), else_=throttles.c.window_start),
                "hits": case((stale, 1), else_=throttles.c.hits + 1),
            },
        )
        .returning(throttles.c.window_start, throttles.c.hits)
    )
