"""Personal data sealed at rest: AES-256-GCM, bound to the row it belongs to.

The database holds citizens' CNICs, names and numbers only as ciphertext, with the row's id as
associated data, so a sealed value copied into another row does not open. Lookups go through a
keyed pseudonym instead (`audit.pseudonym`), never through the plaintext.

The key rotates (`shanakht keys rotate pii`), because a key that may have leaked must stop
being the one that protects what is written from then on, and `shanakht keys reseal pii` then
moves what is stored onto the new one. So a sealed value starts with the number of the key
version that sealed it (1 to 255; the first version's values, written before keys rotated,
already start with 1), the newest version seals, and every version opens its own. A process
that meets a version newer than any it holds (sealed by a replica that saw the rotation
first) asks its key source again before it calls the value broken.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity.errors import IdentityError

NONCE_BYTES = 12
TAG_BYTES = 16
MAX_VERSION = 255  # one byte names the version


class SealBroken(IdentityError):
    """A sealed value does not open: wrong key, wrong row, or altered ciphertext."""


class SealingKeys:
    """Every version of the sealing key at hand, by number: the newest seals. Numbered by the
    key store's names, not by position, so a version missing from the folder shifts no other
    version's number."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys or not all(1 <= number <= MAX_VERSION for number in keys):
            raise ValueError(f"key versions are numbered 1 to {MAX_VERSION}: {sorted(keys)}")
        self._aeads = {number: AESGCM(key) for number, key in keys.items()}
        self.current = max(keys)

    def get(self, version: int) -> AESGCM | None:
        return self._aeads.get(version)


class SealingKeySource(Protocol):
    """Where a Sealer finds its keys: the versions as last seen, or (`fresh`) as they are now,
    which may cost a look at the key store."""

    def get(self, fresh: bool = False) -> SealingKeys: ...


class FixedKeys:
    """Key versions that never change: one process's own, or a test's."""

    def __init__(self, keys: SealingKeys) -> None:
        self._keys = keys

    def get(self, fresh: bool = False) -> SealingKeys:
        return self._keys


class Sealer:
    def __init__(self, keys: SealingKeySource) -> None:
        self._keys = keys

    @classmethod
    def of(cls, *keys: bytes) -> Sealer:
        """A sealer with these key versions, oldest first, for good."""
        return cls.numbered(dict(enumerate(keys, start=1)))

    @classmethod
    def numbered(cls, keys: Mapping[int, bytes]) -> Sealer:
        """A sealer with these key versions, by number, for good."""
        return cls(FixedKeys(SealingKeys(keys)))

    @property
    def current(self) -> int:
        """The version that seals now."""
        return self._keys.get().current

    def newest(self) -> int:
        """The newest version in the key source as it is now (a rotation made a moment ago
        included), which seals from then on."""
        return self._keys.get(fresh=True).current

    def seal(self, value: bytes, context: str) -> bytes:
        keys = self._keys.get()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = keys.get(keys.current)
        assert sealed is not None  # noqa: S101 (the current version is one of them)
        return bytes([keys.current]) + nonce + sealed.encrypt(nonce, value, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        version = sealed_under(sealed)
        keys = self._keys.get()
        if version > keys.current:  # sealed by a process that saw a rotation first
            keys = self._keys.get(fresh=True)
        aead = keys.get(version)
        if aead is None:
            raise SealBroken(f"sealed under key version {version}, which this service lacks")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        if len(body) < TAG_BYTES:
            raise SealBroken("sealed value is cut short")
        try:
            return aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealBroken("sealed value does not open in this context") from None

    def seal_json(self, value: Any, context: str) -> bytes:
        return self.seal(json.dumps(value, sort_keys=True).encode(), context)

    def open_json(self, sealed: bytes, context: str) -> Any:
        return json.loads(self.open(sealed, context))

    def resealed(self, sealed: bytes, context: str) -> bytes | None:
        """`sealed` opened and sealed again under the current version; None if it is under
        that version already. SealBroken if it does not open: nothing is sealed anew that the
        service could not read, so a value altered in the database stays visibly broken."""
        if sealed_under(sealed) == self.current:
            return None
        return self.seal(self.open(sealed, context), context)


def sealed_under(sealed: bytes) -> int:
    """The key version a sealed value names (0 for an empty value, which no version seals)."""
    return sealed[0] if sealed else 0
