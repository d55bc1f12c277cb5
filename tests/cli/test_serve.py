"""`shanakht serve` as a real process: it migrates, listens, answers and stops cleanly."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from api.key_versions import RECHECK_SECONDS
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit import AuditEvent, NoteError, NoteVerifier
from tests.cli.serving import SHANAKHT, free_port, wait_ready
from tests.cli.test_cli import run


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback only)
        return response.status, response.read().decode()


def test_serve_migrates_and_answers(cli_env: dict[str, str]) -> None:
    port = free_port()
    server = subprocess.Popen(
        [SHANAKHT, "serve", "--port", str(port)],
        env={**cli_env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        assert '"database":"ok"' in body
        status, note = _get(f"http://127.0.0.1:{port}/audit/checkpoint")
        assert status == 200
        assert note.startswith("shanakht.test/audit\n0\n")
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=15)[0]
    assert server.returncode == 0, output
    assert "Traceback" not in output


def test_a_running_server_signs_with_a_rotated_checkpoint_key_without_a_restart(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    """`shanakht serve` running while `keys rotate checkpoint|consent` runs in another
    process: it publishes the new versions at once, and its own next checkpoint (the
    background one, every half second here) is signed by the new checkpoint key."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**cli_env, "PATH": "/usr/bin:/bin", "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0.5"}
    server = subprocess.Popen(
        [SHANAKHT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(f"{base}/readyz", server)
        old_key = _get(f"{base}/audit/key")[1].strip()
        old_kid = json.loads(_get(f"{base}/exchange/consent-keys")[1])["keys"][0]["kid"]
        for which in ("checkpoint", "consent"):
            code, out = run(cli_env, "keys", "rotate", which)
            assert code == 0, out
        time.sleep(RECHECK_SECONDS)  # the most a rotation takes to reach a running server
        new_key = _get(f"{base}/audit/key")[1].strip()
        assert new_key != old_key
        assert _get(f"{base}/audit/keys")[1].splitlines() == [new_key, old_key]
        kids = [k["kid"] for k in json.loads(_get(f"{base}/exchange/consent-keys")[1])["keys"]]
        assert len(kids) == 2
        assert kids[1] == old_kid
        # An entry from outside; the server's next checkpoint covers it, signed by version 2.
        with _runtime(settings) as runtime, runtime.transaction() as session:
            log = runtime.audit_log(session)
            log.append(AuditEvent(actor="admin:cli", action="test.happened", details={}))
            size = log.size()
        note = _note_of_size(base, size)
        NoteVerifier.parse(new_key).open(note)
        with pytest.raises(NoteError, match="carries no signature"):
            NoteVerifier.parse(old_key).open(note)
    finally:
        output = _stopped(server)
    assert server.returncode == 0, output
    assert "Traceback" not in output
    code, out = run(cli_env, "audit", "verify")  # v1's and v2's checkpoints alike
    assert code == 0, out


def _stopped(server: subprocess.Popen[str]) -> str:
    """Stop the server with Ctrl-C (killed if it has not stopped within a minute, so a test
    that fails never leaves it running) and return what it printed."""
    server.send_signal(signal.SIGINT)
    try:
        return server.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()[0]


def _note_of_size(base: str, size: int) -> str:
    """The server's latest checkpoint once it covers `size` entries (its background job
    signs one within the interval)."""
    deadline = time.monotonic() + 60
    while True:
        note = _get(f"{base}/audit/checkpoint")[1]
        if int(note.split("\n")[1]) >= size:
            return note
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint of {size} entries; the latest:\n{note}")
        time.sleep(0.2)


@contextlib.contextmanager
def _runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()
