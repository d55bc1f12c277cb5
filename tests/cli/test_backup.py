"""`shanakht backup` and `shanakht restore`, run as an operator would: documents issued, backed
up, restored into a fresh data directory and database, the log verified and the documents read
back byte for byte; and every way a backup can be bad, refused before anything is written. On
PostgreSQL, also with production's two roles: the restore writes as the schema's owner and
leaves the application role exactly what `db upgrade` grants it."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.cli_backup import MANIFEST
from api.key_check import check_keys_fit_database
from api.migrate import prepare
from api.routes.exchange import _signer
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from tests.cli.test_cli import run
from tests.cli.test_locker_cli import CITIZEN, OWNER, _issue
from tests.conftest import POSTGRES_URL
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY
from tests.unit.api import test_database_roles
from tests.unit.api.test_database_roles import Roles, postgres_only
from tests.unit.api.test_database_roles import _refused as _refused_by_postgres

PUBLIC_URL = "https://shanakht.test"

# Restores go to a database of their own, made here from POSTGRES_URL (see conftest.py).
pytestmark = pytest.mark.database

# The fixture of the role tests: an application role of its own (LOGIN, nothing else) beside
# the test's schema, dropped afterwards with its grants in every schema.
roles = test_database_roles.roles


@dataclass
class Place:
    """A data directory, a database and an object store: where a service lives."""

    settings: Settings
    env: dict[str, str]

    def runtime(self) -> Runtime:
        return open_runtime(self.settings)


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A second, empty database, for the restore target (a SQLite file or a schema)."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    schema = f"restored_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _place(data_dir: Path, database_url: str, store: str, endpoint: str, **extra: str) -> Place:
    env = {
        "SHANAKHT_DATA_DIR": str(data_dir),
        "SHANAKHT_DATABASE_URL": database_url,
        "SHANAKHT_PUBLIC_URL": PUBLIC_URL,
        "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
        **extra,
    }
    if store == "s3":
        env |= {
            "SHANAKHT_STORE": "s3",
            "SHANAKHT_S3_ENDPOINT_URL": endpoint,
            "SHANAKHT_S3_BUCKET": f"backup-{uuid.uuid4().hex[:12]}",
            "SHANAKHT_S3_ACCESS_KEY": ACCESS_KEY,
            "SHANAKHT_S3_SECRET_KEY": SECRET_KEY,
            "SHANAKHT_S3_REGION": REGION,
        }
    keys = {name.removeprefix("SHANAKHT_").lower(): value for name, value in env.items()}
    return Place(Settings(**keys), env)


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def endpoint(store_kind: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("s3_endpoint")) if store_kind == "s3" else ""


@pytest.fixture
def source(tmp_path: Path, database_url: str, store_kind: str, endpoint: str) -> Place:
    return _place(tmp_path / "live", database_url, store_kind, endpoint)


@pytest.fixture
def target(tmp_path: Path, fresh_database_url: str, store_kind: str, endpoint: str) -> Place:
    return _place(tmp_path / "restored", fresh_database_url, store_kind, endpoint)


def _serving(place: Place, documents: int) -> dict[str, bytes]:
    """A service with documents in its lockers and a signed checkpoint."""
    runtime = place.runtime()
    try:
        prepare(runtime)
        made = _issue(runtime, documents)
        with runtime.transaction() as session:
            runtime.audit_log(session).checkpoint()
    finally:
        runtime.close()
    return made


def _read_back(place: Place, made: dict[str, bytes]) -> None:
    runtime = place.runtime()
    try:
        with runtime.transaction() as session:
            for document_id, content in made.items():
                _, stream = runtime.locker(session).open(document_id, owner=OWNER, who=CITIZEN)
                assert b"".join(stream) == content
    finally:
        runtime.close()


def test_a_restored_service_verifies_and_gives_back_every_document(
    source: Place, target: Place, tmp_path: Path
) -> None:
    made = _serving(source, 3)
    backup = tmp_path / "backup"

    code, out = run(source.env, "backup", str(backup))

    assert code == 0, out
    assert "3 objects" in out
    assert "encrypted documents and key material" in out
    manifest = json.loads((backup / MANIFEST).read_text())
    assert sorted(_document_of(key) for key in manifest["objects"]) == sorted(made)
    assert manifest["audit"]["size"] >= 3, "an entry per document issued"
    for name, listed in manifest["files"].items():
        assert (backup / name).stat().st_size == listed["size"]
    for path in backup.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"

    code, out = run(target.env, "restore", str(backup))

    assert code == 0, out
    assert f"{manifest['audit']['size']} audit entries verified, 3 objects" in out
    code, out = run(target.env, "audit", "verify")
    assert code == 0, out
    assert f"{manifest['audit']['size']} entries, 1 checkpoints" in out
    _read_back(target, made)
    for path in (target.settings.data_dir / "keys").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # The restored service carries on: a new document after the old ones, the log still sound.
    runtime = target.runtime()
    try:
        with runtime.transaction() as session:
            runtime.audit_log(session).checkpoint()
        more = _issue(runtime, 1)
    finally:
        runtime.close()
    _read_back(target, {**made, **more})
    assert run(target.env, "audit", "verify")[0] == 0


@pytest.fixture
def backed_up(tmp_path: Path, runtime: Runtime, cli_env: dict[str, str]) -> tuple[Path, Place]:
    """A backup of the embedded default (SQLite or the test database, a local store), and an
    empty place to restore it into."""
    prepare(runtime)
    _issue(runtime, 2)
    backup = tmp_path / "backup"
    code, out = run(cli_env, "backup", str(backup))
    assert code == 0, out
    return backup, _place(tmp_path / "restored", "", "local", "")


@pytest.fixture
def empty_target(backed_up: tuple[Path, Place], fresh_database_url: str) -> Place:
    _, place = backed_up
    return _place(place.settings.data_dir, fresh_database_url, "local", "")


def _refused(backup: Path, target: Place, expected: str) -> None:
    code, out = run(target.env, "restore", str(backup))
    assert code == 1, out
    assert "refusing to restore" in out
    assert expected in out
    assert not (target.settings.data_dir / "keys").exists(), "nothing was written"


def test_an_altered_object_is_refused(backed_up: tuple[Path, Place], empty_target: Place) -> None:
    backup, _ = backed_up
    [victim] = [p for p in (backup / "objects").rglob("*") if p.is_file()][:1]
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 1
    victim.write_bytes(bytes(content))
    _refused(backup, empty_target, "does not match its SHA-256 in the manifest")


def test_a_partial_backup_is_refused(backed_up: tuple[Path, Place], empty_target: Place) -> None:
    backup, _ = backed_up
    victim = next(p for p in (backup / "objects").rglob("*") if p.is_file())
    victim.unlink()
    _refused(backup, empty_target, "is missing: the backup is partial")


def test_an_unfinished_backup_without_manifest_is_refused(
    backed_up: tuple[Path, Place], empty_target: Place
) -> None:
    backup, _ = backed_up
    (backup / MANIFEST).unlink()
    _refused(backup, empty_target, "has no manifest.json")


def test_a_file_slipped_in_is_refused(backed_up: tuple[Path, Place], empty_target: Place) -> None:
    backup, _ = backed_up
    (backup / "objects" / "documents" / "extra").write_bytes(b"not ours")
    _refused(backup, empty_target, "objects/documents/extra is not in the manifest")


def test_a_manifest_rewritten_to_match_altered_files_fails_its_hmac(
    backed_up: tuple[Path, Place], empty_target: Place
) -> None:
    backup, _ = backed_up
    manifest = json.loads((backup / MANIFEST).read_text())
    victim = next(p for p in (backup / "objects").rglob("*") if p.is_file())
    victim.write_bytes(b"forged ciphertext")
    name = victim.relative_to(backup).as_posix()
    manifest["files"][name] = {
        "sha256": __import__("hashlib").sha256(b"forged ciphertext").hexdigest(),
        "size": len(b"forged ciphertext"),
    }
    (backup / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    _refused(backup, empty_target, "manifest.json does not match its HMAC")


def test_a_non_empty_target_needs_force(backed_up: tuple[Path, Place], empty_target: Place) -> None:
    backup, _ = backed_up
    assert run(empty_target.env, "restore", str(backup))[0] == 0

    code, out = run(empty_target.env, "restore", str(backup))
    assert code == 2, out
    assert "the target is not empty" in out
    assert "--force" in out

    code, out = run(empty_target.env, "restore", "--force", str(backup))
    assert code == 0, out
    assert run(empty_target.env, "audit", "verify")[0] == 0


def test_a_production_backup_needs_its_master_key(
    tmp_path: Path, database_url: str, fresh_database_url: str
) -> None:
    master = base64.b64encode(os.urandom(32)).decode()
    live = _place(tmp_path / "live", database_url, "local", "", SHANAKHT_MASTER_KEY=master)
    made = _serving(live, 2)
    backup = tmp_path / "backup"
    assert run(live.env, "backup", str(backup))[0] == 0
    assert not (backup / "master.key").exists(), "the master key stays out of the backup"

    where = {"SHANAKHT_DATA_DIR": str(tmp_path / "restored")}
    target = _place(tmp_path / "restored", fresh_database_url, "local", "")
    code, out = run({**target.env, **where}, "restore", str(backup))
    assert code == 2
    assert "set SHANAKHT_MASTER_KEY" in out
    wrong = base64.b64encode(os.urandom(32)).decode()
    code, out = run({**target.env, "SHANAKHT_MASTER_KEY": wrong}, "restore", str(backup))
    assert code == 2
    assert "do not open under this master key" in out

    target = _place(
        tmp_path / "restored", fresh_database_url, "local", "", SHANAKHT_MASTER_KEY=master
    )
    code, out = run(target.env, "restore", str(backup))
    assert code == 0, out
    assert run(target.env, "audit", "verify")[0] == 0
    _read_back(target, made)


def test_a_backup_made_before_a_master_key_rotation_is_restored_with_the_old_key_then_rotated(
    tmp_path: Path, database_url: str, fresh_database_url: str
) -> None:
    """What `keys rotate master --help` says: backups made before need the old key."""
    old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    live = _place(tmp_path / "live", database_url, "local", "", SHANAKHT_MASTER_KEY=old)
    made = _serving(live, 1)
    backup = tmp_path / "backup"
    assert run(live.env, "backup", str(backup))[0] == 0
    new_file = tmp_path / "new-master.key"
    new_file.write_text(new)
    rotate = ["keys", "rotate", "master", "--new-key-file", str(new_file)]
    assert run(live.env, *rotate)[0] == 0

    def target(key: str) -> Place:
        return _place(
            tmp_path / "restored", fresh_database_url, "local", "", SHANAKHT_MASTER_KEY=key
        )

    code, out = run(target(new).env, "restore", str(backup))
    assert code == 2
    assert "do not open under this master key" in out
    code, out = run(target(old).env, "restore", str(backup))
    assert code == 0, out
    code, out = run(target(old).env, *rotate)
    assert code == 0, out
    assert run(target(new).env, "audit", "verify")[0] == 0
    _read_back(target(new), made)


def test_a_backup_made_after_signing_key_rotations_restores_every_version(
    tmp_path: Path, database_url: str, fresh_database_url: str
) -> None:
    """Rotated checkpoint and consent keys travel in the backup like any key: the restored
    service verifies the checkpoints each version signed, publishes every version, and its
    key check knows them all."""
    live = _place(tmp_path / "live", database_url, "local", "")
    made = _serving(live, 1)  # a checkpoint signed by the first version
    for which in ("checkpoint", "consent"):
        code, out = run(live.env, "keys", "rotate", which)
        assert code == 0, out
    backup = tmp_path / "backup"
    assert run(live.env, "backup", str(backup))[0] == 0
    target = _place(tmp_path / "restored", fresh_database_url, "local", "")

    code, out = run(target.env, "restore", str(backup))

    assert code == 0, out
    code, out = run(target.env, "audit", "verify")
    assert code == 0, out
    assert "2 checkpoints" in out  # the first version's, and the one the rotation signed
    runtime, restored = live.runtime(), target.runtime()
    try:
        assert restored.audit_verifier_keys == runtime.audit_verifier_keys
        assert len(restored.audit_verifier_keys) == 2
        assert _consent_jwks(restored) == _consent_jwks(runtime)
        check_keys_fit_database(restored)  # every version is the one the database recorded
    finally:
        runtime.close()
        restored.close()
    _read_back(target, made)


def _consent_jwks(runtime: Runtime) -> list[str]:
    kids = [key["kid"] for key in _signer(runtime).jwks()["keys"]]
    assert len(kids) == 2
    return kids


@postgres_only
def test_a_restore_writes_as_the_owner_and_leaves_the_app_role_no_more_than_upgrade_grants(
    roles: Roles, fresh_database_url: str, tmp_path: Path
) -> None:
    """Production's two roles (`api.migrate`): the service and `backup` connect as the
    application role; `restore` creates the schema and loads the audit log as the schema's
    owner (SHANAKHT_DATABASE_MIGRATION_URL), then grants the application role as `db upgrade`
    does. The restored service works as the application role, which still cannot rewrite the
    log or change the schema."""
    live = Place(roles.settings(), roles.env())
    made = _serving(live, 2)  # migrated as the owner, documents issued as the application role
    as_app = {k: v for k, v in roles.env().items() if k != "SHANAKHT_DATABASE_MIGRATION_URL"}
    backup = tmp_path / "backup"
    code, out = run(as_app, "backup", str(backup))  # the application role reads every table
    assert code == 0, out

    password = make_url(roles.app_url).password
    app_url = make_url(fresh_database_url).set(username=roles.name, password=password)
    target = _place(
        tmp_path / "restored",
        app_url.render_as_string(hide_password=False),
        "local",
        "",
        SHANAKHT_DATABASE_MIGRATION_URL=fresh_database_url,
        SHANAKHT_DATABASE_APP_ROLE=roles.name,
    )
    target_as_app = {k: v for k, v in target.env.items() if k != "SHANAKHT_DATABASE_MIGRATION_URL"}

    # The application role alone cannot make the schema: PostgreSQL refuses, nothing is made.
    code, out = run(target_as_app, "restore", str(backup))
    assert code == 2, out
    assert "database error: no schema has been selected to create in" in out
    assert "set SHANAKHT_DATABASE_MIGRATION_URL" in out

    # As the owner (--force: the failed attempt left the key files).
    code, out = run(target.env, "restore", "--force", str(backup))
    assert code == 0, out
    assert "audit entries verified, 2 objects" in out
    # Replacing a restored database drops its tables: the owner's to do, not the role's, which
    # is refused before the target's key files go.
    keys = target.settings.data_dir / "keys"
    held = sorted(path.name for path in keys.rglob("*"))
    code, out = run(target_as_app, "restore", "--force", str(backup))
    assert code == 2, out
    assert "must be owner of table" in out
    assert sorted(path.name for path in keys.rglob("*")) == held
    code, out = run(target.env, "restore", "--force", str(backup))
    assert code == 0, out

    # The restored service, as the application role: the log verifies, the documents read
    # back, and it carries on (a checkpoint's id from a sequence the owner moved on).
    code, out = run(target_as_app, "audit", "verify")
    assert code == 0, out
    _read_back(target, made)
    runtime = target.runtime()
    try:
        with runtime.transaction() as session:
            runtime.audit_log(session).checkpoint()
        _issue(runtime, 1)
        with runtime.engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == roles.name
        # Granted no more than `db upgrade` grants: the log is append-only to it, and the
        # restored tables are not its to alter or drop.
        rewrite = "UPDATE audit_entries SET entry = entry"
        assert "permission denied" in _refused_by_postgres(runtime.engine, rewrite)
        assert "permission denied" in _refused_by_postgres(
            runtime.engine, "DELETE FROM audit_entries"
        )
        for statement in (
            "ALTER TABLE audit_entries DISABLE TRIGGER USER",
            "DROP TABLE audit_entries",
        ):
            assert "must be owner" in _refused_by_postgres(runtime.engine, statement)
    finally:
        runtime.close()
    assert run(target_as_app, "audit", "verify")[0] == 0

    owner = create_engine(fresh_database_url)
    try:
        with owner.connect() as connection:
            owned = connection.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = :name"
                ),
                {"name": roles.name},
            ).scalar()
            can = connection.execute(
                text(
                    "SELECT has_table_privilege(:r, 'audit_entries', 'INSERT'), "
                    "has_table_privilege(:r, 'audit_entries', 'UPDATE'), "
                    "has_table_privilege(:r, 'audit_entries', 'DELETE'), "
                    "has_table_privilege(:r, 'audit_checkpoints', 'UPDATE'), "
                    "has_table_privilege(:r, 'identity_citizens', 'UPDATE')"
                ),
                {"r": roles.name},
            ).one()
    finally:
        owner.dispose()
    assert owned == 0
    assert tuple(can) == (True, False, False, False, True)


def _document_of(key: str) -> str:
    """The document id in an object key (documents/<2 letters>/<id>.<version>-<when>)."""
    return key.split("/")[2].split(".")[0]


def test_a_backup_missing_an_object_fails_and_leaves_nothing(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    prepare(runtime)
    made = _issue(runtime, 2)
    gone = next(key for key in runtime.store.keys("documents/") if _document_of(key) in made)
    runtime.store.delete(gone)
    backup = tmp_path / "backup"

    code, out = run(cli_env, "backup", str(backup))

    assert code == 2
    assert f"the database names object {gone!r}" in out
    assert not backup.exists()


def test_backup_refuses_a_directory_with_files_in_it(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    code, out = run(cli_env, "backup", str(tmp_path / "busy"))
    assert code == 2
    assert "is not empty" in out
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_help_says_the_files_hold_encrypted_data_and_keys(command: str) -> None:
    out: Any = run({}, command, "--help")[1]
    words = " ".join(out.split())
    assert "encrypted documents and key material" in words
    assert "0600" in words
