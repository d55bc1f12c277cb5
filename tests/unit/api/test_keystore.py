"""The local key store: keys made once, encrypted at rest, shared safely between processes."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.errors import StartupError
from api.keystore import LocalKeyStore, development_master_key, parse_master_key

MASTER = bytes(range(32))


def test_a_secret_is_made_once_and_read_back(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    first = store.secret("audit-pseudonym")
    assert len(first) == 32
    assert LocalKeyStore(tmp_path / "keys", MASTER).secret("audit-pseudonym") == first
    assert store.secret("another") != first


def test_secrets_are_encrypted_and_private(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    secret = store.secret("audit-checkpoint")
    path = tmp_path / "keys" / "audit-checkpoint.json"
    raw = path.read_bytes()
    assert secret not in raw
    assert secret.hex() not in raw.decode()
    assert json.loads(raw)["alg"] == "A256GCM"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_another_master_key_cannot_open_them(tmp_path: Path) -> None:
    LocalKeyStore(tmp_path / "keys", MASTER).secret("k")
    with pytest.raises(StartupError, match="does not open under this master key"):
        LocalKeyStore(tmp_path / "keys", bytes(32)).secret("k")


def test_a_key_file_renamed_to_another_name_does_not_open(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    store.secret("a")
    (tmp_path / "keys" / "a.json").rename(tmp_path / "keys" / "b.json")
    with pytest.raises(StartupError):
        store.secret("b")


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    store.secret("a")
    (tmp_path / "keys" / "a.json").write_text("{not json")
    with pytest.raises(StartupError, match="damaged"):
        store.secret("a")


def test_a_secret_is_opened_once_until_its_file_is_replaced(tmp_path: Path) -> None:
    """A login asks for the device cookie key every time: it is decrypted once, and again only
    when its file is replaced (a restore, a rotation by hand), never served stale."""
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    first = store.secret("identity-device-cookie")
    with mock.patch.object(AESGCM, "decrypt", side_effect=AssertionError("opened again")):
        assert store.secret("identity-device-cookie") == first
    other = LocalKeyStore(tmp_path / "elsewhere", MASTER)
    replacement = other.secret("identity-device-cookie")
    path = tmp_path / "keys" / "identity-device-cookie.json"
    spare = path.with_name("spare.json")
    spare.write_bytes((tmp_path / "elsewhere" / "identity-device-cookie.json").read_bytes())
    spare.replace(path)
    assert store.secret("identity-device-cookie") == replacement != first
    path.write_text("{}")  # damaged in place: refused, not answered from memory
    with pytest.raises(StartupError, match="damaged"):
        store.secret("identity-device-cookie")


def test_racing_creators_agree_on_one_key(tmp_path: Path) -> None:
    def make(_: int) -> bytes:
        return LocalKeyStore(tmp_path / "keys", MASTER).secret("raced")

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(make, range(32)))
    assert len(results) == 1
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["raced.json"]


def test_ed25519_keys_are_stable(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    signature = store.ed25519("signer").sign(b"x")
    assert LocalKeyStore(tmp_path / "keys", MASTER).ed25519("signer").sign(b"x") == signature


@pytest.mark.parametrize("name", ["../escape", "Upper", "", "a/b", ".hidden"])
def test_key_names_cannot_leave_the_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="bad key name"):
        LocalKeyStore(tmp_path / "keys", MASTER).secret(name)


def test_master_keys_are_checked(tmp_path: Path) -> None:
    assert parse_master_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") == MASTER
    for bad in ("", "short", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "!" * 44):
        with pytest.raises(StartupError, match="SHANAKHT_MASTER_KEY"):
            parse_master_key(bad)
    key = development_master_key(tmp_path)
    assert development_master_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
