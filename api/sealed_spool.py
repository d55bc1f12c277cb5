"""A temporary file that holds what it is given only encrypted: the bulk page's ZIP.

`zipfile` seeks in a ZIP (its directory is at the end), so a batch cannot stream through as a
single document does; it waits in a temporary file while it is checked and while its job runs.
That file is written in chunks of CHUNK bytes, each sealed with `cryptography`'s AES-256-GCM
under a key made for this file alone and held only in memory: the nonce is the chunk's index
(unique under a key used for one file), and the associated data binds the index and whether the
chunk is the last, so a chunk altered, moved or dropped, or the file cut at a chunk boundary,
fails to open (SpoolDamaged) instead of reading as other bytes. Every chunk but the last holds
CHUNK bytes, so a reader finds chunk i at i * (CHUNK + 16).

The file has no name: it is unlinked as soon as it is made, so it lives only while its
descriptor is open, and is gone once `close` is called, the spool is collected, or the process
dies. Nothing of it outlives the request or job that holds it, however that ends.
"""

from __future__ import annotations

import io
import os
import tempfile
import weakref
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHUNK = 64 * 1024
TAG = 16
_LABEL = b"shanakht temporary spool v1"


class SpoolDamaged(OSError):
    """A chunk of the spool did not open: the file was altered, reordered or cut short. An
    OSError, so that `zipfile` and its callers take it as the failed read it is."""


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(index: int, last: bool) -> bytes:
    return _LABEL + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class SealedSpool:
    """Written once with `write` and `finish`, then read by any number of `open` readers."""

    def __init__(self, directory: str | None = None) -> None:
        fd, path = tempfile.mkstemp(prefix="shanakht-spool-", dir=directory)
        self._close = weakref.finalize(self, os.close, fd)  # a bare descriptor: no warning
        os.unlink(path)
        self._fd = fd
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._pending = bytearray()
        self._chunks = 0
        self._finished = False
        self.size = 0  # bytes written, in plaintext

    def fileno(self) -> int:
        """The descriptor of the (nameless) file: what a test reads or damages."""
        return self._fd

    def write(self, data: bytes) -> None:
        if self._finished:
            raise ValueError("the spool is finished")
        self._pending += data
        self.size += len(data)
        while len(self._pending) > CHUNK:  # the last chunk is sealed by `finish`, as the last
            self._seal(bytes(self._pending[:CHUNK]), last=False)
            del self._pending[:CHUNK]

    def finish(self) -> None:
        """Seal the last chunk (1 to CHUNK bytes; an empty one for an empty spool)."""
        if not self._finished:
            self._seal(bytes(self._pending), last=True)
            self._pending.clear()
            self._finished = True

    def open(self) -> BinaryIO:
        """A read-only, seekable reader of the plaintext, of its own position."""
        if not self._finished:
            raise ValueError("finish the spool before reading it")
        return io.BufferedReader(_Reader(self), buffer_size=CHUNK)

    def close(self) -> None:
        """Close the file, which deletes it; its key goes with this object."""
        self._close()

    @property
    def closed(self) -> bool:
        return not self._close.alive

    def _seal(self, piece: bytes, *, last: bool) -> None:
        index = self._chunks
        sealed = self._aead.encrypt(_nonce(index), piece, _aad(index, last))
        _write_all(self._fd, sealed, index * (CHUNK + TAG))
        self._chunks += 1

    def chunk(self, index: int) -> bytes:
        """The plaintext of chunk `index`, once it has opened; SpoolDamaged if it does not."""
        last = index == self._chunks - 1
        length = (self.size - index * CHUNK if last else CHUNK) + TAG
        sealed = os.pread(self._fd, length, index * (CHUNK + TAG))
        if len(sealed) != length:
            raise SpoolDamaged(f"chunk {index} of the spool is cut short")
        try:
            return self._aead.decrypt(_nonce(index), sealed, _aad(index, last))
        except InvalidTag:
            raise SpoolDamaged(f"chunk {index} of the spool does not open") from None


class _Reader(io.RawIOBase):
    """The spool's plaintext at a position: each read opens the chunk it falls in (the last
    one opened is kept, as reads mostly go forward)."""

    def __init__(self, spool: SealedSpool) -> None:
        super().__init__()
        self._spool = spool
        self._position = 0
        self._index = -1
        self._plain = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._spool.size}
        if whence not in base:
            raise ValueError(f"invalid whence {whence}")
        position = base[whence] + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._spool.closed:
            raise ValueError("the spool is closed")
        if self._position >= self._spool.size:
            return 0
        index, within = divmod(self._position, CHUNK)
        if index != self._index:
            self._plain, self._index = self._spool.chunk(index), index
        taken = min(len(buffer), len(self._plain) - within)
        buffer[:taken] = self._plain[within : within + taken]
        self._position += taken
        return taken
