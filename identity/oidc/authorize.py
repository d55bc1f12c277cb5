"""The authorization endpoint's logic: validate a request, decide what it still needs
(login, a second factor, consent), and issue the code when nothing is missing.

Errors follow RFC 6749 4.1.2.1: until the client and its redirect URI are known to be good,
nothing redirects (UntrustedRedirect, shown to the citizen as a page); after that, errors go
back to the client on its redirect URI, with its `state`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from audit.row_seal import RowSeal
from identity.accounts import Accounts
from identity.login import ACR_LOW, ACR_SUBSTANTIAL
from identity.models import auth_requests, codes
from identity.oidc.clients import ESERVICE, Client, ClientRegistry
from identity.oidc.errors import (
    ConsentRequired,
    InvalidRequest,
    InvalidScope,
    LoginRequired,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
    UntrustedRedirect,
)
from identity.oidc.grants import Grants
from identity.oidc.params import refuse_repeated, repeated
from identity.oidc.sessions import Sessions, SsoSession

ACR_RANK = {ACR_LOW: 1, ACR_SUBSTANTIAL: 2}
REQUEST_TTL = timedelta(minutes=10)
PUSHED_TTL = timedelta(seconds=90)
CODE_TTL = timedelta(seconds=60)
PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# ASCII digits only (str.isdigit takes "²", which int() refuses), and few enough for int().
_MAX_AGE = re.compile(r"[0-9]{1,10}")
_PROMPTS = frozenset({"none", "login", "consent"})

LOGIN = "login"
STEP_UP = "step_up"
CONSENT = "consent"


def _untrusted_if_repeated(params: Mapping[str, str], names: set[str]) -> None:
    """UntrustedRedirect if any of `names`, which say where the browser goes back to, came more
    than once: neither value is trusted, so there is nowhere to send the error either."""
    if sent_twice := repeated(params) & names:
        raise UntrustedRedirect(f"{' and '.join(sorted(sent_twice))} sent more than once")


class ErrorRedirect(Exception):
    """An OAuth error to send back to the client's (trusted) redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    state: str | None
    nonce: str | None
    prompt: tuple[str, ...]
    max_age: int | None
    acr: str
    dpop_jkt: str | None
    issued_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AuthorizationRequest:
        data = json.loads(text)
        data["scopes"] = tuple(data["scopes"])
        data["prompt"] = tuple(data["prompt"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    redirect_uri: str
    state: str | None


class Authorizer:
    def __init__(
        self,
        session: Session,
        *,
        clients: ClientRegistry,
        grants: Grants,
        sessions: Sessions,
        accounts: Accounts,
        clock: Callable[[], datetime],
        seal: RowSeal,
    ) -> None:
        self._db = session
        self._accounts = accounts
        self._clients = clients
        self._grants = grants
        self._sessions = sessions
        self._clock = clock
        self._seal = seal

    # -- parsing and storing ---------------------------------------------------------------

    def _trusted_client(self, params: Mapping[str, str]) -> tuple[Client, str]:
        _untrusted_if_repeated(params, {"client_id", "redirect_uri"})
        client = self._clients.get(params.get("client_id", ""))
        if client is None or client.kind != ESERVICE:
            raise UntrustedRedirect("unknown client")
        redirect_uri = params.get("redirect_uri", "")
        # Exact string match, never a prefix or pattern: anything looser is an open redirect.
        if redirect_uri not in client.redirect_uris:
            raise UntrustedRedirect("the redirect URI is not registered for this client")
        return client, redirect_uri

    def parse(self, params: Mapping[str, str], *, pushed: bool = False) -> AuthorizationRequest:
        """Validate authorization request parameters (OpenID Connect Core 3.1.2.1)."""
        client, redirect_uri = self._trusted_client(params)
        state = params.get("state")
        try:
            return self._parse_trusted(client, redirect_uri, params, pushed)
        except OAuthError as exc:
            raise ErrorRedirect(exc, redirect_uri, state) from None

    def _parse_trusted(
        self, client: Client, redirect_uri: str, params: Mapping[str, str], pushed: bool
    ) -> AuthorizationRequest:
        refuse_repeated(params)
        if "request" in params:
            raise InvalidRequest("request objects are not supported; use PAR")
        if client.require_par and not pushed:
            raise InvalidRequest("this client must push its request (PAR) first")
        if params.get("response_type") != "code":
            raise UnsupportedResponseType("only response_type=code is supported")
        if params.get("response_mode", "query") != "query":
            raise InvalidRequest("only response_mode=query is supported")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        if "openid" not in scopes:
            raise InvalidScope("the scope must include openid")
        if not set(scopes) <= client.scopes:
            raise InvalidScope(f"not allowed: {' '.join(sorted(set(scopes) - client.scopes))}")
        # PKCE with S256 is required of every client (RFC 7636; OAuth 2.1; FAPI 2.0).
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not _PKCE_CHALLENGE.match(challenge):
            raise InvalidRequest("PKCE is required: code_challenge with code_challenge_method=S256")
        prompt = tuple(params.get("prompt", "").split())
        if not set(prompt) <= _PROMPTS or ("none" in prompt and len(prompt) > 1):
            raise InvalidRequest("prompt is none, or any of login and consent")
        max_age = None
        if "max_age" in params:
            if not _MAX_AGE.fullmatch(params["max_age"]):
                raise InvalidRequest("max_age is a number of seconds")
            max_age = int(params["max_age"])
        wanted = [v for v in params.get("acr_values", "").split() if v in ACR_RANK]
        acr = max(wanted, key=ACR_RANK.__getitem__) if wanted else ACR_LOW
        if client.require_dpop and not params.get("dpop_jkt"):
            raise InvalidRequest("this client must bind its code to a DPoP key (dpop_jkt)")
        for name in ("state", "nonce"):
            if len(params.get(name, "")) > 512:
                raise InvalidRequest(f"{name} is too long")
        return AuthorizationRequest(
            client_id=client.id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=challenge,
            state=params.get("state"),
            nonce=params.get("nonce"),
            prompt=prompt,
            max_age=max_age,
            acr=acr,
            dpop_jkt=params.get("dpop_jkt"),
            issued_at=self._clock().timestamp(),
        )

    def store(self, request: AuthorizationRequest, *, pushed: bool = False) -> str:
        request_id = secrets.token_urlsafe(24)
        now = self._clock()
        self._db.execute(
            insert(auth_requests).values(
                id=request_id,
                client_id=request.client_id,
                params=request.to_json(),
                pushed=pushed,
                created_at=now,
                expires_at=now + (PUSHED_TTL if pushed else REQUEST_TTL),
            )
        )
        return request_id

    def load(self, request_id: str) -> AuthorizationRequest:
        row = self._db.execute(
            select(auth_requests.c.params, auth_requests.c.expires_at).where(
                auth_requests.c.id == request_id
            )
        ).one_or_none()
        if row is None or row.expires_at <= self._clock():
            raise UntrustedRedirect(
                "this sign-in request has expired; start again from the service"
            )
        return AuthorizationRequest.from_json(row.params)

    def pushed(self, params: Mapping[str, str]) -> AuthorizationRequest:
        """Resolve `request_uri` from PAR (RFC 9126 4): only for the client that pushed it."""
        _untrusted_if_repeated(params, {"client_id", "request_uri"})
        client, _ = self._trusted_client_only(params)
        request_uri = params.get("request_uri", "")
        request_id = request_uri.removeprefix(PAR_PREFIX)
        row = self._db.execute(
            select(auth_requests)
            .where(auth_requests.c.id == request_id, auth_requests.c.pushed.is_(True))
            .with_for_update()
        ).one_or_none()
        if (
            not request_uri.startswith(PAR_PREFIX)
            or row is None
            or row.client_id != client.id
            or row.expires_at <= self._clock()
        ):
            raise UntrustedRedirect("the pushed request is unknown or has expired")
        # A request_uri is for one use (RFC 9126 4).
        self._db.execute(delete(auth_requests).where(auth_requests.c.id == request_id))
        return AuthorizationRequest.from_json(row.params)

    def _trusted_client_only(self, params: Mapping[str, str]) -> tuple[Client, None]:
        client = self._clients.get(params.get("client_id", ""))
        if client is None or client.kind != ESERVICE:
            raise UntrustedRedirect("unknown client")
        return client, None

    # -- deciding ------------------------------------------------------------------------

    def needs(self, request: AuthorizationRequest, sso: SsoSession | None) -> str | None:
        """What the citizen must still do: LOGIN, STEP_UP, CONSENT, or nothing (None).

        With prompt=none, anything missing is an error for the client instead.
        """
        missing = self._missing(request, sso)
        if missing and "none" in request.prompt:
            error: OAuthError = (
                ConsentRequired("consent is needed")
                if missing == CONSENT
                else LoginRequired("the citizen must sign in")
            )
            raise ErrorRedirect(error, request.redirect_uri, request.state)
        return missing

    def _missing(self, request: AuthorizationRequest, sso: SsoSession | None) -> str | None:
        if sso is None or not self._account_stands(sso.citizen_id):
            return LOGIN
        now = self._clock()
        issued = datetime.fromtimestamp(request.issued_at, tz=now.tzinfo)
        # prompt=login wants a login after this request; max_age, one recent enough.
        if "login" in request.prompt and sso.auth_time < issued:
            return LOGIN
        if request.max_age is not None and (now - sso.auth_time).total_seconds() > request.max_age:
            return LOGIN
        if ACR_RANK.get(sso.acr, 0) < ACR_RANK[request.acr]:
            return STEP_UP
        wanted = set(request.scopes) - {"openid"}
        if not wanted <= self._grants.scopes(sso.citizen_id, request.client_id):
            return CONSENT
        if "consent" in request.prompt and not self._grants.granted_since(
            sso.citizen_id, request.client_id, issued
        ):
            return CONSENT
        return None

    def _account_stands(self, citizen_id: str) -> bool:
        """An e-service gets a code only for an account the service honours (its row holds its
        seal) and that is active. A session that outlives a change of its account's row by
        SQL is sent to sign in again, which that row then refuses."""
        standing = self._accounts.standing(citizen_id)
        return standing is not None and standing[1] == "active"

    def issue_code(self, request: AuthorizationRequest, sso: SsoSession) -> IssuedCode:
        client = self._clients.get(request.client_id)
        if client is None:
            raise UnauthorizedClient("the client was removed")
        code = secrets.token_urlsafe(32)
        granted = self._grants.scopes(sso.citizen_id, request.client_id)
        scopes = [s for s in request.scopes if s == "openid" or s in granted]
        row = {
            "id": hashlib.sha256(code.encode()).hexdigest(),
            "client_id": request.client_id,
            "session_id": sso.id,
            "params": json.dumps(
                {
                    "redirect_uri": request.redirect_uri,
                    "scopes": scopes,
                    "nonce": request.nonce,
                    "code_challenge": request.code_challenge,
                    "citizen_id": sso.citizen_id,
                    "acr": sso.acr,
                    "amr": list(sso.amr),
                    "auth_time": int(sso.auth_time.timestamp()),
                    "sid": sso.sid,
                    "dpop_jkt": request.dpop_jkt,
                }
            ),
            "expires_at": self._clock() + CODE_TTL,
            "used_at": None,
        }
        self._db.execute(insert(codes).values(self._seal.sealed(codes, row)))
        self._sessions.join(sso.id, request.client_id)
        return IssuedCode(code, request.redirect_uri, request.state)

    def forget(self, request_id: str) -> None:
        self._db.execute(delete(auth_requests).where(auth_requests.c.id == request_id))
