"""The identity package's tables.

Personal data is sealed (see `identity.sealing`); rows are found by the citizen's keyed
pseudonym, the same one the audit log names them by, so "entries about me" is a lookup.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

from audit.models import NAMING_CONVENTION
from audit.sqltypes import UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 32  # uuid4 hex, or a 24-byte urlsafe token for challenges

citizens = Table(
    "identity_citizens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("pseudonym", String(45), nullable=False, unique=True, comment="audit.pseudonym(cnic)"),
    Column("profile", LargeBinary, nullable=False, comment="sealed NADRA-verified details"),
    Column("mobile", LargeBinary, nullable=False, comment="sealed E.164 number, OTP-verified"),
    Column("password_hash", String(200), nullable=False, comment="argon2id"),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("status", String(16), nullable=False, comment="active | removed"),
    Column("created_at", UtcDateTime(), nullable=False),
)

challenges = Table(
    "identity_challenges",
    metadata,
    Column("id", String(ID), primary_key=True, comment="unguessable: it is the browser's ticket"),
    Column("purpose", String(16), nullable=False, comment="register | reset"),
    Column("pseudonym", String(45), nullable=False, index=True),
    Column("code_hash", LargeBinary(32), nullable=False, comment="HMAC of the one-time code"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("payload", LargeBinary, nullable=False, comment="sealed details to act on"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("verified_at", UtcDateTime(), nullable=True),
    Column("consumed_at", UtcDateTime(), nullable=True),
)

throttles = Table(
    "identity_throttles",
    metadata,
    Column("key", String(120), primary_key=True, comment="what is counted, never raw PII"),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("hits", Integer, nullable=False),
)

Index("ix_identity_challenges_expires_at", challenges.c.expires_at)
