"""Identity's sealed tables as `audit integrity` reconciles them with the log (`audit.reconcile`).

Each function is one table: which entries change its rows, what they leave each row as, and
what a row says in the same terms. Rows are keyed as the log names them (people by pseudonym).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from sqlalchemy import select

from audit.reconcile import Entry, Kind, Row, row_fingerprint
from audit.two_person import APPROVED, PENDING, REFUSED
from identity.models import citizens, clients, role_proposals, roles

ROLE_GRANTED = "identity.role.granted"
ROLE_REVOKED = "identity.role.revoked"
ROLE_PROPOSED = "identity.role.proposed"
ROLE_REFUSED = "identity.role.refused"
CLIENT_REGISTERED = "identity.client.registered"
CLIENT_REMOVED = "identity.client.removed"
REGISTRATION = "registration"  # an entry's detail: the fingerprint of the client's sealed row

_HELD, _REVOKED = "held", "revoked"
_REMOVED, _UNKNOWN = "removed", "unknown"


def role_grants() -> Kind[str]:
    """A grant is held or revoked as its last grant or revocation says. Every grant and
    revocation has always named the grantee (subject), department (resource) and role."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        department = str(entry["resource"]).removeprefix("department:")
        key = f"{entry['subject']}/{department}/{entry['details'].get('role')}"
        said[key] = _HELD if entry["action"] == ROLE_GRANTED else _REVOKED

    def stored(row: Row) -> tuple[str, str]:
        return f"{row['pseudonym']}/{row['department_id']}/{row['role']}", _HELD

    def differ(logged: str | None, stored: str | None) -> str | None:
        if stored == logged or (stored is None and logged == _REVOKED):
            return None
        if stored is None:
            return "the log last granted this role, but its row is gone"
        if logged is None:
            return "held, but the log never granted it"
        return "held, but the log last revoked it"

    rows = select(roles, citizens.c.pseudonym).join(citizens, citizens.c.id == roles.c.citizen_id)
    return Kind(roles, frozenset({ROLE_GRANTED, ROLE_REVOKED}), fold, stored, differ, rows)


def role_proposals_kind() -> Kind[str]:
    """A proposal is pending from its proposal's entry, then approved (the grant's entry names
    it) or refused. Expiry is read from the time, never written, so it is no change."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        proposal = entry["details"].get("proposal")
        if proposal is None:  # a grant made at once, not from a proposal
            return
        said[str(proposal)] = {ROLE_PROPOSED: PENDING, ROLE_GRANTED: APPROVED}.get(
            entry["action"], REFUSED
        )

    def stored(row: Row) -> tuple[str, str]:
        return str(row["id"]), str(row["status"])

    def differ(logged: str | None, stored: str | None) -> str | None:
        if stored == logged:
            return None
        if stored is None:
            return f"the log last recorded it {logged}, but its row is gone"
        if logged is None:
            return f"{stored}, but the log never recorded this proposal"
        return f"{stored}, but the log last recorded it {logged}"

    actions = frozenset({ROLE_PROPOSED, ROLE_GRANTED, ROLE_REFUSED})
    return Kind(role_proposals, actions, fold, stored, differ)


def client_registrations() -> Kind[str]:
    """A client is as its last registration's entry fingerprinted it, or removed. Entries from
    before the fingerprint, and clients registered at the command line before it recorded
    them, leave the log unable to tell: those are not compared."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        client = str(entry["resource"]).removeprefix("client:")
        if entry["action"] == CLIENT_REMOVED:
            said[client] = _REMOVED
        else:
            said[client] = str(entry["details"].get(REGISTRATION) or _UNKNOWN)

    def stored(row: Row) -> tuple[str, str]:
        return str(row["id"]), row_fingerprint(row)

    def differ(logged: str | None, stored: str | None) -> str | None:
        if logged in (None, _UNKNOWN) or logged == stored:
            return None
        if stored is None:
            return None if logged == _REMOVED else "the log last registered it, but its row is gone"
        if logged == _REMOVED:
            return "registered, but the log last removed it"
        return "its registration is not the one the log last recorded"

    return Kind(clients, frozenset({CLIENT_REGISTERED, CLIENT_REMOVED}), fold, stored, differ)


KINDS = (role_grants(), role_proposals_kind(), client_registrations())
