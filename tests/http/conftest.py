from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.migrate import prepare
from api.runtime import Runtime
from identity.nadra import write_registry


@pytest.fixture(scope="session")
def nadra_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nadra") / "registry.jsonl"
    write_registry(path)
    return path


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


@pytest.fixture
def oidc_runtime(runtime: Runtime, nadra_file: Path) -> Runtime:
    """A runtime with signing keys and a shared copy of the synthetic NADRA registry."""
    runtime.identity.nadra_file = nadra_file
    prepare(runtime)
    return runtime


@pytest.fixture
def web(oidc_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(oidc_runtime), base_url="https://shanakht.test") as client:
        yield client
