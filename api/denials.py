"""Accesses refused to someone the service knows, in the audit log (threat model item 12).

A page of a role the signed-in citizen does not hold; an API call whose token verified but
lacks the scope, is of the wrong kind of caller (a citizen's at a department API, or the
reverse), or comes from a sign-in too weak for the act: each names a principal, so each is
an `access.denied` entry with `outcome: failure` (`identity.failures`: the route's template,
what was missing, the principal by pseudonym or client id; capped per principal, then only
counted). A token that does not verify names nobody the log can trust: it is only counted.

Nothing here runs on an allowed request. The refusals raise; the handlers `install` adds
record them in a transaction of their own, after the request's was rolled back (so the entry
stands, and nothing of the refused request does), then answer exactly as before.

Some refusals a page answers itself, on its own page: those of the two-person rule (an officer
deciding their own legal-access request or opening another's, an administrator deciding their
own proposal or one for them, granting themself a role, a request or proposal decided twice,
a citizen deciding again a department's request for documents they decided) and a
legal-access grant that does not hold. The page calls `refused_on_page` once it has
rolled its transaction back: the same entry, cap and count. What else it answers (a field to
fix, an unknown or expired request) is no access refused, and is not recorded. The legal-access
and citizens' request APIs answer a request decided twice as the pages do (a 409, not a 403),
so they call `refused_by_rule` the same way, naming the officer or citizen through the
e-service their token is of.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api import metrics, problems
from api.runtime import Runtime
from api.web import client_address
from audit.two_person import APPROVED, REFUSED
from identity.login import ACR_SUBSTANTIAL
from locker.exchange import DENIED, NeedsSecondFactor, RequestClosed
from locker.legal import ROLE as LEGAL_ROLE
from locker.legal import FourEyesRefused, GrantInvalid, LegalAccessRefused

log = logging.getLogger("shanakht.api")

SUBSTANTIAL = f"acr:{ACR_SUBSTANTIAL}"
FOUR_EYES = "rule:four-eyes"  # a second person must decide, and only the filer opens
DECIDED_ONCE = "rule:decided-once"  # a request or proposal is decided once, by one person
LEGAL_GRANT = f"grant:{LEGAL_ROLE}"  # a legal-access grant that is this officer's and valid

# The refusals pages answer themselves that are accesses refused, by the domain's code.
_PAGE_RULES = {
    "legal.own_request": FOUR_EYES,  # the filer deciding their own legal-access request
    "legal.not_filer": FOUR_EYES,  # another officer opening it
    "role.own_proposal": FOUR_EYES,  # the proposer deciding their own proposal
    "role.proposed_for_you": FOUR_EYES,  # the grantee deciding it
    "role.self_grant": FOUR_EYES,  # an administrator granting themself a role
    "role.proposal_decided": DECIDED_ONCE,
    "legal.grant_invalid": LEGAL_GRANT,  # a grant forged, expired or not theirs
}
# What a request decided already says it is (a legal-access request: `locker.legal._closed`; a
# citizen's: `locker.exchange.Exchange._decide`; "decided" when it was decided between the
# check and the write).
_DECIDED = frozenset({APPROVED, REFUSED, DENIED, "decided"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a refused request was, as the audit log names them: `actor` is "citizen:<pseudonym>"
    or "client:<id>", `subject` the citizen's pseudonym, `via` the e-service whose token a
    citizen's request came in (None for a page or a department system)."""

    actor: str
    subject: str | None = None
    via: str | None = None

    @classmethod
    def citizen(cls, pseudonym: str, via: str | None = None) -> Principal:
        return cls(f"citizen:{pseudonym}", pseudonym, via)

    @classmethod
    def client(cls, client_id: str) -> Principal:
        return cls(f"client:{client_id}")


class Denied(HTTPException):
    """A 403 for a known principal: recorded, then answered as any other HTTPException.
    `needed` names what was missing ("scope:locker.request", "caller:service"...)."""

    def __init__(
        self,
        principal: Principal,
        description: str,
        *,
        needed: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(403, description, headers=headers)
        self.principal = principal
        self.needed = needed


def record(request: Request, runtime: Runtime, principal: Principal, needed: str) -> None:
    """Audit an access refused to `principal` (within its cap), in a transaction of its own
    once the request's has ended, and count it either way. A database that fails here leaves
    the refusal standing, and the count."""
    recorded = False
    try:
        with runtime.transaction() as session:
            recorded = _append(session, request, runtime, principal, needed)
    except SQLAlchemyError as exc:
        log.warning("a refused access could not be audited: %s", type(exc).__name__)
        recorded = False
    metrics.auth_failure("access_denied", recorded=recorded)


def record_in(
    session: Session, request: Request, runtime: Runtime, principal: Principal, needed: str
) -> None:
    """As `record`, in the request's own transaction: for a route that answers the refusal
    itself and commits (nothing else it did may be undone by then)."""
    recorded = _append(session, request, runtime, principal, needed)
    metrics.auth_failure("access_denied", recorded=recorded)


def _append(
    session: Session, request: Request, runtime: Runtime, principal: Principal, needed: str
) -> bool:
    return runtime.failure_records(session).access_denied(
        principal.actor,
        subject=principal.subject,
        route=metrics.route_template(request.scope),
        method=request.method,
        needed=needed,
        client=client_address(request),
        via=principal.via,
    )


def page_rule(exc: Exception, *, deciding: bool = False) -> str | None:
    """What a refusal a page answers itself denied (`FOUR_EYES`, `DECIDED_ONCE`,
    `LEGAL_GRANT`), or None when it is no access refused: a field to fix, an unknown, expired
    or lapsed request. `deciding`: the refusal answered a decision, where a request (a
    legal-access one, or a department's to a citizen) that is closed was decided already
    (opening one is another matter)."""
    if deciding and isinstance(exc, RequestClosed):
        return DECIDED_ONCE if exc.facts.get("state") in _DECIDED else None
    code = getattr(exc, "code", None)
    return _PAGE_RULES.get(code) if isinstance(code, str) else None


def refused_on_page(
    request: Request, runtime: Runtime, pseudonym: str, exc: Exception, *, deciding: bool = False
) -> None:
    """Audit the signed-in account of `pseudonym` refused `exc` on a page, if it is an access
    refused (`page_rule`), as `record` does: so call it after the page's transaction was
    rolled back (`api.deps.settle`), and answer as before whatever it could write."""
    refused_by_rule(request, runtime, Principal.citizen(pseudonym), exc, deciding=deciding)


def refused_by_rule(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    exc: Exception,
    *,
    deciding: bool = False,
) -> None:
    """As `refused_on_page`, for `principal` however it came: an API route that lets a rule's
    refusal go on to its ordinary answer (a legal-access request decided again is a 409 there,
    not a 403 `Denied`) calls this first, after rolling back, so the API and the page leave
    the same entry for the same refusal."""
    needed = page_rule(exc, deciding=deciding)
    if needed is not None:
        record(request, runtime, principal, needed)


def invalid_token() -> None:
    """Count a token that did not verify: not audited, as anyone can send any number."""
    metrics.auth_failure("access_token", recorded=False)


class Caller(Protocol):
    """An API caller a verified token named (`api.bearer`'s citizen or department system)."""

    @property
    def principal(self) -> Principal: ...


def remember(request: Request, caller: Caller) -> None:
    """Keep the API's caller, for a refusal the domain may raise later in the request (too
    weak a sign-in, a role it lacks): one attribute set; it is named only if refused."""
    request.state.caller = caller


def _needed(exc: Exception) -> str:
    if isinstance(exc, NeedsSecondFactor):
        return SUBSTANTIAL
    if isinstance(exc, FourEyesRefused):
        return FOUR_EYES
    if isinstance(exc, GrantInvalid):
        return LEGAL_GRANT
    return f"role:{LEGAL_ROLE}"


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Denied)  # noqa: S101 (registered for Denied only)
    runtime: Runtime = request.app.state.runtime
    await run_in_threadpool(record, request, runtime, exc.principal, exc.needed)
    return await problems.http_error(request, exc)


async def _refused_by_domain(request: Request, exc: Exception) -> Response:
    """A domain refusal of access (a second factor, a legal-basis role, a legal-access grant):
    recorded when an API caller's token named who asked; answered as every domain error."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is not None:
        runtime: Runtime = request.app.state.runtime
        await run_in_threadpool(record, request, runtime, caller.principal, _needed(exc))
    return await problems.domain_error(request, exc)


def install(app: FastAPI) -> None:
    """After `problems.install`: these handlers take over from its for the classes below."""
    app.add_exception_handler(Denied, _denied)
    for cls in (NeedsSecondFactor, LegalAccessRefused, GrantInvalid):
        app.add_exception_handler(cls, _refused_by_domain)
