"""Sealed personal data under a key that rotates: each value names the version that sealed it,
the newest version seals, every version opens its own, and nothing else opens."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from identity.sealing import FixedKeys, SealBroken, Sealer, SealingKeys, sealed_under

V1, V2, V3 = (secrets.token_bytes(32) for _ in range(3))


def test_the_newest_version_seals_and_every_version_opens_its_own() -> None:
    first = Sealer.of(V1).seal(b"03001234567", "citizen:a:mobile")
    assert sealed_under(first) == 1
    rotated = Sealer.of(V1, V2)
    second = rotated.seal(b"03001234567", "citizen:a:mobile")
    assert sealed_under(second) == 2
    assert rotated.current == 2
    assert rotated.open(first, "citizen:a:mobile") == rotated.open(second, "citizen:a:mobile")
    with pytest.raises(SealBroken, match="key version 2"):
        Sealer.of(V1).open(second, "citizen:a:mobile")


def test_values_sealed_before_keys_rotated_open_as_version_one() -> None:
    """The first version's values were written with a leading 1 before there were versions:
    they open unchanged, with no migration."""
    nonce = bytes(12)
    stored = b"\x01" + nonce + AESGCM(V1).encrypt(nonce, b"profile", b"citizen:a:profile")
    assert Sealer.of(V1, V2).open(stored, "citizen:a:profile") == b"profile"


def test_a_value_under_a_version_made_meanwhile_is_opened_after_asking_again() -> None:
    """A replica that has not listed the keys folder since another made version 3 asks its key
    source afresh before calling the value broken."""

    class Later:
        def __init__(self) -> None:
            self.fresh_asks = 0

        def get(self, fresh: bool = False) -> SealingKeys:
            self.fresh_asks += fresh
            return SealingKeys({1: V1, 2: V2, 3: V3} if self.fresh_asks else {1: V1, 2: V2})

    source = Later()
    value = Sealer.of(V1, V2, V3).seal(b"secret", "citizen:a:totp")
    assert Sealer(source).open(value, "citizen:a:totp") == b"secret"
    assert source.fresh_asks == 1
    # A version older than the newest it holds is not asked for again: none will appear.
    missing = SealingKeysSource({2: V2, 3: V3})
    with pytest.raises(SealBroken, match="key version 1"):
        Sealer(missing).open(Sealer.of(V1).seal(b"old", "c"), "c")
    assert missing.fresh_asks == 0


class SealingKeysSource:
    """Fixed versions, counting the fresh asks."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        self._keys = SealingKeys(keys)
        self.fresh_asks = 0

    def get(self, fresh: bool = False) -> SealingKeys:
        self.fresh_asks += fresh
        return self._keys


def test_versions_keep_their_numbers_when_one_is_missing() -> None:
    """A keys folder that lacks version 2 seals with version 3 under byte 3, never byte 2."""
    gap = Sealer(SealingKeysSource({1: V1, 3: V3}))
    value = gap.seal(b"x", "c")
    assert sealed_under(value) == 3
    assert Sealer.of(V1, V2, V3).open(value, "c") == b"x"


def test_resealed_moves_older_values_only_and_never_a_broken_one() -> None:
    old = Sealer.of(V1).seal(b"x", "challenge:c")
    rotated = Sealer.of(V1, V2)
    again = rotated.resealed(old, "challenge:c")
    assert again is not None
    assert sealed_under(again) == 2
    assert rotated.open(again, "challenge:c") == b"x"
    assert rotated.resealed(again, "challenge:c") is None
    with pytest.raises(SealBroken):
        rotated.resealed(old, "challenge:other")  # bound to another row


@given(version=st.integers(0, 255), body=st.binary(max_size=64))
def test_a_value_with_any_version_byte_opens_or_is_refused_as_broken(
    version: int, body: bytes
) -> None:
    sealer = Sealer(FixedKeys(SealingKeys({1: V1, 2: V2})))
    with pytest.raises(SealBroken):
        sealer.open(bytes([version]) + body, "citizen:a:profile")


def test_key_versions_are_numbered_1_to_255() -> None:
    for numbers in ([], [0], [256]):
        with pytest.raises(ValueError, match="numbered 1 to 255"):
            SealingKeys(dict.fromkeys(numbers, V1))
