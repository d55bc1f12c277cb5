"""`shanakht serve` as a real process: it migrates, listens, answers and stops cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SHANAKHT = str(Path(sys.executable).parent / "shanakht")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
        return response.status, response.read().decode()


def test_serve_migrates_and_answers(cli_env: dict[str, str]) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [SHANAKHT, "serve", "--port", str(port)],
        env={**cli_env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not come up:\n{server.communicate()[0]}")
                time.sleep(0.2)
        assert status == 200
        assert '"database":"ok"' in body
        status, note = _get(f"http://127.0.0.1:{port}/audit/checkpoint")
        assert status == 200
        assert note.startswith("shanakht.test/audit\n0\n")
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=15)[0]
    assert server.returncode == 0, output
    assert "Traceback" not in output
