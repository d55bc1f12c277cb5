"""`shanakht serve`: uvicorn with the service's JSON logs, in one process or several.

Several workers (`--workers N`) are separate processes, each with its own runtime opened from
the same environment; uvicorn starts them from the app factory and restarts one that dies.
Their metrics are kept in files in `PROMETHEUS_MULTIPROC_DIR` (see `api.metrics`): a folder
the operator names (docker-compose.yml gives a tmpfs), emptied here before the workers start
since numbers left by an earlier run would be counted again; or, when none is named, a
private temporary folder removed on exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api.logging_setup import configure_logging, log_config
from api.runtime import Runtime

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# How long a worker may go without answering uvicorn's health check before it is killed and
# started again. uvicorn's default, 5 s, is shorter than a worker's start on a busy host (it
# imports the whole service before it can answer: 7.5 s was seen on this project's 2-core
# machine while tests ran), and a worker killed for being slow to start is started again just
# as slowly: it never serves. A hung worker is still replaced, a minute later.
WORKER_HEALTHCHECK_SECONDS = 60


@contextmanager
def metrics_dir(workers: int) -> Iterator[Path | None]:
    """The multiprocess metrics folder for this run, ready and empty; None for one worker
    when no folder is named."""
    named = os.environ.get(MULTIPROC_ENV)
    if named:
        folder = Path(named)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield folder
        return
    if workers == 1:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="shanakht-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)  # inherited by the workers, read at their import
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def run(runtime: Runtime, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted. With one worker, on `runtime`; with more, each worker opens
    its own (the caller's is closed first: the workers never share its connections)."""
    import uvicorn

    settings = runtime.settings
    logging_config = log_config(settings.log_level, settings.log_format)
    configure_logging(settings.log_level, settings.log_format)
    # The access line comes from api.metrics.Telemetry (route template, request id, duration),
    # never uvicorn's own, which carries the raw path and query.
    with metrics_dir(workers):
        if workers == 1:
            from api.app import create_app

            uvicorn.run(
                create_app(runtime),
                host=host,
                port=port,
                log_config=logging_config,
                log_level=settings.log_level.lower(),
                access_log=False,
            )
        else:
            runtime.close()
            uvicorn.run(
                "api.app:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_config=logging_config,
                log_level=settings.log_level.lower(),
                access_log=False,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            )
