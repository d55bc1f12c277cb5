"""The audit log's tables. The log owns its own metadata, as every domain package does.

`audit_entries` and `audit_checkpoints` are append-only: the migrations add triggers that make
the database itself refuse UPDATE and DELETE on them. `audit_head` is a one-row cache of the
log's tip (size, last chain hash, frontier); it is what appends lock and read, so an append
never scans the log. It is not trusted: `audit verify` recomputes everything from the entries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from audit.sqltypes import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second index to maintain per append.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

entries = Table(
    "audit_entries",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False, comment="leaf index, from 0"),
    Column("entry", LargeBinary, nullable=False, comment="canonical JSON of the entry"),
    Column("chain", LargeBinary(32), nullable=False, comment="SHA-256(previous chain || leaf)"),
    Column(
        "hashes",
        LargeBinary,
        nullable=False,
        comment="leaf hash, then the hash of each complete subtree that ends at this leaf",
    ),
    Column(
        "subject",
        String(64),
        nullable=True,
        comment="copy of the entry's subject, so a citizen's entries are found by index",
    ),
    # (subject, seq): a citizen's newest entries are an index range scan, not a walk backwards
    # through everybody's log filtering on subject.
    Index("ix_audit_entries_subject_seq", "subject", "seq"),
)

head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("chain", LargeBinary(32), nullable=False),
    Column("frontier", LargeBinary, nullable=False, comment="roots of the maximal subtrees"),
    CheckConstraint("id = 1", name="single_row"),
)

checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False, comment="the C2SP signed note as published"),
    Column("issued_at", UtcDateTime(), nullable=False),
)

HEAD_ID = 1
GENESIS_CHAIN = bytes(32)
"""The chain value before the first entry: 32 zero bytes."""
