"""Sign-in sessions as `audit integrity` reconciles them: only those young enough to be live,
so the pass keeps about a day of session ends, not every end the log ever recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit.entry import format_time, holds_cnic
from identity.oidc.sessions import logged_as
from identity.reconciled import SESSION, SESSION_ENDED, sign_in_sessions

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
BORN_AFTER = NOW - timedelta(hours=12)


def _ended(sid: str, at: datetime) -> dict[str, object]:
    return {"action": SESSION_ENDED, "time": format_time(at), "details": {SESSION: logged_as(sid)}}


def test_only_ends_of_sessions_that_could_still_be_live_are_kept() -> None:
    kind = sign_in_sessions(BORN_AFTER)
    said: dict[str, str] = {}
    kind.fold(said, _ended("old", BORN_AFTER - timedelta(seconds=1)))
    kind.fold(said, _ended("young", NOW - timedelta(hours=1)))
    assert list(said) == [logged_as("young")]


def test_a_session_older_than_any_lives_is_over_whatever_its_row_says() -> None:
    kind = sign_in_sessions(BORN_AFTER)
    old = {"sid": "old", "ended_at": None, "created_at": BORN_AFTER - timedelta(minutes=1)}
    young = {**old, "sid": "young", "created_at": NOW - timedelta(hours=1)}
    assert kind.stored(old) == (logged_as("old"), "ended")
    assert kind.stored(young) == (logged_as("young"), "live")
    assert kind.differ("ended", "live") == "live, but the log last ended it"
    assert kind.differ(None, "live") is None, "an end the log does not name: it cannot tell"


def test_a_session_end_never_holds_a_run_of_thirteen_digits() -> None:
    """The log refuses one as a CNIC; a session whose end it refused could never end."""
    for n in range(20_000):
        named = logged_as(f"{n:032x}")
        assert [len(group) for group in named.split(":")] == [8, 8, 8, 8]
        assert not holds_cnic(named)
