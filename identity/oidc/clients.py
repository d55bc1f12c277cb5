"""Registered clients (e-services and department systems) and how they prove who they are.

Two authentication methods: `private_key_jwt` (RFC 7523; preferred, no shared secret) and
`client_secret_basic` (RFC 6749 2.3.1). Secrets are 256-bit random strings shown once; only
their SHA-256 is kept, which suffices for values that cannot be guessed.

A registration is a sealed row (`audit.row_seal`): redirect URIs, scopes, keys, method and
department are what the provider trusts at every authorization and token request, so a row
whose seal does not verify is no client at all, not one with whatever SQL last wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.prepared import Prepared
from audit.reconcile import row_fingerprint
from audit.row_seal import RowSeal
from identity.errors import IdentityError
from identity.models import clients
from identity.oidc.errors import InvalidClient, InvalidRequest
from identity.oidc.replay import spend_once
from identity.roles import is_department

ESERVICE = "eservice"
SERVICE = "service"
PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")  # never HS* or none: no shared-key confusion
MAX_ASSERTION_LIFETIME = 300

# The scopes an e-service may ask a citizen for; department systems get API scopes instead.
CITIZEN_SCOPES = frozenset(
    {
        "openid",
        "profile",
        "cnic",
        "birthdate",
        "gender",
        "address",
        "phone",
        "roles",
        "signing",
        "locker",
    }
)
_API_SCOPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


_CLIENT = Prepared(select(clients).where(clients.c.id == bindparam("client_id")))  # every request

# Clients already checked, by the seal that checked them, then by their row exactly as read (its
# MAC included): every OAuth request reads its client's row, and checking the seal and parsing
# the JSON columns each time was a twentieth of a grant's work. The row is still read every
# time, so a change or a removal counts at once; only a row identical to one whose seal held
# skips the work. Registrations are few; past MAX_CHECKED rows the cache starts again.
MAX_CHECKED = 1024
_checked: weakref.WeakKeyDictionary[RowSeal, dict[tuple[Any, ...], Client]] = (
    weakref.WeakKeyDictionary()
)


class ClientConfigError(IdentityError, ValueError):
    """A client registration that cannot be accepted; the message says what to fix (and
    `code`, `field` and `facts` say it for a page)."""


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    name: str
    kind: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    backchannel_logout_uri: str | None
    id_token_alg: str
    require_par: bool
    require_dpop: bool
    jwks: dict[str, Any] | None
    secret_hash: bytes | None
    department: str | None = None  # a department system's department


def _check_uri(uri: str, what: str, field: str) -> str:
    parts = urlsplit(uri)
    local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ClientConfigError(
            f"{what} {uri!r} must be https (http only on this machine)",
            code="client.uri_https", field=field, uri=uri,
        )  # fmt: skip
    if not parts.netloc or parts.fragment:
        raise ClientConfigError(
            f"{what} {uri!r} must be absolute and without a fragment",
            code="client.uri_whole", field=field, uri=uri,
        )  # fmt: skip
    return uri


def _key_set(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # validated by joserfc itself


def _hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _row_to_client(row: Any) -> Client:
    return Client(
        id=row.id,
        name=row.name,
        kind=row.kind,
        auth_method=row.auth_method,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        post_logout_redirect_uris=tuple(json.loads(row.post_logout_redirect_uris)),
        scopes=frozenset(row.scopes.split()),
        backchannel_logout_uri=row.backchannel_logout_uri,
        id_token_alg=row.id_token_alg,
        require_par=row.require_par,
        require_dpop=row.require_dpop,
        jwks=json.loads(row.jwks) if row.jwks else None,
        secret_hash=row.secret_hash,
        department=row.department,
    )


@dataclass(frozen=True, slots=True)
class NewClient:
    """What `add` needs; validated there, so a bad registration never reaches the table."""

    id: str
    name: str
    kind: str = ESERVICE
    auth_method: str = PRIVATE_KEY_JWT
    redirect_uris: Sequence[str] = ()
    post_logout_redirect_uris: Sequence[str] = ()
    scopes: Sequence[str] = ("openid", "profile")
    jwks: dict[str, Any] | None = None
    backchannel_logout_uri: str | None = None
    id_token_alg: str = "RS256"  # noqa: S105 (an algorithm name)
    require_par: bool = False
    require_dpop: bool = False
    department: str | None = None


class ClientRegistry:
    def __init__(self, session: Session, clock: Callable[[], datetime], seal: RowSeal) -> None:
        self._db = session
        self._clock = clock
        self._seal = seal

    def add(self, new: NewClient) -> tuple[Client, str | None]:
        """Register a client; return it and, for client_secret_basic, its secret (shown once)."""
        row = self._validated(new)
        secret = None
        if new.auth_method == CLIENT_SECRET_BASIC:
            secret = secrets.token_urlsafe(32)
            row["secret_hash"] = _hash_secret(secret)
        try:
            with self._db.begin_nested():
                self._db.execute(insert(clients).values(self._seal.sealed(clients, row)))
        except IntegrityError:
            raise ClientConfigError(
                f"a client {new.id!r} is already registered",
                code="client.taken", field="client_id", client=new.id,
            ) from None  # fmt: skip
        client = self.get(new.id)
        assert client is not None  # noqa: S101 (just inserted in this transaction)
        return client, secret

    def _validated(self, new: NewClient) -> dict[str, Any]:
        if not _CLIENT_ID.match(new.id):
            raise ClientConfigError(
                "a client id is 2-63 lower-case letters, digits and dashes",
                code="client.id", field="client_id",
            )  # fmt: skip
        if new.kind not in (ESERVICE, SERVICE):
            raise ClientConfigError(
                f"kind is {ESERVICE} or {SERVICE}", code="client.kind", field="kind"
            )
        if new.auth_method not in (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC):
            raise ClientConfigError(
                f"auth method is {PRIVATE_KEY_JWT} or {CLIENT_SECRET_BASIC}",
                code="client.auth_method", field="auth_method",
            )  # fmt: skip
        if new.auth_method == PRIVATE_KEY_JWT:
            if not new.jwks:
                raise ClientConfigError(
                    "private_key_jwt needs the client's public JWKS",
                    code="client.jwks_missing", field="jwks",
                )  # fmt: skip
            try:
                keys = _key_set(new.jwks)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ClientConfigError(
                    f"the JWKS does not parse: {exc}", code="client.jwks", field="jwks"
                ) from None
            if any(key.is_private for key in keys.keys):
                raise ClientConfigError(
                    "register public keys only; the private key stays home",
                    code="client.jwks_private", field="jwks",
                )  # fmt: skip
        scopes = list(dict.fromkeys(new.scopes))
        if new.kind == ESERVICE:
            if not new.redirect_uris:
                raise ClientConfigError(
                    "an e-service needs at least one redirect URI",
                    code="client.redirect_missing", field="redirect_uris",
                )  # fmt: skip
            if "openid" not in scopes:
                raise ClientConfigError(
                    "an e-service's scopes include openid", code="client.openid", field="scopes"
                )
            unknown = set(scopes) - CITIZEN_SCOPES
        else:
            if new.redirect_uris:
                raise ClientConfigError(
                    "a department system signs in no one: no redirect URIs",
                    code="client.redirect_service", field="redirect_uris",
                )  # fmt: skip
            unknown = {s for s in scopes if not _API_SCOPE.match(s)}
        if unknown:
            raise ClientConfigError(
                f"unknown scopes: {' '.join(sorted(unknown))}",
                code="client.scopes", field="scopes", scopes=" ".join(sorted(unknown)),
            )  # fmt: skip
        if new.id_token_alg not in ("RS256", "ES256"):
            raise ClientConfigError(
                "ID tokens are signed RS256 or ES256", code="client.alg", field="id_token_alg"
            )
        self._check_department(new)
        return {
            "id": new.id,
            "name": new.name,
            "kind": new.kind,
            "auth_method": new.auth_method,
            "secret_hash": None,
            "jwks": json.dumps(new.jwks) if new.jwks else None,
            "redirect_uris": json.dumps(
                [_check_uri(u, "redirect URI", "redirect_uris") for u in new.redirect_uris]
            ),
            "post_logout_redirect_uris": json.dumps(
                [
                    _check_uri(u, "post-logout redirect URI", "post_logout_uris")
                    for u in new.post_logout_redirect_uris
                ]
            ),
            "scopes": " ".join(scopes),
            "backchannel_logout_uri": (
                _check_uri(
                    new.backchannel_logout_uri, "back-channel logout URI", "backchannel_logout_uri"
                )
                if new.backchannel_logout_uri
                else None
            ),
            "id_token_alg": new.id_token_alg,
            "require_par": new.require_par,
            "require_dpop": new.require_dpop,
            "created_at": self._clock(),
            "department": new.department,
        }

    def _check_department(self, new: NewClient) -> None:
        """A department system may speak for one registered department; an e-service acts
        for citizens, never for a department."""
        if new.department is None:
            return
        if new.kind != SERVICE:
            raise ClientConfigError(
                "only a department system belongs to a department",
                code="client.department_kind", field="department",
            )  # fmt: skip
        if not is_department(self._db, self._seal, new.department):
            raise ClientConfigError(
                f"no department {new.department!r}: add it first",
                code="client.department", field="department", department=new.department,
            )  # fmt: skip

    def get(self, client_id: str) -> Client | None:
        """The registered client, if its row's seal verifies (every authorization, token,
        PAR, logout and API request finds its client here)."""
        row = _CLIENT.one_or_none(self._db.connection(), {"client_id": client_id})
        if row is None:
            return None
        checked = _checked.setdefault(self._seal, {})
        key = tuple(row)
        client = checked.get(key)
        if client is None:
            if not self._seal.check(clients, row._mapping):
                return None
            if len(checked) >= MAX_CHECKED:
                checked.clear()
            client = checked[key] = _row_to_client(row)
        return client

    def all(self) -> list[Client]:
        rows = self._db.execute(select(clients).order_by(clients.c.id))
        return [_row_to_client(row) for row in rows if self._seal.check(clients, row._mapping)]

    def registration(self, client_id: str) -> str | None:
        """The fingerprint of the client's sealed row as it stands, for the entry that records
        its registration: `audit integrity` then knows which registration is the latest
        (`identity.reconciled`). None if there is no such client."""
        row = _CLIENT.one_or_none(self._db.connection(), {"client_id": client_id})
        return None if row is None else row_fingerprint(row._mapping)

    def remove(self, client_id: str) -> bool:
        result = self._db.execute(delete(clients).where(clients.c.id == client_id))
        return bool(getattr(result, "rowcount", 0))

    # -- authentication at the token, introspection, revocation and PAR endpoints ----------

    def authenticate(
        self,
        *,
        basic: tuple[str, str] | None,
        form_client_id: str | None,
        assertion_type: str | None,
        assertion: str | None,
        audiences: Sequence[str],
    ) -> Client:
        """The client that made this request, by the one method it registered; or InvalidClient."""
        if basic is not None and assertion is not None:
            raise InvalidRequest("use one client authentication method, not two")
        if assertion is not None:
            return self._by_assertion(assertion_type, assertion, form_client_id, audiences)
        if basic is not None:
            return self._by_secret(*basic)
        raise InvalidClient("client authentication is required")

    def _by_secret(self, client_id: str, secret: str) -> Client:
        client = self.get(client_id)
        expected = client.secret_hash if client else None
        # Compare even for unknown clients, so timing does not tell which ids exist.
        matches = hmac.compare_digest(expected or bytes(32), _hash_secret(secret))
        if client is None or client.auth_method != CLIENT_SECRET_BASIC or not matches:
            raise InvalidClient(
                "client authentication failed", client_id=client.id if client else None
            )
        return client

    def _by_assertion(
        self,
        assertion_type: str | None,
        assertion: str,
        form_client_id: str | None,
        audiences: Sequence[str],
    ) -> Client:
        # (1) The assertion type names RFC 7523's JWT bearer assertions.
        if assertion_type != ASSERTION_TYPE:
            raise InvalidClient("unsupported client_assertion_type")
        # (2) Read the claimed client without trusting it yet, to find its registered keys.
        try:
            claims = json.loads(extract_compact(assertion.encode()).payload)
        except (JoseError, ValueError, UnicodeError, RecursionError):  # RecursionError: nesting
            raise InvalidClient("the client assertion is not a signed JWT") from None
        if not isinstance(claims, dict):
            raise InvalidClient("the client assertion is not a signed JWT")
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise InvalidClient("the client assertion's iss and sub must both be the client id")
        if form_client_id is not None and form_client_id != client_id:
            raise InvalidClient("client_id does not match the assertion")
        client = self.get(client_id)
        if client is None:
            raise InvalidClient("client authentication failed")
        # From here on the request claims a registered client: its failures name it.
        known = client.id
        if client.auth_method != PRIVATE_KEY_JWT or not client.jwks:
            raise InvalidClient("client authentication failed", client_id=known)
        # (3) The signature, by one of the client's registered keys, with an asymmetric alg.
        try:
            token = jwt.decode(assertion, _key_set(client.jwks), algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError, TypeError):  # TypeError: joserfc, on a `crit` not a list
            raise InvalidClient(
                "the client assertion's signature does not verify", client_id=known
            ) from None
        claims = token.claims
        # (4) Audience, lifetime and single use. Only strings can name us (a dict in `aud`
        # would make set() raise TypeError).
        aud = claims.get("aud")
        audience = aud if isinstance(aud, list) else [aud]
        if not {a for a in audience if isinstance(a, str)} & set(audiences):
            raise InvalidClient("the client assertion is for another audience", client_id=known)
        now = int(self._clock().timestamp())
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + MAX_ASSERTION_LIFETIME:
            raise InvalidClient(
                "the client assertion is expired or lives too long", client_id=known
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidClient("the client assertion needs a jti", client_id=known)
        if not spend_once(self._db, f"assertion:{client_id}:{jti}", until=exp, now=self._clock()):
            raise InvalidClient("the client assertion was already used", client_id=known)
        return client
