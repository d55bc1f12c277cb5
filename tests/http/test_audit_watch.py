"""`shanakht audit watch` as a real process, scraped as Prometheus scrapes it: what each check
finds, the rows it names in its log, and a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from api.runtime import Runtime
from identity.models import clients
from tests.cli.serving import READY_SECONDS, SHANAKHT, free_port
from tests.http.oidc_kit import register_client
from tests.http.test_row_seals import by_sql

Scraped = dict[str, float]


def _scrape(port: int) -> Scraped:
    """Every sample, by name and labels as written (`shanakht_integrity_rows{problem="seal"}`)."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    samples: Scraped = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def _until(port: int, watcher: subprocess.Popen[str], wanted: Scraped, after: float) -> Scraped:
    """Scrape until a check completed after `after` (Unix time) shows `wanted`."""
    give_up = time.monotonic() + READY_SECONDS
    while time.monotonic() < give_up:
        if watcher.poll() is not None:
            pytest.fail(f"the watcher exited ({watcher.returncode}): {watcher.communicate()[0]}")
        try:
            found = _scrape(port)
        except OSError:  # not serving yet
            found = {}
        checked = found.get("shanakht_integrity_checked_timestamp_seconds", 0.0)
        if checked > after and all(found.get(k) == v for k, v in wanted.items()):
            return found
        time.sleep(0.2)
    pytest.fail(f"no check after {after} showed {wanted}")


CLEAN = {
    "shanakht_integrity_log_verified": 1.0,
    'shanakht_integrity_rows{problem="seal"}': 0.0,
    'shanakht_integrity_rows{problem="log"}': 0.0,
}


def test_the_watcher_serves_what_each_check_finds_and_stops_on_sigterm(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    register_client(oidc_runtime, "etransfer")
    port = free_port()
    watcher = subprocess.Popen(
        [SHANAKHT, "audit", "watch", "--every", "1", "--port", str(port)],
        env={**cli_env, "PATH": "/usr/bin:/bin", "SHANAKHT_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        clean = _until(port, watcher, CLEAN, after=0.0)
        assert clean["shanakht_integrity_failed_checks_total"] == 0.0

        tampered = time.time()
        by_sql(oidc_runtime, update(clients).values(mac=None))
        found = _until(port, watcher, {'shanakht_integrity_rows{problem="seal"}': 1.0}, tampered)
        assert found["shanakht_integrity_log_verified"] == 1.0
    finally:
        watcher.send_signal(signal.SIGTERM)
        output = watcher.communicate(timeout=30)[0]

    assert watcher.returncode == 0, output
    lines = output.splitlines()
    assert lines[0] == f"watching: a check every 1 s; metrics at http://127.0.0.1:{port}/metrics"
    assert lines[-1] == "stopped"
    logged = [json.loads(line) for line in lines[1:-1]]  # every log line is one JSON object
    named = [line["message"] for line in logged if line["logger"] == "shanakht.integrity"]
    assert "identity_clients etransfer: missing MAC, not honoured" in named
    assert "1 rows FAILED their seal, 0 differ from the audit log (1 named above)" in named
    assert "Traceback" not in output


@contextmanager
def socket_taken() -> Iterator[int]:
    """A port another process listens on, for as long as the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def _refused(cli_env: dict[str, str], port: int) -> str:
    """The watcher run on `port`, expected to refuse at once (exit 2): what it said."""
    done = subprocess.run(
        [SHANAKHT, "audit", "watch", "--port", str(port)],
        env={**cli_env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stderr


def test_the_watcher_refuses_a_port_it_cannot_serve_on(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    with socket_taken() as port:
        said = _refused(cli_env, port)
    assert f"cannot serve metrics on 127.0.0.1:{port}" in said


def test_the_watcher_refuses_a_schema_that_is_not_current(cli_env: dict[str, str]) -> None:
    """Like `audit integrity`, it neither migrates nor checks an old schema (a check would
    read its tables as they are not)."""
    said = _refused(cli_env, free_port())
    assert "the schema is at no revision, this code needs" in said
