from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.migrate import prepare
from api.runtime import Runtime
from identity.nadra import write_registry
from identity.oidc.logout import LogoutNotice


@pytest.fixture(scope="session")
def nadra_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nadra") / "registry.jsonl"
    write_registry(path)
    return path


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:
        yield client


class RecordingNotifier:
    """Back-channel logout without the network: what would have been POSTed, and to whom."""

    def __init__(self) -> None:
        self.delivered: list[LogoutNotice] = []

    def deliver(self, notice: LogoutNotice) -> bool:
        self.delivered.append(notice)
        return True


@pytest.fixture
def oidc_runtime(runtime: Runtime, nadra_file: Path) -> Runtime:
    """A runtime with signing keys, a shared copy of the synthetic NADRA registry, and
    back-channel logout recorded instead of sent."""
    runtime.identity.nadra_file = nadra_file
    runtime.identity.notifier = RecordingNotifier()
    prepare(runtime)
    return runtime


@pytest.fixture
def web(oidc_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(oidc_runtime), base_url="https://shanakht.test") as client:
        yield client
