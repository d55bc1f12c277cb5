"""OpenID Connect and OAuth 2.0 endpoints. The decisions are `identity.oidc`'s; this module
reads requests, writes responses, and renders errors the way each endpoint must."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api import denials, metrics
from api.challenges import REALM, challenge, unauthenticated
from api.deps import (
    FormParams,
    RuntimeDep,
    SessionDep,
    form_fields,
    get_runtime,
    settle,
)
from api.i18n import Text
from api.lanes import LaneFull, quick
from api.problems import (
    DATABASE_RETRY_AFTER,
    PROBLEM_MEDIA_TYPE,
    PROBLEM_SCHEMA_REF,
    database_outage,
)
from api.runtime import Runtime
from api.web import SESSION_COOKIE, client_address, cookie_name, render
from identity.login import ACR_LOW, ACR_SUBSTANTIAL
from identity.oidc.authorize import (
    CONSENT,
    LOGIN,
    PAR_PREFIX,
    PUSHED_TTL,
    STEP_UP,
    AuthorizationRequest,
    ErrorRedirect,
)
from identity.oidc.claims import SCOPE_CLAIMS
from identity.oidc.clients import ASSERTION_ALGORITHMS, CITIZEN_SCOPES, Client
from identity.oidc.dpop import ALGORITHMS as DPOP_ALGORITHMS
from identity.oidc.errors import (
    InvalidClient,
    InvalidDpopProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
    UntrustedRedirect,
)
from identity.oidc.params import refuse_repeated
from identity.oidc.provider import Provider
from identity.oidc.tokens import TokenResponse

router = APIRouter(tags=["openid connect"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthErrorBody(BaseModel):
    """RFC 6749 5.2: how the OAuth endpoints refuse, in place of problem details."""

    error: str
    error_description: str | None = None


def oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` declaring each status in `statuses` as RFC 6749 error JSON."""
    return {status: {"model": OAuthErrorBody} for status in statuses}


def form_body(*required: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra=` declaring the form an endpoint reads (through `FormParams`, so FastAPI
    cannot see it): clients learn the fields, and the fuzzer sends them."""
    schema = {"type": "object", "properties": fields, "required": list(required)}
    form = {"application/x-www-form-urlencoded": {"schema": schema}}
    return {"requestBody": {"required": True, "content": form}}


TEXT: dict[str, Any] = {"type": "string"}
CLIENT_AUTH = {"client_id": TEXT, "client_assertion_type": TEXT, "client_assertion": TEXT}
TOKEN_FORM = form_body(
    "grant_type",
    grant_type={"enum": ["authorization_code", "refresh_token", "client_credentials"]},
    code=TEXT,
    redirect_uri=TEXT,
    code_verifier=TEXT,
    refresh_token=TEXT,
    scope=TEXT,
    **CLIENT_AUTH,
)
TOKEN_NAMING_FORM = form_body("token", token=TEXT, token_type_hint=TEXT, **CLIENT_AUTH)
PAR_FORM = form_body(
    "response_type",
    "redirect_uri",
    "scope",
    "code_challenge",
    "code_challenge_method",
    response_type={"enum": ["code"]},
    redirect_uri=TEXT,
    scope=TEXT,
    state=TEXT,
    nonce=TEXT,
    code_challenge=TEXT,
    code_challenge_method={"enum": ["S256"]},
    prompt=TEXT,
    acr_values=TEXT,
    dpop_jkt=TEXT,
    **CLIENT_AUTH,
)


# The front channel answers a browser: a redirect onwards (to sign in, consent, or back to the
# e-service with a code or an error), or a page when the e-service cannot be trusted with one.
BROWSER_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "On to the next step, or back to the e-service"},
    400: {
        "description": "The sign-in link is not valid (a page), or the request is malformed",
        "content": {"text/html": {}, PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA_REF}},
    },
}


def oauth_error(
    exc: OAuthError, headers: dict[str, str] | None = None, status: int | None = None
) -> JSONResponse:
    """RFC 6749 5.2 error JSON."""
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=status or exc.status,
        headers={**NO_STORE, **(headers or {})},
    )


# The two 503s these endpoints answer, told apart by their description (bench/loadgen.py
# counts the first as shed load, the second as an error).
BUSY = "the service is busy; retry after the time in Retry-After"
DATABASE_DOWN = "the database is not answering; retry after the time in Retry-After"


async def in_quick_lane(runtime: Runtime, work: Callable[..., Response], *args: object) -> Response:
    """`work(*args)` in the quick lane (api.lanes), or, when the lane is too far behind to
    start it within `SHANAKHT_QUICK_LANE_MAX_WAIT`, an immediate 503 in these endpoints' error
    JSON with Retry-After: nothing of the request has run, so a retry is safe. A database
    outage the work could not get past (`Runtime.rerunnable` has rolled it back) is the same
    503 in the same JSON: a client of these endpoints parses RFC 6749 errors, not problem
    details, and retries either after Retry-After."""
    try:
        return await quick(work, *args, max_wait=runtime.settings.quick_lane_max_wait)
    except LaneFull as full:
        return oauth_error(TemporarilyUnavailable(BUSY), {"Retry-After": str(full.retry_after)})
    except DBAPIError as exc:
        if not database_outage(exc):
            raise  # a bug, or a value the database refused: problem details, as anywhere
        down = TemporarilyUnavailable(DATABASE_DOWN)
        return oauth_error(down, {"Retry-After": str(DATABASE_RETRY_AFTER)})


def with_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_redirect(runtime: Runtime, exc: ErrorRedirect) -> RedirectResponse:
    target = with_query(
        exc.redirect_uri,
        {
            "error": exc.error.error,
            "error_description": exc.error.description,
            "state": exc.state,
            "iss": runtime.settings.resolved_issuer,
        },
    )
    return RedirectResponse(target, status_code=303)


def untrusted(request: Request, runtime: Runtime, exc: UntrustedRedirect) -> Response:
    return render(
        request,
        runtime,
        "message.html",
        status_code=400,
        heading=Text("This sign-in link is not valid"),
        message=Text(
            "%(reason)s. Go back to the e-service and start again.", reason=exc.description
        ),
    )


# -- discovery and keys ------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration")
@router.get("/.well-known/oauth-authorization-server")
def discovery(runtime: RuntimeDep) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 and RFC 8414 metadata (one document serves both)."""
    iss = runtime.settings.resolved_issuer
    auth_methods = ["private_key_jwt", "client_secret_basic"]
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oauth/authorize",
        "pushed_authorization_request_endpoint": f"{iss}/oauth/par",
        "token_endpoint": f"{iss}/oauth/token",
        "userinfo_endpoint": f"{iss}/oauth/userinfo",
        "jwks_uri": f"{iss}/oauth/jwks",
        "introspection_endpoint": f"{iss}/oauth/introspect",
        "revocation_endpoint": f"{iss}/oauth/revoke",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": sorted(CITIZEN_SCOPES),
        "claims_supported": sorted(
            {"sub", "iss", "aud", "acr", "amr", "auth_time", "sid"}
            | {c for claims in SCOPE_CLAIMS.values() for c in claims}
        ),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [ACR_LOW, ACR_SUBSTANTIAL],
        "prompt_values_supported": ["none", "login", "consent"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        "request_parameter_supported": False,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": False,
        "claims_parameter_supported": False,
    }


@router.get("/oauth/jwks")
def jwks(runtime: RuntimeDep, session: SessionDep) -> JSONResponse:
    keys = runtime.provider(session).keys.published()
    return JSONResponse({"keys": keys}, headers={"Cache-Control": "public, max-age=300"})


# -- authorization -----------------------------------------------------------------------------


def continue_authorization(
    request: Request,
    runtime: Runtime,
    provider: Provider,
    request_id: str,
    auth: AuthorizationRequest,
) -> Response:
    """Send the browser to what the request still needs, or back to the client with a code."""
    sso = provider.sessions.current(request.cookies.get(cookie_name(runtime, SESSION_COOKIE)))
    try:
        missing = provider.authorizer.needs(auth, sso)
    except ErrorRedirect as exc:
        provider.authorizer.forget(request_id)
        return error_redirect(runtime, exc)
    pages = {LOGIN: "/login", STEP_UP: "/login/second-factor", CONSENT: "/consent"}
    if missing is not None:
        return RedirectResponse(f"{pages[missing]}?{urlencode({'request': request_id})}", 303)
    assert sso is not None  # noqa: S101 (needs() returns LOGIN when there is no session)
    issued = provider.authorizer.issue_code(auth, sso)
    provider.authorizer.forget(request_id)
    target = with_query(
        issued.redirect_uri,
        {"code": issued.code, "state": issued.state, "iss": runtime.settings.resolved_issuer},
    )
    return RedirectResponse(target, status_code=303)


# One route a method, so each operation has an id of its own in the OpenAPI schema (one
# route for both gave GET and POST the same id, which the schema forbids).
@router.get("/oauth/authorize", response_class=HTMLResponse, responses=BROWSER_RESPONSES)
@router.post("/oauth/authorize", response_class=HTMLResponse, responses=BROWSER_RESPONSES)
def authorize(
    request: Request, runtime: RuntimeDep, session: SessionDep, params: FormParams
) -> Response:
    """OpenID Connect Core 3.1.2: the browser arrives here from an e-service."""
    provider = runtime.provider(session)
    try:
        if "request_uri" in params:
            auth = provider.authorizer.pushed(params)
        else:
            auth = provider.authorizer.parse(params)
    except UntrustedRedirect as exc:
        return untrusted(request, runtime, exc)
    except ErrorRedirect as exc:
        return error_redirect(runtime, exc)
    request_id = provider.authorizer.store(auth)
    return continue_authorization(request, runtime, provider, request_id, auth)


@router.get("/oauth/authorize/resume", response_class=HTMLResponse, responses=BROWSER_RESPONSES)
def resume(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    request_id: Annotated[str, Query(alias="request")] = "",
) -> Response:
    """Where the login, second-factor and consent pages send the browser when done."""
    provider = runtime.provider(session)
    try:
        auth = provider.authorizer.load(request_id)
    except UntrustedRedirect as exc:
        return untrusted(request, runtime, exc)
    return continue_authorization(request, runtime, provider, request_id, auth)


# -- client-authenticated endpoints ----------------------------------------------------------


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed Basic credentials")
    # RFC 6749 2.3.1: both parts are form-urlencoded before being joined.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _authenticated(request: Request, provider: Provider, params: dict[str, str]) -> Client:
    """The client making this request, authenticated the one way it registered; first of all,
    at every client-authenticated endpoint, a request that repeats a parameter is refused."""
    refuse_repeated(params)
    return provider.clients.authenticate(
        basic=_basic_credentials(request),
        form_client_id=params.get("client_id"),
        assertion_type=params.get("client_assertion_type"),
        assertion=params.get("client_assertion"),
        # This endpoint's URL under the configured issuer, never as the request spells it:
        # the Host header is the caller's to choose, so an assertion minted for another
        # server's endpoint would otherwise pass here under that server's name.
        audiences=[provider.token_endpoint, provider.issuer, provider.issuer + request.url.path],
    )


def _dpop(request: Request, provider: Provider, url: str) -> str | None:
    proofs = request.headers.getlist("dpop")
    if not proofs:
        return None
    if len(proofs) > 1:
        raise InvalidDpopProof("send one DPoP proof")
    return provider.dpop.verify(proofs[0], method=request.method, url=url)


def _client_failure(request: Request, runtime: Runtime, session: Session, exc: OAuthError) -> None:
    """After the refusal's rollback: a failed client authentication is audited when it claimed
    a registered client (within that client's cap), and counted either way
    (`identity.failures` says why an unknown client id earns no entry)."""
    if not isinstance(exc, InvalidClient):
        return
    recorded = exc.client_id is not None and runtime.failure_records(session).client_authentication(
        exc.client_id,
        endpoint=metrics.route_template(request.scope),
        reason=exc.description,
        client=client_address(request),
    )
    metrics.auth_failure("client_authentication", recorded=recorded)


def _refused(request: Request, runtime: Runtime, session: Session, exc: OAuthError) -> JSONResponse:
    """An error at a client-authenticated endpoint; a failed Basic login gets its challenge."""
    settle(session, exc)
    _client_failure(request, runtime, session, exc)
    headers = {}
    if isinstance(exc, InvalidClient) and "authorization" in request.headers:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return oauth_error(exc, headers)


def _client_and_token(
    request: Request,
    runtime: Runtime,
    session: Session,
    provider: Provider,
    params: dict[str, str],
) -> tuple[Client, str] | JSONResponse:
    """For introspection and revocation: the authenticated client and the token it names."""
    try:
        client = _authenticated(request, provider, params)
    except OAuthError as exc:
        return _refused(request, runtime, session, exc)
    if not params.get("token"):
        return oauth_error(InvalidRequest("token is required"))
    return client, params["token"]


@router.post(
    "/oauth/token",
    response_model=None,
    responses=oauth_errors(400, 401, 503),
    openapi_extra=TOKEN_FORM,
)
async def token(request: Request) -> Response:
    # `form_fields`: the urlencoded form in one parse_qsl, a tenth of a millisecond less a
    # grant than Starlette's streaming parser; other encodings still go through that. Called
    # here rather than declared as dependencies (`RuntimeDep`, `FormFields`): FastAPI's solving
    # of them was a few percent of a grant, for two awaits. What they raise (413 for an
    # oversized form) is answered as before; the body is described by TOKEN_FORM either way.
    runtime = await get_runtime(request)
    params = await form_fields(request)
    return await in_quick_lane(runtime, _token, request, runtime, params)


def _token(request: Request, runtime: Runtime, params: dict[str, str]) -> Response:
    # Its own transaction rather than SessionDep's: it commits here, in the lane's thread,
    # where the dependency would commit only after a hop through the event loop and another
    # worker thread, holding SQLite's write lock meanwhile. The busiest write path there is.
    # Rerunnable: a grant touches nothing but the database (see `Runtime.rerunnable`).
    def work(session: Session) -> TokenResponse | Response:
        provider = runtime.provider(session)
        try:
            return _grant(request, provider, params)
        except OAuthError as exc:
            return _refused(request, runtime, session, exc)

    result = runtime.rerunnable(work)
    if isinstance(result, Response):
        return result
    metrics.token_issued(params.get("grant_type"))
    return JSONResponse(result.to_json(), headers=NO_STORE)


def _grant(request: Request, provider: Provider, params: dict[str, str]) -> TokenResponse:
    client = _authenticated(request, provider, params)
    jkt = _dpop(request, provider, provider.token_endpoint)
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        return provider.tokens.exchange_code(
            client,
            code=params.get("code", ""),
            redirect_uri=params.get("redirect_uri", ""),
            code_verifier=params.get("code_verifier", ""),
            dpop_jkt=jkt,
        )
    if grant_type == "refresh_token":
        return provider.tokens.refresh(
            client,
            refresh_token=params.get("refresh_token", ""),
            scope=params.get("scope"),
            dpop_jkt=jkt,
        )
    if grant_type == "client_credentials":
        return provider.tokens.client_credentials(client, scope=params.get("scope"), dpop_jkt=jkt)
    raise UnsupportedGrantType(
        "grant_type is authorization_code, refresh_token or client_credentials"
    )


@router.post(
    "/oauth/par",
    response_model=None,
    status_code=201,
    responses=oauth_errors(400, 401),
    openapi_extra=PAR_FORM,
)
def pushed_authorization(
    request: Request, runtime: RuntimeDep, session: SessionDep, params: FormParams
) -> Response:
    """RFC 9126: the client sends its request over a back channel and gets a request_uri."""
    provider = runtime.provider(session)
    try:
        client = _authenticated(request, provider, params)
        if params.get("client_id", client.id) != client.id:
            raise InvalidRequest("client_id does not match the authenticated client")
        params["client_id"] = client.id
        jkt = _dpop(request, provider, f"{provider.issuer}/oauth/par")
        if jkt is not None:
            if params.get("dpop_jkt", jkt) != jkt:
                raise InvalidRequest("dpop_jkt does not match the DPoP proof")
            params["dpop_jkt"] = jkt
        auth = provider.authorizer.parse(params, pushed=True)
    except (UntrustedRedirect, ErrorRedirect) as exc:
        session.rollback()
        error = exc.error if isinstance(exc, ErrorRedirect) else InvalidRequest(exc.description)
        return oauth_error(error)
    except OAuthError as exc:
        settle(session, exc)
        _client_failure(request, runtime, session, exc)
        return oauth_error(exc)
    request_id = provider.authorizer.store(auth, pushed=True)
    return JSONResponse(
        {"request_uri": PAR_PREFIX + request_id, "expires_in": int(PUSHED_TTL.total_seconds())},
        status_code=201,
        headers=NO_STORE,
    )


@router.post(
    "/oauth/introspect",
    response_model=None,
    responses=oauth_errors(400, 401, 503),
    openapi_extra=TOKEN_NAMING_FORM,
)
async def introspect(request: Request, runtime: RuntimeDep, params: FormParams) -> Response:
    def answer(provider: Provider, client: Client, token: str) -> Response:
        return JSONResponse(provider.tokens.introspect(client, token), headers=NO_STORE)

    return await in_quick_lane(runtime, _about_a_token, request, runtime, params, answer)


@router.post(
    "/oauth/revoke",
    response_class=Response,
    responses=oauth_errors(400, 401, 503),
    openapi_extra=TOKEN_NAMING_FORM,
)
async def revoke(request: Request, runtime: RuntimeDep, params: FormParams) -> Response:
    def answer(provider: Provider, client: Client, token: str) -> Response:
        provider.tokens.revoke(client, token)
        return Response(status_code=200, headers=NO_STORE)

    return await in_quick_lane(runtime, _about_a_token, request, runtime, params, answer)


def _about_a_token(
    request: Request,
    runtime: Runtime,
    params: dict[str, str],
    answer: Callable[[Provider, Client, str], Response],
) -> Response:
    """Introspection and revocation: authenticate the client, find the token it names, then
    `answer`, in one transaction, rerun if the connection drops (`Runtime.rerunnable`)."""

    def work(session: Session) -> Response:
        provider = runtime.provider(session)
        found = _client_and_token(request, runtime, session, provider, params)
        if isinstance(found, Response):
            return found
        return answer(provider, *found)

    return runtime.rerunnable(work)


@router.get("/oauth/userinfo", response_model=None, responses=oauth_errors(401, 503))
@router.post("/oauth/userinfo", response_model=None, responses=oauth_errors(401, 503))
async def userinfo(request: Request, runtime: RuntimeDep) -> Response:
    """OpenID Connect Core 5.3, with Bearer (RFC 6750) or DPoP (RFC 9449 7) tokens."""
    return await in_quick_lane(runtime, _userinfo, request, runtime)


def _userinfo(request: Request, runtime: Runtime) -> Response:
    return runtime.rerunnable(
        lambda session: _claims_or_refusal(request, runtime.provider(session), session)
    )


def _claims_or_refusal(request: Request, provider: Provider, session: Session) -> Response:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() not in ("bearer", "dpop") or not value:
            raise InvalidToken("an access token is required")
        access = provider.tokens.verify_access_token(value.strip())
        if access.dpop_jkt:
            if scheme.lower() != "dpop":
                raise InvalidToken("this token is DPoP-bound; send it with a DPoP proof")
            proofs = request.headers.getlist("dpop")
            if len(proofs) != 1:
                raise InvalidDpopProof("one DPoP proof is required")
            url = f"{provider.issuer}/oauth/userinfo"
            jkt = provider.dpop.verify(
                proofs[0], method=request.method, url=url, access_token=value.strip()
            )
            if jkt != access.dpop_jkt:
                raise InvalidToken("the DPoP proof is by another key")
        elif scheme.lower() != "bearer":
            raise InvalidToken("this token is a Bearer token")
        claims = provider.tokens.userinfo(access)
    except OAuthError as exc:
        settle(session, exc)
        if unauthenticated(request):  # nothing sent: the bare challenge, and nothing counted
            return oauth_error(exc, {"WWW-Authenticate": challenge()}, status=401)
        denials.invalid_token()  # as the bearer APIs do: names nobody, so only counted
        kind = "DPoP" if scheme.lower() == "dpop" else "Bearer"
        asked = challenge(kind, error=exc.error, error_description=exc.description)
        # A resource answers 401 to every token or proof problem (RFC 6750 3.1, RFC 9449 7.1).
        return oauth_error(exc, {"WWW-Authenticate": asked}, status=401)
    return JSONResponse(claims, headers=NO_STORE)
