"""The token-signing keys' in-process cache."""

from __future__ import annotations

import secrets

import pytest

from api.runtime import Runtime
from identity.oidc.keys import SigningKeys
from identity.sealing import SealBroken, Sealer


def test_a_key_opened_under_one_sealer_is_not_handed_to_another(runtime: Runtime) -> None:
    """The parsed-key cache is per sealer: a runtime with the wrong master key must fail to
    open the key, even after a runtime with the right one opened it in this process."""
    right = Sealer(secrets.token_bytes(32))
    with runtime.transaction() as session:
        keys = SigningKeys(session, right, runtime.clock)
        keys.ensure()
        assert keys.sign({"sub": "x"}, alg="ES256")
    with runtime.transaction() as session:
        wrong = SigningKeys(session, Sealer(secrets.token_bytes(32)), runtime.clock)
        with pytest.raises(SealBroken):
            wrong.sign({"sub": "x"}, alg="ES256")
