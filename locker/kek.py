"""Key-encryption keys (KEKs): versioned, behind a provider protocol, so a data key is wrapped
under the newest version and old versions keep unwrapping until everything is re-wrapped.

`LocalKeks` is the embedded provider: each version a file in a directory of its own, its key
sealed with AES-256-GCM under a 32-byte master secret that lives elsewhere (the settings), the
version id bound in as associated data so a file renamed to another version does not open.
Versions are numbered 1, 2, 3...; a new file is written under a temporary name, synced, then
published with link(2), which is atomic and fails if the name exists: two processes that
rotate at once make two versions, never one file twice, and nobody ever reads a half-written
file. A KMS or PKCS#11 provider implements the same three methods.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from locker.crypto import KEY_BYTES, rewrap_under
from locker.errors import KeyUnavailable, MasterSecretMismatch

_FILE_MAGIC = b"SHKK"
_NONCE_BYTES = 12
_SEALED_BYTES = len(_FILE_MAGIC) + _NONCE_BYTES + KEY_BYTES + 16
_VERSION_ID = re.compile(r"local:([1-9][0-9]*)")
_FILE_NAME = re.compile(r"kek-([0-9]{6,})\.sealed")


class Kek(NamedTuple):
    """A KEK version: its id (what a wrapped key records) and its key."""

    version_id: str
    key: bytes

    def __repr__(self) -> str:  # a KEK must not reach a log by way of a repr
        return f"Kek(version_id={self.version_id!r}, key=<redacted>)"


class KekProvider(Protocol):
    def current(self) -> Kek:
        """The newest version: what new data keys are wrapped under."""
        ...

    def get(self, version_id: str) -> bytes:
        """The key of a version, old or new; KeyUnavailable if there is none."""
        ...

    def rotate(self) -> str:
        """Add a version, which becomes the current one; returns its id."""
        ...


def rewrap(wrapped: bytes, keks: KekProvider) -> bytes | None:
    """A wrapped data key re-wrapped under the newest KEK, or None if it already is: the
    content it encrypts, and its binding to a document version, are untouched. Idempotent,
    so a re-wrap job can stop anywhere and start again."""
    return rewrap_under(wrapped, keks.current(), keks.get)


class LocalKeks:
    def __init__(self, directory: Path, master_secret: bytes) -> None:
        """Open the KEKs kept in `directory`, making version 1 if there is none yet. Opens the
        current version at once, so a wrong master secret fails here, not at first use."""
        if len(master_secret) != KEY_BYTES:
            raise ValueError("the master secret is 32 bytes")
        self._dir = directory
        self._seal = AESGCM(master_secret)
        self._keys: dict[int, bytes] = {}
        self._newest = 0
        self._lock = threading.Lock()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._newest = self._scan()
        if self._newest == 0:
            self._create(1)  # whoever wins the race makes it; the others find it
            self._newest = self._scan()
        self.current()

    def current(self) -> Kek:
        # Another process may have rotated: one stat tells, so every replica moves on to a new
        # version at its next wrap rather than at its next restart.
        with self._lock:
            while (self._dir / _file_name(self._newest + 1)).exists():
                self._newest += 1
            newest = self._newest
        return Kek(_version_id(newest), self._key(newest))

    def get(self, version_id: str) -> bytes:
        found = _VERSION_ID.fullmatch(version_id)
        if found is None:
            raise KeyUnavailable(f"{version_id!r} is not a local KEK version id")
        return self._key(int(found.group(1)))

    def rotate(self) -> str:
        with self._lock:
            number = max(self._scan(), self._newest) + 1
            while not self._create(number):  # another process took that number first
                number += 1
            self._newest = max(self._newest, number)
        return _version_id(number)

    def versions(self) -> list[str]:
        """The ids of the versions on disk, oldest first, none of them opened."""
        numbers = sorted(
            int(found.group(1))
            for name in os.listdir(self._dir)
            if (found := _FILE_NAME.fullmatch(name)) and name == _file_name(int(found.group(1)))
        )
        return [_version_id(number) for number in numbers]

    def _key(self, number: int) -> bytes:
        with self._lock:
            key = self._keys.get(number)
        if key is not None:
            return key
        version_id, path = _version_id(number), self._dir / _file_name(number)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable(
                f"no KEK version {version_id} in {self._dir}",
                code="kek.missing", version=version_id, file=path.name,
            ) from None  # fmt: skip
        except OSError as error:
            raise KeyUnavailable(
                f"KEK version {version_id} cannot be read: {error}",
                code="kek.unreadable", version=version_id, file=path.name,
            ) from None  # fmt: skip
        if len(sealed) != _SEALED_BYTES or not sealed.startswith(_FILE_MAGIC):
            raise KeyUnavailable(
                f"{path.name} is not a sealed KEK", code="kek.damaged", file=path.name
            )
        body = len(_FILE_MAGIC) + _NONCE_BYTES
        try:
            key = self._seal.decrypt(
                sealed[len(_FILE_MAGIC) : body], sealed[body:], version_id.encode()
            )
        except InvalidTag:
            raise MasterSecretMismatch(
                f"KEK version {version_id} does not open under this master secret: the secret "
                f"is wrong, or {path.name} was altered or renamed",
                code="kek.master_key",
                version=version_id,
                file=path.name,
            ) from None
        with self._lock:
            self._keys[number] = key
        return key

    def _create(self, number: int) -> bool:
        """Publish version `number` with a fresh key; False if that version already exists."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = _FILE_MAGIC + nonce + self._seal.encrypt(nonce, key, _version_id(number).encode())
        temporary = self._dir / f".kek-{uuid.uuid4().hex}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.write(descriptor, sealed)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.link(temporary, self._dir / _file_name(number))
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        _sync_directory(self._dir)
        self._keys[number] = key
        return True

    def _scan(self) -> int:
        """The newest version number on disk, 0 if none."""
        numbers = [
            int(found.group(1))
            for name in os.listdir(self._dir)
            if (found := _FILE_NAME.fullmatch(name)) and name == _file_name(int(found.group(1)))
        ]
        return max(numbers, default=0)


def _version_id(number: int) -> str:
    return f"local:{number}"


def _file_name(number: int) -> str:
    return f"kek-{number:06d}.sealed"


def _sync_directory(directory: Path) -> None:
    """Make a new name in `directory` survive a power cut."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
