"""A data directory whose keys were lost or swapped is refused, not served with fresh keys."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from api.app import create_app
from api.errors import StartupError
from api.key_check import KINDS, KeysDoNotFit, check_keys_fit_database
from api.keystore import LocalKeyStore, development_master_key
from api.migrate import prepare
from api.models import key_fingerprints
from api.routes.locker_views import owner_accessor
from api.routes.signin import DEVICE_KEY
from api.runtime import LOCKER_KEK_SEAL_KEY, Runtime, open_runtime
from api.settings import Settings
from locker.kek import LocalKeks

SHANAKHT = str(Path(sys.executable).parent / "shanakht")
PDF = b"%PDF-1.7\n" + b"x" * 100


def _used(settings: Settings) -> None:
    """A data directory in use: token-signing keys, a document, a checkpoint, two KEK versions
    and every key the routes and the backup make on first use."""
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        for name in KINDS:
            runtime.keys.secret(name)
        runtime.keks.rotate()
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
def test_keys_lost_from_a_database_without_fingerprints_are_refused(
    settings: Settings, lost: str, words: str
) -> None:
    """A database from before fingerprints were recorded: the newest rows must still open, and
    a folder that does not fit records no fingerprint."""
    _used(settings)
    _forget_fingerprints(settings)
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
        assert _fingerprints(runtime) == {}
    finally:
        runtime.close()


def test_serve_refuses_a_database_whose_keys_are_gone(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    _used(settings)
    _forget_fingerprints(settings)
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


def _forget_fingerprints(settings: Settings) -> None:
    runtime = open_runtime(settings)
    try:
        with runtime.transaction() as session:
            session.execute(delete(key_fingerprints))
    finally:
        runtime.close()


def _fingerprints(runtime: Runtime) -> dict[str, str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(key_fingerprints.c.name, key_fingerprints.c.fingerprint))
        return {row.name: row.fingerprint for row in rows}


def _recorded_in(settings: Settings) -> dict[str, str]:
    runtime = open_runtime(settings)
    try:
        return _fingerprints(runtime)
    finally:
        runtime.close()


def _another_deployments(settings: Settings, tmp_path: Path, name: str) -> Path:
    """Another deployment's file for the key `name`, under the same master key (a restore that
    mixed two deployments' folders): it opens, it is just not this database's key."""
    master = development_master_key(settings.data_dir)
    other = tmp_path / "other" / "keys"
    if name == "kek:local:1":  # sealed under this deployment's seal key, so it opens too
        seal = LocalKeyStore(settings.data_dir / "keys", master).secret(LOCKER_KEK_SEAL_KEY)
        LocalKeks(other / "locker", seal)
        return other / "locker" / "kek-000001.sealed"
    LocalKeyStore(other, master).secret(name)
    return other / f"{name}.json"


def _swap(settings: Settings, tmp_path: Path, name: str) -> None:
    source = _another_deployments(settings, tmp_path, name)
    shutil.copyfile(source, settings.data_dir / source.relative_to(tmp_path / "other"))


def _refused(runtime: Runtime, words: str) -> None:
    """Both the check (`serve`) and `/readyz` refuse, naming the key."""
    with pytest.raises(KeysDoNotFit, match=re.escape(words)) as refused:
        check_keys_fit_database(runtime)
    assert "restore the keys folder" in str(refused.value)
    with TestClient(create_app(runtime)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert words in ready.json()["checks"]["keys"]


SWAPPABLE = [name for name in KINDS if name != LOCKER_KEK_SEAL_KEY]


@pytest.mark.parametrize("name", SWAPPABLE)
def test_a_key_swapped_for_another_deployments_is_refused_by_its_kind(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    _used(settings)
    recorded = _recorded_in(settings)
    assert set(recorded) == {*KINDS, "kek:local:1", "kek:local:2"}
    _swap(settings, tmp_path, name)
    runtime = open_runtime(settings)
    try:
        _refused(runtime, f"{KINDS[name]} ({name}) is not the one this database was made with")
        assert _fingerprints(runtime) == recorded  # nothing recorded, nothing replaced
    finally:
        runtime.close()


def test_an_old_kek_version_swapped_for_another_deployments_is_refused_by_its_version(
    settings: Settings, tmp_path: Path
) -> None:
    """Version 2 is the current one, so the data key check alone would not notice version 1."""
    _used(settings)
    _swap(settings, tmp_path, "kek:local:1")
    runtime = open_runtime(settings)
    try:
        _refused(runtime, "the locker KEK version local:1 is not the one this database was made")
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("lost", "words"),
    [
        ("keys/identity-device-cookie.json", "the device cookie key (identity-device-cookie)"),
        ("keys/locker-consent.json", "the consent signing key (locker-consent)"),
        ("keys/locker/kek-000001.sealed", "the locker KEK version local:1"),
    ],
)
def test_a_key_made_on_first_use_and_then_lost_is_refused_as_missing(
    settings: Settings, lost: str, words: str
) -> None:
    """Keys the routes make when first asked are not remade at start: their loss is named."""
    _used(settings)
    (settings.data_dir / lost).unlink()
    runtime = open_runtime(settings)
    try:
        _refused(runtime, f"{words} is missing from the keys folder")
    finally:
        runtime.close()


def test_the_kek_seal_key_swapped_is_refused_at_start_by_its_kind(
    settings: Settings, tmp_path: Path
) -> None:
    _used(settings)
    _swap(settings, tmp_path, LOCKER_KEK_SEAL_KEY)
    with pytest.raises(StartupError, match=re.escape(f"seal key ({LOCKER_KEK_SEAL_KEY})")):
        open_runtime(settings)


def test_a_fresh_directory_and_a_restart_pass_and_new_keys_are_recorded(
    settings: Settings,
) -> None:
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        check_keys_fit_database(runtime)
        first = _fingerprints(runtime)
        assert set(first) == {*runtime.keys.names(), "kek:local:1"}
        assert all(len(value) == 64 for value in first.values())
        for name in runtime.keys.names():  # a fingerprint is never the key itself
            assert runtime.keys.secret(name).hex() not in first.values()
        runtime.keks.rotate()
        runtime.keys.secret(DEVICE_KEY)
        check_keys_fit_database(runtime)  # a rotation and a key made since are recorded
        assert _fingerprints(runtime) == {
            **first,
            "kek:local:2": _fingerprints(runtime)["kek:local:2"],
            DEVICE_KEY: _fingerprints(runtime)[DEVICE_KEY],
        }
    finally:
        runtime.close()
    restarted = open_runtime(settings)
    try:
        check_keys_fit_database(restarted)
        with TestClient(create_app(restarted)) as client:
            assert client.get("/readyz").status_code == 200
    finally:
        restarted.close()


def test_serve_refuses_a_swapped_key_by_its_kind(
    settings: Settings, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    _used(settings)
    _swap(settings, tmp_path, "audit-pseudonym")
    done = subprocess.run(
        [SHANAKHT, "serve", "--port", "1"],  # never reached: it refuses before it listens
        env={**cli_env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "the audit pseudonym key (audit-pseudonym) is not the one" in done.stderr
    assert "restore the keys folder" in done.stderr
    assert "Traceback" not in done.stderr
