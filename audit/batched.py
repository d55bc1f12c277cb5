"""Deleting in batches, for every domain's housekeeping (`identity.housekeeping`,
`locker.housekeeping`): here because every domain package may import `audit`, as it does the
column types (`audit.sqltypes`) and the naming convention.

A sweep deletes at most `batch` rows per call, chosen by key, so a large backlog (a service
that was down, a first run on an old database) is cleared in many short transactions
(`sweep_all`) rather than one that holds the write lock for as long as it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.orm import Session

BATCH = 500  # rows per table per transaction: a short write lock, however large the backlog

Sweep = Callable[[Session, datetime, int], int]
"""Delete at most `batch` rows past their retention at `now`; how many went."""
Sweeps = Sequence[tuple[str, Sweep]]
"""Sweeps by the name of the table each deletes from, in the order they are to run."""
Transaction = Callable[[], AbstractContextManager[Session]]
"""Opens one committed unit of work (`Runtime.transaction`)."""


def deleted(result: object) -> int:
    """The number of rows a DELETE's result says it removed."""
    return int(getattr(result, "rowcount", 0) or 0)


def delete_batch(
    session: Session, table: Table, key: str, *where: ColumnElement[bool], batch: int
) -> int:
    """Delete up to `batch` rows of `table` that meet `where`, picked by their key column
    `key` (one statement: the rows chosen and deleted under the same snapshot)."""
    column = table.c[key]
    chosen = select(column).where(*where).limit(batch)
    return deleted(session.execute(delete(table).where(column.in_(chosen))))


def sweep_once(
    session: Session, sweeps: Sweeps, now: datetime, batch: int = BATCH
) -> dict[str, int]:
    """One batch of each sweep, in the caller's transaction; how many rows went, by table."""
    return {name: sweep(session, now, batch) for name, sweep in sweeps}


def sweep_all(
    transaction: Transaction, sweeps: Sweeps, now: datetime, batch: int = BATCH
) -> dict[str, int]:
    """Run rounds of `sweeps`, a batch of each, each round in a transaction of its own, until a
    round in which every sweep came back short of a full batch; the total deleted, by table.
    Every round runs them all, in order: a sweep that waits for another's rows to go (a job
    for its lines) finds them gone in the round that deletes the last of them."""
    totals = dict.fromkeys((name for name, _sweep in sweeps), 0)
    while True:
        with transaction() as session:
            counts = sweep_once(session, sweeps, now, batch)
        for name, count in counts.items():
            totals[name] += count
        if all(count < batch for count in counts.values()):
            return totals
