"""A running process picks up a version another process added to the keys folder within
RECHECK_SECONDS, and in between a use costs a clock reading (`api.key_versions`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from unittest import mock

import pytest

from api.errors import StartupError
from api.key_versions import RECHECK_SECONDS, KeyVersions
from api.keystore import LocalKeyStore

MASTER = bytes(range(32))


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fingerprints(keys: LocalKeyStore, made: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """What the tests build from the versions: each one's name and secret, newest last."""
    return tuple((version, keys.secret(version)) for version in made)


def _ring(
    keys: LocalKeyStore, clock: _Clock | None = None
) -> tuple[KeyVersions[tuple[tuple[str, bytes], ...]], list[tuple[str, ...]]]:
    builds: list[tuple[str, ...]] = []

    def build(made: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
        builds.append(made)
        return _fingerprints(keys, made)

    ring = KeyVersions(keys, "sig", build, monotonic=clock or _Clock())
    return ring, builds


def test_version_one_is_made_on_first_use_and_built_once(tmp_path: Path) -> None:
    keys = LocalKeyStore(tmp_path / "keys", MASTER)
    clock = _Clock()
    ring, builds = _ring(keys, clock)
    first = ring.get()
    assert [name for name, _ in first] == ["sig"]
    assert (tmp_path / "keys" / "sig.json").exists()
    for _ in range(5):
        clock.now += RECHECK_SECONDS
        assert ring.get() is first  # listed again, the same versions: not built again
    assert builds == [("sig",)]


def test_another_process_adding_a_version_is_seen_within_the_recheck_time(
    tmp_path: Path,
) -> None:
    """Two stores on one folder, as two processes: the CLI's rotation reaches the server."""
    server = LocalKeyStore(tmp_path / "keys", MASTER)
    clock = _Clock()
    ring, builds = _ring(server, clock)
    before = ring.get()
    cli = LocalKeyStore(tmp_path / "keys", MASTER)
    assert cli.add_version("sig") == "sig.v2"
    clock.now += RECHECK_SECONDS * 0.9
    assert ring.get() is before  # not listed yet
    clock.now += RECHECK_SECONDS * 0.1
    after = ring.get()
    assert [name for name, _ in after] == ["sig", "sig.v2"]
    assert after[0] == before[0]  # version 1 unchanged, still there to verify
    assert after[1][1] == cli.secret("sig.v2")
    cli.add_version("sig")
    clock.now += RECHECK_SECONDS
    assert [name for name, _ in ring.get()] == ["sig", "sig.v2", "sig.v3"]
    assert builds == [("sig",), ("sig", "sig.v2"), ("sig", "sig.v2", "sig.v3")]


def test_a_fresh_get_lists_at_once_within_the_recheck_time(tmp_path: Path) -> None:
    """A process that meets a value sealed under a version it has not listed yet (the PII
    sealer) asks afresh, and sees a rotation made a moment ago without waiting."""
    server = LocalKeyStore(tmp_path / "keys", MASTER)
    clock = _Clock()
    ring, _builds = _ring(server, clock)
    before = ring.get()
    LocalKeyStore(tmp_path / "keys", MASTER).add_version("sig")
    assert ring.get() is before  # within the recheck time, not listed
    assert [name for name, _ in ring.get(fresh=True)] == ["sig", "sig.v2"]
    assert [name for name, _ in ring.get()] == ["sig", "sig.v2"]  # kept from then on


def test_between_listings_a_use_touches_no_file(tmp_path: Path) -> None:
    keys = LocalKeyStore(tmp_path / "keys", MASTER)
    keys.add_version("sig")
    clock = _Clock()
    ring, _ = _ring(keys, clock)
    built = ring.get()
    with (
        mock.patch.object(keys, "versions", wraps=keys.versions) as listed,
        mock.patch.object(keys, "secret", wraps=keys.secret) as read,
        mock.patch("os.stat", wraps=os.stat) as stat,
        mock.patch("os.scandir", wraps=os.scandir) as scan,
    ):
        for _ in range(100):
            clock.now += RECHECK_SECONDS / 200
            assert ring.get() is built
        assert (listed.call_count, read.call_count, stat.call_count, scan.call_count) == (
            0,
            0,
            0,
            0,
        )
        clock.now += RECHECK_SECONDS
        assert ring.get() is built
        assert (listed.call_count, read.call_count) == (1, 0), "listed, nothing new to read"


def test_a_version_that_does_not_open_leaves_the_old_ones_signing_and_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version sealed under a master key this process lacks (made after `keys rotate
    master` while it ran) does not fail its requests: it goes on with what it had, says so,
    and tries again at the next listing."""
    keys = LocalKeyStore(tmp_path / "keys", MASTER)
    clock = _Clock()
    ring, builds = _ring(keys, clock)
    before = ring.get()
    clock.now += RECHECK_SECONDS
    other_master = LocalKeyStore(tmp_path / "keys", bytes(32))
    (tmp_path / "keys" / "sig.v2.json").write_bytes(other_master._seal("sig.v2", b"k" * 32))
    with caplog.at_level(logging.WARNING, logger="shanakht.keys"):
        assert ring.get() is before
    assert "key sig: version sig.v2 does not open, still signing with sig" in caplog.text
    assert "k" * 32 not in caplog.text
    attempts = len(builds)
    assert ring.get() is before
    assert len(builds) == attempts, "not retried at every use"
    (tmp_path / "keys" / "sig.v2.json").unlink()
    keys.add_version("sig")  # a good version 2, made under this process's master key
    clock.now += RECHECK_SECONDS
    assert [name for name, _ in ring.get()] == ["sig", "sig.v2"]


def test_at_start_a_version_that_does_not_open_is_refused(tmp_path: Path) -> None:
    keys = LocalKeyStore(tmp_path / "keys", MASTER)
    LocalKeyStore(tmp_path / "keys", bytes(32)).secret("sig")
    ring, _ = _ring(keys)
    with pytest.raises(StartupError, match="does not open under this master key"):
        ring.get()
