"""Access tokens presented to the service's own APIs (the locker, the once-only exchange).

One place checks a token, its DPoP proof when it is bound to a key (RFC 9449 7), and its
scope, and says who is calling: a citizen (through an e-service or the portal they let act
for them) or a department system (client credentials). A failure is an HTTP 401 or 403 with a
`WWW-Authenticate` challenge (RFC 6750 3), in problem+json like every other error.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session

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


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """A department system acting as itself."""

    client_id: str
    scopes: frozenset[str]
    department: str | None  # the department it speaks for, if registered with one


def _unauthorised(description: str, scheme: str = "Bearer") -> HTTPException:
    challenge = f'{scheme} error="invalid_token", error_description="{description}"'
    return HTTPException(401, description, headers={"WWW-Authenticate": challenge})


def forbidden(description: str, scope: str | None = None) -> HTTPException:
    """403; with `scope`, the RFC 6750 insufficient_scope challenge naming it."""
    headers = {}
    if scope is not None:
        headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'
    return HTTPException(403, description, headers=headers)


def presented(request: Request, provider: Provider, public_url: str) -> AccessToken:
    """The verified access token of `request`, its DPoP proof checked if it is bound."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    kind = scheme.lower()
    if kind not in ("bearer", "dpop") or not value.strip():
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
        raise forbidden("this API is for citizens; a department system's token cannot use it")
    if scope not in access.scopes:
        raise forbidden(f"the token lacks the {scope} scope", scope)
    standing = provider.accounts.standing(access.citizen_id)
    if standing is None or standing[1] != "active":
        raise _unauthorised("the account is no longer active")
    return CitizenCaller(
        citizen_id=access.citizen_id,
        pseudonym=standing[0],
        client_id=access.client_id,
        # The token's own acr, from the sign-in its grant was made in: the session may have
        # stepped up since, for another e-service, and that lends this token nothing.
        substantial=access.acr == ACR_SUBSTANTIAL,
    )


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
        raise forbidden("this API is for department systems (client credentials)")
    if scope not in access.scopes:
        raise forbidden(f"the token lacks the {scope} scope", scope)
    return ServiceCaller(client_id=client.id, scopes=access.scopes, department=client.department)
