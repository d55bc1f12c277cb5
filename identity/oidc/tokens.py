"""The token endpoint's grants, and the checks on tokens presented back to us.

- Access tokens are JWTs (RFC 9068, `typ: at+jwt`, ES256) with a row each, so revocation,
  introspection and logout take effect at once although the token itself is self-contained.
- Refresh tokens are opaque and rotate on every use; a rotated token used again means it was
  copied, so the whole family from that login is revoked (OAuth 2.0 Security BCP 4.14).
- A code used twice likewise revokes what the first use issued (RFC 6749 4.1.2).
- Token and code rows are sealed (`audit.row_seal`) while they can be used: a row honoured is
  one the service wrote as it stands, and spending or revoking one clears its seal for good
  (`RETIRE`): a spent or revoked row made unused again by SQL has no seal, and a forged row
  none that holds. Only a copy of the row taken while it was usable, MAC and all, put back
  whole, passes (`audit.row_seal` says why a seal cannot tell).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from audit.prepared import Prepared
from audit.row_seal import RETIRE, RowSeal
from identity.accounts import Accounts
from identity.models import citizens, codes, tokens
from identity.models import sessions as sso_sessions
from identity.oidc.claims import pairwise_subject, released_claims
from identity.oidc.clients import ESERVICE, SERVICE, Client
from identity.oidc.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    UnauthorizedClient,
)
from identity.oidc.grants import Grants
from identity.oidc.keys import SigningKeys
from identity.oidc.sessions import Sessions, live_at

ACCESS_TTL = timedelta(minutes=10)
ID_TOKEN_TTL = timedelta(minutes=10)
REFRESH_TTL = timedelta(hours=12)  # no longer than a session lives; logout revokes it anyway
ACCESS_ALG = "ES256"
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
# What joserfc raises on a token it cannot read: its own errors, ValueError (bad base64, text
# that is not UTF-8), and TypeError for a header whose `crit` is not a list of strings.
_UNREADABLE = (JoseError, ValueError, TypeError)


# The grants' statements, built once: building and keying a statement costs more than
# running it on SQLite, and a grant runs several (some inside the database's write lock).
# They run straight on the session's connection's cursor (`audit.prepared`): SQLAlchemy's
# ORM and Core execution layers cost more Python than the statements' own work.
SESSION_PREFIX = "s_"
_PSEUDONYM = Prepared(select(citizens.c.pseudonym).where(citizens.c.id == bindparam("citizen_id")))
# A refresh token's row with its citizen's pseudonym (for the audit entry) and its session's
# row (`s_` and the column's name), whose seal the refresh checks: one read, not three.
_REFRESH_ROW = Prepared(
    select(
        tokens,
        citizens.c.pseudonym,
        *(c.label(f"{SESSION_PREFIX}{c.name}") for c in sso_sessions.c),
    )
    .outerjoin(citizens, citizens.c.id == tokens.c.citizen_id)
    .outerjoin(sso_sessions, sso_sessions.c.id == tokens.c.session_id)
    .where(tokens.c.id == bindparam("token_id"), tokens.c.kind == "refresh")
)
_INSERT_TOKENS = Prepared(insert(tokens))
# An access token presented to an API: read on every locker and exchange request.
_ACCESS_ROW = Prepared(
    select(tokens).where(tokens.c.id == bindparam("token_id"), tokens.c.kind == "access")
)
# The compare-and-set that spends a refresh token: unused, unrevoked, as sealed as when its
# seal was checked (nothing the service does changes a usable row's MAC but a re-seal under a
# new row-seal key version, which `refresh` allows for), its session live.
_SPEND_REFRESH = Prepared(
    update(tokens)
    .where(
        tokens.c.id == bindparam("token_id"),
        tokens.c.used_at.is_(None),
        tokens.c.revoked_at.is_(None),
        tokens.c.mac == bindparam("read_mac"),
        live_at(
            bindparam("live_session"),
            bindparam("now"),
            bindparam("seen_after"),
            bindparam("born_after"),
        ),
    )
    .values(used_at=bindparam("spent_at"), **RETIRE)
)


def _sha256_hex(value: str) -> str:
    # surrogatepass: a lone surrogate (JSON can carry one) hashes to a row that is not there,
    # instead of raising UnicodeEncodeError; every token we issue is ASCII.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _half_hash(value: str) -> str:
    """at_hash: the left half of SHA-256, base64url (OpenID Connect Core 3.1.3.6)."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class TokenResponse:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.id_token:
            body["id_token"] = self.id_token
        return body


Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Family:
    """What every token of one grant shares: refreshes rotate within a family, and a reused
    one revokes all of it.

    `acr` and `amr` are the sign-in's as the grant was made (the authorization code recorded
    them): every token of the family keeps them, whatever the session reaches later, so a
    token an e-service got at `low` never becomes `substantial` because the citizen stepped
    up for another. None for a department system's own tokens."""

    client: Client
    citizen_id: str | None
    session_id: str | None
    id: str
    dpop_jkt: str | None
    acr: str | None = None
    amr: tuple[str, ...] = ()

    def row(
        self, kind: str, token_id: str, scopes: Sequence[str], now: datetime, ttl: timedelta
    ) -> Row:
        return {
            "id": token_id,
            "kind": kind,
            "family": self.id,
            "client_id": self.client.id,
            "citizen_id": self.citizen_id,
            "session_id": self.session_id,
            "scope": " ".join(scopes),
            "dpop_jkt": self.dpop_jkt,
            "acr": self.acr,
            "amr": json.dumps(list(self.amr)) if self.acr is not None else None,
            "issued_at": now,
            "expires_at": now + ttl,
            "used_at": None,
            "revoked_at": None,
        }


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token, as a resource (userinfo, the locker API) sees it."""

    jti: str
    client_id: str
    citizen_id: str | None
    subject: str
    scopes: frozenset[str]
    dpop_jkt: str | None
    session_id: str | None = None
    acr: str | None = None  # of the sign-in the token was issued from, never upgraded since
    amr: tuple[str, ...] = ()


def _amr(stored: str | None) -> tuple[str, ...]:
    return tuple(json.loads(stored)) if stored else ()


class TokenService:
    def __init__(
        self,
        session: Session,
        *,
        keys: SigningKeys,
        sessions: Sessions,
        grants: Grants,
        accounts: Accounts,
        issuer: str,
        pairwise_key: bytes,
        audit: AuditLog,
        clock: Callable[[], datetime],
        seal: RowSeal,
        roles: Callable[[str], list[dict[str, str]]] = lambda _citizen: [],
    ) -> None:
        self._db = session
        self._seal = seal
        self._keys = keys
        self._sessions = sessions
        self._grants = grants
        self._accounts = accounts
        self._issuer = issuer
        self._pairwise_key = pairwise_key
        self._audit = audit
        self._clock = clock
        self._roles = roles

    # -- helpers -----------------------------------------------------------------------------

    def subject(self, client_id: str, citizen_id: str) -> str:
        return pairwise_subject(self._pairwise_key, client_id, citizen_id)

    def _pseudonym(self, citizen_id: str) -> str | None:
        row = _PSEUDONYM.one_or_none(self._db.connection(), {"citizen_id": citizen_id})
        return None if row is None else str(row.pseudonym)

    def _event(
        self, action: str, client: Client, subject: str | None = None, outcome: str = "success"
    ) -> AuditEvent:
        """An audit event, made (and so checked) before a grant's first write: on SQLite that
        write takes the database's write lock, which every writer of every process waits for."""
        return AuditEvent(
            actor=f"client:{client.id}",
            action=action,
            subject=subject,
            outcome=outcome,
            details={},
        )

    def _record(
        self, action: str, client: Client, citizen_id: str | None = None, outcome: str = "success"
    ) -> None:
        """An audit entry at once, for the ways out that are not a grant."""
        subject = self._pseudonym(citizen_id) if citizen_id else None
        self._audit.append(self._event(action, client, subject, outcome))

    def _new_access_token(self, family: Family, scopes: Sequence[str]) -> tuple[str, Row]:
        """A signed access token and the row that records it, not yet written: signed before
        any write, since on SQLite the first write takes the database's write lock."""
        now = self._clock()
        jti = uuid.uuid4().hex
        client_id, citizen_id = family.client.id, family.citizen_id
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": self.subject(client_id, citizen_id) if citizen_id else client_id,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int((now + ACCESS_TTL).timestamp()),
        }
        if family.acr is not None:  # RFC 9068 2.2.1: the authentication it stands for
            claims["acr"] = family.acr
            claims["amr"] = list(family.amr)
        if family.dpop_jkt:
            claims["cnf"] = {"jkt": family.dpop_jkt}
        signed = self._keys.sign(claims, alg=ACCESS_ALG, typ="at+jwt")
        return signed, family.row("access", jti, scopes, now, ACCESS_TTL)

    def _new_refresh_token(self, family: Family, scopes: Sequence[str]) -> tuple[str, Row]:
        """A refresh token and the row that records it (by hash only), not yet written."""
        token = secrets.token_urlsafe(32)
        return token, family.row("refresh", _sha256_hex(token), scopes, self._clock(), REFRESH_TTL)

    def _sealed(self, *rows: Row) -> list[Row]:
        """The rows with their MACs, computed before the grant's first write (see `_event`)."""
        return [self._seal.sealed(tokens, row) for row in rows]

    def _store(self, sealed: list[Row]) -> None:
        _INSERT_TOKENS.execute(self._db.connection(), sealed)

    def _revoke_family(self, family: str) -> None:
        self._db.execute(
            update(tokens)
            .where(tokens.c.family == family, tokens.c.revoked_at.is_(None))
            .values(revoked_at=self._clock(), **RETIRE)
        )

    # -- grants ------------------------------------------------------------------------------

    def exchange_code(
        self,
        client: Client,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        dpop_jkt: str | None,
    ) -> TokenResponse:
        """authorization_code (RFC 6749 4.1.3, RFC 7636 4.6, OpenID Connect Core 3.1.3)."""
        if client.kind != ESERVICE:
            raise UnauthorizedClient("this client may not use the authorization code grant")
        code_id = _sha256_hex(code)
        # Read, check and sign first; the code is spent by a compare-and-set, the first write,
        # as a refresh token is (see `refresh`), so no lock is held while tokens are signed.
        row = self._db.execute(select(codes).where(codes.c.id == code_id)).one_or_none()
        if row is None or row.client_id != client.id:
            raise InvalidGrant("the code is not valid")
        if row.used_at is not None:
            self._code_replayed(client, code_id)
        if not self._seal.check(codes, row._mapping):
            raise InvalidGrant("the code is not valid")
        params = json.loads(row.params)
        try:
            self._check_code(client, row, params, redirect_uri, code_verifier, dpop_jkt)
        except InvalidGrant:
            self._spend_code(code_id)  # one try, right or wrong
            raise
        if not self._sessions.is_live(row.session_id):  # ended, or its row not the service's
            self._spend_code(code_id)
            raise InvalidGrant("the sign-in session has ended")
        citizen_id = params["citizen_id"]
        scopes = params["scopes"]
        family = Family(
            client,
            citizen_id,
            row.session_id,
            code_id,
            dpop_jkt,
            params["acr"],
            tuple(params["amr"]),
        )
        access, access_row = self._new_access_token(family, scopes)
        refresh, refresh_row = self._new_refresh_token(family, scopes)
        id_token = self._id_token(client, params, access)
        sealed = self._sealed(access_row, refresh_row)
        issued = self._event("identity.token.issued", client, self._pseudonym(citizen_id))
        if not self._spend_code(code_id, session_id=row.session_id):
            # (4) Spent by someone else meanwhile (a replay), or else the login has ended.
            again = self._db.execute(select(codes.c.used_at).where(codes.c.id == code_id))
            if again.scalar_one() is not None:
                self._code_replayed(client, code_id)
            self._spend_code(code_id)
            raise InvalidGrant("the sign-in session has ended")
        self._store(sealed)
        self._audit.append(issued)
        return TokenResponse(
            access_token=access,
            token_type="DPoP" if dpop_jkt else "Bearer",
            expires_in=int(ACCESS_TTL.total_seconds()),
            scope=" ".join(scopes),
            refresh_token=refresh,
            id_token=id_token,
        )

    def _check_code(
        self,
        client: Client,
        row: Any,
        params: dict[str, Any],
        redirect_uri: str,
        code_verifier: str,
        dpop_jkt: str | None,
    ) -> None:
        if row.expires_at <= self._clock():
            raise InvalidGrant("the code has expired")
        # (2) Same redirect URI as the request, and the PKCE verifier that hashes to the challenge.
        if redirect_uri != params["redirect_uri"]:
            raise InvalidGrant("redirect_uri differs from the authorization request")
        if not _VERIFIER.match(code_verifier or ""):
            raise InvalidGrant("a code_verifier of 43 to 128 characters is required")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if not hmac.compare_digest(challenge, params["code_challenge"]):
            raise InvalidGrant("the code_verifier does not match the code_challenge")
        # (3) A code bound to a DPoP key is redeemed only with a proof by that key.
        if params.get("dpop_jkt") and params["dpop_jkt"] != dpop_jkt:
            raise InvalidGrant("the code is bound to another DPoP key")
        if client.require_dpop and not dpop_jkt:
            raise InvalidRequest("this client must use DPoP")

    def _spend_code(self, code_id: str, *, session_id: str | None = None) -> bool:
        """Mark the code used if nobody has (and, with `session_id`, while that login stands);
        whether this call did."""
        conditions = [codes.c.id == code_id, codes.c.used_at.is_(None)]
        if session_id is not None:
            conditions.append(self._sessions.live(session_id))
        spent = self._db.execute(
            update(codes).where(*conditions).values(used_at=self._clock(), **RETIRE)
        )
        return getattr(spent, "rowcount", 0) == 1

    def _code_replayed(self, client: Client, code_id: str) -> NoReturn:
        # (1) A code replayed: whoever used it first may be an attacker; revoke all of it.
        self._revoke_family(code_id)
        self._record("identity.token.code_reused", client, None, "denied")
        raise InvalidGrant("the code was already used")

    def _id_token(self, client: Client, params: dict[str, Any], access_token: str) -> str:
        now = self._clock()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": self.subject(client.id, params["citizen_id"]),
            "aud": client.id,
            "azp": client.id,
            "iat": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_TTL).timestamp()),
            "auth_time": params["auth_time"],
            "acr": params["acr"],
            "amr": params["amr"],
            "sid": params["sid"],
            "at_hash": _half_hash(access_token),
        }
        if params.get("nonce"):
            claims["nonce"] = params["nonce"]
        return self._keys.sign(claims, alg=client.id_token_alg)

    def refresh(
        self, client: Client, *, refresh_token: str, scope: str | None, dpop_jkt: str | None
    ) -> TokenResponse:
        """refresh_token (RFC 6749 6), rotated, with reuse detection.

        Read, check and sign first; then spend the token with a compare-and-set, the first
        write, so the database's write lock (SQLite) or the row's (PostgreSQL) is held only for
        the writes. A token spent or revoked by someone else in between fails the set and is
        judged again on what the database now says.
        """
        token_id = _sha256_hex(refresh_token)
        row = self._refresh_row(token_id)
        self._check_refresh(client, row, dpop_jkt)
        granted = row.scope.split()
        scopes = scope.split() if scope else granted
        if not set(scopes) <= set(granted):
            raise InvalidScope("a refresh cannot widen the scope")
        # The session's seal, which SQL cannot check, read with the token; the spend checks in
        # its statement that the session stands (not ended, idle or too old).
        if not self._sessions.holds(row._mapping, prefix=SESSION_PREFIX):
            raise InvalidGrant("the sign-in session has ended")
        # The grant's own acr, carried over: a refresh never takes the session's newer one.
        family = Family(
            client,
            row.citizen_id,
            row.session_id,
            row.family,
            row.dpop_jkt,
            row.acr,
            _amr(row.amr),
        )
        access, access_row = self._new_access_token(family, scopes)
        new_refresh, refresh_row = self._new_refresh_token(family, granted)
        sealed = self._sealed(access_row, refresh_row)
        refreshed = self._event("identity.token.refreshed", client, row.pseudonym)
        bounds = self._sessions.bounds()
        spend = {
            "token_id": token_id,
            "read_mac": row.mac,
            "live_session": row.session_id,
            "spent_at": bounds["now"],
            **bounds,
        }
        spent = _SPEND_REFRESH.execute(self._db.connection(), spend)
        if spent != 1:
            # Spent or revoked meanwhile (judged as such), or sealed anew under a new version
            # of the row-seal key (`keys reseal row-seal`: tried once more with its new MAC),
            # or else the session has ended.
            again = self._refresh_row(token_id)
            self._check_refresh(client, again, dpop_jkt)
            if again.mac != row.mac:
                spent = _SPEND_REFRESH.execute(
                    self._db.connection(), spend | {"read_mac": again.mac}
                )
                if spent != 1:  # spent by another presentation meanwhile: reuse, judged so
                    self._check_refresh(client, self._refresh_row(token_id), dpop_jkt)
            if spent != 1:
                raise InvalidGrant("the sign-in session has ended")
        self._store(sealed)
        self._audit.append(refreshed)
        return TokenResponse(
            access_token=access,
            token_type="DPoP" if row.dpop_jkt else "Bearer",
            expires_in=int(ACCESS_TTL.total_seconds()),
            scope=" ".join(scopes),
            refresh_token=new_refresh,
        )

    def _refresh_row(self, token_id: str) -> Any:
        return _REFRESH_ROW.one_or_none(self._db.connection(), {"token_id": token_id})

    def _check_refresh(self, client: Client, row: Any, dpop_jkt: str | None) -> None:
        if row is None or row.client_id != client.id:
            raise InvalidGrant("the refresh token is not valid")
        if row.revoked_at is not None:
            raise InvalidGrant("the refresh token was revoked")
        if row.used_at is not None:
            self._revoke_family(row.family)
            self._record("identity.token.refresh_reused", client, row.citizen_id, "denied")
            raise InvalidGrant("the refresh token was already used; its whole grant is revoked")
        if row.expires_at <= self._clock():
            raise InvalidGrant("the refresh token has expired")
        if row.dpop_jkt and row.dpop_jkt != dpop_jkt:
            raise InvalidGrant("the refresh token is bound to another DPoP key")
        if not self._seal.check(tokens, row._mapping):  # usable as it reads, but not ours
            raise InvalidGrant("the refresh token is not valid")

    def client_credentials(
        self, client: Client, *, scope: str | None, dpop_jkt: str | None
    ) -> TokenResponse:
        """client_credentials (RFC 6749 4.4), for department systems acting as themselves."""
        if client.kind != SERVICE:
            raise UnauthorizedClient("only department systems may use client_credentials")
        scopes = scope.split() if scope else sorted(client.scopes)
        if not set(scopes) <= client.scopes:
            raise InvalidScope(f"not allowed: {' '.join(sorted(set(scopes) - client.scopes))}")
        if client.require_dpop and not dpop_jkt:
            raise InvalidRequest("this client must use DPoP")
        access, row = self._new_access_token(
            Family(client, None, None, uuid.uuid4().hex, dpop_jkt), scopes
        )
        sealed, issued = self._sealed(row), self._event("identity.token.issued", client)
        self._store(sealed)
        self._audit.append(issued)
        return TokenResponse(
            access_token=access,
            token_type="DPoP" if dpop_jkt else "Bearer",
            expires_in=int(ACCESS_TTL.total_seconds()),
            scope=" ".join(scopes),
        )

    # -- tokens presented back ---------------------------------------------------------------

    def verify_access_token(self, token: str) -> AccessToken:
        """Our signature, our issuer, not expired, not revoked, its session still live."""
        try:
            keys = self._keys.key_set(kid=_kid_of(token))
            decoded = jwt.decode(token, keys, algorithms=[ACCESS_ALG])
        except _UNREADABLE:
            raise InvalidToken("the access token is not valid") from None
        if decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("that is not an access token")
        claims = decoded.claims
        now = int(self._clock().timestamp())
        if claims.get("iss") != self._issuer or not isinstance(claims.get("exp"), int):
            raise InvalidToken("the access token is not valid")
        if claims["exp"] <= now:
            raise InvalidToken("the access token has expired")
        row = _ACCESS_ROW.one_or_none(self._db.connection(), {"token_id": str(claims.get("jti"))})
        if row is None or row.revoked_at is not None or not self._seal.check(tokens, row._mapping):
            raise InvalidToken("the access token was revoked")
        if row.session_id is not None and not self._sessions.is_live(row.session_id):
            raise InvalidToken("the sign-in session has ended")
        return AccessToken(
            jti=row.id,
            client_id=row.client_id,
            citizen_id=row.citizen_id,
            subject=str(claims["sub"]),
            scopes=frozenset(row.scope.split()),
            dpop_jkt=row.dpop_jkt,
            session_id=row.session_id,
            acr=row.acr,
            amr=_amr(row.amr),
        )

    def userinfo(self, access: AccessToken) -> dict[str, Any]:
        """OpenID Connect Core 5.3: the consented claims of the token's citizen."""
        if access.citizen_id is None or "openid" not in access.scopes:
            raise InvalidToken("this token does not speak for a citizen")
        account = self._accounts.by_id(access.citizen_id)
        if account is None or account.status != "active":
            raise InvalidToken("the account is no longer active")
        granted = self._grants.scopes(access.citizen_id, access.client_id)
        scopes = access.scopes & (granted | {"openid"})
        claims = released_claims(account, scopes, self._roles(access.citizen_id))
        return {"sub": access.subject, **claims}

    def introspect(self, client: Client, token: str) -> dict[str, Any]:
        """RFC 7662: what a token is, told only to the client it was issued to."""
        row = self._find(token)
        now = self._clock()
        if (
            row is None
            or row.client_id != client.id
            or row.revoked_at is not None
            or row.expires_at <= now
            or (row.kind == "refresh" and row.used_at is not None)
            or (row.session_id is not None and not self._sessions.is_live(row.session_id))
            or not self._seal.check(tokens, row._mapping)
        ):
            return {"active": False}
        body: dict[str, Any] = {
            "active": True,
            "iss": self._issuer,
            "client_id": row.client_id,
            "scope": row.scope,
            "token_type": "refresh_token" if row.kind == "refresh" else "access_token",
            "iat": int(row.issued_at.timestamp()),
            "exp": int(row.expires_at.timestamp()),
            "sub": self.subject(row.client_id, row.citizen_id) if row.citizen_id else row.client_id,
        }
        if row.acr is not None:
            body["acr"] = row.acr
            body["amr"] = list(_amr(row.amr))
        if row.dpop_jkt:
            body["cnf"] = {"jkt": row.dpop_jkt}
        return body

    def revoke(self, client: Client, token: str) -> None:
        """RFC 7009: revoke a token of this client (a refresh token takes its family along).

        Unknown tokens and other clients' tokens are answered the same way, with success.
        """
        row = self._find(token)
        if row is None or row.client_id != client.id:
            return
        if row.kind == "refresh":
            self._revoke_family(row.family)
        else:
            self._db.execute(
                update(tokens)
                .where(tokens.c.id == row.id)
                .values(revoked_at=self._clock(), **RETIRE)
            )
        self._record("identity.token.revoked", client, row.citizen_id)

    def session_of_id_token(self, id_token: str) -> tuple[str, str] | None:
        """(client id, sid) of an ID token we issued, expired or not: the logout hint.

        Expiry does not matter here (OpenID Connect RP-Initiated Logout 1.0, section 2): a
        citizen may sign out long after signing in. The signature and issuer do.
        """
        try:
            claims = jwt.decode(
                id_token, self._keys.key_set(), algorithms=["RS256", "ES256"]
            ).claims
        except _UNREADABLE:
            return None
        aud, sid = claims.get("aud"), claims.get("sid")
        if (
            claims.get("iss") != self._issuer
            or not isinstance(aud, str)
            or not isinstance(sid, str)
        ):
            return None
        return aud, sid

    def _find(self, token: str) -> Any:
        """The row of an access token (by its jti) or a refresh token (by its hash)."""
        if token.count(".") == 2:
            try:
                claims = jwt.decode(token, self._keys.key_set(), algorithms=[ACCESS_ALG]).claims
            except _UNREADABLE:
                return None
            key = str(claims.get("jti"))
        else:
            key = _sha256_hex(token)
        return self._db.execute(select(tokens).where(tokens.c.id == key)).one_or_none()


def _kid_of(token: str) -> str | None:
    """The kid a compact JWS names in its header, if it can be read (the signature is not
    checked here: this only picks which key set to check it with)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not a header
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None
