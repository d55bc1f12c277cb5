"""The local key provider: secrets generated on first use, kept encrypted in the data directory.

Each secret is a file `keys/<name>.json` holding AES-256-GCM ciphertext under the master key,
with the key's name as associated data, so a file renamed to stand for another key fails to
open. Several processes (API replicas sharing the directory) may start at once: a key is
created by linking a finished file into place, which only one of them can win; the others read
the winner's. A KMS or PKCS#11 provider can replace this behind the same two methods.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.errors import StartupError

MASTER_KEY_BYTES = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def parse_master_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise StartupError(
            "SHANAKHT_MASTER_KEY must be the base64 of 32 random bytes; make one with: "
            "python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"
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


def _create_exclusive(path: Path, content: bytes) -> None:
    """Write `content` to `path` unless it exists, atomically, readable by the owner only."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.link(temp, path)
    except FileExistsError:
        pass  # another process won the race; its file is as good as ours
    finally:
        temp.unlink(missing_ok=True)


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

    def secret(self, name: str, size: int = 32) -> bytes:
        """The secret called `name`, generated with `size` random bytes the first time.

        Opened once per process while its file stays the same (inode, size, mtime): a login
        asks for the device cookie key every time, and reading and decrypting it cost more
        than the fstat that tells a replaced or restored file (read again) from the same."""
        path = self._path(name)
        aad = f"shanakht-key:{name}".encode()
        if not path.exists():
            nonce = secrets.token_bytes(12)
            sealed = self._aead.encrypt(nonce, secrets.token_bytes(size), aad)
            record = {
                "version": 1,
                "alg": "A256GCM",
                "nonce": base64.b64encode(nonce).decode(),
                "ciphertext": base64.b64encode(sealed).decode(),
            }
            _create_exclusive(path, json.dumps(record).encode())
        try:
            with path.open("rb") as file:
                stamp = _stamp(os.fstat(file.fileno()))
                cached = self._opened.get(name)
                if cached is not None and cached[0] == stamp:
                    return cached[1]
                record = json.loads(file.read())
            nonce = base64.b64decode(record["nonce"])
            opened = self._aead.decrypt(nonce, base64.b64decode(record["ciphertext"]), aad)
            self._opened[name] = (stamp, opened)
            return opened
        except InvalidTag:
            raise StartupError(
                f"key {name} in {self._dir} does not open under this master key: "
                "is SHANAKHT_MASTER_KEY the one this data directory was created with?"
            ) from None
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

    def ed25519(self, name: str) -> Ed25519PrivateKey:
        """An Ed25519 key whose 32-byte seed is the secret `name`."""
        return Ed25519PrivateKey.from_private_bytes(self.secret(name, 32))
