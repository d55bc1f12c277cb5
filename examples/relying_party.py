"""What both sample e-services share: signing citizens in with Shanakht, and calling its APIs.

A department's web app would hold exactly this and nothing of Shanakht's own code: it speaks
OpenID Connect to Shanakht (authorization code flow with PKCE S256, `state` and `nonce`
checked, the ID token verified against the published JWKS, all by Authlib), authenticates to
the token endpoint with `private_key_jwt` (its own key pair, the public half registered with
Shanakht), keeps its sessions on the server (the browser holds a random id only), and, as a
department system, gets client-credentials tokens for Shanakht's APIs.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.starlette_client import OAuth, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACR_SUBSTANTIAL = "urn:shanakht:loa:substantial"
ASSERTION_SECONDS = 60  # Shanakht accepts client assertions that live 5 minutes at most
SESSION_SECONDS = 8 * 3600

__all__ = ["ACR_SUBSTANTIAL", "OAuthError"]


@dataclass(frozen=True)
class ServiceConfig:
    """How one e-service reaches Shanakht, and who it is there."""

    client_id: str
    issuer: str  # Shanakht's URL, as its discovery document names it
    base_url: str  # where citizens reach this e-service
    key_file: Path  # this e-service's private JWK (JSON); Shanakht holds the public half
    system_client_id: str | None = None  # the department system, for client credentials
    system_key_file: Path | None = None

    @classmethod
    def from_env(cls, prefix: str) -> ServiceConfig:
        """From PREFIX_CLIENT_ID, _ISSUER, _BASE_URL, _KEY_FILE, [_SYSTEM_CLIENT_ID,
        _SYSTEM_KEY_FILE]."""

        def need(name: str) -> str:
            value = os.environ.get(f"{prefix}_{name}")
            if not value:
                raise SystemExit(f"set {prefix}_{name}")
            return value

        system_key = os.environ.get(f"{prefix}_SYSTEM_KEY_FILE")
        return cls(
            client_id=need("CLIENT_ID"),
            issuer=need("ISSUER").rstrip("/"),
            base_url=need("BASE_URL").rstrip("/"),
            key_file=Path(need("KEY_FILE")),
            system_client_id=os.environ.get(f"{prefix}_SYSTEM_CLIENT_ID"),
            system_key_file=Path(system_key) if system_key else None,
        )


def load_key(path: Path) -> RSAKey:
    key = RSAKey.import_key(json.loads(path.read_text()))
    if not key.kid:
        raise ValueError(f"the key in {path} needs a kid")
    return key


class ShortLivedKeyJWT(PrivateKeyJWT):  # type: ignore[misc]  # Authlib ships no types
    """private_key_jwt with a one-minute assertion and a fresh `jti` each time.

    Authlib's default assertion lives an hour (Shanakht, like most providers, refuses more
    than five minutes), and its shared `claims` dict would keep the first `jti`."""

    def __init__(self, key: RSAKey) -> None:
        super().__init__()
        self._key = key

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        return private_key_jwt_sign(
            self._key,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg="RS256",
            header={"kid": self._key.kid},
            expires_in=ASSERTION_SECONDS,
        )


class MemoryCache:
    """Authlib's state cache: the PKCE verifier and nonce stay on the server; the browser's
    session only holds a marker that the flow started there."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> str | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    async def set(self, key: str, value: str, expires_in: float | None = None) -> None:
        self._items[key] = (time.monotonic() + (expires_in or 3600), value)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)


class ServerSessions:
    """ASGI middleware: `request.session` kept in memory here, found by a random cookie.

    The cookie is HttpOnly and SameSite=Lax (it must come back on the top-level redirect from
    Shanakht). Each e-service names its cookie apart: browsers share cookies between ports of
    one host, and the demo runs every service on 127.0.0.1."""

    def __init__(self, app: ASGIApp, cookie: str, secure: bool = False) -> None:
        self.app = app
        self.cookie = cookie
        self.secure = secure
        self.store: dict[str, tuple[float, dict[str, Any]]] = {}

    def _load(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"cookie", b"").decode("latin-1")
        for part in raw.split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie:
                found = self.store.get(value)
                if found is not None and found[0] > time.time():
                    return value, found[1]
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid, data = self._load(scope)
        scope["session"] = data

        async def send_with_cookie(message: Message) -> None:
            nonlocal sid
            if message["type"] == "http.response.start":
                if scope["session"].pop("_rotate", False) and sid is not None:
                    self.store.pop(sid, None)  # a new id at sign-in: no session fixation
                    sid = None
                if scope["session"] or sid is not None:
                    if sid is None:
                        sid = secrets.token_urlsafe(32)
                    self.store[sid] = (time.time() + SESSION_SECONDS, scope["session"])
                    flags = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if self.secure else "")
                    value = f"{self.cookie}={sid}{flags}"
                    message.setdefault("headers", []).append((b"set-cookie", value.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def templates(package_dir: Path) -> Environment:
    """The e-service's own templates, then the shared base template."""
    shared = Path(__file__).parent / "templates"
    return Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(package_dir / "templates"), FileSystemLoader(shared)]
        ),
        autoescape=select_autoescape(["html"]),
    )


def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


async def check_csrf(request: Request) -> dict[str, str]:
    """The posted form, if its `csrf` field is this session's token; PermissionError if not."""
    async with request.form() as form:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = request.session.get("csrf")
    given = fields.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise PermissionError("the form has expired; reload the page")
    return fields


def page(
    env: Environment, request: Request, name: str, status: int = 200, **context: Any
) -> Response:
    html = env.get_template(name).render(
        csrf=csrf_token(request.session), user=request.session.get("user"), **context
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        },
    )


class Shanakht:
    """This e-service's side of Shanakht: sign-in, sign-out, and (as a department system)
    client-credentials tokens for Shanakht's APIs."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.oauth = OAuth(cache=MemoryCache())
        self.client: Any = self.oauth.register(
            "shanakht",
            client_id=config.client_id,
            client_secret=load_key(config.key_file),
            server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
            client_auth_methods=[ShortLivedKeyJWT(load_key(config.key_file))],
            client_kwargs={
                "token_endpoint_auth_method": "private_key_jwt",
                "code_challenge_method": "S256",
                "timeout": 15,
            },
        )
        self._system_token: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    @property
    def callback(self) -> str:
        return f"{self.config.base_url}/callback"

    async def sign_in(self, request: Request, scope: str, *, acr: str | None = None) -> Response:
        """Send the browser to Shanakht; `state`, `nonce` and the PKCE verifier are made and
        kept by Authlib."""
        extra = {"acr_values": acr} if acr else {}
        request.session["wanted_acr"] = acr
        response: Response = await self.client.authorize_redirect(
            request, self.callback, scope=scope, **extra
        )
        return response

    async def finish(self, request: Request) -> dict[str, Any]:
        """The callback: check `iss` (RFC 9207) and `state`, redeem the code with the verifier,
        verify the ID token (signature against the JWKS, iss, aud, exp, nonce), then read the
        userinfo. OAuthError if anything is wrong."""
        metadata = await self.client.load_server_metadata()
        iss = request.query_params.get("iss")
        if iss is not None and iss != metadata["issuer"]:
            raise OAuthError(description="the response came from another issuer")
        token: dict[str, Any] = await self.client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if not claims.get("sub"):
            raise OAuthError(description="no verified ID token")
        wanted = request.session.pop("wanted_acr", None)
        if wanted and claims.get("acr") != wanted:
            raise OAuthError(description="the sign-in did not reach the assurance asked for")
        info = await self.client.userinfo(token=token)
        if info.get("sub") != claims["sub"]:
            raise OAuthError(description="userinfo is about someone else")
        claims.update({k: v for k, v in dict(info).items() if k not in claims})
        request.session["_rotate"] = True
        return {"claims": claims, "token": token}

    async def sign_out_url(self, id_token: str | None) -> str:
        metadata = await self.client.load_server_metadata()
        query = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": self.config.base_url + "/",
        }
        if id_token:
            query["id_token_hint"] = id_token
        return f"{metadata['end_session_endpoint']}?{urlencode(query)}"

    async def system_token(self, scope: str) -> str:
        """A client-credentials access token for the department system, reused until a
        minute before it expires."""
        if self.config.system_client_id is None or self.config.system_key_file is None:
            raise RuntimeError("this e-service has no department system configured")
        async with self._lock:
            if self._system_token and self._system_token[0] > time.time() + 60:
                return self._system_token[1]
            metadata = await self.client.load_server_metadata()
            key = load_key(self.config.system_key_file)
            async with AsyncOAuth2Client(
                self.config.system_client_id,
                key,
                token_endpoint_auth_method="private_key_jwt",  # noqa: S106 (a method's name)
                scope=scope,
                timeout=15,
            ) as client:
                client.register_client_auth_method(ShortLivedKeyJWT(key))
                token = await client.fetch_token(
                    metadata["token_endpoint"], grant_type="client_credentials"
                )
            access = str(token["access_token"])
            self._system_token = (time.time() + float(token.get("expires_in", 300)), access)
            return access


async def shanakht_api(
    method: str,
    url: str,
    bearer: str,
    **options: Any,
) -> Any:
    """One call to a Shanakht API with an access token (the httpx2 response)."""
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        return await http.request(
            method, url, headers={"Authorization": f"Bearer {bearer}"}, **options
        )


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)
