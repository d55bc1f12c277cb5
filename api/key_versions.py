"""Every version of a rotating signing key, as a running process keeps it.

`shanakht keys rotate checkpoint|consent` adds a version file to the keys folder from another
process (the CLI) while the replicas keep running, and each replica must sign with the new
version from then on, not from its next restart: a checkpoint signed by a version that is not
the newest still verifies, but an auditor told "the key was rotated" should not keep seeing the
old one sign. Reading the versions from the folder per request (a listing, an open per version
and an Ed25519 key built from each) costs more than most requests' own work, so they are kept
built in memory and each use costs one stat of the keys folder: linking a new version in
changes the folder's mtime, which makes the next use list the folder, and only a listing that
finds other versions than before opens key files and builds anew.

A stat can miss a change: two changes within one tick of a coarse filesystem clock look like
one, and NFS caches attributes. So the folder is listed anyway once RECHECK_SECONDS have passed
since the last listing; a rotation reaches every replica within that time at the latest.

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

RECHECK_SECONDS = 5.0

Built = TypeVar("Built")


@dataclass(frozen=True, slots=True)
class _Seen(Generic[Built]):
    """What the last listing found, and when: replaced whole, so a reader never sees half."""

    stamp: tuple[int, int]
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

    def get(self) -> Built:
        """The versions as built, built again first if the keys folder shows another set."""
        seen = self._seen
        if seen is not None and self._current(seen):
            return seen.built
        with self._lock:
            seen = self._seen
            if seen is not None and self._current(seen):
                return seen.built  # another thread listed the folder meanwhile
            return self._refresh(seen)

    def _current(self, seen: _Seen[Built]) -> bool:
        """Whether the folder is as it was at the last listing, which is recent enough."""
        return (
            self._keys.listing_stamp() == seen.stamp
            and self._monotonic() - seen.listed_at < self._recheck
        )

    def _refresh(self, seen: _Seen[Built] | None) -> Built:
        # The stamp is taken before the listing: a version linked in while the folder is being
        # listed changes the folder after it, and so is seen at the next use.
        stamp = self._keys.listing_stamp()
        now = self._monotonic()
        versions = tuple(self._keys.versions(self._name)) or (self._name,)  # 1 is made on use
        if seen is not None and versions == seen.versions:
            self._seen = _Seen(stamp, now, versions, seen.built)
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
            self._seen = _Seen(stamp, now, seen.versions, seen.built)  # tried again later
            return seen.built
        if seen is not None:
            log.info("key %s: now signing with %s", self._name, versions[-1])
        self._seen = _Seen(stamp, now, versions, built)
        return built
