"""Every version of a rotating signing key, as a running process keeps it.

`shanakht keys rotate checkpoint|consent|pii` adds a version file to the keys folder from another
process (the CLI) while the replicas keep running, and each replica must sign with the new
version from then on, not from its next restart: a checkpoint signed by an older version still
verifies, but an auditor told "the key was rotated" should not keep seeing the old one sign.
Reading the versions from the folder per request (a listing, an open per version and an
Ed25519 key built from each: 2 ms a request where this was measured) costs more than most
requests' own work, so they are kept built in memory, and the folder is listed again at most
once every RECHECK_SECONDS, at the first use after that time; only a listing that finds other
versions than before opens key files and builds anew. So a use in between costs a clock
reading, not even a stat (one costs 10 us in a sandboxed container, and a request asks for the
checkpoint signer several times), and a rotation reaches every replica within RECHECK_SECONDS.
A listing does not depend on the folder's mtime, which a coarse filesystem clock or NFS's
cached attributes could leave unchanged.

A version that does not open (a key file sealed under a master key this process does not hold,
written after `keys rotate master` while it kept running) leaves the versions built before in
use, with a warning naming the key, and is tried again at the next listing: the process keeps
signing with a version that verifies rather than failing every request, and readiness (the key
check) tells the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from api.errors import StartupError
from api.keystore import LocalKeyStore

log = logging.getLogger("shanakht.keys")

RECHECK_SECONDS = 1.0

Built = TypeVar("Built")


@dataclass(frozen=True, slots=True)
class _Seen(Generic[Built]):
    """What the last listing found, and when: replaced whole, so a reader never sees half."""

    listed_at: float
    versions: tuple[str, ...]
    built: Built


class KeyVersions(Generic[Built]):
    """The versions of the key `name` in `keys`, as `build` makes them (given their key names,
    oldest first), rebuilt when a rotation adds one."""

    def __init__(
        self,
        keys: LocalKeyStore,
        name: str,
        build: Callable[[tuple[str, ...]], Built],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._name = name
        self._build = build
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self._seen: _Seen[Built] | None = None
        self._lock = threading.Lock()  # one listing at a time; readers never wait on it

    def get(self, fresh: bool = False) -> Built:
        """The versions as built, the folder listed first if the last listing is too old, or
        (`fresh`) whatever its age: for a process that meets a version it has not seen, which
        another process made within the last RECHECK_SECONDS."""
        seen = self._seen
        if not fresh and seen is not None and self._monotonic() - seen.listed_at < self._recheck:
            return seen.built
        with self._lock:
            seen = self._seen
            if (
                not fresh
                and seen is not None
                and self._monotonic() - seen.listed_at < self._recheck
            ):
                return seen.built  # another thread listed the folder meanwhile
            return self._refresh(seen)

    def _refresh(self, seen: _Seen[Built] | None) -> Built:
        now = self._monotonic()
        versions = tuple(self._keys.versions(self._name)) or (self._name,)  # 1 is made on use
        if seen is not None and versions == seen.versions:
            self._seen = _Seen(now, versions, seen.built)
            return seen.built
        try:
            built = self._build(versions)
        except StartupError as exc:
            if seen is None:
                raise  # at start the process must not run without its key
            log.warning(
                "key %s: version %s does not open, still signing with %s: %s",
                self._name,
                versions[-1],
                seen.versions[-1],
                exc,
            )
            self._seen = _Seen(now, seen.versions, seen.built)  # tried again at the next listing
            return seen.built
        if seen is not None:
            log.info("key %s: now signing with %s", self._name, versions[-1])
        self._seen = _Seen(now, versions, built)
        return built
