"""Helpers for driving the provider over HTTP as a browser and as e-services would."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient
from httpx2 import Response
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from markupsafe import escape

from api.runtime import Runtime
from identity.enrolment import REGISTER, RESET
from identity.nadra import CitizenRecord
from identity.oidc.clients import CLIENT_SECRET_BASIC, ESERVICE, NewClient

ISSUER = "https://shanakht.test"
PASSWORD = "Kinnow#Orchard2026"
# Text an outsider or a department supplies, shaped as an attacker would shape it: a script
# element, and a way out of a quoted attribute into an element with an event handler.
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def assert_escaped(page: str, text: str = HOSTILE) -> None:
    """`text` is on `page`, and only as text: every <, >, " and ' of it escaped, so no element
    or attribute of it reaches the browser."""
    assert str(escape(text)) in page, "shown, escaped"
    for markup in ("<script>alert(1)", "<img src=x", '"><img', "onerror=alert(2)>"):
        assert markup not in page, f"{markup!r} reached the page as markup"


def rename_in_registry(runtime: Runtime, directory: Path, names: dict[str, str]) -> None:
    """Point the runtime at a copy of its simulated NADRA registry in which each CNIC of
    `names` carries that name, as a registry holding odd data would hand it over."""
    lines = []
    for line in runtime.identity.nadra_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["full_name"] = names.get(record["cnic"], record["full_name"])
        lines.append(json.dumps(record, sort_keys=True))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "registry.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runtime.identity.nadra_file = path
    runtime._nadra = None


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class RelyingParty:
    """An e-service or department system, with the keys it registered."""

    client_id: str
    redirect_uri: str
    key: RSAKey | None = None
    secret: str | None = None

    def assertion(self, audience: str = f"{ISSUER}/oauth/token", **overrides: Any) -> str:
        assert self.key is not None
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
            **overrides,
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """(form fields, headers) that authenticate this client at the token endpoint."""
        if self.secret is not None:
            basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
            return {}, {"Authorization": f"Basic {basic}"}
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion(),
        }, {}


E_SERVICE_SCOPES = ("openid", "profile", "cnic", "birthdate", "address", "phone")


@cache
def client_key(client_id: str) -> RSAKey:
    """The client's RSA key, made once a session for each client id: a 2048-bit key takes
    ~90 ms to generate, and hundreds of tests register the same few clients. Each client id
    still has a key of its own, so no test sees one client's key open another's door."""
    return RSAKey.generate_key(2048, parameters={"kid": f"{client_id}-1"})


def register_client(
    runtime: Runtime,
    client_id: str,
    *,
    kind: str = ESERVICE,
    secret: bool = False,
    scopes: tuple[str, ...] | None = None,
    name: str | None = None,
    **options: Any,
) -> RelyingParty:
    redirect = f"https://{client_id}.example/callback"
    key = None if secret else client_key(client_id)
    new = NewClient(
        id=client_id,
        name=name or f"The {client_id} service",
        kind=kind,
        auth_method=CLIENT_SECRET_BASIC if secret else "private_key_jwt",
        redirect_uris=(redirect,) if kind == ESERVICE else (),
        post_logout_redirect_uris=(f"https://{client_id}.example/signed-out",)
        if kind == ESERVICE
        else (),
        scopes=scopes or (E_SERVICE_SCOPES if kind == ESERVICE else ("locker.fetch",)),
        jwks={"keys": [key.as_dict(private=False)]} if key else None,
        **options,
    )
    with runtime.transaction() as session:
        _client, issued_secret = runtime.provider(session).clients.add(new)
    return RelyingParty(client_id, redirect, key=key, secret=issued_secret)


def register_citizen(runtime: Runtime, record: CitizenRecord, password: str = PASSWORD) -> str:
    mobile = record.mobile_numbers[0]
    with runtime.transaction() as session:
        ticket = runtime.enrolment(session).start_registration(record.card(), mobile, client="test")
    code = texted_code(runtime, mobile)
    with runtime.transaction() as session:
        runtime.enrolment(session).verify_code(ticket, REGISTER, code)
        return runtime.enrolment(session).complete_registration(ticket, password)


def reset_password(runtime: Runtime, record: CitizenRecord, password: str) -> None:
    """The reset flow through the enrolment service (the card's details, the texted code, the
    new password), which the account page's change of password also ends in."""
    mobile = record.mobile_numbers[0]
    with runtime.transaction() as session:
        ticket = runtime.enrolment(session).start_reset(record.card(), mobile, client="test")
    code = texted_code(runtime, mobile)
    with runtime.transaction() as session:
        runtime.enrolment(session).verify_code(ticket, RESET, code)
        runtime.enrolment(session).complete_reset(ticket, password)


def texted_code(runtime: Runtime, mobile: str) -> str:
    message = runtime.identity.sms.last_to(mobile)
    assert message is not None
    return re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]


def details_form(record: CitizenRecord, csrf: str, **changes: str) -> dict[str, str]:
    """The card details the registration and reset pages ask for, as a citizen types them
    (the mobile in local form, their last number); `changes` replaces fields."""
    return {
        "csrf": csrf,
        "cnic": record.cnic,
        "full_name": record.full_name,
        "father_or_husband_name": record.father_or_husband_name,
        "date_of_birth": record.date_of_birth.isoformat(),
        "card_issue_date": record.card_issue_date.isoformat(),
        "mobile": "0" + record.mobile_numbers[-1].removeprefix("+92"),
        **changes,
    }


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a CSRF field"
    return found.group(1)


def press_send(web: TestClient, page: str) -> Response:
    """Press the code page's "Send me a code" (or "Send a new code") button: a POST with the
    form's token, since showing the page sends nothing. The answer, not followed."""
    found = re.search(r'action="(/login/second-factor/send[^"]*)"', page)
    assert found is not None, "the page has a button that sends a code"
    return web.post(
        html.unescape(found.group(1)), data={"csrf": csrf_of(page)}, follow_redirects=False
    )


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """A TestClient used as a citizen's browser: cookies kept, redirects followed by hand."""

    client: TestClient

    def authorize(self, rp: RelyingParty, **params: str) -> tuple[Any, str]:
        verifier, challenge = pkce()
        query = {
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": rp.redirect_uri,
            "scope": "openid profile",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **params,
        }
        response = self.client.get(f"/oauth/authorize?{urlencode(query)}", follow_redirects=False)
        return response, verifier

    def follow(self, response: Any) -> Any:
        location = response.headers["location"]
        if location.startswith("https://") and not location.startswith(ISSUER):
            return response  # back at the relying party
        return self.client.get(location.removeprefix(ISSUER), follow_redirects=False)

    def login(self, page: Any, cnic: str, password: str = PASSWORD) -> Any:
        request_id = query_of(str(page.url)).get("request", "")
        return self.client.post(
            "/login",
            data={
                "cnic": cnic,
                "password": password,
                "csrf": csrf_of(page.text),
                "request": request_id,
            },
            follow_redirects=False,
        )

    def consent(self, page: Any, decision: str = "allow") -> Any:
        request_id = query_of(str(page.url))["request"]
        return self.client.post(
            "/consent",
            data={"decision": decision, "csrf": csrf_of(page.text), "request": request_id},
            follow_redirects=False,
        )

    def sign_in(self, rp: RelyingParty, cnic: str, **params: str) -> tuple[dict[str, str], str]:
        """The whole front channel: authorize, log in if asked, consent if asked; return the
        callback's query and the PKCE verifier."""
        response, verifier = self.authorize(rp, **params)
        return self.drive(response, rp, cnic), verifier

    def drive(self, response: Any, rp: RelyingParty, cnic: str) -> dict[str, str]:
        """Follow redirects, logging in and consenting when asked, back to the relying party."""
        for _ in range(6):
            location = response.headers.get("location", "")
            if location.startswith(rp.redirect_uri):
                return query_of(location)
            page = self.follow(response)
            if page.status_code != 200:
                response = page
                continue
            if "/login" in str(page.url) and 'name="password"' in page.text:
                response = self.login(page, cnic)
            elif "/consent" in str(page.url):
                response = self.consent(page)
            else:
                raise AssertionError(f"unexpected page {page.url}: {page.text[:300]}")
        raise AssertionError("no redirect back to the relying party")


def token(
    client: TestClient, rp: RelyingParty, headers: dict[str, str] | None = None, **form: str
) -> Any:
    auth_form, auth_headers = rp.auth()
    return client.post(
        "/oauth/token", data={**auth_form, **form}, headers={**auth_headers, **(headers or {})}
    )


def verify_jwt(client: TestClient, value: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(client.get("/oauth/jwks").json())
    return dict(jwt.decode(value, keys, algorithms=["RS256", "ES256"]).claims)


def dpop_proof(key: ECKey, method: str, url: str, access_token: str | None = None) -> str:
    """A DPoP proof (RFC 9449 4.2) by `key` for one request."""
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
    }
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key)
