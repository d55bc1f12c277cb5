"""Password hashing on threads of low priority, so it never starves the work that holds locks.

A login spends most of its time in argon2id, which releases the GIL: with many logins at
once, every core is busy hashing, and a request that holds the database's write lock waits
for the kernel to give it a core. Hashing on threads with a higher nice value lets the
scheduler run such a request first; the hashes fill the cores the rest of the time.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from identity.passwords import HashParameters, PasswordHasher

NICE = 10  # CFS weight 110 against 1024: a busy thread 10 below gets ~90% of a shared core
LOWEST = 19


def _lower_priority() -> None:
    """Raise this thread's nice value by NICE (on Linux a thread has its own); raising needs
    no privilege, so this works wherever the server runs."""
    thread = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, thread)
    os.setpriority(os.PRIO_PROCESS, thread, min(LOWEST, current + NICE))


class BackgroundHasher(PasswordHasher):
    """The same hashes, computed on a pool of one low-priority thread per core."""

    def __init__(
        self, parameters: HashParameters | None = None, *, pepper: bytes | None = None
    ) -> None:
        super().__init__(parameters or HashParameters(), pepper=pepper)
        self._pool = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1,
            thread_name_prefix="password-hash",
            initializer=_lower_priority,
        )

    def hash(self, password: str) -> str:
        return self._pool.submit(super().hash, password).result()

    def verify(self, encoded: str | None, password: str) -> bool:
        return self._pool.submit(super().verify, encoded, password).result()
