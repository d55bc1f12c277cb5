"""A data directory whose keys were lost or swapped is refused, not served with fresh keys."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.key_check import KeysDoNotFit, check_keys_fit_database
from api.migrate import prepare
from api.routes.locker_views import owner_accessor
from api.runtime import open_runtime
from api.settings import Settings

SHANAKHT = str(Path(sys.executable).parent / "shanakht")
PDF = b"%PDF-1.7\n" + b"x" * 100


def _used(settings: Settings) -> None:
    """A data directory in use: token-signing keys, a document, a checkpoint."""
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        with runtime.transaction() as session:
            runtime.locker(session).upload(
                owner="p" * 16, doctype="other", title="A letter", content=[PDF],
                content_type="application/pdf", who=owner_accessor("p" * 16),
            )  # fmt: skip
            runtime.audit_log(session).checkpoint()
        check_keys_fit_database(runtime)  # the keys it was made with fit
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("lost", "words"),
    [
        ("keys", "token-signing keys"),
        ("keys/locker", "data keys do not unwrap"),
        ("keys/audit-checkpoint.json", "checkpoint was not signed"),
    ],
)
def test_keys_lost_after_use_are_refused(settings: Settings, lost: str, words: str) -> None:
    _used(settings)
    path = settings.data_dir / lost
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    runtime = open_runtime(settings)  # the key store makes fresh keys where they are missing
    try:
        with pytest.raises(KeysDoNotFit, match=words) as refused:
            check_keys_fit_database(runtime)
        assert "restore the keys folder" in str(refused.value)
        with TestClient(create_app(runtime)) as client:
            ready = client.get("/readyz")
        assert ready.status_code == 503
        assert words in ready.json()["checks"]["keys"]
    finally:
        runtime.close()


def test_serve_refuses_a_database_whose_keys_are_gone(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    _used(settings)
    shutil.rmtree(settings.data_dir / "keys")
    done = subprocess.run(
        [SHANAKHT, "serve", "--port", "1"],  # never reached: it refuses before it listens
        env={**cli_env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "restore the keys folder" in done.stderr
    assert "Traceback" not in done.stderr
