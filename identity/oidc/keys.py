"""The provider's token-signing keys: RS256 (which OpenID Connect requires) and ES256.

Keys live in the database, sealed, so every replica signs with the same ones and a rotation
done by `shanakht keys rotate` on one machine reaches all: the process that rotates stops
signing with the old key at once, every other within `SIGNING_TTL`. A rotated key stays in the
JWKS for `OVERLAP`, longer than any token it signed lives, so tokens already issued keep
verifying.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import bindparam, event, insert, or_, select, update
from sqlalchemy.orm import Session

from identity.models import signing_keys
from identity.oidc.compact import sign_compact
from identity.sealing import Sealer

ALGORITHMS = ("RS256", "ES256")
OVERLAP = timedelta(days=1)
RSA_BITS = 2048  # NIST SP 800-57: fine to 2030; keys rotate long before. 3072 signs 3x slower

SigningKey = RSAKey | ECKey


def signing_key_context(kid: str) -> str:
    """What a token-signing key's sealed private key is bound to: its kid."""
    return f"signing-key:{kid}"


# Parsed private keys by the sealer that opened them, then by kid. A kid names one key for
# ever, so the cache never goes stale; and a runtime whose sealer cannot open a key (another
# master key) never gets it from a cache another runtime filled.
_parsed: weakref.WeakKeyDictionary[Sealer, dict[str, SigningKey]] = weakref.WeakKeyDictionary()

# The published key set by database, parsed, with when it was read and the kids in it: every
# API request verifies a token, and reading and parsing the keys each time was a tenth of the
# work. Kept a minute; a kid not in it (a key made by another replica) reloads it at once.
VERIFYING_TTL = 60.0
_verifying: dict[str, tuple[float, KeySet, frozenset[str]]] = {}

# The key that signs now, by database and algorithm, with when it was read: reading it was one
# statement of the six in a client_credentials grant. Another process's rotation reaches this
# one within the TTL, well inside the verifying cache's minute, so a key withdrawn as
# compromised signs here for at most a few seconds more, tokens that then fail to verify.
SIGNING_TTL = 5.0
_signing: dict[tuple[str, str], tuple[float, str, bytes]] = {}


# The key that signs now for an algorithm: read on every token signed, so built once.
_CURRENT = (
    select(signing_keys.c.kid, signing_keys.c.private_key)
    .where(signing_keys.c.alg == bindparam("alg"), signing_keys.c.retired_at.is_(None))
    .order_by(signing_keys.c.created_at.desc())
    .limit(1)
)


def _generate(alg: str) -> SigningKey:
    if alg == "RS256":
        return RSAKey.generate_key(RSA_BITS, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    raise ValueError(f"no signing algorithm {alg}")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None


def _forget(database: str) -> None:
    """Drop this process's cached keys of one database (a rotation here)."""
    _verifying.pop(database, None)
    for alg in ALGORITHMS:
        _signing.pop((database, alg), None)


class SigningKeys:
    def __init__(self, session: Session, sealer: Sealer, clock: Callable[[], datetime]) -> None:
        self._session = session
        self._sealer = sealer
        self._clock = clock

    def _create(self, alg: str) -> str:
        key = _generate(alg)
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        self._session.execute(
            insert(signing_keys).values(
                kid=kid,
                alg=alg,
                private_key=self._sealer.seal(key.as_pem(private=True), signing_key_context(kid)),
                public_jwk=json.dumps(public, sort_keys=True),
                created_at=self._clock(),
            )
        )
        return kid

    def ensure(self) -> None:
        """Make a key for each algorithm that has none in service (first start)."""
        active = set(
            self._session.execute(
                select(signing_keys.c.alg).where(signing_keys.c.retired_at.is_(None))
            ).scalars()
        )
        for alg in ALGORITHMS:
            if alg not in active:
                self._create(alg)

    def _database(self) -> str:
        return str(self._session.get_bind().engine.url)

    def rotate(self, *, compromised: bool = False) -> list[str]:
        """Retire every signing key and make new ones; return the new kids.

        A routine rotation keeps the old keys in the JWKS for OVERLAP, so tokens signed just
        before still verify. A compromised key must stop vouching at once: whoever holds it
        can sign ID tokens that relying parties check against the JWKS alone. So then every
        key still published is withdrawn now, as if retired OVERLAP ago; the access tokens it
        signed stop verifying here too (clients refresh: refresh tokens are not signed). Other
        server processes drop it within VERIFYING_TTL.
        """
        database = self._database()
        _forget(database)
        # And again once the rotation commits: a request of this process that read the keys
        # in between saw the old ones (the rotation was not committed yet) and cached them.
        event.listen(self._session, "after_commit", lambda _session: _forget(database), once=True)
        now = self._clock()
        if compromised:
            published = or_(
                signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > now - OVERLAP
            )
            self._session.execute(
                update(signing_keys).where(published).values(retired_at=now - OVERLAP)
            )
        else:
            self._session.execute(
                update(signing_keys)
                .where(signing_keys.c.retired_at.is_(None))
                .values(retired_at=now)
            )
        return [self._create(alg) for alg in ALGORITHMS]

    def all(self) -> list[KeyInfo]:
        rows = self._session.execute(
            select(
                signing_keys.c.kid,
                signing_keys.c.alg,
                signing_keys.c.created_at,
                signing_keys.c.retired_at,
            ).order_by(signing_keys.c.created_at)
        )
        return [KeyInfo(*row) for row in rows]

    def _private(self, kid: str, alg: str, sealed: bytes) -> SigningKey:
        opened = _parsed.setdefault(self._sealer, {})
        key = opened.get(kid)
        if key is None:
            pem = self._sealer.open(sealed, signing_key_context(kid))
            key = RSAKey.import_key(pem) if alg == "RS256" else ECKey.import_key(pem)
            opened[kid] = key
        return key

    def current(self, alg: str) -> tuple[str, SigningKey]:
        at = (self._database(), alg)
        held, now = _signing.get(at), time.monotonic()
        if held is None or now - held[0] >= SIGNING_TTL:
            row = self._session.connection().execute(_CURRENT, {"alg": alg}).one_or_none()
            if row is None:
                raise LookupError(f"no {alg} signing key: run `shanakht db upgrade`")
            held = _signing[at] = (now, row.kid, row.private_key)
        _read_at, kid, sealed = held
        return kid, self._private(kid, alg, sealed)

    def sign(self, claims: dict[str, Any], *, alg: str, typ: str = "JWT") -> str:
        """A compact JWS of `claims` by the key that signs now for `alg` (see
        `identity.oidc.compact`: joserfc's `jwt.encode` cost several times the signature)."""
        kid, key = self.current(alg)
        private = key.private_key
        if private is None:  # a sealed signing key is always private; never sign without one
            raise LookupError(f"the {alg} signing key {kid} has no private half")
        # The header's members in the order joserfc wrote them, so the bytes are unchanged.
        return sign_compact({"typ": typ, "alg": alg, "kid": kid}, claims, private)

    def published(self) -> list[dict[str, Any]]:
        """Public JWKs of the keys that sign now or signed within the overlap."""
        cutoff = self._clock() - OVERLAP
        rows = self._session.execute(
            select(signing_keys.c.public_jwk, signing_keys.c.retired_at).order_by(
                signing_keys.c.created_at.desc()
            )
        )
        return [json.loads(jwk) for jwk, retired in rows if retired is None or retired > cutoff]

    def key_set(self, *, kid: str | None = None) -> KeySet:
        """The published keys, for verifying tokens this provider signed (one with `kid`)."""
        database = self._database()
        held, now = _verifying.get(database), time.monotonic()
        if held is not None and now - held[0] < VERIFYING_TTL and (kid is None or kid in held[2]):
            return held[1]
        published = self.published()
        keys = KeySet.import_key_set({"keys": published})
        _verifying[database] = (now, keys, frozenset(str(k["kid"]) for k in published))
        return keys
