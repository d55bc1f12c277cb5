"""The token-signing keys' in-process cache."""

from __future__ import annotations

import secrets

import pytest

from api.runtime import Runtime
from identity.oidc import keys as keys_module
from identity.oidc.keys import SigningKeys
from identity.sealing import SealBroken, Sealer


def test_a_key_opened_under_one_sealer_is_not_handed_to_another(runtime: Runtime) -> None:
    """The parsed-key cache is per sealer: a runtime with the wrong master key must fail to
    open the key, even after a runtime with the right one opened it in this process."""
    right = Sealer.of(secrets.token_bytes(32))
    with runtime.transaction() as session:
        keys = SigningKeys(session, right, runtime.clock)
        keys.ensure()
        assert keys.sign({"sub": "x"}, alg="ES256")
    with runtime.transaction() as session:
        wrong = SigningKeys(session, Sealer.of(secrets.token_bytes(32)), runtime.clock)
        with pytest.raises(SealBroken):
            wrong.sign({"sub": "x"}, alg="ES256")


class _Clock:
    """A monotonic clock the test moves, for the signing key's TTL."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_rotation_here_signs_with_the_new_key_at_once(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        keys = SigningKeys(session, runtime.identity.sealer, runtime.clock)
        keys.ensure()
        before, _key = keys.current("ES256")
        new = keys.rotate()
        after, _key = keys.current("ES256")
    assert after != before
    assert after in new


def test_a_key_read_here_while_the_rotation_was_uncommitted_is_dropped_at_its_commit(
    runtime: Runtime,
) -> None:
    """Another request of this process that signs between the rotation and its commit reads
    (and caches) the old key; the commit drops it, so the next signature uses the new one."""
    sealer = runtime.identity.sealer
    with runtime.transaction() as session:
        SigningKeys(session, sealer, runtime.clock).ensure()
    with runtime.transaction() as rotating:
        new = SigningKeys(rotating, sealer, runtime.clock).rotate()
        with runtime.sessions() as meanwhile:
            old, _key = SigningKeys(meanwhile, sealer, runtime.clock).current("ES256")
        assert old not in new
    with runtime.sessions() as session:
        after, _key = SigningKeys(session, sealer, runtime.clock).current("ES256")
    assert after in new


def test_another_process_rotation_reaches_this_one_within_the_ttl(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process that rotates drops its cached key; another one (here: the cache as it was
    before the rotation, put back) signs with the old key until SIGNING_TTL has passed, then
    reads the new one, without being told."""
    clock = _Clock()
    monkeypatch.setattr(keys_module, "time", clock)
    with runtime.transaction() as session:
        keys = SigningKeys(session, runtime.identity.sealer, runtime.clock)
        keys.ensure()
        old, _key = keys.current("ES256")
    elsewhere = dict(keys_module._signing)
    with runtime.transaction() as session:
        new = SigningKeys(session, runtime.identity.sealer, runtime.clock).rotate()
    keys_module._signing.update(elsewhere)
    with runtime.transaction() as session:
        keys = SigningKeys(session, runtime.identity.sealer, runtime.clock)
        clock.now += keys_module.SIGNING_TTL - 0.5
        assert keys.current("ES256")[0] == old
        clock.now += 1.0
        assert keys.current("ES256")[0] in new
