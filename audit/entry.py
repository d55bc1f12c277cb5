"""Audit entries: what happened, to whom, by whom, why, stored as canonical JSON.

The fields follow the access-log columns of the province's data policy (system, PII fields,
who, when, reason, output): `actor` is who, `time` is when, `purpose` is the reason,
`resource` and `details` say what was touched and returned, `outcome` how it ended.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audit.canonical import JsonValue, check_json, encode_checked
from audit.errors import EntryError

OUTCOMES = frozenset({"success", "failure", "denied"})

# A CNIC written with or without its dashes. Entries name people by pseudonym only; a string
# shaped like a CNIC anywhere in an entry is refused, as a last guard against a caller that
# forgot to pseudonymise.
_CNIC_SHAPE = re.compile(r"(?<!\d)(?:\d{5}-\d{7}-\d|\d{13})(?!\d)")
# Runs of 13 or more digits and dashes: the only places a CNIC can be. Finding them first is
# ten times faster than trying the exact pattern at every position of an entry.
_DIGIT_RUN = re.compile(r"[0-9-]{13,}")


def holds_cnic(text: str) -> bool:
    return any(_CNIC_SHAPE.search(run) for run in _DIGIT_RUN.findall(text))


def grouped(hex_digits: str) -> str:
    """Hex digits in groups of eight joined by colons, for a fingerprint an entry carries. As
    one run of 64, one in a hundred or so holds exactly thirteen decimal digits, which an entry
    refuses as a CNIC (`holds_cnic`); a group of eight never does. Drop the colons to compare
    it with the digits."""
    return ":".join(hex_digits[i : i + 8] for i in range(0, len(hex_digits), 8))


_ACTION_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

_FIELDS = ("action", "actor", "details", "outcome", "purpose", "resource", "seq", "subject", "time")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, so entries sort and compare as text."""
    if moment.tzinfo is None:
        raise EntryError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What a service asks the log to record; the log adds the sequence number and time."""

    actor: str
    action: str
    outcome: str = "success"
    subject: str | None = None
    resource: str | None = None
    purpose: str | None = None
    # Checked at run time (check_json below): any JSON value but floats, keyed by strings.
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("actor", "action", "outcome"):
            if not isinstance(getattr(self, name), str):
                raise EntryError(f"{name} must be a string")
        if not self.actor:
            raise EntryError("an audit event needs an actor")
        if not _ACTION_SHAPE.match(self.action):
            raise EntryError(f"action {self.action!r} is not a dotted lower-case name")
        if self.outcome not in OUTCOMES:
            raise EntryError(f"outcome must be one of {sorted(OUTCOMES)}, not {self.outcome!r}")
        for name in ("subject", "resource", "purpose"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise EntryError(f"{name} must be a string or None")
        if not isinstance(self.details, dict):
            raise EntryError("details must be a JSON object")
        check_json(self.details)
        # One search over the encoded fields: digits and dashes are never escaped in JSON, so a
        # CNIC in any string (or written as a bare 13-digit number) shows up here as it is.
        text = encode_checked([self.actor, self.subject, self.resource, self.purpose, self.details])
        if holds_cnic(text.decode()):
            raise EntryError("an audit entry must name people by pseudonym, never by CNIC")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event as it stands in the log, at its sequence number."""

    seq: int
    time: str
    event: AuditEvent

    def to_json(self) -> dict[str, JsonValue]:
        e = self.event
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "resource": e.resource,
            "purpose": e.purpose,
            "outcome": e.outcome,
            "details": e.details,
        }

    def to_bytes(self) -> bytes:
        # The event's values were checked when it was made; seq and time are ours.
        return encode_checked(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditEntry:
        """Parse and validate stored bytes; they must be exactly the canonical form."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EntryError(f"entry is not JSON: {exc}") from exc
        if not isinstance(obj, dict) or tuple(sorted(obj)) != _FIELDS:
            raise EntryError(f"entry must hold exactly the fields {', '.join(_FIELDS)}")
        seq = obj["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise EntryError("entry seq must be a non-negative integer")
        if not isinstance(obj["time"], str):
            raise EntryError("entry time must be a string")
        event = AuditEvent(
            actor=obj["actor"],
            action=obj["action"],
            outcome=obj["outcome"],
            subject=obj["subject"],
            resource=obj["resource"],
            purpose=obj["purpose"],
            details=obj["details"],
        )
        entry = cls(seq=seq, time=obj["time"], event=event)
        if entry.to_bytes() != data:
            raise EntryError("entry is not in canonical JSON form")
        return entry
