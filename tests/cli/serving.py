"""Starting `shanakht serve` as a real process in a test: its command and the wait until it
is ready, with the one deadline every such test allows."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SHANAKHT = str(Path(sys.executable).parent / "shanakht")
READY_SECONDS = 90.0  # a loaded machine (five test runs on two cores) starts a server slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str,
    server: subprocess.Popen[str] | subprocess.Popen[bytes],
    deadline: float = READY_SECONDS,
    log: Path | None = None,
) -> str:
    """Ask `url` (the server's /readyz) until it answers 200, and return what it said.

    The test fails if the server exits first (with what it printed: its `log` file if its
    output goes to one) or `deadline` seconds go by; a server still running then is the
    caller's to stop (its `finally`), and its output with it.
    """
    give_up = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return str(response.read().decode())
        except OSError:  # not listening yet, or not ready (503 is an HTTPError)
            pass
        if server.poll() is not None:
            printed = log.read_text() if log else str(server.stdout.read() if server.stdout else "")
            pytest.fail(f"the server exited ({server.returncode}) before it was ready:\n{printed}")
        if time.monotonic() > give_up:
            pytest.fail(f"the server was not ready within {deadline:g} s")
        time.sleep(0.2)
