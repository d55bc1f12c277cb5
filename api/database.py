"""Database engines: SQLite for the embedded default, PostgreSQL in production.

SQLite runs in WAL mode (readers never block the writer) with foreign keys on. SQLite allows
one writer at a time, and a transaction that reads first and writes later can fail outright
with SQLITE_BUSY_SNAPSHOT when another writer got in between. So a connection reads in
autocommit until its first write (an INSERT, UPDATE, DELETE, DDL, or a SELECT ... FOR UPDATE);
that statement first takes the write lock with BEGIN IMMEDIATE, and everything after it, up to
COMMIT or ROLLBACK, sees the newest data and is alone. The code is therefore held to
PostgreSQL's READ COMMITTED rules on both databases: a read that decides a write must lock
what it read (FOR UPDATE) or be repeated after the first write; the tests run on both.
Reads never wait for the writer, and the write lock is held only from the first write to the
commit, not through a request's reads, key loads and signatures.

SQLite's own busy handler waits by sleeping and polling (naps of up to 100 ms), so under load
a writer sleeps long after the lock came free and the unlucky ones wait seconds. Writers here
queue on locks that wake the next one the moment they are released instead: a lock per
process (threads) and an advisory `flock` on a file beside the database (processes). The busy
timeout stays for writers outside this queue (the sqlite3 shell, another program).

The queue is where an embedded deployment runs out first (every write of every process passes
through it), so `/metrics` shows how long writers wait for it and hold it: a lock held most of
each second is the sign to move to PostgreSQL.

A commit used to copy the WAL back into the database file now and then (SQLite's automatic
checkpoint, every 1,000 pages): that commit, still holding the write lock, took up to 17 ms with
its fsync, while every other writer of every process waited, and 1% of commits spent 55% of all
commit time so. The server now checkpoints in the background instead (`WalCheckpointer`); the
automatic checkpoint stays as a backstop at `WAL_BACKSTOP_PAGES`. It counts the pages written
since the WAL last started over, which it does only after a checkpoint that copied everything
with no reader still on the old pages: so it is reached when nothing else checkpoints (the CLI
on its own), or when a long read (`audit verify`, a backup) keeps the WAL from starting over.

PostgreSQL connections outlive a server restart or a terminated backend only as dead sockets.
They used to be pinged (`pool_pre_ping`, a `SELECT 1` round trip) at every checkout, which was
most of what a token grant cost the server: see `_postgres_checkout`, which finds them dead with
a look at the socket instead, and `Runtime.rerunnable` for what happens when one dies under a
transaction.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import select
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("shanakht.database")

BUSY_TIMEOUT_SECONDS = 30
# SQLite connections are dear to open (a file, WAL set-up, pragmas) and each keeps a page
# cache: keep enough for the requests a server runs at once, open more only in bursts (up to
# anyio's 40 worker threads).
POOL_SIZE = 20
POOL_OVERFLOW = 20
# The background checkpoint's period, and the automatic checkpoint's threshold (pages of
# 4 KiB) behind it: at 500 token grants a second a WAL grows by about 4,000 pages a second.
CHECKPOINT_INTERVAL = 0.5
WAL_BACKSTOP_PAGES = 10_000
# What the WAL file is cut back to once a checkpoint has emptied it. Without a limit SQLite
# reuses the file from its start but never shrinks it, so a WAL grown while a long read (a
# backup, an integrity check) held the checkpoints back kept that size on disk for as long as
# the service ran. The backstop's size: a WAL of normal traffic is never cut and regrown.
WAL_SIZE_LIMIT_BYTES = WAL_BACKSTOP_PAGES * 4096
_LOCK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
WRITE_LOCK_WAIT = Histogram(
    "shanakht_sqlite_write_lock_wait_seconds",
    "Time a transaction queued for SQLite's write lock (other threads, then other processes)",
    buckets=_LOCK_BUCKETS,
)
WRITE_LOCK_HELD = Histogram(
    "shanakht_sqlite_write_lock_held_seconds",
    "Time a transaction held SQLite's write lock, from its first write to its commit",
    buckets=_LOCK_BUCKETS,
)


class _WriterQueue:
    """One writer at a time across the threads and processes that use one SQLite file.

    Taken before BEGIN IMMEDIATE, given back when the connection returns to the pool (after
    its COMMIT or ROLLBACK). A process that dies gives its file lock back with its file
    descriptors. Only the thread holding the process's lock ever waits on the file
    lock, so a thread that nests two transactions fails after the timeout, as SQLite would,
    instead of waiting forever.
    """

    def __init__(self, database: str) -> None:
        self._path = Path(database + ".writer-lock")
        self._threads = _thread_lock_for(os.path.realpath(database))

    def open(self, info: dict[str, Any]) -> None:
        info["writer_fd"] = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        info["writer_queue"] = self

    def acquire(self, info: dict[str, Any]) -> None:
        if "writer_holds" in info:
            return  # a second transaction on the connection that already holds the queue
        asked = perf_counter()
        if not self._threads.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        try:
            fcntl.flock(info["writer_fd"], fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        info["writer_holds"] = perf_counter()
        WRITE_LOCK_WAIT.observe(info["writer_holds"] - asked)

    def release(self, info: dict[str, Any]) -> None:
        since = info.pop("writer_holds", None)
        if since is not None:
            # The thread lock first: it is released without giving up the GIL, which the
            # flock call does (and may wait a while to get back).
            self._threads.release()
            fcntl.flock(info["writer_fd"], fcntl.LOCK_UN)
            WRITE_LOCK_HELD.observe(perf_counter() - since)

    def close(self, info: dict[str, Any]) -> None:
        self.release(info)
        fd = info.pop("writer_fd", None)
        if fd is not None:
            os.close(fd)


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock_for(path: str) -> threading.Lock:
    """One lock per database file per process, however many engines open it: two engines on
    one file (a test, a benchmark, the CLI inside a server) must queue on the same lock, or a
    thread holding one could wait on the file lock for ever instead of timing out."""
    with _thread_locks_guard:
        return _thread_locks.setdefault(path, threading.Lock())


def _configure_sqlite(engine: Engine) -> None:
    database = engine.url.database
    queue = _WriterQueue(database) if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Autocommit for pysqlite: transactions begin at the first write (see above).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a commit survives a crash of the process; only a power loss or
        # kernel crash can drop the last transactions, and never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cursor.close()
        if queue is not None:
            queue.open(record.info)

    @event.listens_for(engine, "before_cursor_execute")
    def _on_execute(
        connection: Connection, _cursor: Any, statement: str, _p: Any, context: Any, _m: bool
    ) -> None:
        if _writes(statement, context):
            begin_writing(connection)

    if queue is not None:
        event.listen(engine, "checkin", lambda _dbapi, record: queue.release(record.info))
        event.listen(engine, "close", lambda _dbapi, record: queue.close(record.info))
        event.listen(engine, "invalidate", lambda _dbapi, record, _exc: queue.release(record.info))


def _writes(statement: str, context: Any) -> bool:
    """Whether a statement needs the write lock (see the module's docstring)."""
    if context.isinsert or context.isupdate or context.isdelete or context.isddl:
        return True
    built = getattr(context.compiled, "statement", None)
    if isinstance(built, Select):
        return built._for_update_arg is not None
    # Text, savepoints, a compound or other statement: only a plain read goes without the lock.
    return not statement.lstrip()[:6].upper().startswith(("SELECT", "PRAGMA"))


def begin_writing(connection: Connection) -> None:
    """Take SQLite's write lock now, before the first write (a no-op on PostgreSQL): for work
    that must be alone from its first read, such as a migration deciding what to migrate."""
    if connection.dialect.name != "sqlite":
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is None or dbapi.in_transaction:
        return
    info = connection.connection.info
    queue: _WriterQueue | None = info.get("writer_queue")
    if queue is not None:
        queue.acquire(info)
    dbapi.execute("BEGIN IMMEDIATE")


class WalCheckpointer:
    """Copies SQLite's WAL back into its database file every `interval` seconds, outside every
    writer's lock, on a thread and a connection of its own: neither the pool's threads nor its
    connections, which a busy server may keep for seconds while the WAL grows towards the
    backstop that stops a commit.

    PASSIVE mode takes no writer's lock and waits for no reader; pages a reader still needs
    stay in the WAL for the next round. Two processes checkpointing at once is harmless: the
    second finds the checkpoint lock taken and copies nothing."""

    def __init__(self, database: str, interval: float) -> None:
        self.database = database
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._complained = -math.inf

    @classmethod
    def started(cls, engine: Engine, interval: float) -> WalCheckpointer | None:
        """A running checkpointer for `engine`'s database; None where there is no WAL
        (PostgreSQL, an in-memory database)."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        checkpointer = cls(database, interval)
        checkpointer._thread.start()
        return checkpointer

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=BUSY_TIMEOUT_SECONDS)

    def checkpoint(self, connection: sqlite3.Connection) -> int:
        """One PASSIVE checkpoint: the frames it had to leave in the WAL for a reader (none
        when another process's checkpoint was running: that one copies them)."""
        busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return 0 if busy else max(0, int(logged) - int(copied))

    def _run(self) -> None:
        connection = sqlite3.connect(self.database, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            while not self._stopping.wait(self._interval):
                try:
                    left = self.checkpoint(connection)
                except sqlite3.Error as exc:
                    self._complain("the WAL checkpoint failed: %s", exc)
                    continue
                if left > WAL_BACKSTOP_PAGES // 2:
                    self._complain("the WAL checkpoint left %d pages behind for a reader", left)
        finally:
            connection.close()

    def _complain(self, message: str, *args: object) -> None:
        """A warning at most once a minute: a full disk must not fill the log as well."""
        now = monotonic()
        if now - self._complained >= 60:
            self._complained = now
            log.warning(message, *args)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees the database as of its first read, for a long read that must be
    consistent with itself (`audit verify` reads checkpoints, entries and the head in separate
    statements while appends go on). SQLite: a deferred transaction (a WAL read snapshot, no
    write lock); PostgreSQL: REPEATABLE READ."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            dbapi = connection.connection.dbapi_connection
            if dbapi is None:
                raise RuntimeError("the SQLite connection is closed")
            dbapi.execute("BEGIN")
            try:
                yield connection
            finally:
                connection.rollback()
        return
    with engine.connect() as connection:
        reading = connection.execution_options(isolation_level="REPEATABLE READ")
        with reading.begin():
            yield reading


# A pooled PostgreSQL connection older than this is replaced at its next checkout: a backstop
# for what the socket check cannot see, and it keeps backends from growing old (their caches).
POSTGRES_RECYCLE_SECONDS = 30 * 60
# TCP keepalives (libpq's, unless the URL sets its own): a peer that vanished without closing the
# connection (a fail-over, a cut cable, a NAT that forgot the flow) is found within about
# idle + interval * count seconds, and the socket then reports an error, which the checkout
# check sees; the probes also keep a NAT or firewall from forgetting an idle connection.
POSTGRES_KEEPALIVES = {"keepalives_idle": 60, "keepalives_interval": 10, "keepalives_count": 3}
_DEAD = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def _postgres_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection whose server side is gone, without a round trip.

    An idle connection between transactions has nothing to read: the server speaks only when
    asked. A backend that ends (pg_terminate_backend, a restart, an idle timeout, a fail-over
    that closes it) first writes its FATAL message and closes the socket, so its socket turns
    readable, or reports a hang-up or an error. A zero-timeout poll (about a microsecond) sees
    that; the DisconnectionError makes the pool close this connection and check out a new one
    (SQLAlchemy's documented "pessimistic" hook), so the request never sees the dead one.

    What it cannot see is a connection that dies between this check and its first statement,
    or a peer that vanished without a word (until the keepalives notice): those fail at their
    first statement, SQLAlchemy invalidates the connection and the pool, and the unit of work
    is run once more (`Runtime.rerunnable`) or answered 503 with Retry-After
    (`api.problems`). A healthy connection with something to read (a NOTICE the server chose
    to send) is only replaced, never used half-read. A connection just made is not looked
    at: it has not yet been asked anything (and a TLS handshake may leave a record unread).

    Measured on the 2-core machine while other work kept it at a load of ~16 (so indicative):
    the ping was a median 2.4 ms of waiting (1.2 ms at best) and 0.11 ms of CPU, the poll
    1.7 us; a client_credentials grant's unit of work in process, blocks alternated, 35.3 ms
    against 33.5 ms wall, 6.5 against 6.1 ms of client CPU, 1.80 against 1.73 ms of the
    backend's. The wait is what costs most: the token endpoints run one at a time per
    process (`api.lanes`), so every ping's round trip holds up the whole queue behind it.
    """
    if record.info.pop("fresh", False):
        return
    try:
        fd = dbapi_connection.fileno()
    except Exception as exc:  # closed by the driver already (psycopg raises its own error)
        raise DisconnectionError("the connection is closed") from exc
    poller = select.poll()
    poller.register(fd, _DEAD)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection")


def _configure_postgres(engine: Engine) -> None:
    event.listen(engine, "connect", lambda _dbapi, record: record.info.update(fresh=True))
    event.listen(engine, "checkout", _postgres_checkout)


def create_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`, with the SQLite settings above when it is SQLite, and the dead
    connection check (`_postgres_checkout`) when it is PostgreSQL.

    PostgreSQL's pool hands out the most recently returned connection first (LIFO): under a
    steady load the same few stay busy and the rest stay idle, so the server's own idle
    timeouts and `pool_recycle` retire the surplus instead of every connection being kept
    just alive."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_timeout=BUSY_TIMEOUT_SECONDS,
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):
        for name, value in POSTGRES_KEEPALIVES.items():
            if name not in parsed.query:
                connect_args.setdefault(name, value)
    kwargs.setdefault("pool_recycle", POSTGRES_RECYCLE_SECONDS)
    kwargs.setdefault("pool_use_lifo", True)
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        _configure_postgres(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
