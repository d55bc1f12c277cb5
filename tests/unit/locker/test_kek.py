"""Versioned key-encryption keys in a folder: rotation, old versions, re-wrapping, a wrong
master secret, and processes (here threads, each with its own provider) racing to create."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from locker.crypto import Context, new_data_key, unwrap, wrap, wrapped_under
from locker.errors import KeyUnavailable, MasterSecretMismatch, WrappedKeyInvalid
from locker.kek import Kek, LocalKeks, rewrap

MASTER = os.urandom(32)
CONTEXT = Context("doc-1", 1, "owner-1")


def test_first_open_makes_version_one(tmp_path: Path) -> None:
    keks = LocalKeks(tmp_path / "keks", MASTER)
    current = keks.current()
    assert current.version_id == "local:1"
    assert len(current.key) == 32
    assert keks.get("local:1") == current.key
    assert LocalKeks(tmp_path / "keks", MASTER).current() == current  # kept, not remade
    files = list((tmp_path / "keks").iterdir())
    assert [f.name for f in files] == ["kek-000001.sealed"]
    assert current.key not in files[0].read_bytes()
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keks").stat().st_mode) == 0o700


def test_a_kek_is_not_shown_in_its_repr(tmp_path: Path) -> None:
    current = LocalKeks(tmp_path, MASTER).current()
    assert current.key.hex() not in repr(current)
    assert str(current.key) not in repr(current)
    assert "redacted" in repr(current)


def test_rotate(tmp_path: Path) -> None:
    keks = LocalKeks(tmp_path, MASTER)
    first = keks.current()
    assert keks.rotate() == "local:2"
    assert keks.rotate() == "local:3"
    assert keks.current().version_id == "local:3"
    assert keks.get("local:1") == first.key
    assert len({keks.get(f"local:{n}") for n in (1, 2, 3)}) == 3


def test_old_versions_still_unwrap_and_rewrap_moves_to_the_newest(tmp_path: Path) -> None:
    keks = LocalKeks(tmp_path, MASTER)
    data_key = new_data_key()
    wrapped = wrap(data_key, keks.current(), CONTEXT)
    keks.rotate()
    assert unwrap(wrapped, keks.get, CONTEXT) == data_key  # the old version still opens it
    rewrapped = rewrap(wrapped, keks)
    assert rewrapped is not None
    assert wrapped_under(rewrapped) == "local:2"
    assert unwrap(rewrapped, keks.get, CONTEXT) == data_key
    assert rewrap(rewrapped, keks) is None  # already under the newest: nothing to do
    with pytest.raises(WrappedKeyInvalid, match="another document"):
        unwrap(rewrapped, keks.get, Context("doc-2", 1, "owner-1"))  # still bound


def test_a_wrong_master_secret_fails_at_open(tmp_path: Path) -> None:
    LocalKeks(tmp_path, MASTER)
    with pytest.raises(MasterSecretMismatch, match="does not open under this master secret"):
        LocalKeks(tmp_path, os.urandom(32))


def test_a_master_secret_is_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalKeks(tmp_path, b"short")


def test_a_renamed_kek_file_does_not_open(tmp_path: Path) -> None:
    """The version id is the sealed key's associated data: a copy under another version's
    name (an attempt to make an old key current again) does not open."""
    keks = LocalKeks(tmp_path, MASTER)
    shutil.copy(tmp_path / "kek-000001.sealed", tmp_path / "kek-000002.sealed")
    with pytest.raises(MasterSecretMismatch, match="altered or renamed"):
        keks.current()


def test_unknown_versions(tmp_path: Path) -> None:
    keks = LocalKeks(tmp_path, MASTER)
    with pytest.raises(KeyUnavailable, match="no KEK version local:9"):
        keks.get("local:9")
    for bad in ["9", "local:0", "local:01", "kms:1", ""]:
        with pytest.raises(KeyUnavailable, match="not a local KEK version id"):
            keks.get(bad)


def test_a_damaged_kek_file(tmp_path: Path) -> None:
    LocalKeks(tmp_path, MASTER)
    (tmp_path / "kek-000001.sealed").write_bytes(b"SHKK" + bytes(10))
    with pytest.raises(KeyUnavailable, match="not a sealed KEK"):
        LocalKeks(tmp_path, MASTER)


def test_another_process_rotating_is_seen(tmp_path: Path) -> None:
    mine, theirs = LocalKeks(tmp_path, MASTER), LocalKeks(tmp_path, MASTER)
    theirs.rotate()
    assert mine.current() == theirs.current()
    assert mine.rotate() == "local:3"


def race(count: int, job: Callable[[int], object]) -> list[object]:
    """Run `job` on `count` threads released at the same moment; their results in order."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = job(n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_concurrent_first_opens_make_one_version(tmp_path: Path) -> None:
    currents = race(8, lambda _: LocalKeks(tmp_path / "keks", MASTER).current())
    assert len({c.key for c in currents if isinstance(c, Kek)}) == 1
    assert sorted(p.name for p in (tmp_path / "keks").iterdir()) == ["kek-000001.sealed"]


def test_concurrent_rotations_each_make_a_version(tmp_path: Path) -> None:
    LocalKeks(tmp_path, MASTER)
    providers = [LocalKeks(tmp_path, MASTER) for _ in range(8)]
    shared = LocalKeks(tmp_path, MASTER)
    made = race(16, lambda n: (providers[n] if n < 8 else shared).rotate())
    assert sorted(made, key=lambda v: int(str(v).split(":")[1])) == [
        f"local:{n}" for n in range(2, 18)
    ]
    assert len(list(tmp_path.iterdir())) == 17  # and no temporary file left behind
    fresh = LocalKeks(tmp_path, MASTER)
    assert fresh.current().version_id == "local:17"
    assert len({fresh.get(f"local:{n}") for n in range(1, 18)}) == 17
