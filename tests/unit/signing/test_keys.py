"""The embedded key provider: keys sealed at rest, bound to their reference."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update

from api.runtime import Runtime
from signing.models import keys
from signing.pki import keys as provider_module
from signing.pki.keys import KeyUnavailable, SealedKeys


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_module, "_opened", {})


def test_a_key_is_sealed_at_rest_and_opens_only_with_its_seal_key_and_ref(
    runtime: Runtime,
) -> None:
    seal = os.urandom(32)
    with runtime.transaction() as session:
        first, second = SealedKeys(session, seal, runtime.clock).generate(), None
        second = SealedKeys(session, seal, runtime.clock).generate()
    with runtime.transaction() as session:
        key = SealedKeys(session, seal, runtime.clock).private_key(first)
        assert isinstance(key.curve, ec.SECP256R1)
        stored = session.execute(select(keys.c.sealed).where(keys.c.ref == first)).scalar_one()
        secret = key.private_numbers().private_value.to_bytes(32, "big")
        assert secret not in stored, "the key is sealed, not stored in the clear"
    with runtime.transaction() as session, pytest.raises(KeyUnavailable, match="does not open"):
        SealedKeys(session, os.urandom(32), runtime.clock).private_key(first)
    with runtime.transaction() as session:
        # A sealed key copied onto another row does not open there.
        session.execute(update(keys).where(keys.c.ref == second).values(sealed=stored))
    with runtime.transaction() as session, pytest.raises(KeyUnavailable, match="does not open"):
        SealedKeys(session, seal, runtime.clock).private_key(second)
    with runtime.transaction() as session, pytest.raises(KeyUnavailable, match="no key"):
        SealedKeys(session, seal, runtime.clock).private_key("local:nothing")
