"""`shanakht backup DIR` and `shanakht restore DIR`: the database, the locker's objects and the
keys, taken consistent with each other, checked file by file on the way back.

What a backup holds, and why it is consistent:

1. The database, first, as one snapshot. SQLite: the online backup API copies the file as of
   one read transaction while the service runs. PostgreSQL: every table is streamed with
   `COPY ... TO STDOUT` inside one REPEATABLE READ transaction (one snapshot for all tables),
   and a restore recreates the schema with the Alembic migrations at the recorded revision
   (triggers, indexes and constraints included) and loads the rows with `COPY ... FROM STDIN`.
   Chosen over pg_dump because it needs no client binary of the server's major version in the
   image (Debian's is older than the compose file's PostgreSQL), restores into any empty
   database or schema the URL names, and streams through the server's own formatting as fast
   as pg_dump's data section. It is a backup of this service's tables, not of a whole cluster:
   point-in-time recovery of a large deployment is the database's own (WAL archiving, see
   docs/deployment.md).
2. The keys, next: the sealed key files of the data directory (and its `master.key` in
   development; in production the master key lives outside, in SHANAKHT_MASTER_KEY, and
   the backup cannot be read without it). Key files are added, and a retired PII key version
   deleted (`api.key_retirement`) only once nothing sealed under it opens. So the backup
   checks that its copy holds every key the snapshot's database recorded (`api.key_check`)
   and had not retired: a retirement between the snapshot and the copy fails the backup
   (run it again) instead of leaving one whose rows need a key it lacks.
3. The objects, last: exactly the objects the snapshot's document versions name. Objects
   are never rewritten under a key, so each one read later is the one the snapshot meant;
   one written after the snapshot is not taken (restored, it would be an orphan the sweeper
   removes anyway); one the snapshot names but the store lacks fails the backup.

`manifest.json` records the format, the database's dialect and schema revision, the audit
log's head (size and chain hash) at the snapshot, the object keys, and the SHA-256 and size of
every file; `manifest.hmac` is an HMAC-SHA256 of the manifest under a key sealed in the
backup's own key files, so a manifest rewritten to match altered files does not verify
without the master key. A restore checks all of it before it writes anything, refuses a
non-empty target unless --force, and ends by verifying the restored audit log against the
recorded head.

Which PostgreSQL role does what (the two roles of `api.migrate`): a backup reads through
SHANAKHT_DATABASE_URL, the application role, which may SELECT every table (the audit log's
included). A restore writes as the schema's owner, through SHANAKHT_DATABASE_MIGRATION_URL (the
database URL when unset): dropping and creating tables, loading rows into tables the
application role may not write as a restore must (the audit log, the head, the schema's
revision), moving sequences on. It then grants the application role, named by
SHANAKHT_DATABASE_APP_ROLE, exactly what `shanakht db upgrade` grants (`grant_app_role`), and
verifies the restored log through the database URL, as the API will read it. SQLite has one
file and no roles: the database URL's file is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api.cli_support import EXIT_TAMPERED, cli_runtime, fail
from api.database import create_db_engine, snapshot
from api.errors import StartupError
from api.keystore import LocalKeyStore, parse_master_key
from api.migrate import grant_app_role, upgrade
from api.models import KEK_PREFIX, key_fingerprints, key_retirements
from api.runtime import open_runtime, open_store, prepare_data_dir
from api.settings import Settings
from audit import TamperError, verify_log
from audit.models import head
from locker.errors import StoreError
from locker.models import versions
from locker.stores import S3Store

FORMAT = "shanakht-backup/1"
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.hmac"
MAC_KEY = "backup-manifest"  # a secret in the key store, sealed under the master key
SQLITE_FILE = "database/shanakht.sqlite3"
BLOCK = 1024 * 1024
WARNING = (
    "The backup holds encrypted documents and key material (sealed under the master key): "
    "its files are readable by their owner only. Keep it as carefully as the live service."
)


def _private_dir(path: Path) -> None:
    """`path` and any missing parents, made 0700 (mkdir's `parents` would use the umask)."""
    if path.is_dir():
        return
    _private_dir(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _private_file(path: Path) -> Any:
    """A new file readable by its owner only (0600 whatever the umask)."""
    _private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "wb")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


# -- backup -------------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    dialect: str
    revision: str
    audit_size: int
    audit_chain: str
    objects: list[str]
    keys: list[str]
    retired: list[str]
    tables: list[dict[str, Any]]


def _state(connection: Connection) -> tuple[str, int, str, list[str], list[str], list[str]]:
    """What the snapshot says: schema revision, audit head, the objects it needs, the key
    store's keys it needs (recorded, not retired; a KEK is `keys/locker`'s, never deleted),
    and the key versions it records as retired (not copied, even if their files linger)."""
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    size, chain = connection.execute(select(head.c.size, head.c.chain)).one()
    objects = connection.execute(
        select(versions.c.object_key)
        .where(versions.c.wrapped_key.is_not(None))
        .order_by(versions.c.object_key)
    ).scalars()
    keys = connection.execute(
        select(key_fingerprints.c.name)
        .where(key_fingerprints.c.name.not_in(select(key_retirements.c.name)))
        .where(key_fingerprints.c.name.not_like(f"{KEK_PREFIX}%"))
        .order_by(key_fingerprints.c.name)
    ).scalars()
    retired = connection.execute(select(key_retirements.c.name)).scalars()
    return str(revision), int(size), bytes(chain).hex(), list(objects), list(keys), list(retired)


def _snapshot_sqlite(engine: Engine, out: Path) -> _Snapshot:
    source_path = engine.url.database
    if not source_path or source_path == ":memory:":
        fail("an in-memory SQLite database cannot be backed up")
    _private_file(out / SQLITE_FILE).close()
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(out / SQLITE_FILE)
    try:
        source.backup(target)  # all pages in one step: one read transaction, one snapshot
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
    finally:
        target.close()
        source.close()
    copy = create_engine(f"sqlite:///{out / SQLITE_FILE}")
    try:
        with copy.connect() as connection:
            state = _state(connection)
    finally:
        copy.dispose()
    return _Snapshot("sqlite", *state, tables=[])


def _snapshot_postgresql(engine: Engine, out: Path) -> _Snapshot:
    from psycopg import sql

    tables: list[dict[str, Any]] = []
    with snapshot(engine) as connection:
        state = _state(connection)
        reflected = MetaData()
        reflected.reflect(bind=connection)
        dbapi: Any = connection.connection.dbapi_connection
        for table in reflected.sorted_tables:  # parents before children, for the restore
            columns = [column.name for column in table.columns]
            name = f"database/{table.name}.copy"
            statement = sql.SQL("COPY {} ({}) TO STDOUT").format(
                sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with (
                _private_file(out / name) as file,
                dbapi.cursor() as cursor,
                cursor.copy(statement) as copy,
            ):
                for data in copy:
                    file.write(data)
            tables.append({"name": table.name, "columns": columns, "file": name})
    return _Snapshot("postgresql", *state, tables=tables)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup(directory: Path) -> None:
    """Back up the database, the locker's objects and the keys into DIRECTORY (new or empty).

    The three are taken consistent with each other while the service runs: the database as
    one snapshot, then the keys, then exactly the objects that snapshot names. A manifest
    records the SHA-256 of every file and the audit log's head. DIRECTORY's files hold
    encrypted documents and key material sealed under the master key, so they are written
    readable by their owner only (0600); without SHANAKHT_MASTER_KEY (production) they
    cannot be read, and with it, they are the whole service: keep both apart and safe.
    """
    if directory.exists() and any(directory.iterdir()):
        fail(f"{directory} is not empty: back up into a new or empty directory")
    created = not directory.exists()
    _private_dir(directory)
    try:
        with cli_runtime() as runtime:
            runtime.check_database()
            mac_key = runtime.keys.secret(MAC_KEY)  # made now if new, so the copy holds it
            data_dir = runtime.settings.data_dir
            if runtime.engine.dialect.name == "sqlite":
                taken = _snapshot_sqlite(runtime.engine, directory)
            else:
                taken = _snapshot_postgresql(runtime.engine, directory)
            _copy_keys(data_dir, directory, taken.retired)
            _check_keys_copied(taken.keys, directory)
            for key in taken.objects:
                _copy_object(runtime.store, key, directory / "objects" / key)
            manifest = {
                "format": FORMAT,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": {
                    "dialect": taken.dialect,
                    "revision": taken.revision,
                    "tables": taken.tables,
                },
                "audit": {"size": taken.audit_size, "chain": taken.audit_chain},
                "objects": taken.objects,
                "master_key_included": (directory / "master.key").is_file(),
                "files": {
                    path.relative_to(directory).as_posix(): {
                        "sha256": _sha256(path),
                        "size": path.stat().st_size,
                    }
                    for path in _files_under(directory)
                },
            }
            body = json.dumps(manifest, indent=1, sort_keys=True).encode()
            with _private_file(directory / MANIFEST) as file:
                file.write(body)
            with _private_file(directory / MANIFEST_MAC) as file:
                file.write(hmac.new(mac_key, body, hashlib.sha256).hexdigest().encode() + b"\n")
    except BaseException:
        # An unfinished backup must not look like one: no manifest, no files left half-made.
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for child in directory.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise
    click.echo(
        f"backed up to {directory}: {taken.dialect} database at {taken.revision}, "
        f"{taken.audit_size} audit entries, {len(taken.objects)} objects"
    )
    click.echo(WARNING)


def _copy_keys(data_dir: Path, out: Path, retired: list[str]) -> None:
    """The key files, but for the `retired` versions' (whose files a retirement may not have
    removed yet) and those removed while this runs (`_check_keys_copied` tells if any was
    needed)."""
    keys = data_dir / "keys"
    skipped = {f"{name}.json" for name in retired}
    for path in _files_under(keys):
        relative = path.relative_to(keys)
        if any(part.startswith(".") for part in relative.parts):
            continue  # a key being written this moment: never a finished key's name
        if relative.as_posix() in skipped:
            continue
        try:
            source = path.open("rb")
        except FileNotFoundError:
            continue  # removed since the listing (a retirement)
        with source, _private_file(out / "keys" / relative) as target:
            shutil.copyfileobj(source, target, BLOCK)
    master = data_dir / "master.key"
    if master.is_file():  # development only: production's master key is not in the directory
        with master.open("rb") as source, _private_file(out / "master.key") as target:
            shutil.copyfileobj(source, target)


def _check_keys_copied(needed: list[str], out: Path) -> None:
    """Fail unless the copied keys folder holds every key of `needed` (`_state`)."""
    missing = [name for name in needed if not (out / "keys" / f"{name}.json").is_file()]
    if missing:
        fail(
            f"the key {missing[0]} that the database snapshot needs was not in the keys folder "
            "when it was copied: retired during the backup (run it again), or the keys folder "
            "is not this database's (`shanakht serve` would say which)",
            EXIT_TAMPERED,
        )


def _copy_object(store: Any, key: str, path: Path) -> None:
    try:
        with _private_file(path) as file:
            for block in store.get(key):
                file.write(block)
    except StoreError as exc:
        fail(f"the database names object {key!r} but the store cannot give it: {exc}")


# -- restore ------------------------------------------------------------------------------------


def _refuse(message: str) -> None:
    fail(f"refusing to restore: {message}", EXIT_TAMPERED)


def _read_manifest(directory: Path) -> tuple[dict[str, Any], bytes]:
    path = directory / MANIFEST
    if not path.is_file():
        _refuse(f"{directory} has no {MANIFEST}: not a backup, or an unfinished one")
    body = path.read_bytes()
    try:
        manifest = json.loads(body)
    except ValueError:
        _refuse(f"{MANIFEST} is not JSON: the backup is damaged")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        _refuse(f"{MANIFEST} is not a {FORMAT} manifest")
    return manifest, body


def _check_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every listed file present with its size and SHA-256; nothing else beside them."""
    listed: dict[str, Any] = manifest.get("files") or {}
    for name, expected in sorted(listed.items()):
        path = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file():
            _refuse(f"{name} is missing: the backup is partial")
        if path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            _refuse(f"{name} does not match its SHA-256 in the manifest: altered or damaged")
    present = {p.relative_to(directory).as_posix() for p in _files_under(directory)}
    extra = sorted(present - set(listed) - {MANIFEST, MANIFEST_MAC})
    if extra:
        _refuse(f"{extra[0]} is not in the manifest: the backup was added to")
    needed = [f"objects/{key}" for key in manifest.get("objects", [])]
    if manifest["database"]["dialect"] == "sqlite":
        needed.append(SQLITE_FILE)
    needed += [table["file"] for table in manifest["database"].get("tables", [])]
    for name in needed:
        if name not in listed:
            _refuse(f"{name} is missing: the backup is partial")


def _master_key(settings: Settings, directory: Path) -> bytes:
    if settings.master_key is not None:
        return parse_master_key(settings.master_key.get_secret_value())
    included = directory / "master.key"
    if included.is_file():
        return parse_master_key(included.read_text())
    return fail(
        "this backup's keys are sealed under a master key it does not hold: set "
        "SHANAKHT_MASTER_KEY to the one the backed-up service used"
    )


def _check_mac(directory: Path, body: bytes, master: bytes) -> None:
    if not (directory / "keys" / f"{MAC_KEY}.json").is_file():
        _refuse(f"keys/{MAC_KEY}.json is missing: the backup is partial")
    try:
        key = LocalKeyStore(directory / "keys", master).secret(MAC_KEY)
    except StartupError:
        fail(
            "the backup's keys do not open under this master key: set SHANAKHT_MASTER_KEY "
            "to the one the backed-up service used"
        )
    try:
        recorded = (directory / MANIFEST_MAC).read_text().strip()
    except FileNotFoundError:
        _refuse(f"{MANIFEST_MAC} is missing: the backup is partial")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(recorded, expected):
        _refuse(f"{MANIFEST} does not match its HMAC: the manifest was altered")


def _target_contents(settings: Settings, engine: Engine, store: Any) -> list[str]:
    """What the target already holds, in words; empty if nothing."""
    found = []
    data_dir = settings.data_dir
    keys = data_dir / "keys"
    if keys.is_dir() and any(_files_under(keys)):
        found.append(f"key files in {keys}")
    if inspect(engine).get_table_names():
        found.append("tables in the database")
    try:
        if next(iter(store.keys("documents/")), None) is not None:
            found.append("documents in the object store")
    except StoreError:
        pass  # a bucket that does not exist yet holds nothing
    return found


def _clear_target(settings: Settings, engine: Engine) -> None:
    # The tables first: should the database refuse (a role that may not drop them), the
    # target's key files are still there.
    if engine.dialect.name != "sqlite":  # SQLite's file is replaced whole
        with engine.begin() as connection:
            reflected = MetaData()
            reflected.reflect(bind=connection)
            quote = connection.dialect.identifier_preparer.quote
            for table in reversed(reflected.sorted_tables):
                connection.execute(text(f"DROP TABLE IF EXISTS {quote(table.name)} CASCADE"))
            # The migrations' trigger functions, which outlive the tables they guard.
            for function in ("audit_refuse_change", "audit_head_forward"):
                connection.execute(text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
    shutil.rmtree(settings.data_dir / "keys", ignore_errors=True)


def _restore_keys(directory: Path, data_dir: Path, use_included_master: bool) -> None:
    source = directory / "keys"
    for path in _files_under(source):
        target = data_dir / "keys" / path.relative_to(source)
        _private_dir(target.parent)
        target.unlink(missing_ok=True)
        with path.open("rb") as reading, _private_file(target) as writing:
            shutil.copyfileobj(reading, writing, BLOCK)
    if use_included_master and (directory / "master.key").is_file():
        target = data_dir / "master.key"
        target.unlink(missing_ok=True)
        with (directory / "master.key").open("rb") as reading, _private_file(target) as writing:
            shutil.copyfileobj(reading, writing)


def _restore_sqlite(directory: Path, engine: Engine) -> None:
    target = Path(str(engine.url.database))
    engine.dispose()
    _private_dir(target.parent)
    temporary = target.with_name(f".{target.name}.restoring")
    temporary.unlink(missing_ok=True)
    with (directory / SQLITE_FILE).open("rb") as reading, _private_file(temporary) as writing:
        shutil.copyfileobj(reading, writing, BLOCK)
        writing.flush()
        os.fsync(writing.fileno())
    for stale in ("-wal", "-shm"):
        Path(f"{target}{stale}").unlink(missing_ok=True)
    os.replace(temporary, target)


def _restore_postgresql(
    directory: Path, engine: Engine, manifest: dict[str, Any], app_role: str | None
) -> None:
    """The schema at the backup's revision and its rows, through `engine`, the schema owner's:
    the application role may neither create tables nor write the audit log and the schema's
    revision as a restore must, nor move a sequence. Then `app_role`, if named, is granted."""
    from psycopg import sql

    upgrade(engine, manifest["database"]["revision"], app_role=app_role)
    with engine.begin() as connection:
        dbapi: Any = connection.connection.dbapi_connection
        with dbapi.cursor() as cursor:
            for table in manifest["database"]["tables"]:
                if table["name"] == "alembic_version":
                    continue  # the migrations just wrote the same revision
                name = sql.Identifier(table["name"])
                # Rows a migration seeds (the audit head's first row) make way for the
                # backup's. The append-only tables refuse DELETE, and are empty by now.
                cursor.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name))
                if cursor.fetchone()[0]:
                    cursor.execute(sql.SQL("DELETE FROM {}").format(name))
                columns = sql.SQL(", ").join(map(sql.Identifier, table["columns"]))
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(name, columns)
                with (
                    (directory / table["file"]).open("rb") as reading,
                    cursor.copy(statement) as copy,
                ):
                    while block := reading.read(BLOCK):
                        copy.write(block)
                # Serial columns go on after the restored rows, not from 1.
                for column in table["columns"]:
                    cursor.execute(
                        "SELECT pg_get_serial_sequence(%s, %s)",
                        (name.as_string(cursor), column),
                    )
                    sequence = cursor.fetchone()[0]
                    if sequence:
                        column_name = sql.Identifier(column)
                        cursor.execute(
                            sql.SQL(
                                "SELECT setval(%s, COALESCE(MAX({c}), 1), MAX({c}) IS NOT NULL) "
                                "FROM {t}"
                            ).format(c=column_name, t=name),
                            (sequence,),
                        )
        if app_role is not None:
            # As `upgrade` does after migrating (it granted already; granting again here,
            # idempotently, commits the privileges with the rows they are for).
            grant_app_role(connection, app_role)


def _restore_objects(directory: Path, store: Any, keys: list[str]) -> None:
    if isinstance(store, S3Store):
        store.ensure_bucket()

    def blocks(path: Path) -> Iterator[bytes]:
        with path.open("rb") as file:
            while block := file.read(BLOCK):
                yield block

    for key in keys:
        store.put(key, blocks(directory / "objects" / key))


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace what the target already holds.")
def restore(directory: Path, force: bool) -> None:
    """Restore a backup from DIRECTORY into the configured data directory, database and store.

    Checks the manifest's HMAC and every file's SHA-256 first and refuses a tampered or partial
    backup (exit 1) before writing anything; refuses a target that already holds keys, tables
    or documents unless --force; ends by verifying the restored audit log. The backup holds
    encrypted documents and key material: the restored key files are written 0600. Stop the
    service before restoring. On PostgreSQL the schema and rows are written as the schema's
    owner (SHANAKHT_DATABASE_MIGRATION_URL, else SHANAKHT_DATABASE_URL), and the role named by
    SHANAKHT_DATABASE_APP_ROLE is granted what `shanakht db upgrade` grants it.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        fail(f"bad configuration: {exc.errors()[0]['msg']}")
    manifest, body = _read_manifest(directory)
    _check_files(directory, manifest)
    master = _master_key(settings, directory)
    _check_mac(directory, body, master)

    dialect = manifest["database"]["dialect"]
    try:
        prepare_data_dir(settings.data_dir)
        named = make_url(settings.resolved_database_url).get_backend_name()
        # The schema's owner does the writing (see the module's docstring). SQLite has no
        # owner: the file replaced is the one the database URL names.
        owner_url = settings.resolved_database_url
        if named != "sqlite":
            owner_url = settings.resolved_migration_url
        engine = create_db_engine(owner_url)
    except (StartupError, SQLAlchemyError, ValueError) as exc:
        fail(str(exc))
    driver_error: Any = engine.dialect.loaded_dbapi.Error  # raised by COPY, on the raw cursor
    try:
        if named != dialect:
            fail(
                f"this backup holds a {dialect} database and SHANAKHT_DATABASE_URL names "
                f"{named}: restore into the same kind of database"
            )
        if engine.dialect.name != dialect:
            fail(
                f"this backup holds a {dialect} database and SHANAKHT_DATABASE_MIGRATION_URL "
                f"names {engine.dialect.name}: restore into the same kind of database"
            )
        store = open_store(settings)
        held = _target_contents(settings, engine, store)
        if held and not force:
            fail(f"the target is not empty ({'; '.join(held)}): --force replaces it")
        if held:
            _clear_target(settings, engine)
        _restore_keys(directory, settings.data_dir, settings.master_key is None)
        if dialect == "sqlite":
            _restore_sqlite(directory, engine)
        else:
            _restore_postgresql(directory, engine, manifest, settings.database_app_role)
        _restore_objects(directory, store, manifest["objects"])
    except (SQLAlchemyError, driver_error) as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        if dialect != "sqlite" and settings.database_migration_url is None:
            first += (
                " (a restore writes as the schema's owner: if SHANAKHT_DATABASE_URL names the "
                "application role, set SHANAKHT_DATABASE_MIGRATION_URL to the owner's URL)"
            )
        fail(f"database error: {first}")
    except StartupError as exc:  # the application role cannot be granted (`grant_app_role`)
        fail(str(exc))
    except StoreError as exc:
        fail(f"object store error: {exc}")
    finally:
        engine.dispose()
    _verify_restored(settings, manifest)


def _verify_restored(settings: Settings, manifest: dict[str, Any]) -> None:
    try:
        runtime = open_runtime(settings)
    except StartupError as exc:
        fail(str(exc))
    try:
        # Through the database URL, as the API will read it: the application role's grants
        # are part of what is checked.
        with snapshot(runtime.engine) as connection:
            size, chain = connection.execute(select(head.c.size, head.c.chain)).one()
            try:
                report = verify_log(
                    connection, runtime.audit_verifier, settings.resolved_audit_origin
                )
            except TamperError as exc:
                fail(f"the restored audit log does not verify: {exc}", EXIT_TAMPERED)
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        fail(f"the restored database cannot be read through SHANAKHT_DATABASE_URL: {first}")
    finally:
        runtime.close()
    recorded = manifest["audit"]
    if size != recorded["size"] or bytes(chain).hex() != recorded["chain"]:
        fail("the restored audit log's head is not the one the backup recorded", EXIT_TAMPERED)
    click.echo(
        f"restored the backup of {manifest['created_at']}: {report.size} audit entries "
        f"verified, {len(manifest['objects'])} objects, {manifest['database']['dialect']} "
        f"database at {manifest['database']['revision']}"
    )
