"""Times as the pages show them: Pakistan Standard Time, the clock their readers live by.

The database, the JSON APIs, the audit log and CSV exports keep UTC (RFC 3339): machines compare
them. A citizen reading "10:00 UTC" has to add five hours in their head, and an officer setting
a deadline from it gets it wrong. Pakistan has kept UTC+5 all year since 2009 (no daylight
saving), so a fixed offset is exact and needs no time-zone database in the image.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

PKT = timezone(timedelta(hours=5), "PKT")


def _aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def moment(value: datetime | str | None, seconds: bool = False) -> str:
    """ "2026-05-01 15:00 PKT" for a UTC time (an aware datetime, a naive one taken as UTC, or
    RFC 3339 text); "" for none."""
    if value is None or value == "":
        return ""
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return _aware(value).astimezone(PKT).strftime(shape) + " PKT"


def day(value: datetime | str | None) -> str:
    """The date in Pakistan of a UTC time: "2026-05-01"; "" for none."""
    if value is None or value == "":
        return ""
    return _aware(value).astimezone(PKT).strftime("%Y-%m-%d")
