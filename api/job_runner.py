"""The heartbeat of a background job's runner thread (`locker.jobs`): while the job runs, a
second thread records every `BEAT` seconds that its process is alive, so a long batch (one
large document, one slow database round) never looks interrupted, and a process that died
stops beating and is shown as interrupted on every replica. A beat that finds the job no longer
live (it was marked interrupted while beats failed, and another replica may have taken over)
stops beating and tells the runner, which stops at its next batch or row."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from api.runtime import Runtime
from locker import jobs

log = logging.getLogger("shanakht.jobs")


@contextlib.contextmanager
def beating(runtime: Runtime, job_id: str) -> Iterator[threading.Event]:
    """Beat for `job_id` until the block ends; the event it gives is set once a beat finds the
    job no longer live, and the runner is then to stop without recording anything more."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(jobs.BEAT):
            try:
                with runtime.transaction() as session:
                    alive = jobs.beat(session, job_id, runtime.clock())
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning("job %s: heartbeat failed: %s", job_id, type(exc).__name__)
                continue
            if not alive:
                log.warning("job %s: no longer live (interrupted or ended): stopping", job_id)
                lost.set()
                return

    thread = threading.Thread(target=beat, name=f"job-beat-{job_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join()
