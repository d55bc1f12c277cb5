"""Where the CA's and the signers' private keys live: behind a key-provider protocol.

`SealedKeys` is the embedded provider: P-256 keys made here, kept as PKCS#8 sealed with
AES-256-GCM under a key the service's key store holds, the reference bound in as associated
data so a sealed key cannot be moved to another row. A PKCS#11 provider (an HSM) implements
the same two methods and never lets a key leave the device.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from signing.errors import SigningError
from signing.models import keys

NONCE = 12


class KeyUnavailable(SigningError):
    """A key reference names no key, or its sealed copy does not open under this key."""


class KeyProvider(Protocol):
    def generate(self) -> str:
        """Make a P-256 key and return its reference."""
        ...

    def private_key(self, ref: str) -> ec.EllipticCurvePrivateKey:
        """The key `ref` names, for signing; KeyUnavailable if there is none."""
        ...


# Opened keys by (seal key, reference): a reference names one key for ever, so this never goes
# stale; the seal key is part of the name so that only the right one ever finds a key here.
_opened: dict[tuple[bytes, str], ec.EllipticCurvePrivateKey] = {}


class SealedKeys:
    def __init__(self, session: Session, seal_key: bytes, clock: Callable[[], datetime]) -> None:
        if len(seal_key) != 32:
            raise ValueError("the seal key is 32 bytes")
        self._db = session
        self._aead = AESGCM(seal_key)
        self._seal_id = hashlib.sha256(seal_key).digest()
        self._clock = clock

    def generate(self) -> str:
        ref = f"local:{uuid.uuid4().hex}"
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = os.urandom(NONCE)
        sealed = nonce + self._aead.encrypt(nonce, der, ref.encode())
        self._db.execute(insert(keys).values(ref=ref, sealed=sealed, created_at=self._clock()))
        return ref

    def private_key(self, ref: str) -> ec.EllipticCurvePrivateKey:
        key = _opened.get((self._seal_id, ref))
        if key is not None:
            return key
        sealed = self._db.execute(select(keys.c.sealed).where(keys.c.ref == ref)).scalar()
        if sealed is None:
            raise KeyUnavailable(f"no key {ref}")
        try:
            der = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], ref.encode())
        except InvalidTag:
            raise KeyUnavailable(f"the key {ref} does not open with this seal key") from None
        loaded = serialization.load_der_private_key(der, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise KeyUnavailable(f"the key {ref} is not an EC key")
        _opened[self._seal_id, ref] = loaded
        return loaded
