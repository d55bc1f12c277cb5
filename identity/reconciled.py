"""Identity's sealed tables as `audit integrity` reconciles them with the log (`audit.reconcile`).

Each function is one table: which entries change its rows, what they leave each row as, and
what a row says in the same terms. Rows are keyed as the log names them (people by pseudonym,
sessions by `sessions.logged_as`).

What an earlier row put back would give whoever kept it, and what tells it here:
- an account closed, open again; or its password from before a reset or change (whoever knew
  the old one, or reset it, signs in again): the log's removal, and the time of its last
  password, which the row keeps (`password_changed_at`);
- a session ended (logout, "sign out everywhere", a password change, a closed account) live
  again, to whoever kept its cookie: the log's end of that session;
- an e-service's consent withdrawn, or narrower since, back as it was: the log's withdrawal, and
  the scopes the citizen consented to since.
Authorization codes and tokens are not reconciled: a code lives a minute, and a grant's tokens
are many (one entry each would not say which row); a refresh token put back unspent still
needs its session live, which is reconciled.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from audit.reconcile import Entry, Kind, Row, fingerprint, row_fingerprint
from audit.row_resealing import Resealed
from audit.two_person import APPROVED, PENDING, REFUSED
from identity.models import citizens, clients, grants, role_proposals, roles, sessions
from identity.oidc.sessions import logged_as

ROLE_GRANTED = "identity.role.granted"
ROLE_REVOKED = "identity.role.revoked"
ROLE_PROPOSED = "identity.role.proposed"
ROLE_REFUSED = "identity.role.refused"
CLIENT_REGISTERED = "identity.client.registered"
CLIENT_REMOVED = "identity.client.removed"
CLIENT_RESEALED = "identity.client.resealed"  # by `keys reseal row-seal`: details FROM and TO
REGISTRATION = "registration"  # an entry's detail: the fingerprint of the client's sealed row
FROM, TO = "from", "to"  # a re-seal's details: the row's fingerprint before and after
REGISTERED = "identity.citizen.registered"
PASSWORD_RESET = "identity.password.reset"  # noqa: S105 (an action: reset, or changed)
ACCOUNT_REMOVED = "identity.citizen.removed"
PASSWORD_SET = "password_set"  # noqa: S105 (a detail: the row's password_changed_at, ISO)
SESSION_ENDED = "identity.session.ended"
SESSION = "session"  # an entry's detail: the session, `sessions.logged_as` its sid
CONSENT_GRANTED = "identity.consent.granted"
CONSENT_REVOKED = "identity.consent.revoked"

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
    them, leave the log unable to tell: those are not compared.

    A re-seal under a new row-seal key version gives the row a new MAC, so a new fingerprint:
    its entry carries the registration from the one to the other, and only from the one the
    log last recorded, so a row put back before the re-seal (sealed anew with the rest) stays
    told apart."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        client = str(entry["resource"]).removeprefix("client:")
        details = entry["details"]
        if entry["action"] == CLIENT_REMOVED:
            said[client] = _REMOVED
        elif entry["action"] == CLIENT_RESEALED:
            if client in said and said[client] == details.get(FROM):
                said[client] = str(details.get(TO))
        else:
            said[client] = str(details.get(REGISTRATION) or _UNKNOWN)

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

    actions = frozenset({CLIENT_REGISTERED, CLIENT_REMOVED, CLIENT_RESEALED})
    return Kind(clients, actions, fold, stored, differ)


def carry_registrations(audit_for: Callable[[Session], AuditLog], actor: str) -> Resealed:
    """What `keys reseal row-seal` is to do with each row it seals anew: for a client, the
    entry that carries its registration to the row's new fingerprint (see
    `client_registrations`), in the same transaction as the new MAC."""

    def resealed(session: Session, table: Table, row: Row, mac: bytes) -> None:
        if table is not clients:
            return
        audit_for(session).append(
            AuditEvent(
                actor=actor,
                action=CLIENT_RESEALED,
                resource=f"client:{row['id']}",
                details={FROM: row_fingerprint(row), TO: fingerprint(mac)},
            )
        )

    return resealed


# An account as the log last left it: "active" or "removed", and when its password was set
# (None where the entry is from before that detail).
Account = tuple[str, str | None]
_ACTIVE = "active"


def accounts() -> Kind[Account]:
    """An account is active from its registration and removed from its removal, and its
    password is the one set at the time its registration or last reset recorded. Accounts are
    never deleted (a closed one keeps its row for the trail), so one the log registered and
    that is gone was deleted by SQL."""

    def fold(said: MutableMapping[str, Account], entry: Entry) -> None:
        subject = str(entry["subject"])
        status, password = said.get(subject, (_ACTIVE, None))
        action = entry["action"]
        if action == ACCOUNT_REMOVED:
            said[subject] = (_REMOVED, password)
        else:
            set_at = entry["details"].get(PASSWORD_SET)
            said[subject] = (_ACTIVE if action == REGISTERED else status, set_at)

    def stored(row: Row) -> tuple[str, Account]:
        changed = row["password_changed_at"].astimezone(UTC).isoformat()
        return str(row["pseudonym"]), (str(row["status"]), changed)

    def differ(logged: Account | None, stored: Account | None) -> str | None:
        if logged is None:
            return None  # made before its registration was recorded (or outside the service)
        if stored is None:
            return "the log registered this account, but its row is gone"
        if logged[0] == _REMOVED and stored[0] != _REMOVED:
            return f"{stored[0]}, but the log last removed it"
        if logged[1] is not None and logged[1] != stored[1]:
            return "its password is not the one the log last recorded setting"
        return None

    actions = frozenset({REGISTERED, PASSWORD_RESET, ACCOUNT_REMOVED})
    return Kind(citizens, actions, fold, stored, differ)


_LIVE, _ENDED = "live", "ended"


def sign_in_sessions(born_after: datetime) -> Kind[str]:
    """A session the log ended stays ended: nothing in the service starts one again. A
    session past its time that the sweep has not ended yet has no entry, and older entries do
    not name theirs; for those the log cannot tell, and a live row is no alarm.

    Only sessions begun after `born_after` are compared, and only entries from then on are
    kept: one older than the longest a session lives is over whatever its row says (its sealed
    `created_at` tells the service so), and its row is swept a day later while its entry stays
    in the log for good. So the pass keeps a day or so of session ends, not every end ever."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        session = entry["details"].get(SESSION)
        if session is not None and _at(entry) > born_after:
            said[str(session)] = _ENDED

    def stored(row: Row) -> tuple[str, str]:
        live = row["ended_at"] is None and row["created_at"] > born_after
        return logged_as(str(row["sid"])), _LIVE if live else _ENDED

    def differ(logged: str | None, stored: str | None) -> str | None:
        if logged == _ENDED and stored == _LIVE:
            return "live, but the log last ended it"
        return None  # a session's row may be gone: ended ones are swept

    rows = select(sessions).where(sessions.c.created_at > born_after)
    return Kind(sessions, frozenset({SESSION_ENDED}), fold, stored, differ, rows)


def _at(entry: Entry) -> datetime:
    return datetime.fromisoformat(str(entry["time"]))


# The scopes a citizen last consented to for an e-service: every scope granted since the last
# withdrawal (a consent only ever adds), or WITHDRAWN.
Scopes = frozenset[str] | str
_WITHDRAWN = "withdrawn"


def eservice_consents() -> Kind[Scopes]:
    """An e-service's consent holds the scopes the citizen granted it since the last time it
    was withdrawn: by the citizen, or with the e-service (removing a client removes its
    consents, and one registered again under its id must ask again). A consent the log does
    not know is not judged (one given before consents were recorded, or made outside the
    pages). Closing an account withdraws its consents too, but a closed account's consent put
    back opens nothing while the account stays closed, and one put back open is listed as an
    account (`accounts`); so removals are not folded here, which would cost a pass over every
    consent known for each account closed."""

    def fold(said: MutableMapping[str, Scopes], entry: Entry) -> None:
        action = entry["action"]
        if action == CLIENT_REMOVED:
            # A client's removal withdraws every consent to it: rare enough to pay a pass.
            gone = f"/{_client_of(entry)}"
            for key in [key for key in said if key.endswith(gone)]:
                said[key] = _WITHDRAWN
        elif action == CONSENT_REVOKED:
            said[f"{entry['subject']}/{_client_of(entry)}"] = _WITHDRAWN
        else:
            key = f"{entry['subject']}/{_client_of(entry)}"
            granted = frozenset(str(entry["details"].get("scopes", "")).split())
            held = said.get(key, _WITHDRAWN)
            said[key] = granted | (held if isinstance(held, frozenset) else frozenset())

    def stored(row: Row) -> tuple[str, Scopes]:
        return f"{row['pseudonym']}/{row['client_id']}", frozenset(str(row["scopes"]).split())

    def differ(logged: Scopes | None, stored: Scopes | None) -> str | None:
        if stored is None or logged is None:
            return None  # absent (the e-service asks again), or not known to the log
        if not isinstance(logged, frozenset):
            return "held, but the log last recorded its withdrawal"
        if not isinstance(stored, frozenset) or not stored <= logged:
            return "wider than the log last recorded the citizen consenting to"
        return None

    rows = select(grants, citizens.c.pseudonym).join(citizens, citizens.c.id == grants.c.citizen_id)
    actions = frozenset({CONSENT_GRANTED, CONSENT_REVOKED, CLIENT_REMOVED})
    return Kind(grants, actions, fold, stored, differ, rows)


def _client_of(entry: Entry) -> str:
    return str(entry["resource"]).removeprefix("client:")


def kinds(*, sessions_born_after: datetime) -> tuple[Kind[Any], ...]:
    """The identity tables as one check reconciles them; sessions from `sessions_born_after`
    on (now less the longest a session lives)."""
    return (
        role_grants(),
        role_proposals_kind(),
        client_registrations(),
        accounts(),
        sign_in_sessions(sessions_born_after),
        eservice_consents(),
    )
