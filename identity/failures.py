"""Authentication and access failures beyond the password, in the audit log (ASVS 7.1.3,
7.2.1, 7.2.2).

Failed logins are recorded by `identity.login`; this module records the others: a wrong or
reused second-factor code, or one entered against a ticket that cannot take it, a client that
fails to authenticate at the token, introspection, revocation or PAR endpoint, a form refused
for its CSRF token, and an access refused to someone known (a page of a role they lack, an
API their token's scope, caller kind or assurance does not open). Each entry is an
`outcome: failure` in the style of a failed login: people by pseudonym, the client address
by its keyed pseudonym, and never a code, a ticket, a token, a secret, an assertion or a CNIC.

The log is kept for ever and every entry costs a hash-chain append, so what an outsider can
provoke at will must not grow it without bound. What gets an entry, and why:

- A wrong or reused second-factor code: always. Only a browser signed in with the password
  reaches that step, and the existing limits already bound it per account (five wrong SMS
  codes per 15 minutes, whatever the number of codes sent; ten app codes per 15 minutes).
- A failed client authentication: only when the client it claims to be is registered (the
  entry names it), and then at most `CAP` entries per client in a window; the rest are only
  counted. A client id is public (it travels in every authorization URL), so anyone can fail
  as a registered client, but the number of registered clients is the administrators' to
  choose. An unknown client id, a malformed header or an assertion that names nobody gets no
  entry: it names nothing the log could be asked about, and its variety is endless.
- A refused CSRF form: only when the browser holds a live sign-in session (the entry names
  its citizen), capped per account the same way. A forged cross-site post arrives without the
  session cookie (it is SameSite=Lax), names nobody and could be sent in any number.
- An SMS code entered against a ticket that exists but cannot take it (expired, used up, out
  of tries, another sign-in's or another account's): capped per account. Its refusal undoes
  the try it counted, so the code limits do not bound it as they bound wrong codes. A ticket
  that never existed names nobody, and gets no entry.
- An access refused to a signed-in account or to a token that verified (a role, a scope, a
  kind of caller or an assurance level it lacks): capped per account or client. A token that
  does not verify (malformed, forged, expired, revoked, its session ended) is not an
  authenticated caller at all: it names nobody the log can trust, and gets no entry.

Everything not recorded is still counted by the caller, in the `shanakht_auth_failures`
metric (by kind and whether it was recorded) and a log line, so a flood is visible to
monitoring without being written to the log. The cap's counter is an ordinary `throttles`
row, shared by every process and forgotten by housekeeping a day later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, address_pseudonym
from audit.canonical import JsonValue
from identity.policy import Limit
from identity.throttle import Throttle

# At most this many failure entries per client or account and kind in a window. Enough to
# see an attack begin and whom it aims at; past it, the metric counts on.
CAP = Limit(10, timedelta(minutes=15))

SECOND_FACTOR = "identity.login.second_factor"
CLIENT_AUTHENTICATION = "identity.client.authentication"
CSRF = "identity.csrf.refused"
ACCESS_DENIED = "access.denied"


class FailureRecords:
    """Appends failure entries to the log, within the caps described above."""

    def __init__(
        self,
        session: Session,
        *,
        audit: AuditLog,
        pseudonym_key: bytes,
        clock: Callable[[], datetime],
        cap: Limit = CAP,
    ) -> None:
        self._audit = audit
        self._pseudonym_key = pseudonym_key
        self._throttle = Throttle(session, clock)
        self._cap = cap

    def second_factor(self, pseudonym: str, *, method: str, reason: str, client: str) -> None:
        """A wrong (or reused) second-factor code from the signed-in citizen `pseudonym`:
        always recorded (bounded by the code limits, see the module's docstring)."""
        self._audit.append(
            AuditEvent(
                actor=f"citizen:{pseudonym}",
                action=SECOND_FACTOR,
                subject=pseudonym,
                outcome="failure",
                details={"method": method, "reason": reason, "client": self._address(client)},
            )
        )

    def client_authentication(
        self, client_id: str, *, endpoint: str, reason: str, client: str
    ) -> bool:
        """A registered client failed to authenticate; whether an entry was written (False
        past the cap). `reason` is the refusal's fixed description, never what was sent."""
        return self._capped(
            f"audit:client_authentication:{client_id}",
            AuditEvent(
                actor="anonymous",
                action=CLIENT_AUTHENTICATION,
                resource=f"client:{client_id}",
                outcome="failure",
                details={"endpoint": endpoint, "reason": reason, "client": self._address(client)},
            ),
        )

    def csrf(self, pseudonym: str, *, route: str, client: str) -> bool:
        """A form without its CSRF token from a browser signed in as `pseudonym`; whether an
        entry was written (False past the cap). `route` is the route's template, never the
        path sent (it may hold a document id)."""
        return self._capped(
            f"audit:csrf:{pseudonym}",
            AuditEvent(
                actor=f"citizen:{pseudonym}",
                action=CSRF,
                subject=pseudonym,
                outcome="failure",
                details={"route": route, "client": self._address(client)},
            ),
        )

    def second_factor_ticket(self, pseudonym: str, *, reason: str, client: str) -> bool:
        """An SMS code from the signed-in citizen `pseudonym` against a ticket that exists but
        cannot take it (`reason`, fixed: "expired ticket", "used ticket"...); whether an entry
        was written (False past the cap). Called after the refusal's rollback."""
        return self._capped(
            f"audit:ticket:{pseudonym}",
            AuditEvent(
                actor=f"citizen:{pseudonym}",
                action=SECOND_FACTOR,
                subject=pseudonym,
                outcome="failure",
                details={"method": "sms", "reason": reason, "client": self._address(client)},
            ),
        )

    def access_denied(
        self,
        actor: str,
        *,
        subject: str | None,
        route: str,
        method: str,
        needed: str,
        client: str,
        via: str | None = None,
    ) -> bool:
        """An access refused to `actor` ("citizen:<pseudonym>" or "client:<id>"); whether an
        entry was written (False past the cap). `route` is the route's template, never the
        path sent (it may hold a document id); `needed` what was missing ("role:...",
        "scope:...", "acr:...", "caller:..."); `via` the e-service whose token a citizen's
        request came in."""
        details: dict[str, JsonValue] = {
            "route": route,
            "method": method,
            "needed": needed,
            "client": self._address(client),
        }
        if via is not None:
            details["via"] = via
        return self._capped(
            f"audit:denied:{actor}",
            AuditEvent(
                actor=actor,
                action=ACCESS_DENIED,
                subject=subject,
                outcome="failure",
                details=details,
            ),
        )

    def _capped(self, key: str, event: AuditEvent) -> bool:
        count = self._throttle.add(key, self._cap)
        if count > self._cap.attempts:
            return False
        if count == self._cap.attempts:
            # The last entry in this window says that what follows is only counted.
            minutes = int(self._cap.window.total_seconds() // 60)
            details: dict[str, JsonValue] = {**event.details, "cap_reached": minutes}
            event = AuditEvent(
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                resource=event.resource,
                outcome=event.outcome,
                details=details,
            )
        self._audit.append(event)
        return True

    def _address(self, client: str) -> str:
        return address_pseudonym(client, key=self._pseudonym_key)
