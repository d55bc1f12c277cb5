"""Personal data sealed at rest: AES-256-GCM, bound to the row it belongs to.

The database holds citizens' CNICs, names and numbers only as ciphertext, with the row's id as
associated data, so a sealed value copied into another row does not open. Lookups go through a
keyed pseudonym instead (`audit.pseudonym`), never through the plaintext.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity.errors import IdentityError

VERSION = b"\x01"
NONCE_BYTES = 12


class SealBroken(IdentityError):
    """A sealed value does not open: wrong key, wrong row, or altered ciphertext."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, value: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, value, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if sealed[:1] != VERSION:
            raise SealBroken("unknown sealed-value version")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealBroken("sealed value does not open in this context") from None

    def seal_json(self, value: Any, context: str) -> bytes:
        return self.seal(json.dumps(value, sort_keys=True).encode(), context)

    def open_json(self, sealed: bytes, context: str) -> Any:
        return json.loads(self.open(sealed, context))
