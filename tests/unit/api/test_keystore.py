"""The local key store: keys made once, encrypted at rest, shared safely between processes."""

from __future__ import annotations

import errno
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.errors import StartupError
from api.keystore import (
    KeyVersionTaken,
    LocalKeyStore,
    MasterKeyRefused,
    MasterRotation,
    development_master_key,
    is_version_of,
    parse_master_key,
    rotate_master_key,
    version_number,
)

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


def test_versions_are_added_beside_the_first_and_numbered_in_order(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    assert store.versions("locker-consent") == []
    assert store.current("locker-consent") == "locker-consent"  # made on first use
    made = [store.add_version("locker-consent") for _ in range(10)]
    assert made[0] == "locker-consent.v2"
    assert made[-1] == "locker-consent.v11"  # numbers, not text: v11 follows v10
    assert store.versions("locker-consent") == ["locker-consent", *made]
    assert store.current("locker-consent") == "locker-consent.v11"
    assert len({store.secret(name) for name in store.versions("locker-consent")}) == 11
    store.secret("locker-consent.vx")  # a key of another name, not a version
    store.secret("locker")
    assert store.versions("locker") == ["locker"]
    assert "locker-consent.vx" not in store.versions("locker-consent")


def test_one_rule_names_versions_for_the_listing_and_the_checks(tmp_path: Path) -> None:
    """`versions`, `is_version_of` and `version_number` agree: `name.v1` or `name.v02` (never
    made by `add_version`) is another key, not a version, wherever it is asked about."""
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    for name in ("identity-seal", "identity-seal.v1", "identity-seal.v02", "identity-seal.v3"):
        store.secret(name)
    assert store.versions("identity-seal") == ["identity-seal", "identity-seal.v3"]
    assert [k for k in store.names() if is_version_of("identity-seal", k)] == [
        "identity-seal",
        "identity-seal.v3",
    ]
    assert version_number("identity-seal", "identity-seal.v3") == 3
    assert version_number("identity-seal", "identity-seal") == 1
    with pytest.raises(ValueError, match="not a version"):
        version_number("identity-seal", "identity-seal.v1")


def test_a_version_made_meanwhile_by_another_rotation_is_refused(tmp_path: Path) -> None:
    """Two rotations at once: the one that loses the race makes nothing and says so."""
    store = LocalKeyStore(tmp_path / "keys", MASTER)
    other = LocalKeyStore(tmp_path / "keys", MASTER)
    first = store.secret("audit-checkpoint")
    with mock.patch.object(LocalKeyStore, "current", return_value="audit-checkpoint"):
        assert other.add_version("audit-checkpoint") == "audit-checkpoint.v2"
        won = store.secret("audit-checkpoint.v2")
        with pytest.raises(KeyVersionTaken, match="version 2 of the key audit-checkpoint"):
            store.add_version("audit-checkpoint")
    assert store.versions("audit-checkpoint") == ["audit-checkpoint", "audit-checkpoint.v2"]
    assert store.secret("audit-checkpoint.v2") == won
    assert store.secret("audit-checkpoint") == first
    assert not [p for p in (tmp_path / "keys").iterdir() if p.name.startswith(".")]


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


# -- rotating the master key -------------------------------------------------------------------

NEW = bytes(range(32, 64))
NAMES = ("audit-checkpoint", "audit-pseudonym", "identity-seal", "locker-kek-seal", "state-mac")


def _filled(directory: Path) -> dict[str, bytes]:
    store = LocalKeyStore(directory, MASTER)
    return {name: store.secret(name) for name in NAMES}


def _under(directory: Path, master: bytes) -> set[str]:
    """The key files in `directory` that open under `master`."""
    store = LocalKeyStore(directory, master)
    return {name for name in store.names() if store._open(name) is not None}


def test_a_rotation_reseals_every_file_and_keeps_every_secret(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    secrets = _filled(keys)
    before = {name: (keys / f"{name}.json").read_bytes() for name in NAMES}
    done = rotate_master_key(keys, MASTER, NEW)
    assert done == MasterRotation(resealed=len(NAMES), already=0)
    store = LocalKeyStore(keys, NEW)
    assert {name: store.secret(name) for name in NAMES} == secrets
    for name in NAMES:
        path = keys / f"{name}.json"
        assert path.read_bytes() != before[name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in keys.iterdir()) == sorted(f"{n}.json" for n in NAMES)
    with pytest.raises(StartupError, match="does not open under this master key"):
        LocalKeyStore(keys, MASTER).secret(NAMES[0])


def test_a_rotation_that_fails_part_way_leaves_every_key_openable_and_a_rerun_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure at the rename of the fourth file (a full disk, a kill): three files are under
    the new key, the rest still under the old, the fourth untouched and no temporary file
    left; running again with the same keys re-seals only what is left."""
    keys = tmp_path / "keys"
    secrets = _filled(keys)
    fourth = (keys / f"{sorted(NAMES)[3]}.json").read_bytes()
    replace, calls = os.replace, []

    def fail_at_the_fourth(source: str | Path, target: str | Path) -> None:
        calls.append(target)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", fail_at_the_fourth)
    with pytest.raises(OSError, match="No space"):
        rotate_master_key(keys, MASTER, NEW)
    monkeypatch.setattr(os, "replace", replace)

    assert _under(keys, NEW) == set(sorted(NAMES)[:3])
    assert _under(keys, MASTER) == set(sorted(NAMES)[3:])
    assert (keys / f"{sorted(NAMES)[3]}.json").read_bytes() == fourth
    assert sorted(p.name for p in keys.iterdir()) == sorted(f"{n}.json" for n in NAMES)

    done = rotate_master_key(keys, MASTER, NEW)
    assert done == MasterRotation(resealed=len(NAMES) - 3, already=3)
    assert _under(keys, NEW) == set(NAMES)
    store = LocalKeyStore(keys, NEW)
    assert {name: store.secret(name) for name in NAMES} == secrets
    assert rotate_master_key(keys, MASTER, NEW) == MasterRotation(resealed=0, already=len(NAMES))


def test_a_key_made_under_the_old_key_after_a_rotation_is_resealed_by_a_rerun(
    tmp_path: Path,
) -> None:
    """What a replica left running under the old key does: the new key refuses its key by
    name, and the same rotation run again re-seals it."""
    keys = tmp_path / "keys"
    _filled(keys)
    rotate_master_key(keys, MASTER, NEW)
    late = LocalKeyStore(keys, MASTER).secret("identity-device-cookie")
    with pytest.raises(StartupError, match=r"identity-device-cookie .* does not open"):
        LocalKeyStore(keys, NEW).secret("identity-device-cookie")
    done = rotate_master_key(keys, MASTER, NEW)
    assert done == MasterRotation(resealed=1, already=len(NAMES))
    assert LocalKeyStore(keys, NEW).secret("identity-device-cookie") == late


def test_the_same_key_again_is_refused(tmp_path: Path) -> None:
    _filled(tmp_path / "keys")
    with pytest.raises(MasterKeyRefused, match="the new master key is the one in use"):
        rotate_master_key(tmp_path / "keys", MASTER, bytes(MASTER))


def test_a_file_under_neither_key_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    """A wrong current key, or one file from elsewhere: refused before any file is touched."""
    keys = tmp_path / "keys"
    _filled(keys)
    LocalKeyStore(keys, bytes(32)).secret("stranger")
    before = {path.name: path.read_bytes() for path in keys.iterdir()}
    with pytest.raises(MasterKeyRefused, match=r"key stranger .* opens under neither"):
        rotate_master_key(keys, MASTER, NEW)
    with pytest.raises(MasterKeyRefused, match="opens under neither"):
        rotate_master_key(keys, bytes(32 * [7]), NEW)
    assert {path.name: path.read_bytes() for path in keys.iterdir()} == before


def test_a_folder_without_key_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A wrong SHANAKHT_DATA_DIR: nothing to rotate, and no keys folder made."""
    with pytest.raises(MasterKeyRefused, match="there are no key files in"):
        rotate_master_key(tmp_path / "keys", MASTER, NEW)
    assert not (tmp_path / "keys").exists()
