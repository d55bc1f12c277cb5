"""The locker's fixtures: one S3 API server (moto's server mode, a real HTTP server in a child
process) for the session, and the object stores the contract tests run on, side by side."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from locker.stores import LocalStore, ObjectStore, S3Store

ACCESS_KEY = "test-access"
SECRET_KEY = "test-secret"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server, started once and stopped at the end of the session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "server.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_until_up(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto's server exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own local server)
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer on {url}:\n{log.read_text()}")


@pytest.fixture(scope="session")
def s3_admin(s3_endpoint: str) -> Any:
    """A plain boto3 client, to look at the buckets behind the stores' backs."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
    )


def s3_store(endpoint: str, bucket: str, **options: Any) -> S3Store:
    return S3Store(
        bucket,
        endpoint_url=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        **options,
    )


@dataclass
class Backend:
    name: str
    store: ObjectStore
    leftovers: Callable[[], list[str]]
    """Everything the backend holds, hidden things included: temporary files, pending
    multipart uploads, objects."""
    bucket: str | None = None


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "objects"
        return Backend(
            "local",
            LocalStore(root),
            lambda: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
        )
    endpoint: str = request.getfixturevalue("s3_endpoint")
    client = request.getfixturevalue("s3_admin")
    bucket = f"locker-{uuid.uuid4().hex[:16]}"
    store = s3_store(endpoint, bucket)
    store.ensure_bucket()

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted([f"upload:{u['Key']}" for u in uploads] + [o["Key"] for o in objects])

    return Backend("s3", store, leftovers, bucket)


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return backend.store
