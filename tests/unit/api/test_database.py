"""The transaction rules of `api.database`, on whichever database the suite runs on: reads never
wait for a writer, and a read that locks what it read (FOR UPDATE) before writing loses no
update, across threads and across processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import Histogram
from sqlalchemy import Column, Engine, Integer, MetaData, Table, select, update
from sqlalchemy.engine import make_url

from api import database as database_module
from api.database import (
    CHECKPOINT_INTERVAL,
    WAL_BACKSTOP_PAGES,
    WRITE_LOCK_HELD,
    WRITE_LOCK_WAIT,
    WalCheckpointer,
    create_db_engine,
)

metadata = MetaData()
counter = Table("counter", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))
INCREMENTS = 40


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(counter.insert().values(id=1, n=0))
    yield engine
    engine.dispose()


def _value(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(counter.c.n)).scalar_one())


def increment(database_url: str, times: int) -> None:
    """Read under lock, then write what was read plus one: the pattern every service uses."""
    engine = create_db_engine(database_url)
    try:
        for _ in range(times):
            with engine.begin() as connection:
                n = connection.execute(select(counter.c.n).with_for_update()).scalar_one()
                connection.execute(update(counter).values(n=n + 1))
    finally:
        engine.dispose()


def test_reads_go_on_while_a_writer_holds_its_transaction(engine: Engine) -> None:
    with engine.connect() as writer:
        writer.execute(update(counter).values(n=5))  # the write lock, until the rollback
        with ThreadPoolExecutor(1) as pool:
            seen = pool.submit(_value, engine).result(timeout=10)
        writer.rollback()
    assert seen == 0  # the other connection read the last committed value, without waiting


def test_a_writer_waits_for_the_one_before_it_and_then_sees_its_write(engine: Engine) -> None:
    holding = threading.Event()

    def second() -> int:
        holding.wait(10)
        with engine.begin() as connection:
            return int(connection.execute(select(counter.c.n).with_for_update()).scalar_one())

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(second)
        with engine.begin() as connection:
            connection.execute(update(counter).values(n=7))
            holding.set()
            time.sleep(0.3)
            assert not later.done()
        assert later.result(timeout=30) == 7


def test_threads_lose_no_update(engine: Engine, database_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(increment, database_url, INCREMENTS) for _ in range(4)]:
            done.result(timeout=120)
    assert _value(engine) == 4 * INCREMENTS


def test_processes_lose_no_update(engine: Engine, database_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(3, mp_context=spawn) as pool:
        for done in [pool.submit(increment, database_url, INCREMENTS) for _ in range(3)]:
            done.result(timeout=120)
    assert _value(engine) == 3 * INCREMENTS


def _observed(histogram: Histogram) -> tuple[float, float]:
    """(count, sum) of a histogram so far."""
    samples = {s.name: s.value for metric in histogram.collect() for s in metric.samples}
    return samples[histogram._name + "_count"], samples[histogram._name + "_sum"]


def test_sqlite_writers_report_how_long_they_waited_for_and_held_the_write_lock(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'locked.db'}")  # on either suite
    try:
        metadata.create_all(engine)
        waited, held = _observed(WRITE_LOCK_WAIT), _observed(WRITE_LOCK_HELD)
        with engine.begin() as connection:  # a read takes no lock and reports nothing
            assert connection.execute(select(counter.c.n)).all() == []
        assert (_observed(WRITE_LOCK_WAIT), _observed(WRITE_LOCK_HELD)) == (waited, held)
        with engine.begin() as connection:
            connection.execute(counter.insert().values(id=1, n=0))
            time.sleep(0.05)
        assert _observed(WRITE_LOCK_WAIT)[0] == waited[0] + 1
        count, seconds = _observed(WRITE_LOCK_HELD)
        assert count == held[0] + 1
        assert seconds - held[1] >= 0.05
    finally:
        engine.dispose()


SQLITE_DEFAULT_AUTOCHECKPOINT = 1000  # pages: where a commit used to stop to checkpoint
WAL_HEADER, FRAME_HEADER = 32, 24


def _wal_frames(database: Path, page_size: int) -> int:
    """Frames written to the WAL file since it was made (a checkpoint does not shrink it)."""
    wal = database.with_name(database.name + "-wal")
    return max(0, (wal.stat().st_size - WAL_HEADER) // (page_size + FRAME_HEADER))


def rows_in_the_file_alone(database: Path, copy: Path, table: str = "counter") -> int:
    """The rows of `table` the database file holds without its WAL: what checkpoints have
    copied. Read from a copy, made while nothing writes to the file."""
    copy.write_bytes(database.read_bytes())
    with contextlib.closing(sqlite3.connect(copy)) as connection:
        (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(count)


def test_commits_leave_the_wal_to_the_background_checkpoint(tmp_path: Path) -> None:
    """A commit does not stop, holding the write lock, to copy the WAL into the database (as
    SQLite does every 1,000 pages by default); the server's checkpointer copies all of it."""
    database = tmp_path / "wal.db"
    engine = create_db_engine(f"sqlite:///{database}")  # on either suite
    checkpointer = WalCheckpointer(str(database), CHECKPOINT_INTERVAL)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE pad (p TEXT)")
        with contextlib.closing(sqlite3.connect(database)) as own:
            (page_size,) = own.execute("PRAGMA page_size").fetchone()
            assert checkpointer.checkpoint(own) == 0  # the empty tables, in the file
            padding = "x" * (page_size * 3 // 4)  # a row fills most of a page
            for n in range(1, 1001):  # about 4,000 pages: well past the old threshold
                with engine.begin() as connection:
                    connection.execute(counter.insert().values(id=n, n=n))
                    connection.exec_driver_sql("INSERT INTO pad VALUES (?)", (padding,))
            frames = _wal_frames(database, page_size)
            assert SQLITE_DEFAULT_AUTOCHECKPOINT * 2 < frames < WAL_BACKSTOP_PAGES
            assert rows_in_the_file_alone(database, tmp_path / "before.db") == 0
            assert checkpointer.checkpoint(own) == 0  # no reader held any of it back
        assert rows_in_the_file_alone(database, tmp_path / "after.db") == 1000
    finally:
        engine.dispose()


def test_a_wal_emptied_by_a_checkpoint_is_cut_back_to_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WAL that grew (here past a limit lowered for the test) is cut back to the limit at the
    first write after a checkpoint has copied all of it, instead of keeping its size on disk."""
    limit = 256 * 1024
    monkeypatch.setattr(database_module, "WAL_SIZE_LIMIT_BYTES", limit)
    database = tmp_path / "wal.db"
    engine = create_db_engine(f"sqlite:///{database}")
    wal = database.with_name(database.name + "-wal")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE pad (p TEXT)")
            for _ in range(400):  # a row fills most of a 4 KiB page: about 1.6 MB of WAL
                connection.exec_driver_sql("INSERT INTO pad VALUES (?)", ("x" * 3000,))
        grown = wal.stat().st_size
        assert grown > 4 * limit
        with contextlib.closing(sqlite3.connect(database)) as own:
            assert WalCheckpointer(str(database), CHECKPOINT_INTERVAL).checkpoint(own) == 0
        assert wal.stat().st_size == grown, "a checkpoint alone leaves the file as it was"
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO pad VALUES ('after')")
        assert wal.stat().st_size <= limit
    finally:
        engine.dispose()


def test_the_checkpointer_runs_on_its_own_thread_until_stopped(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    """Started for a SQLite database (none for PostgreSQL, which has no WAL of this kind), it
    copies commits into the file within a few periods, and copies none once stopped."""
    checkpointer = WalCheckpointer.started(engine, 0.05)
    if backend != "sqlite":
        assert checkpointer is None
        return
    assert checkpointer is not None
    database, copy = Path(str(engine.url.database)), tmp_path / "copy.db"
    try:
        with engine.begin() as connection:
            connection.execute(counter.insert().values(id=2, n=0))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(sqlite3.DatabaseError):  # a copy torn by a checkpoint
                if rows_in_the_file_alone(database, copy) == 2:
                    break
        else:
            pytest.fail("the checkpointer did not copy the commit into the file")
    finally:
        checkpointer.stop()
    with engine.begin() as connection:
        connection.execute(counter.insert().values(id=3, n=0))
    time.sleep(0.3)  # six periods
    assert rows_in_the_file_alone(database, copy) == 2


def test_postgresql_connections_ask_for_tcp_keepalives_unless_the_url_says(
    database_url: str, backend: str
) -> None:
    """Keepalives find a server that vanished without closing the connection (the checkout's
    socket check then sees the error); a URL's own setting is kept."""
    if backend != "postgresql":
        pytest.skip("libpq's keepalives are PostgreSQL's")
    own = make_url(database_url).update_query_dict({"keepalives_idle": "7"})
    for url, idle in ((make_url(database_url), "60"), (own, "7")):
        engine = create_db_engine(url)
        try:
            with engine.connect() as connection:
                dbapi = connection.connection.dbapi_connection
                assert dbapi is not None
                parameters = dbapi.info.get_parameters()
        finally:
            engine.dispose()
        assert parameters["keepalives_idle"] == idle
        assert (parameters["keepalives_interval"], parameters["keepalives_count"]) == ("10", "3")
