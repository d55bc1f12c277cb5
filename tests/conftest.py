"""Shared fixtures: a fresh database per test, SQLite by default, PostgreSQL when
SHANAKHT_DATABASE_URL names one (as `.ci/run` does on its second pass).

A test that asks for a runtime (or a served site) gets its database already at the schema's
head (`migrate_quickly`): running every migration took about 0.45 s a test on SQLite and twice
that on PostgreSQL, in some 900 tests on each pass.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from api.migrate import upgrade
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from identity.oidc import keys as signing_key_module
from identity.oidc.keys import SigningKey
from identity.oidc.keys import _generate as real_generate
from tests.s3_server import s3_admin, s3_endpoint

__all__ = ["s3_admin", "s3_endpoint"]  # session fixtures: one S3 server for every test

POSTGRES_URL = os.environ.get("SHANAKHT_DATABASE_URL", "")
# The fixtures whose tests want the schema at the head, not an empty database.
WANT_MIGRATED = frozenset({"runtime", "site"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, only the tests that reach a database. The others do not depend
    on the backend and ran, identically, on the SQLite pass; running them again cost CI minutes
    and proved nothing. A test reaches the database through the `database_url` fixture, or,
    when it builds its own connection, says so with the `database` mark."""
    if not POSTGRES_URL:
        return
    kept: list[pytest.Item] = []
    repeats: list[pytest.Item] = []
    for item in items:
        reaches = "database_url" in getattr(item, "fixturenames", ()) or item.get_closest_marker(
            "database"
        )
        (kept if reaches else repeats).append(item)
    if repeats:
        config.hook.pytest_deselected(items=repeats)
        items[:] = kept


def pytest_report_header() -> str:
    backend = make_url(POSTGRES_URL).get_backend_name() if POSTGRES_URL else "sqlite"
    return f"shanakht database backend: {backend}"


# Signing keys made during the session, by algorithm: the n-th key a test makes is the n-th of
# its list, made on first need (`_signing_keys_made_once`).
_SIGNING_KEYS: dict[str, list[SigningKey]] = {}


@pytest.fixture(autouse=True)
def _signing_keys_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every runtime that starts makes its OIDC signing keys, and a 2048-bit RSA key takes
    ~90 ms to generate: 1.5 minutes of each CI pass. So a test's first RS256 key is the
    session's first, its second the second, and so on: within a test every key made is still
    distinct (a rotation gets a new one, two deployments differ), and each is generated at test
    time, never stored."""
    made: dict[str, int] = {}

    def generate(alg: str) -> SigningKey:
        keys = _SIGNING_KEYS.setdefault(alg, [])
        n = made[alg] = made.get(alg, -1) + 1
        if n == len(keys):
            keys.append(real_generate(alg))
        return keys[n]

    monkeypatch.setattr(signing_key_module, "_generate", generate)


@pytest.fixture
def backend() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


def _admin() -> Engine:
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _in_schema(schema: str) -> str:
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def _schema() -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped after: its URL."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _in_schema(schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


Statement = tuple[str, Any, bool]  # the SQL, its parameters, and whether it was executemany


def _recorded_migration() -> tuple[Statement, ...]:
    """Every statement `upgrade` sends while it migrates an empty schema to the head."""
    sent: list[Statement] = []

    def record(_c: object, _cur: object, sql: str, params: Any, _ctx: object, many: bool) -> None:
        sent.append((sql, params, many))

    with _schema() as url:
        engine = create_engine(url)
        event.listen(engine, "before_cursor_execute", record)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    return tuple(sent)


def _replay(statements: tuple[Statement, ...], url: str) -> None:
    """Send `statements` again, in one transaction, to the (empty) schema of `url`."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for sql, params, many in statements:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params or None)
    finally:
        engine.dispose()


def _sqlite_copy(template: Path, url: str) -> None:
    """SQLite's backup API, not a file copy: it copies a consistent database whatever state
    the template's journal is in."""
    path = make_url(url).database or ""
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)


@pytest.fixture(scope="session")
def migrate_quickly(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], None]:
    """Brings an empty database to the schema's head without running the migrations again: on
    SQLite by copying a file migrated once a session; on PostgreSQL, which cannot copy a schema,
    by sending again the statements that migrating an empty schema sent once a session (the
    schema comes out the same, column for column, index, constraint, trigger and function; a
    whole database copied from a template, CREATE DATABASE ... TEMPLATE, took as long as the
    migrations)."""
    if POSTGRES_URL:
        return partial(_replay, _recorded_migration())
    template = tmp_path_factory.mktemp("template") / "migrated.db"
    engine = create_engine(f"sqlite:///{template}")
    upgrade(engine)
    engine.dispose()
    return partial(_sqlite_copy, template)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own for each test: a SQLite file, or a PostgreSQL schema. At the
    schema's head (`migrate_quickly`) when the test wants a runtime or a site
    (`WANT_MIGRATED`), empty otherwise: the migrations' own tests start from nothing."""
    with ExitStack() as stack:
        if POSTGRES_URL:
            url = stack.enter_context(_schema())
        else:
            url = f"sqlite:///{tmp_path / 'test.db'}"
        if WANT_MIGRATED.intersection(request.fixturenames):
            request.getfixturevalue("migrate_quickly")(url)
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        audit_checkpoint_interval=0,
        public_url="https://shanakht.test",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A runtime on a database already at the schema's head (see `database_url`)."""
    runtime = open_runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the CLI against this test's data directory and database.

    PYTHONPATH is passed on, so a CLI run in a subprocess runs the code under test (a worktree
    first on the path) rather than whichever checkout the virtualenv's `shanakht` was made for.
    """
    passed = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    return {
        **passed,
        "SHANAKHT_DATA_DIR": str(settings.data_dir),
        "SHANAKHT_DATABASE_URL": str(settings.database_url),
        "SHANAKHT_PUBLIC_URL": settings.public_url,
    }
