"""The locker's sealed table as `audit integrity` reconciles it with the log (`audit.reconcile`).

A consent's status is what its approval and the citizen's last pause, resume or revocation
left it, and its use count is the number of fetches recorded under it: each fetch counts its
use and records its entry in one transaction, so the two never part honestly.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from audit.reconcile import Entry, Kind, Row
from locker.exchange import ACTIVE, FETCHED, PAUSED, REVOKED
from locker.models import consents

APPROVED = "locker.exchange.approved"
_STATUS = {
    APPROVED: ACTIVE,
    "locker.exchange.paused": PAUSED,
    "locker.exchange.resumed": ACTIVE,
    "locker.exchange.revoked": REVOKED,
}

# What the log says of a consent: its status (None if no approval was read) and its fetches.
Said = tuple[str | None, int]


def _consent_of(entry: Entry) -> str | None:
    """The consent an entry is about: its `consent` detail, or, in a fetch recorded before
    that detail, the basis the department fetched on."""
    details = entry["details"]
    named = details.get("consent")
    if named is None and str(details.get("basis", "")).startswith("consent:"):
        named = str(details["basis"]).removeprefix("consent:")
    return None if named is None else str(named)


def consents_kind() -> Kind[Said]:
    def fold(said: MutableMapping[str, Said], entry: Entry) -> None:
        consent = _consent_of(entry)
        if consent is None:
            return
        status, fetches = said.get(consent, (None, 0))
        if entry["action"] == FETCHED:
            said[consent] = (status, fetches + 1)
        else:
            said[consent] = (_STATUS[entry["action"]], fetches)

    def stored(row: Row) -> tuple[str, Said]:
        return str(row["id"]), (str(row["status"]), int(row["uses"]))

    def differ(logged: Said | None, stored: Said | None) -> str | None:
        if stored is None:
            return "the log recorded this consent, but its row is gone"
        if logged is None or logged[0] is None:
            return f"{stored[0]}, but the log never recorded this consent's approval"
        if logged[0] != stored[0]:
            return f"{stored[0]}, but the log last recorded it {logged[0]}"
        if logged[1] != stored[1]:
            return f"{stored[1]} uses, but the log recorded {logged[1]} fetches under it"
        return None

    return Kind(consents, frozenset({*_STATUS, FETCHED}), fold, stored, differ)


KINDS = (consents_kind(),)
