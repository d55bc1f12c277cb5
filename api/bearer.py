"""Access tokens presented to the service's own APIs (the locker, the once-only exchange).

One place checks a token, its DPoP proof when it is bound to a key (RFC 9449 7), and its
scope, and says who is calling: a citizen (through an e-service or the portal they let act
for them) or a department system (client credentials). A failure is an HTTP 401 or 403 with a
`WWW-Authenticate` challenge (RFC 6750 3), in problem+json like every other error.

A request with no token at all is answered 401 with a bare challenge, and not counted: nothing
was wrong with a token (RFC 6750 3.1, `api.challenges`). A 401 for a token that does not
verify is only counted: it names nobody. A 403 names
the token's citizen or department system, and is audited (`api.denials`); so is a refusal the
domain raises later for a caller this module let through (`remember`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

from api import denials
from api.challenges import challenge, unauthenticated
from api.denials import Denied, Principal
from api.runtime import Runtime
from identity.login import ACR_SUBSTANTIAL
from identity.oidc.clients import SERVICE
from identity.oidc.errors import InvalidDpopProof, OAuthError
from identity.oidc.provider import Provider
from identity.oidc.tokens import AccessToken


@dataclass(frozen=True, slots=True)
class CitizenCaller:
    """A citizen, through the e-service `client_id` that holds their token."""

    citizen_id: str
    pseudonym: str
    client_id: str
    substantial: bool  # signed in with a second factor

    @property
    def principal(self) -> Principal:
        return Principal.citizen(self.pseudonym, via=self.client_id)


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A department system acting as itself."""

    client_id: str
    scopes: frozenset[str]
    department: str | None  # the department it speaks for, if registered with one

    @property
    def principal(self) -> Principal:
        return Principal.client(self.client_id)


def _unauthorised(description: str, scheme: str = "Bearer") -> HTTPException:
    """401, counted (never audited: a token that does not verify names nobody)."""
    denials.invalid_token()
    asked = challenge(scheme, error="invalid_token", error_description=description)
    return HTTPException(401, description, headers={"WWW-Authenticate": asked})


def _unauthenticated() -> HTTPException:
    """401 to a request that sent no token: the bare challenge, no error code and no count."""
    return HTTPException(
        401, "an access token is required", headers={"WWW-Authenticate": challenge()}
    )


def forbidden(
    who: Principal | CitizenCaller | ServiceCaller,
    description: str,
    *,
    needed: str,
    scope: str | None = None,
) -> Denied:
    """403 to `who`, audited with what was `needed`; with `scope`, the RFC 6750
    insufficient_scope challenge naming it."""
    headers = {}
    if scope is not None:
        headers["WWW-Authenticate"] = challenge(error="insufficient_scope", scope=scope)
    return Denied(principal_of(who), description, needed=needed, headers=headers)


def _lacks(who: Principal, scope: str) -> Denied:
    """403 for a token without `scope`, with the RFC 6750 challenge naming it."""
    description = f"the token lacks the {scope} scope"
    return forbidden(who, description, needed=f"scope:{scope}", scope=scope)


def principal_of(who: Principal | CitizenCaller | ServiceCaller) -> Principal:
    """A caller as the audit log names it."""
    return who if isinstance(who, Principal) else who.principal


def token_principal(provider: Provider, access: AccessToken) -> Principal:
    """Whom a verified token speaks for: its citizen by pseudonym (through its e-service), or
    the client itself. Looked up only when refusing, so an allowed call pays nothing."""
    if access.citizen_id is None:
        return Principal.client(access.client_id)
    standing = provider.accounts.standing(access.citizen_id)
    if standing is None:  # a deleted account: the e-service is all there is to name
        return Principal.client(access.client_id)
    return Principal.citizen(standing[0], via=access.client_id)


def presented(request: Request, provider: Provider, public_url: str) -> AccessToken:
    """The verified access token of `request`, its DPoP proof checked if it is bound."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    kind = scheme.lower()
    if unauthenticated(request):
        raise _unauthenticated()
    if kind not in ("bearer", "dpop") or not value.strip():  # a DPoP proof and no token
        raise _unauthorised("an access token is required")
    try:
        access = provider.tokens.verify_access_token(value.strip())
        if access.dpop_jkt:
            if kind != "dpop":
                raise _unauthorised("this token is DPoP-bound; send it with a DPoP proof", "DPoP")
            proofs = request.headers.getlist("dpop")
            if len(proofs) != 1:
                raise InvalidDpopProof("one DPoP proof is required")
            url = public_url.rstrip("/") + request.url.path
            jkt = provider.dpop.verify(
                proofs[0], method=request.method, url=url, access_token=value.strip()
            )
            if jkt != access.dpop_jkt:
                raise _unauthorised("the DPoP proof is by another key", "DPoP")
        elif kind != "bearer":
            raise _unauthorised("this token is a Bearer token")
    except OAuthError as exc:
        raise _unauthorised(exc.description, "DPoP" if kind == "dpop" else "Bearer") from None
    return access


def citizen(request: Request, runtime: Runtime, session: Session, scope: str) -> CitizenCaller:
    """The citizen whose token this is, if it carries `scope`."""
    provider = runtime.provider(session)
    access = presented(request, provider, runtime.settings.public_url)
    if access.citizen_id is None:
        raise forbidden(
            token_principal(provider, access),
            "this API is for citizens; a department system's token cannot use it",
            needed="caller:citizen",
        )
    if scope not in access.scopes:
        raise _lacks(token_principal(provider, access), scope)
    standing = provider.accounts.standing(access.citizen_id)
    if standing is None or standing[1] != "active":
        raise _unauthorised("the account is no longer active")
    caller = CitizenCaller(
        citizen_id=access.citizen_id,
        pseudonym=standing[0],
        client_id=access.client_id,
        # The token's own acr, from the sign-in its grant was made in: the session may have
        # stepped up since, for another e-service, and that lends this token nothing.
        substantial=access.acr == ACR_SUBSTANTIAL,
    )
    denials.remember(request, caller)
    return caller


def roles_of(
    runtime: Runtime, session: Session, caller: CitizenCaller
) -> frozenset[tuple[str, str]]:
    """The (department, role) pairs a citizen holds: asked for only where roles matter."""
    grants = runtime.provider(session).roles.of(caller.citizen_id)
    return frozenset((g.department, g.role) for g in grants)


def service(request: Request, runtime: Runtime, session: Session, scope: str) -> ServiceCaller:
    """The department system whose client-credentials token this is, if it carries `scope`."""
    provider = runtime.provider(session)
    access = presented(request, provider, runtime.settings.public_url)
    client = provider.clients.get(access.client_id)
    if access.citizen_id is not None or client is None or client.kind != SERVICE:
        raise forbidden(
            token_principal(provider, access),
            "this API is for department systems (client credentials)",
            needed="caller:service",
        )
    if scope not in access.scopes:
        raise _lacks(Principal.client(client.id), scope)
    caller = ServiceCaller(client_id=client.id, scopes=access.scopes, department=client.department)
    denials.remember(request, caller)
    return caller
