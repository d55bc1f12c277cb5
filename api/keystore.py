"""The local key provider: secrets generated on first use, kept encrypted in the data directory.

Each secret is a file `keys/<name>.json` holding AES-256-GCM ciphertext under the master key,
with the key's name as associated data, so a file renamed to stand for another key fails to
open. Several processes (API replicas sharing the directory) may start at once: a key is
created by linking a finished file into place, which only one of them can win; the others read
the winner's. A KMS or PKCS#11 provider can replace this behind the same two methods.

The master key itself can be replaced (`rotate_master_key`): every file is re-sealed under
the new key, one atomic replacement at a time, the secrets inside unchanged.

A signing key can have versions (`add_version`): version 1 is the file made on first use,
`<name>.json`, and each rotation adds `<name>.v2.json`, `<name>.v3.json`... never replacing
one, so whatever an old version signed still verifies. The newest version signs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.errors import StartupError
from locker.kek import _sync_directory

MASTER_KEY_BYTES = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
MAKE_ONE = "python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


def parse_master_key(text: str, what: str = "SHANAKHT_MASTER_KEY") -> bytes:
    """The 32 bytes of a master key written as base64 (`what` names where it came from)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise StartupError(
            f"{what} must be the base64 of 32 random bytes; make one with: {MAKE_ONE}"
        )
    return key


def development_master_key(data_dir: Path) -> bytes:
    """The master key of a development data directory, created on first use.

    Kept beside the keys it protects, which only makes sense on a developer's machine; the
    production setting requires SHANAKHT_MASTER_KEY instead.
    """
    path = data_dir / "master.key"
    if not path.exists():
        _create_exclusive(path, base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES)) + b"\n")
    return parse_master_key(path.read_text())


def _write_temporary(path: Path, content: bytes) -> Path:
    """`content` in a new file beside `path`, synced, readable by the owner only. Its name
    starts with a dot, which no key's name does: a backup skips it, `names` never lists it."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _create_exclusive(path: Path, content: bytes) -> None:
    """Write `content` to `path` unless it exists, atomically, readable by the owner only."""
    temp = _write_temporary(path, content)
    try:
        os.link(temp, path)
    except FileExistsError:
        pass  # another process won the race; its file is as good as ours
    finally:
        temp.unlink(missing_ok=True)


def _replace(path: Path, content: bytes) -> None:
    """Put `content` at `path` in place of what is there, atomically and durably: a reader (or
    a power cut) sees the old file or the new one, never part of either."""
    temp = _write_temporary(path, content)
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _stamp(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_ino, status.st_size, status.st_mtime_ns


class LocalKeyStore:
    def __init__(self, directory: Path, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError("the master key is 32 bytes")
        self._dir = directory
        self._aead = AESGCM(master_key)
        # name -> (the file's inode, size and mtime when read, the secret): see `secret`.
        self._opened: dict[str, tuple[tuple[int, int, int], bytes]] = {}
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"bad key name {name!r}")
        return self._dir / f"{name}.json"

    def names(self) -> list[str]:
        """The names of the keys made so far, sorted: what the key check fingerprints, without
        asking for (and so making) any key."""
        found = (path.name.removesuffix(".json") for path in self._dir.glob("*.json"))
        return sorted(name for name in found if _NAME.match(name))

    def written_at(self, name: str) -> datetime:
        """When the file of the key `name` was last written: when the key was made, unless a
        rotation of the master key re-sealed it or a restore wrote it since."""
        return datetime.fromtimestamp(self._path(name).stat().st_mtime, UTC)

    def secret(self, name: str, size: int = 32) -> bytes:
        """The secret called `name`, generated with `size` random bytes the first time.

        Opened once per process while its file stays the same (inode, size, mtime): a login
        asks for the device cookie key every time, and reading and decrypting it cost more
        than the fstat that tells a replaced or restored file (read again) from the same."""
        path = self._path(name)
        if not path.exists():
            _create_exclusive(path, self._seal(name, secrets.token_bytes(size)))
        secret = self._open(name)
        if secret is None:
            raise self._not_ours(name)
        return secret

    def _not_ours(self, name: str) -> StartupError:
        return StartupError(
            f"key {name} in {self._dir} does not open under this master key: "
            "is SHANAKHT_MASTER_KEY the one this data directory was created with (or, "
            "after `shanakht keys rotate master`, the new one)?"
        )

    def existing(self, name: str) -> bytes:
        """The secret called `name`, which must have been made: for a version listed a moment
        ago, whose file a retirement (`remove`) may have taken meanwhile and which `secret`
        would make anew, at random."""
        try:
            secret = self._open(name)
        except FileNotFoundError:
            raise KeyGone(f"key {name} is no longer in {self._dir}") from None
        if secret is None:
            raise self._not_ours(name)
        return secret

    def remove(self, name: str) -> None:
        """Delete the file of the key `name` for good (a retired version, `api.key_retirement`),
        the deletion made durable before this returns."""
        self._path(name).unlink(missing_ok=True)
        self._opened.pop(name, None)
        _sync_directory(self._dir)

    def _seal(self, name: str, secret: bytes) -> bytes:
        """The file that keeps `secret` as the key `name`, under this store's master key."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret, _aad(name))
        record = {
            "version": 1,
            "alg": "A256GCM",
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode(),
        }
        return json.dumps(record).encode()

    def _open(self, name: str) -> bytes | None:
        """The secret in the file of the key `name`, None if it was not sealed under this
        store's master key; StartupError if the file is not a sealed key at all."""
        path = self._path(name)
        try:
            with path.open("rb") as file:
                stamp = _stamp(os.fstat(file.fileno()))
                cached = self._opened.get(name)
                if cached is not None and cached[0] == stamp:
                    return cached[1]
                record = json.loads(file.read())
            nonce = base64.b64decode(record["nonce"])
            opened = self._aead.decrypt(nonce, base64.b64decode(record["ciphertext"]), _aad(name))
            self._opened[name] = (stamp, opened)
            return opened
        except InvalidTag:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StartupError(f"key file {path} is damaged: {exc}") from None

    def done(self, step: str) -> bool:
        """Whether the one-time step `step` was recorded here (`record_done`). Kept beside the
        keys, not in the database: whoever can write the database must not be able to make
        the service believe a step (the first sealing of rows) is still to be done."""
        return (self._dir / f"{self._path(step).stem}.done").exists()

    def record_done(self, step: str) -> None:
        """Record that the one-time step `step` is done; it then never runs again here."""
        _create_exclusive(self._dir / f"{self._path(step).stem}.done", b"done\n")

    def versions(self, name: str) -> list[str]:
        """The key names of every version of the key `name` made so far, oldest first: `name`
        itself (version 1) and `name.v2`, `name.v3`... (`add_version`). Makes none."""
        numbered = {}
        for other in self.names():
            number = _number_of(name, other)
            if number is not None:
                numbered[number] = other
        return [numbered[number] for number in sorted(numbered)]

    def current(self, name: str) -> str:
        """The key name of the version of `name` that signs now: the newest one (`name` itself
        before any rotation, made on first use like any key)."""
        made = self.versions(name)
        return made[-1] if made else name

    def add_version(self, name: str, size: int = 32) -> str:
        """Make the next version of the key `name`, with `size` random bytes, and return its key
        name. The versions before it stay as they are. Two rotations at once cannot both make
        the same version: the one that loses is refused (KeyVersionTaken), nothing changed."""
        current = self.current(name)
        self.secret(current, size)  # version 1, if it was never asked for, is made first
        number = version_number(name, current) + 1
        new = f"{name}.v{number}"
        temp = _write_temporary(self._path(new), self._seal(new, secrets.token_bytes(size)))
        try:
            os.link(temp, self._path(new))
        except FileExistsError:
            raise KeyVersionTaken(
                f"version {number} of the key {name} was made by another rotation meanwhile: "
                "nothing more was changed"
            ) from None
        finally:
            temp.unlink(missing_ok=True)
        _sync_directory(self._dir)
        return new

    def ed25519(self, name: str) -> Ed25519PrivateKey:
        """An Ed25519 key whose 32-byte seed is the secret `name`."""
        return Ed25519PrivateKey.from_private_bytes(self.secret(name, 32))


def _number_of(name: str, key: str) -> int | None:
    """The version of the key `name` that the key name `key` holds: 1 for `name` itself, n for
    `name.vn` (n >= 2, as `add_version` names them); None for any other key."""
    if key == name:
        return 1
    found = re.fullmatch(rf"{re.escape(name)}\.v([1-9][0-9]*)", key)
    number = int(found.group(1)) if found else 0
    return number if number >= 2 else None


def is_version_of(name: str, key: str) -> bool:
    """Whether the key name `key` is a version of the key `name` (`name`, `name.v2`...)."""
    return _number_of(name, key) is not None


def version_number(name: str, version: str) -> int:
    """Which version of the key `name` the key name `version` is: 1 for `name` itself."""
    number = _number_of(name, version)
    if number is None:
        raise ValueError(f"{version!r} is not a version of the key {name!r}")
    return number


class KeyGone(StartupError):
    """A key that was listed is no longer there."""


class KeyVersionTaken(StartupError):
    """Another rotation made the version this one was about to make."""


def _aad(name: str) -> bytes:
    return f"shanakht-key:{name}".encode()


class MasterKeyRefused(StartupError):
    """The master key cannot be rotated as asked; nothing was changed."""


@dataclass(frozen=True, slots=True)
class MasterRotation:
    """What a rotation of the master key did: the files it re-sealed, and those it found under
    the new key already (re-sealed by an earlier run that stopped part way)."""

    resealed: int
    already: int


def rotate_master_key(directory: Path, current: bytes, new: bytes) -> MasterRotation:
    """Re-seal every key file in `directory` from the master key `current` under `new`.

    Nothing is changed unless every file opens under one of the two. Then each file is
    replaced atomically, so a run that stops anywhere (killed, a full disk) leaves every file
    sealed under one key or the other, and another run with the same two keys finishes the
    job, leaving the files already under `new` as they are. The secrets inside are the same
    afterwards, only their sealing differs: what they seal or sign (KEKs, the PKI's and the
    OIDC provider's keys, tokens, documents) and their fingerprints in the database
    (`api.key_check`) are untouched. A pass that re-sealed something is followed by another,
    which re-seals a key that a process still running under `current` made meanwhile."""
    if hmac.compare_digest(current, new):
        raise MasterKeyRefused("the new master key is the one in use: make a new one")
    if not any(_NAME.match(path.stem) for path in directory.glob("*.json")):
        raise MasterKeyRefused(
            f"there are no key files in {directory}: is SHANAKHT_DATA_DIR the service's data "
            "directory?"
        )
    old_store, new_store = LocalKeyStore(directory, current), LocalKeyStore(directory, new)
    pending, already = _sealed_under_old(old_store, new_store)
    resealed = 0
    while pending:
        for name, secret in pending:
            _replace(new_store._path(name), new_store._seal(name, secret))
            resealed += 1
        pending, _ = _sealed_under_old(old_store, new_store)
    return MasterRotation(resealed, already)


def _sealed_under_old(
    old: LocalKeyStore, new: LocalKeyStore
) -> tuple[list[tuple[str, bytes]], int]:
    """(name, secret) of every key still sealed under the old master key, and how many are
    under the new one. Every file is opened before any is re-sealed, so a file that opens
    under neither key is refused with nothing changed."""
    found: list[tuple[str, bytes]] = []
    under_new = 0
    for name in new.names():
        if new._open(name) is not None:
            under_new += 1
            continue
        secret = old._open(name)
        if secret is None:
            raise MasterKeyRefused(
                f"key {name} in {old._dir} opens under neither the current master key nor the "
                "new one, so nothing was changed: is the current key (SHANAKHT_MASTER_KEY, or "
                "master.key in development) the one this data directory is sealed with?"
            )
        found.append((name, secret))
    return found, under_new


def replace_development_master_key(data_dir: Path, key: bytes) -> None:
    """Make `key` the master key of a development data directory (`development_master_key`):
    the last step of a rotation, once every key file is sealed under it."""
    _replace(data_dir / "master.key", base64.b64encode(key) + b"\n")
