"""The locker's fixtures: one S3 API server (moto's server mode, a real HTTP server in a child
process) for the session, the object stores the contract tests run on, side by side, and the
`kit` (a runtime on a clock the test moves, with an exchange key and the citizens' phones) the
domain tests share."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.runtime import Runtime
from locker.stores import LocalStore, ObjectStore
from tests.s3_server import s3_store
from tests.unit.locker.test_exchange import Clock, Kit, Phones


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


@pytest.fixture
def kit(runtime: Runtime) -> Kit:
    clock = Clock()
    runtime.clock = clock
    return Kit(runtime, Ed25519PrivateKey.generate(), Phones(), clock)
