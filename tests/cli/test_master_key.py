"""`shanakht keys rotate master`, run as an operator would on a data directory in use: the key
files re-sealed under a new master key, every key, token, signature and document unchanged."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.administration import verify_audit
from api.app import create_app
from api.cli import main
from api.errors import StartupError
from api.key_check import KINDS, check_keys_fit_database
from api.keystore import LocalKeyStore
from api.migrate import prepare
from api.models import key_fingerprints
from api.routes.locker_views import owner_accessor
from api.routes.signin import DEVICE_KEY
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit.models import entries
from signing.pki import keys as pki_keys
from signing.pki.keys import SealedKeys
from tests.cli.test_cli import run
from tests.http.oidc_kit import verify_jwt
from tests.unit.api.test_keys_at_rest import (
    Secrets,
    check_modes,
    scan_blob,
    scan_database,
    scan_directory,
)

SHANAKHT = str(Path(sys.executable).parent / "shanakht")
OWNER = "p" * 16
PDF = b"%PDF-1.7\n" + os.urandom(2048)


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _settings(settings: Settings, master_key: str | None) -> Settings:
    return settings.model_copy(update={"master_key": SecretStr(master_key) if master_key else None})


@dataclass
class Used:
    """A data directory in use under the master key `old`, and what it handed out."""

    settings: Settings
    old: str
    token: str
    document_id: str
    pki_ref: str
    pki_public: bytes
    fingerprints: dict[str, str]


def _use(settings: Settings, *, not_made: str | None = None) -> Used:
    """Every key made (but `not_made`), two KEK versions, a token, a document, a PKI key and
    a checkpoint; the keys' fingerprints recorded."""
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        for name in KINDS:
            if name != not_made:
                runtime.keys.secret(name)
        runtime.keks.rotate()
        with runtime.transaction() as session:
            document = runtime.locker(session).upload(
                owner=OWNER, doctype="other", title="A letter", content=[PDF],
                content_type="application/pdf", who=owner_accessor(OWNER),
            )  # fmt: skip
            token = runtime.provider(session).keys.sign({"sub": "before"}, alg="ES256")
            sealed = SealedKeys(session, runtime.signing_seal_key, runtime.clock)
            ref = sealed.generate()
            public = _public(sealed, ref)
            runtime.audit_log(session).checkpoint()
        check_keys_fit_database(runtime)
        return Used(
            settings, str(settings.master_key.get_secret_value()) if settings.master_key else "",
            token, document.id, ref, public, _fingerprints(runtime),
        )  # fmt: skip
    finally:
        runtime.close()


def _public(sealed: SealedKeys, ref: str) -> bytes:
    pki_keys._opened.clear()  # from the database, under the seal key, not from the cache
    key = sealed.private_key(ref).public_key()
    return key.public_bytes(pki_keys.serialization.Encoding.DER, _spki())


def _spki() -> Any:
    return pki_keys.serialization.PublicFormat.SubjectPublicKeyInfo


def _fingerprints(runtime: Runtime) -> dict[str, str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(key_fingerprints.c.name, key_fingerprints.c.fingerprint))
        return {row.name: row.fingerprint for row in rows}


def _logged(runtime: Runtime, action: str) -> list[bytes]:
    """The audit entries with `action`, as stored, oldest first."""
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        stored = [row.encode() if isinstance(row, str) else bytes(row) for row in rows]
    return [entry for entry in stored if json.loads(entry)["action"] == action]


@pytest.fixture
def used(settings: Settings) -> Used:
    return _use(_settings(settings, _key()))


def _env(cli_env: dict[str, str], master_key: str | None) -> dict[str, Any]:
    """The CLI's environment with `master_key` as SHANAKHT_MASTER_KEY (None: unset)."""
    return {**cli_env, "SHANAKHT_MASTER_KEY": master_key}


def _key_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "new-master.key"
    path.write_text(content + "\n")
    path.chmod(0o600)
    return path


def _rotate(env: dict[str, Any], new_key_file: Path) -> tuple[int, str]:
    return run(env, "keys", "rotate", "master", "--new-key-file", str(new_key_file))


@contextmanager
def _opened(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def _works_end_to_end(used: Used, settings: Settings) -> None:
    """Under `settings`: the keys fit the database (and are the same, by fingerprint), the
    service is ready, a token signed before verifies and a new one has the same key id, the
    document issued before decrypts, the PKI key opens, the checkpoint made before verifies."""
    with _opened(settings) as runtime:
        check_keys_fit_database(runtime)
        assert _fingerprints(runtime) == used.fingerprints
        with TestClient(create_app(runtime)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.json()
            assert verify_jwt(client, used.token)["sub"] == "before"
        with runtime.transaction() as session:
            again = runtime.provider(session).keys.sign({"sub": "after"}, alg="ES256")
            locker = runtime.locker(session)
            found = locker.get(used.document_id, owner=OWNER)
            content = b"".join(locker.content(found, who=owner_accessor(OWNER)))
            sealed = SealedKeys(session, runtime.signing_seal_key, runtime.clock)
            assert _public(sealed, used.pki_ref) == used.pki_public
        assert _kid(again) == _kid(used.token)
        assert content == PDF
        assert verify_audit(runtime).checkpoints >= 1


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_after_a_rotation_the_new_key_alone_opens_everything_and_the_old_one_nothing(
    used: Used, cli_env: dict[str, str], tmp_path: Path
) -> None:
    new = _key()
    code, out = _rotate(_env(cli_env, used.old), _key_file(tmp_path, new))
    assert code == 0, out
    made = len(list((used.settings.data_dir / "keys").glob("*.json")))
    assert f"re-sealed {made} key files under the new master key (0 were already" in out
    assert "put the new key in SHANAKHT_MASTER_KEY" in out
    assert not (used.settings.data_dir / "master.key").exists(), "production's key stays out"

    _works_end_to_end(used, _settings(used.settings, new))

    with pytest.raises(StartupError, match="does not open under this master key"):
        open_runtime(used.settings)
    code, out = run(_env(cli_env, used.old), "audit", "verify")
    assert code == 2
    assert "does not open under this master key" in out
    assert "keys rotate master" in out  # the message says the key may have been rotated

    with _opened(_settings(used.settings, new)) as runtime:
        [entry] = _logged(runtime, "keys.master.rotated")
        assert json.loads(entry)["details"] == {"resealed_files": made}
        secrets = Secrets()
        for name, key in (("old master key", used.old), ("new master key", new)):
            secrets.add(name, base64.b64decode(key))
            secrets.add(f"{name} (as configured)", key)
        assert scan_blob("the audit entry", entry, secrets) == []
        assert scan_directory(used.settings.data_dir, secrets) == []
        assert scan_database(runtime.engine, secrets) == []
    assert check_modes(used.settings.data_dir) == []


def test_serve_with_the_old_key_refuses_to_start_saying_so(
    used: Used, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert _rotate(_env(cli_env, used.old), _key_file(tmp_path, _key()))[0] == 0
    done = subprocess.run(
        [SHANAKHT, "serve", "--port", "1"],  # never reached: it refuses before it listens
        env={**cli_env, "SHANAKHT_MASTER_KEY": used.old, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "does not open under this master key" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_rotation_stopped_part_way_leaves_every_key_openable_and_a_rerun_finishes(
    used: Used, cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _key()
    key_file = _key_file(tmp_path, new)
    keys = used.settings.data_dir / "keys"
    replace, calls = os.replace, []

    def full_disk_at_the_fourth(source: Any, target: Any) -> None:
        calls.append(target)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk_at_the_fourth)
    code, out = _rotate(_env(cli_env, used.old), key_file)
    monkeypatch.setattr(os, "replace", replace)
    assert code == 2
    assert "stopped part way (No space left on device)" in out
    assert "run this command again, with the same new key, to finish" in out

    names = LocalKeyStore(keys, base64.b64decode(new)).names()
    old_store = LocalKeyStore(keys, base64.b64decode(used.old))
    new_store = LocalKeyStore(keys, base64.b64decode(new))
    under_new = {name for name in names if new_store._open(name) is not None}
    under_old = {name for name in names if old_store._open(name) is not None}
    assert len(under_new) == 3
    assert under_old == set(names) - under_new  # every key opens under one or the other
    assert not [path for path in keys.iterdir() if path.name.startswith(".")]
    with pytest.raises(StartupError, match="does not open"):  # nor does the service start
        open_runtime(used.settings)  # under either key, until the job is finished

    code, out = _rotate(_env(cli_env, used.old), key_file)
    assert code == 0, out
    assert f"re-sealed {len(names) - 3} key files under the new master key (3 were" in out
    _works_end_to_end(used, _settings(used.settings, new))
    with _opened(_settings(used.settings, new)) as runtime:
        [entry] = _logged(runtime, "keys.master.rotated")  # the stopped run recorded nothing
        assert json.loads(entry)["details"] == {"resealed_files": len(names) - 3}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "must be the base64 of 32 random bytes"),
        ("not base64 at all!", "must be the base64 of 32 random bytes"),
        (base64.b64encode(os.urandom(31)).decode(), "must be the base64 of 32 random bytes"),
        (base64.b64encode(os.urandom(33)).decode(), "must be the base64 of 32 random bytes"),
        ("OLD", "the new master key is the one in use"),
    ],
)
def test_a_bad_new_key_is_refused_and_nothing_changes(
    used: Used, cli_env: dict[str, str], tmp_path: Path, content: str, words: str
) -> None:
    before = _files(used.settings.data_dir)
    key_file = _key_file(tmp_path, used.old if content == "OLD" else content)
    code, out = _rotate(_env(cli_env, used.old), key_file)
    assert code == 2
    assert words in out
    if "base64" in words:
        assert f"the new master key ({key_file})" in out
    assert _files(used.settings.data_dir) == before


def test_keys_that_do_not_open_under_the_current_key_are_refused_and_nothing_changes(
    used: Used, cli_env: dict[str, str], tmp_path: Path
) -> None:
    before = _files(used.settings.data_dir)
    code, out = _rotate(_env(cli_env, _key()), _key_file(tmp_path, _key()))
    assert code == 2
    assert "opens under neither the current master key nor the new one" in out
    assert "nothing was changed" in out
    assert _files(used.settings.data_dir) == before


def test_a_data_directory_without_keys_is_refused_and_left_as_it_was(
    used: Used, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A mistyped SHANAKHT_DATA_DIR: in production, nothing to rotate; in development, no
    master.key either. Neither makes a folder."""
    elsewhere = tmp_path / "not-the-data-dir"
    env = {**_env(cli_env, used.old), "SHANAKHT_DATA_DIR": str(elsewhere)}
    code, out = _rotate(env, _key_file(tmp_path, _key()))
    assert code == 2
    assert f"there are no key files in {elsewhere / 'keys'}" in out
    code, out = _rotate({**env, "SHANAKHT_MASTER_KEY": None}, _key_file(tmp_path, _key()))
    assert code == 2
    assert f"{elsewhere / 'master.key'} does not exist and SHANAKHT_MASTER_KEY is not set" in out
    assert not elsewhere.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["master"], "keys rotate master needs --new-key-file: make one with"),
        (["master", "--compromised", "--new-key-file", "-"], "--compromised is for the oidc"),
        (["oidc", "--new-key-file", "-"], "--new-key-file is for `keys rotate master` only"),
    ],
)
def test_the_command_is_refused_when_used_wrongly(
    used: Used, cli_env: dict[str, str], args: list[str], words: str
) -> None:
    before = _files(used.settings.data_dir)
    code, out = run(_env(cli_env, used.old), "keys", "rotate", *args)
    assert code == 2
    assert words in out
    assert _files(used.settings.data_dir) == before


def test_all_does_not_rotate_the_master_key(used: Used, cli_env: dict[str, str]) -> None:
    before = {p.name: p.read_bytes() for p in (used.settings.data_dir / "keys").glob("*.json")}
    assert run(_env(cli_env, used.old), "keys", "rotate")[0] == 0
    after = {p.name: p.read_bytes() for p in (used.settings.data_dir / "keys").glob("*.json")}
    assert after == before


def _files(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data directory but the database's own, by path."""
    return {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and not path.name.startswith("shanakht.db")
    }


def test_development_replaces_master_key_last_from_standard_input(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    used = _use(_settings(settings, None))
    master = settings.data_dir / "master.key"
    old = master.read_text().strip()
    new = _key()
    result = CliRunner().invoke(
        main,
        ["keys", "rotate", "master", "--new-key-file", "-"],
        input=new + "\n",
        env=_env(cli_env, None),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"{master} now holds the new master key" in result.output
    assert master.read_text().strip() == new
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    _works_end_to_end(used, _settings(settings, None))  # master.key alone, as development runs
    secrets = Secrets()
    secrets.add("old master key", base64.b64decode(old))
    secrets.add("old master key (as written)", old)
    assert scan_directory(settings.data_dir, secrets) == []
    assert [p.name for p in settings.data_dir.iterdir() if p.name.startswith(".")] == []


def test_a_replica_left_running_under_the_old_key_is_not_ready_and_its_late_key_is_resealed(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """What the help promises: the replica stops being ready; a key it makes after the
    rotation is refused by name under the new key, and the same rotation run again fixes it."""
    used = _use(_settings(settings, _key()), not_made=DEVICE_KEY)
    new = _key()
    key_file = _key_file(tmp_path, new)
    with _opened(used.settings) as replica, TestClient(create_app(replica)) as client:
        assert client.get("/readyz").status_code == 200
        assert _rotate(_env(cli_env, used.old), key_file)[0] == 0
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "does not open under this master key" in ready.json()["checks"]["keys"]
        replica.keys.secret(DEVICE_KEY)  # a key made on first use, sealed under the old key

    with (
        _opened(_settings(used.settings, new)) as runtime,
        pytest.raises(StartupError, match=rf"key {DEVICE_KEY} .* does not open"),
    ):
        check_keys_fit_database(runtime)
    code, out = _rotate(_env(cli_env, used.old), key_file)
    assert code == 0, out
    assert "re-sealed 1 key files under the new master key" in out
    with _opened(_settings(used.settings, new)) as runtime:
        check_keys_fit_database(runtime)
        assert len(_logged(runtime, "keys.master.rotated")) == 2
