"""The heartbeat of a background job's runner thread (`locker.jobs`): while the job runs, a
second thread records every `BEAT` seconds that its process is alive, so a long batch (one
large document, one slow database round) never looks interrupted, and a process that died
stops beating and is shown as interrupted on every replica."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from api.runtime import Runtime
from locker import jobs

log = logging.getLogger("shanakht.jobs")


@contextlib.contextmanager
def beating(runtime: Runtime, job_id: str) -> Iterator[None]:
    """Beat for `job_id` until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(jobs.BEAT):
            try:
                with runtime.transaction() as session:
                    jobs.beat(session, job_id, runtime.clock())
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning("job %s: heartbeat failed: %s", job_id, type(exc).__name__)

    thread = threading.Thread(target=beat, name=f"job-beat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
