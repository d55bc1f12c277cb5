"""Least privilege on PostgreSQL (issue 7, threat model section 7 item 8): the schema's owner
migrates; the API connects as an application role that owns nothing, can do its normal work,
and is refused by the database itself when it tries to rewrite the audit log, drop or disable
its triggers, or drop or alter a table. The PostgreSQL tests run on the PostgreSQL pass of
`.ci/run` (SHANAKHT_DATABASE_URL set, as the superuser that creates the roles); the check that
a production replica does not migrate runs on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api import key_retirement
from api.errors import StartupError
from api.key_check import check_keys_fit_database
from api.key_retirement import retire_versions
from api.key_rotation import PII
from api.migrate import prepare, upgrade
from api.runtime import IDENTITY_SEAL_KEY, Runtime, open_runtime
from api.settings import Settings
from audit import AuditEvent, verify_log
from identity.models import throttles
from identity.resealing import reseal_all
from tests.cli.test_cli import run
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[3]
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init.sh"
PUBLIC_URL = "https://shanakht.test"
INSUFFICIENT_PRIVILEGE = "42501"  # "permission denied" and "must be owner" alike
RESTRICT_VIOLATION = "23001"  # the audit triggers' refusals

# Every test here reaches PostgreSQL, some through their own connections (see conftest.py).
pytestmark = pytest.mark.database

postgres_only = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="PostgreSQL roles and grants: the PostgreSQL pass of .ci/run runs these",
)


@dataclass
class Roles:
    """The application role of one test, and the URLs of the schema's two roles."""

    name: str
    owner_url: str  # the superuser that made the schema, standing in for the owner role
    app_url: str
    data_dir: Path

    def settings(self, **changes: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": self.data_dir,
            "database_url": self.app_url,
            "database_migration_url": self.owner_url,
            "database_app_role": self.name,
            "audit_checkpoint_interval": 0,
            "public_url": PUBLIC_URL,
        }
        return Settings(**(values | changes))

    def env(self) -> dict[str, str]:
        """The environment compose gives its `migrate` service."""
        return {
            "SHANAKHT_DATA_DIR": str(self.data_dir),
            "SHANAKHT_DATABASE_URL": self.app_url,
            "SHANAKHT_DATABASE_MIGRATION_URL": self.owner_url,
            "SHANAKHT_DATABASE_APP_ROLE": self.name,
            "SHANAKHT_PUBLIC_URL": PUBLIC_URL,
            "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
        }


def _drop_role(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}
            ).scalar()
            if exists:
                # Its grants and default privileges in this database, then the role itself.
                connection.execute(text(f'DROP OWNED BY "{name}"'))
                connection.execute(text(f'DROP ROLE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture
def roles(database_url: str, tmp_path: Path) -> Iterator[Roles]:
    """A login role of its own (roles are cluster-wide: a unique name, dropped afterwards)."""
    name = f"shanakht_app_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"))
    admin.dispose()
    app_url = make_url(database_url).set(username=name, password=password)
    try:
        yield Roles(
            name=name,
            owner_url=database_url,
            app_url=app_url.render_as_string(hide_password=False),
            data_dir=tmp_path / "var",
        )
    finally:
        _drop_role(name)


@pytest.fixture
def app_runtime(roles: Roles) -> Iterator[Runtime]:
    """The API as production runs it: connected as the application role, after the schema
    was migrated (and the role granted) through the owner's URL."""
    runtime = open_runtime(roles.settings())
    prepare(runtime)  # migrates as the owner; the signing keys go in as the application role
    yield runtime
    runtime.close()


def _refused(engine: Engine, statement: str) -> str:
    """Run `statement` in a transaction of its own and return PostgreSQL's refusal."""
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(statement))
    sqlstate = getattr(caught.value.orig, "sqlstate", None)
    assert sqlstate == INSUFFICIENT_PRIVILEGE, f"{statement}: {caught.value.orig}"
    return str(caught.value.orig)


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        actor="client:test-department",
        action="locker.document.read",
        subject="p:subject",
        resource=f"doc-{i}",
        purpose="test",
    )


def _size(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return verify_log(connection, runtime.audit_verifier, runtime.audit_signer.name).size


@postgres_only
def test_the_app_role_does_its_work_but_cannot_rewrite_the_log_or_change_the_schema(
    app_runtime: Runtime, roles: Roles
) -> None:
    # Normal work: a department (an ordinary table, through a savepoint), audit appends and a
    # checkpoint (its id from a sequence), all as the application role.
    with app_runtime.transaction() as session:
        app_runtime.provider(session).roles.add_department("health", "Health Department")
        log = app_runtime.audit_log(session)
        log.append_many(_event(i) for i in range(3))
        log.checkpoint()
    with app_runtime.transaction() as session:
        app_runtime.audit_log(session).append(_event(3))
        assert app_runtime.provider(session).roles.departments() == [
            ("health", "Health Department")
        ]
    engine = app_runtime.engine
    with engine.begin() as connection:
        assert connection.execute(text("SELECT current_user")).scalar() == roles.name
        connection.execute(insert(throttles).values(key="k", window_start=text("now()"), hits=1))
        connection.execute(text("UPDATE identity_throttles SET hits = 2 WHERE key = 'k'"))
        connection.execute(text("DELETE FROM identity_throttles WHERE key = 'k'"))
    assert _size(app_runtime) == 4

    # Refused by privileges, before any trigger runs: history cannot be rewritten, and what
    # makes it append-only cannot be taken away.
    rewrites = {
        "audit_entries": "UPDATE audit_entries SET entry = entry",
        "audit_checkpoints": "UPDATE audit_checkpoints SET size = 0",
    }
    for table, rewrite in rewrites.items():
        assert f"permission denied for table {table}" in _refused(engine, rewrite)
        deletion = f"DELETE FROM {table}"  # noqa: S608 (a table name from the two above)
        assert "permission denied" in _refused(engine, deletion)
        assert "permission denied" in _refused(engine, f"TRUNCATE {table}")
        assert "must be owner" in _refused(engine, f"DROP TRIGGER {table}_append_only ON {table}")
        assert "must be owner" in _refused(engine, f"DROP TRIGGER {table}_no_truncate ON {table}")
        assert "must be owner" in _refused(engine, f"ALTER TABLE {table} DISABLE TRIGGER USER")
        assert "must be owner" in _refused(engine, f"ALTER TABLE {table} RENAME TO old_{table}")
        assert "must be owner" in _refused(engine, f"DROP TABLE {table}")
    refusals = [
        "DELETE FROM audit_head",  # the head only moves forward, by UPDATE
        "INSERT INTO audit_head (id, size, chain, frontier) VALUES (2, 0, '', '')",
        "TRUNCATE audit_head",
        "UPDATE alembic_version SET version_num = '0001'",
        "DROP FUNCTION audit_refuse_change()",
        "ALTER TABLE identity_departments ADD COLUMN planted text",
        "ALTER TABLE identity_departments OWNER TO CURRENT_USER",
        "DROP TABLE identity_departments",
        "TRUNCATE identity_departments",
        "CREATE TRIGGER planted BEFORE INSERT ON identity_departments "
        "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
        "CREATE TABLE planted (id int)",
        "CREATE FUNCTION planted() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ]
    for statement in refusals:
        _refused(engine, statement)

    # The log is whole, and the role still owns nothing and can become nobody else.
    assert _size(app_runtime) == 4
    owner_engine = create_engine(roles.owner_url)
    with owner_engine.connect() as owner:
        owned = owner.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
                " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
                " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
                " + (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
                " FROM pg_roles r WHERE r.rolname = :name"
            ),
            {"name": roles.name},
        ).scalar()
        triggers = owner.execute(
            text(
                "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
                "AND tgrelid IN (CAST('audit_entries' AS regclass), "
                "CAST('audit_checkpoints' AS regclass))"
            )
        ).scalar()
    owner_engine.dispose()
    assert owned == 0
    assert triggers == 4, "both append-only triggers on both tables, still enabled"


@postgres_only
def test_the_app_role_moves_the_audit_head_only_forward_to_an_entry_in_the_log(
    app_runtime: Runtime,
) -> None:
    """The application role may UPDATE the head (every append does), but a trigger lets it
    only grow the log, to the chain value of the entry it stops at: no rewind to hide the
    newest entries, no standing still with another chain, no size beyond the entries."""
    with app_runtime.transaction() as session:
        app_runtime.audit_log(session).append_many(_event(i) for i in range(3))
    with app_runtime.transaction() as session:
        app_runtime.audit_log(session).append(_event(3))
    engine = app_runtime.engine
    with engine.connect() as connection:
        second = connection.execute(text("SELECT chain FROM audit_entries WHERE seq = 1")).scalar()
        last = connection.execute(text("SELECT chain FROM audit_entries WHERE seq = 3")).scalar()
    moves = [
        ("UPDATE audit_head SET size = 2, chain = :chain", {"chain": second}),  # a rewind
        ("UPDATE audit_head SET size = 4, chain = :chain", {"chain": bytes(32)}),  # other chain
        ("UPDATE audit_head SET size = 5, chain = :chain", {"chain": last}),  # beyond the log
        ("UPDATE audit_head SET size = 4, chain = :chain", {"chain": last}),  # standing still
    ]
    for statement, params in moves:
        with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
            connection.execute(text(statement), params)
        assert getattr(caught.value.orig, "sqlstate", None) == RESTRICT_VIOLATION, statement
        assert "the audit head only moves forward" in str(caught.value.orig)
    with app_runtime.transaction() as session:
        app_runtime.audit_log(session).append_many(_event(i) for i in range(4, 6))
    assert _size(app_runtime) == 6, "appends still move it, and the log verifies"


@postgres_only
def test_a_table_a_later_migration_makes_is_granted_by_default(
    app_runtime: Runtime, roles: Roles
) -> None:
    owner = create_engine(roles.owner_url)
    with owner.begin() as connection:
        connection.execute(text("CREATE TABLE later_table (id serial PRIMARY KEY, note text)"))
    owner.dispose()
    with app_runtime.engine.begin() as connection:
        connection.execute(text("INSERT INTO later_table (note) VALUES ('new')"))
        connection.execute(text("UPDATE later_table SET note = 'changed'"))
        assert connection.execute(text("SELECT note FROM later_table")).scalar() == "changed"
    _refused(app_runtime.engine, "DROP TABLE later_table")
    _refused(app_runtime.engine, "TRUNCATE later_table")


@postgres_only
def test_db_upgrade_migrates_as_the_owner_and_the_app_role_alone_cannot(roles: Roles) -> None:
    # Without the owner's URL, the application role cannot create the schema, even where it
    # may use the schema (as everyone may use `public`).
    owner = create_engine(roles.owner_url)
    with owner.begin() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar()
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{roles.name}"'))
    owner.dispose()
    alone = {k: v for k, v in roles.env().items() if k != "SHANAKHT_DATABASE_MIGRATION_URL"}
    code, out = run(alone, "db", "upgrade")
    assert code == 2
    assert "permission denied for schema" in out
    # As compose's `migrate` runs it: the owner migrates, the role is granted.
    code, out = run(roles.env(), "db", "upgrade")
    assert code == 0, out
    assert run(roles.env(), "db", "upgrade")[0] == 0, "upgrading again grants again, harmlessly"
    # A command run with the application role's URL only (a replica's) still works.
    assert run(alone, "audit", "verify")[0] == 0
    app_engine = create_engine(roles.app_url)
    with app_engine.connect() as app:
        can = app.execute(
            text(
                "SELECT has_table_privilege('audit_entries', 'INSERT'), "
                "has_table_privilege('audit_entries', 'UPDATE'), "
                "has_table_privilege('audit_entries', 'DELETE'), "
                "has_table_privilege('audit_checkpoints', 'UPDATE'), "
                "has_table_privilege('identity_citizens', 'UPDATE')"
            )
        ).one()
    app_engine.dispose()
    assert tuple(can) == (True, False, False, False, True)


@postgres_only
def test_naming_the_owner_or_a_superuser_as_the_app_role_is_refused(roles: Roles) -> None:
    owner = make_url(roles.owner_url).username
    assert owner
    code, out = run(roles.env() | {"SHANAKHT_DATABASE_APP_ROLE": owner}, "db", "upgrade")
    assert code == 2
    assert "superuser" in out or "owns" in out
    code, out = run(
        roles.env() | {"SHANAKHT_DATABASE_APP_ROLE": "no_such_role_here"}, "db", "upgrade"
    )
    assert code == 2
    assert "which PostgreSQL does not know" in out


def test_production_serve_refuses_a_schema_that_is_not_migrated(
    database_url: str, tmp_path: Path
) -> None:
    """A production replica migrates nothing (it connects as the application role): it names
    the step to run instead. Development still migrates on `serve`."""
    env = {
        "SHANAKHT_ENV": "production",
        "SHANAKHT_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SHANAKHT_DATA_DIR": str(tmp_path / "var"),
        "SHANAKHT_DATABASE_URL": database_url,
        "SHANAKHT_PUBLIC_URL": PUBLIC_URL,
    }
    # An address no socket binds: were the check missing, serving fails at once, not hangs.
    code, out = run(env, "serve", "--host", "256.256.256.256")
    assert code == 2
    assert "the schema is at no revision" in out
    assert "run `shanakht db upgrade`" in out


def _psql() -> str | None:
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    return str(candidates[-1]) if candidates else None


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier was made from `password` (RFC 5802, 7677)."""
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return (
        method == "SCRAM-SHA-256"
        and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)
        and hmac.digest(salted, b"Server Key", "sha256") == base64.b64decode(server_key)
    )


def _init_env(secrets_dir: Path, database: str, owner: str, app: str) -> dict[str, str]:
    """How postgres-init runs deploy/postgres/init.sh: as the cluster superuser."""
    url = make_url(POSTGRES_URL)
    return {
        "PATH": f"{Path(str(_psql())).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PGHOST": url.host or "localhost",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        "PGDATABASE": database,
        "PGPASSWORD": url.password or "",
        "SHANAKHT_SECRETS": str(secrets_dir),
        "SHANAKHT_OWNER_ROLE": owner,
        "SHANAKHT_APP_ROLE": app,
    }


def _init(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A database of its own (init.sh gives the database and its public schema to the owner)."""
    name = f"shanakht_init_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield name
        _drop_database(name)
    finally:
        admin.dispose()


def _drop_database(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@postgres_only
@pytest.mark.skipif(_psql() is None, reason="deploy/postgres/init.sh runs psql")
def test_the_compose_init_script_makes_an_owner_and_an_app_role_with_nothing_else(
    tmp_path: Path, scratch_database: str
) -> None:
    """Two login roles with nothing else: the owner, not a superuser, owns the database (and so
    migrates it), and the API's role owns nothing; a second run rotates both passwords."""
    suffix = uuid.uuid4().hex[:10]
    owner, app = f"shanakht_owner_{suffix}", f"shanakht_app_{suffix}"
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    env = _init_env(secrets_dir, scratch_database, owner, app)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        for _rotation in range(2):
            passwords = {owner: secrets.token_urlsafe(24), app: secrets.token_urlsafe(24)}
            (secrets_dir / "postgres_owner_password").write_text(passwords[owner])
            (secrets_dir / "postgres_app_password").write_text(passwords[app])
            done = _init(env)
            assert done.returncode == 0, done.stderr
            assert f"PostgreSQL roles {owner} (owner) and {app} ready" in done.stdout
            for password in passwords.values():
                assert password not in done.stdout + done.stderr
            with admin.connect() as connection:
                for name, password in passwords.items():
                    row = connection.execute(
                        text("SELECT * FROM pg_authid WHERE rolname = :name"), {"name": name}
                    ).one()
                    memberships = connection.execute(
                        text("SELECT count(*) FROM pg_auth_members WHERE member = :oid"),
                        {"oid": row.oid},
                    ).scalar()
                    assert row.rolcanlogin
                    others = (row.rolsuper, row.rolcreatedb, row.rolcreaterole, row.rolreplication)
                    assert others == (False, False, False, False), name
                    assert row.rolbypassrls is False
                    assert memberships == 0
                    assert _scram_matches(row.rolpassword, password), "its secret's password"
        _migrates_as_the_owner(scratch_database, owner, passwords[owner], app)
    finally:
        admin.dispose()
        _drop_database(scratch_database)  # the owner's: it goes before the owner can
        for role in (owner, app):
            _drop_role(role)


def _migrates_as_the_owner(database: str, owner: str, password: str, app: str) -> None:
    """`shanakht db upgrade` as the owner (no superuser) builds the schema and grants `app`."""
    url = make_url(POSTGRES_URL).set(username=owner, password=password, database=database)
    engine = create_engine(url)
    try:
        upgrade(engine, app_role=app)
        with engine.connect() as connection:
            owners = connection.execute(
                text(
                    "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
                    "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
                )
            ).scalars()
            assert set(owners) == {owner}
            may = connection.execute(
                text(
                    "SELECT has_table_privilege(:app, 'audit_entries', 'INSERT'), "
                    "has_table_privilege(:app, 'audit_entries', 'UPDATE'), "
                    "(SELECT datdba::regrole::text FROM pg_database WHERE datname = :db)"
                ),
                {"app": app, "db": database},
            ).one()
            assert tuple(may) == (True, False, owner)
    finally:
        engine.dispose()


@postgres_only
@pytest.mark.skipif(_psql() is None, reason="deploy/postgres/init.sh runs psql")
def test_the_init_script_refuses_an_owner_that_is_the_superuser(
    tmp_path: Path, scratch_database: str
) -> None:
    """A cluster from the older compose file, whose superuser was the owner, is not left so."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for secret in ("postgres_owner_password", "postgres_app_password"):
        (secrets_dir / secret).write_text(secrets.token_urlsafe(24))
    superuser = make_url(POSTGRES_URL).username or "postgres"
    app = f"shanakht_app_{uuid.uuid4().hex[:10]}"
    done = _init(_init_env(secrets_dir, scratch_database, superuser, app))
    assert done.returncode != 0
    assert "the owner role is the superuser this script connects as" in done.stderr
    assert "docs/deployment.md" in done.stderr


@postgres_only
def test_the_app_role_records_key_fingerprints_but_cannot_change_or_delete_one(
    app_runtime: Runtime,
) -> None:
    """What `serve` and `/readyz` compare the keys folder with cannot be rewritten to fit
    another folder by whoever holds the API's database credentials."""
    check_keys_fit_database(app_runtime)  # records the keys, as the application role
    with app_runtime.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM key_fingerprints")).scalar()
    _refused(app_runtime.engine, "UPDATE key_fingerprints SET fingerprint = 'x'")
    _refused(app_runtime.engine, "DELETE FROM key_fingerprints")


@postgres_only
def test_a_key_retirement_is_recorded_as_the_owner_and_the_app_role_only_reads_it(
    roles: Roles, app_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retired key version's record is what refuses its key file coming back, and what stops
    replicas opening it: whoever holds the API's database credentials can neither write one
    (to take a version away from every replica) nor delete one (to let a leaked version open
    again). `keys retire` writes it through the owner's URL."""
    monkeypatch.setattr(key_retirement, "SETTLE_SECONDS", 0.0)
    check_keys_fit_database(app_runtime)
    app_runtime.keys.add_version(IDENTITY_SEAL_KEY)
    sealer = app_runtime.identity.sealer
    reseal_all(
        app_runtime.transaction, sealer, app_runtime.row_seal, app_runtime.audit_log, actor="cli"
    )  # fmt: skip  (the signing keys, as the application role)
    api_only = open_runtime(roles.settings(database_migration_url=None))
    try:
        with pytest.raises(StartupError, match="set SHANAKHT_DATABASE_MIGRATION_URL"):
            retire_versions(api_only, PII, actor="cli")
    finally:
        api_only.close()
    assert len(app_runtime.keys.versions(IDENTITY_SEAL_KEY)) == 2, "nothing deleted"
    done = retire_versions(app_runtime, PII, actor="cli")
    assert done.versions == (1,)
    assert app_runtime.keys.versions(IDENTITY_SEAL_KEY) == [f"{IDENTITY_SEAL_KEY}.v2"]
    with app_runtime.engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM key_retirements")).scalars().all() == [
            IDENTITY_SEAL_KEY
        ]
    _refused(
        app_runtime.engine,
        "INSERT INTO key_retirements (name, fingerprint, retired_at) "
        "VALUES ('identity-seal.v2', 'f', CURRENT_TIMESTAMP)",
    )
    _refused(app_runtime.engine, "UPDATE key_retirements SET name = 'x'")
    _refused(app_runtime.engine, "DELETE FROM key_retirements")
    size = _size(app_runtime)  # the log verifies with the entry the owner appended last
    with app_runtime.engine.connect() as connection:
        last = connection.execute(
            text("SELECT entry FROM audit_entries WHERE seq = :s"), {"s": size - 1}
        )
        assert '"keys.pii.retired"' in bytes(last.scalar_one()).decode()
