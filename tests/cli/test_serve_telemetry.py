"""`shanakht serve --workers 2` as a real server: metrics summed across worker processes
whichever one answers the scrape, and a process log of JSON lines with no CNIC in them, however
the CNIC was sent."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.cli.serving import SHANAKHT, free_port, wait_ready

CNIC = "3520212345671"
ROUTE = "/locker/documents/{document_id}"


def _get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback only)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _requests_counted(body: str) -> float:
    for family in text_string_to_metric_families(body):
        for found in family.samples:
            if found.name == "shanakht_http_requests_total" and found.labels == {
                "route": ROUTE,
                "method": "GET",
                "status": "401",
            }:
                return float(found.value)
    return 0.0


def _worker_pids(folder: Path) -> set[str]:
    return {
        match.group(1)
        for path in folder.glob("*.db")
        if (match := re.fullmatch(r"[a-z_]+_(\d+)\.db", path.name))
    }


def test_two_workers_count_as_one_and_log_no_cnic(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "metrics"
    (folder).mkdir()
    (folder / "counter_99999999.db").write_bytes(b"left by an earlier run")
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [SHANAKHT, "serve", "--port", str(port), "--workers", "2"],
        env={**cli_env, "PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(f"{base}/readyz", server)
        assert "99999999" not in _worker_pids(folder), "an earlier run's numbers are cleared"

        sent = 0
        # Each request on a new connection, until both workers have answered some.
        while sent < 40 or (len(_worker_pids(folder)) < 2 and sent < 400):
            status, _ = _get(
                f"{base}/locker/documents/{CNIC}?cnic={CNIC}",
                **{"X-Request-Id": CNIC, "Shanakht-Cnic": CNIC},
            )
            assert status == 401
            sent += 1
        assert len(_worker_pids(folder)) == 2, "both workers served requests"

        scraped = [_get(f"{base}/metrics")[1] for _ in range(10)]
        assert {_requests_counted(body) for body in scraped} == {float(sent)}
        assert all(CNIC not in body for body in scraped)
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]

    assert server.returncode == 0, output
    assert CNIC not in output
    lines = output.splitlines()
    assert lines[0].startswith("Shanakht on http://")
    logged = [json.loads(line) for line in lines[1:]]  # every log line is one JSON object
    access = [line for line in logged if line["logger"] == "shanakht.access"]
    to_locker = [line for line in access if line["route"] == ROUTE]
    assert len(to_locker) == sent
    assert len({line["request_id"] for line in to_locker}) == sent, "a fresh id for each"
    assert "Traceback" not in output
