"""The passwords' pepper (ASVS 4.0.3 2.4.5): argon2id over HMAC-SHA256(pepper, password), the
pepper kept in the key store, so a copy of the database alone cannot be guessed against."""

from __future__ import annotations

import secrets

import argon2
import pytest

from identity.passwords import PEPPERED, PasswordHasher
from tests.unit.identity.conftest import FAST_HASH

PASSWORD = "Kinnow#Orchard2026"


@pytest.fixture
def pepper() -> bytes:
    return secrets.token_bytes(32)


def test_a_peppered_hash_is_not_a_hash_of_the_password(pepper: bytes) -> None:
    """Whoever holds the hash but not the pepper, guessing the right password, finds no
    match: what argon2id hashed was not the password."""
    encoded = PasswordHasher(FAST_HASH, pepper=pepper).hash(PASSWORD)
    assert encoded.startswith(PEPPERED + "$argon2id$")
    bare = encoded.removeprefix(PEPPERED)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(bare, PASSWORD)
    assert PasswordHasher(FAST_HASH, pepper=pepper).verify(encoded, PASSWORD)


def test_another_pepper_or_none_verifies_nothing(pepper: bytes) -> None:
    encoded = PasswordHasher(FAST_HASH, pepper=pepper).hash(PASSWORD)
    assert not PasswordHasher(FAST_HASH, pepper=secrets.token_bytes(32)).verify(encoded, PASSWORD)
    assert not PasswordHasher(FAST_HASH).verify(encoded, PASSWORD)
    assert not PasswordHasher(FAST_HASH, pepper=pepper).verify(encoded, PASSWORD + "x")


def test_a_hash_from_before_the_pepper_verifies_and_is_replaced(pepper: bytes) -> None:
    old = PasswordHasher(FAST_HASH).hash(PASSWORD)
    peppered = PasswordHasher(FAST_HASH, pepper=pepper)
    assert peppered.verify(old, PASSWORD)
    assert peppered.needs_rehash(old, PASSWORD)
    new = peppered.hash(PASSWORD)
    assert not peppered.needs_rehash(new, PASSWORD)
    assert peppered.verify(new, PASSWORD)


def test_an_unknown_account_is_refused_with_a_peppered_dummy(pepper: bytes) -> None:
    assert not PasswordHasher(FAST_HASH, pepper=pepper).verify(None, PASSWORD)
