"""The app on a real HTTP server (uvicorn, in a thread), for what TestClient cannot show: how
a response looks on the wire, for one, when it fails half way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.app import create_app
from api.runtime import Runtime
from tests.s3_server import free_port


@contextmanager
def served(runtime: Runtime) -> Iterator[str]:
    """The server's address, host:port, while the block runs."""
    with served_on(runtime, free_port()) as address:
        yield address


@contextmanager
def served_on(runtime: Runtime, port: int) -> Iterator[str]:
    """The app served on 127.0.0.1:`port` (chosen before, when the settings must name it)."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # generous: CI runs two test passes side by side
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError(f"the app did not start on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
