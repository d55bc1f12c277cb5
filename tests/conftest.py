"""Shared fixtures: a fresh database per test, SQLite by default, PostgreSQL when
SHANAKHT_DATABASE_URL names one (as `.ci/run` does on its second pass).

A test that asks for a runtime (or a served site) gets its database already migrated, as a copy
of one database the session migrated once (`migrated_template`): running every migration took
about 0.45 s a test on SQLite and 0.4-0.8 s on PostgreSQL, some 900 tests each pass, where a copy
takes milliseconds on SQLite and a fifth of a second on PostgreSQL (CREATE DATABASE ... TEMPLATE).
The other tests get an empty one: the migrations' own tests start from nothing.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from api.migrate import upgrade
from api.runtime import Runtime, open_runtime
from api.settings import Settings
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


@pytest.fixture
def backend() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


def _admin() -> Engine:
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at the schema's head, made once a session: a SQLite file's path, or the name
    of a PostgreSQL database that nothing stays connected to (a template must be idle)."""
    if not POSTGRES_URL:
        path = tmp_path_factory.mktemp("template") / "migrated.db"
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    name = f"shanakht_template_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(POSTGRES_URL).set(database=name))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _sqlite_copy(template: str, path: Path) -> str:
    """SQLite's backup API, not a file copy: it copies a consistent database whatever state
    the template's journal is in."""
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return f"sqlite:///{path}"


def _postgres_copy(template: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own for each test: a SQLite file, or a PostgreSQL schema (empty), or
    database (migrated). Migrated (a copy of `migrated_template`) when the test wants a runtime
    or a site (`WANT_MIGRATED`), empty otherwise."""
    if WANT_MIGRATED.intersection(request.fixturenames):
        template: str = request.getfixturevalue("migrated_template")
        if not POSTGRES_URL:
            yield _sqlite_copy(template, tmp_path / "test.db")
        else:
            yield from _postgres_copy(template)
        return
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
