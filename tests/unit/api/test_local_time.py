"""Pages show Pakistan Standard Time; whatever shape the UTC time arrives in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.local_time import day, moment


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 5, 1, 19, 30, 5, tzinfo=UTC),
        datetime(2026, 5, 1, 19, 30, 5),  # naive, as SQLite hands some back: UTC
        "2026-05-01T19:30:05+00:00",
        "2026-05-01T19:30:05Z",
    ],
)
def test_a_utc_time_reads_five_hours_on_and_the_day_follows(value: datetime | str) -> None:
    assert moment(value) == "2026-05-02 00:30 PKT"
    assert moment(value, seconds=True) == "2026-05-02 00:30:05 PKT"
    assert day(value) == "2026-05-02"


def test_no_time_is_an_empty_field() -> None:
    assert moment(None) == moment("") == day(None) == ""
