"""The object-store contract the locker writes ciphertext through, and the key rules every
store applies, so an object written through one store can be written through any other.

Keys are 1 to 1024 bytes of segments joined by "/", each segment letters, digits, ".", "_"
and "-", not starting with "." (so no "..", no hidden names: a local store keeps its
temporary files under names no key can have). That is the subset of S3 key characters that is
also safe as a file path everywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_KEY_BYTES = 1024


class ObjectStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store an object streamed from `chunks`, replacing any under `key`; the bytes written.

        All or nothing: if writing fails, or `chunks` raises (its exception comes out as it
        is), no object is left under `key` and no partial upload either.
        """
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """The object's content in blocks, streamed; ObjectMissing (raised here, before any
        block) if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with `prefix` (a string prefix, not a folder), in no set
        order: what an orphan sweeper compares with the database."""
        ...

    def remove_scraps(self, prefix: str, before: datetime) -> int:
        """Remove what writes under `prefix` that never finished left (a process killed
        mid-put: a local temporary file, an S3 multipart upload never completed nor aborted),
        if last touched before `before`; how many. Never an object, nor a write going on."""
        ...


def check_key(key: str) -> str:
    """`key`, if it is a valid object key; ValueError saying why not otherwise."""
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"an object key is 1 to {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"invalid object key {key!r}: segments are letters, digits, '.', '_' and '-', "
                "not empty and not starting with '.'"
            )
    return key


def check_prefix(prefix: str) -> str:
    """`prefix`, if some valid key could start with it; ValueError otherwise."""
    *whole, last = prefix.split("/")
    if len(prefix.encode()) > MAX_KEY_BYTES or not all(_SEGMENT.fullmatch(s) for s in whole):
        raise ValueError(f"invalid key prefix {prefix!r}")
    if last and not _SEGMENT.fullmatch(last):
        raise ValueError(f"invalid key prefix {prefix!r}")
    return prefix


def is_segment(name: str) -> bool:
    """Whether `name` can be one segment of a key (a local store skips every other name)."""
    return _SEGMENT.fullmatch(name) is not None


class ObjectStream(Iterator[bytes]):
    """An object's blocks, holding a file or a connection that is released at the end, on an
    error, on close(), or when the stream is dropped unread: a caller that stops early (a
    client that hangs up) leaks nothing."""

    def __init__(self, blocks: Iterator[bytes], release: Callable[[], None]) -> None:
        self._blocks = blocks
        self._release: Callable[[], None] | None = release

    def __next__(self) -> bytes:
        try:
            return next(self._blocks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
