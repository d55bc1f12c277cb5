"""Alembic, driven from code: `shanakht db upgrade` (and `serve` in development) call `prepare`.

On PostgreSQL the schema has two roles (issue 7). The migration role owns every table and
trigger and runs the migrations: SHANAKHT_DATABASE_MIGRATION_URL, or the database URL when that
is unset (the quick start, SQLite, a single-role PostgreSQL). The application role, named by
SHANAKHT_DATABASE_APP_ROLE and connecting through SHANAKHT_DATABASE_URL, owns nothing: it gets
DML on the ordinary tables and only SELECT and INSERT on the append-only audit tables, so a
compromised API process can neither rewrite the log nor drop its triggers or tables.
`grant_app_role` is that policy. Revision 0011 applies it, and every upgrade applies it again
(it is idempotent), so a role named after 0011 ran, or a table a later migration added, is
covered by the next `shanakht db upgrade`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.database import begin_writing, create_db_engine
from api.errors import StartupError
from api.runtime import STATE_MAC_KEY, Runtime
from api.settings import Settings
from audit import AuditEvent
from audit.row_seal import seal_unsealed
from identity.models import (
    citizens,
    clients,
    codes,
    departments,
    grants,
    role_proposals,
    roles,
    sessions,
    tokens,
)
from locker.models import consents, documents, legal_requests, nominees, shares

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("shanakht.integrity")

# One advisory lock number for "migrating Shanakht", so replicas starting together on
# PostgreSQL migrate one after the other instead of racing; on SQLite, the write lock taken
# before the first read does the same.
MIGRATION_LOCK = 0x5348414E  # "SHAN"
ROW_SEALS = "0014"  # the revision that gave rows of authorization state their MAC

# The revisions that gave tables a MAC column (`audit.row_seal`), each with those tables: the
# run that applies one seals the rows its tables held then, and only those (`upgrade`).
SEALINGS: dict[str, tuple[Table, ...]] = {
    ROW_SEALS: (roles, consents, clients),
    "0019": (role_proposals,),
    "0021": (documents, shares, nominees, legal_requests),
    "0024": (sessions,),
    "0025": (citizens,),
    "0026": (grants,),
    "0027": (tokens, codes),
    "0028": (departments,),
}
# The tables whose rows are sealed: authorization state.
SEALED_TABLES = tuple(table for tables in SEALINGS.values() for table in tables)
FIRST_SEALING = f"{STATE_MAC_KEY}-first-sealing"  # 0014's record, named before there were others


def sealing_record(revision: str) -> str:
    """The key directory's record that `revision`'s sealing is done (`KeyStore.done`)."""
    return FIRST_SEALING if revision == ROW_SEALS else f"{STATE_MAC_KEY}-sealing-{revision}"


# What the application role may do, table by table; every other table in the schema (and every
# table a later migration creates, through the default privileges) gets DML. Never TRUNCATE,
# REFERENCES or TRIGGER, and never ownership: ALTER, DROP, DISABLE TRIGGER are the owner's.
APP_DML = "SELECT, INSERT, UPDATE, DELETE"
APP_TABLE_PRIVILEGES = {
    "audit_entries": "SELECT, INSERT",  # append-only (their triggers say so too)
    "audit_checkpoints": "SELECT, INSERT",  # append-only
    "audit_head": "SELECT, UPDATE",  # the one row an append moves; seeded by a migration
    "alembic_version": "SELECT",  # `/readyz` and `serve` read the schema's revision
    "key_fingerprints": "SELECT, INSERT",  # a key's fingerprint is recorded once, then kept
    "key_retirements": "SELECT",  # `keys retire` records one as the owner
}


def alembic_config(app_role: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["app_role"] = app_role
    return config


def configured_app_role() -> str | None:
    """SHANAKHT_DATABASE_APP_ROLE from the environment (or the secrets folder), for callers
    of `upgrade` that do not name one (a restore)."""
    try:
        return Settings().database_app_role
    except ValidationError:
        return None


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    app_role: str | None = None,
    seal_rows: Callable[[Session, tuple[str, ...]], None] | None = None,
) -> tuple[str, ...]:
    """Migrate the schema to `revision` inside one transaction, then grant the application
    role (`app_role`, else the configured one; on PostgreSQL only) what it may do.

    The revisions of `SEALINGS` this run applied, in order: for those, and only those,
    `seal_rows` seals the rows their tables held (written before they had seals), in the same
    transaction, so that a schema past a sealing revision is one whose older rows of its tables
    were sealed; a revision the schema was past already seals nothing. The migration lock is
    held from the first read, so of two runs started together only the one that migrates
    seals. Rows are sealed as this code's tables have them: `prepare` migrates to the head."""
    role = app_role or configured_app_role()
    config = alembic_config(role)
    with engine.begin() as connection:
        hold_migration_lock(connection)
        config.attributes["connection"] = connection
        before = applied_revisions(connection)
        if revision != "head" or current_heads(connection) != set(migration_scripts().get_heads()):
            command.upgrade(config, revision)  # at the head already, there is nothing to run
        after = applied_revisions(connection)
        sealing = tuple(found for found in SEALINGS if found not in before and found in after)
        if sealing and seal_rows is not None:
            with Session(bind=connection) as session:
                seal_rows(session, sealing)
                session.flush()
        if role is not None:
            grant_app_role(connection, role)
    return sealing


def hold_migration_lock(connection: Connection) -> None:
    """Be the only migration from here to the end of `connection`'s transaction (held again,
    harmlessly, by the migrations' environment)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    begin_writing(connection)


@lru_cache(maxsize=1)
def migration_scripts() -> ScriptDirectory:
    """The migration scripts, read once a process: Alembic reads and executes every revision
    file again each time it is asked, which cost a start-up (and every test) tens of ms."""
    return ScriptDirectory.from_config(alembic_config())


def current_heads(connection: Connection) -> set[str]:
    """The revisions the database's schema is at."""
    return set(MigrationContext.configure(connection).get_current_heads())


def applied_revisions(connection: Connection) -> set[str]:
    """Every revision the database's schema has had applied: its heads and their ancestors."""
    heads = current_heads(connection)
    if not heads:
        return set()
    revisions = migration_scripts().iterate_revisions(tuple(heads), "base")
    return {found.revision for found in revisions if found}


def grant_app_role(connection: Connection, role: str) -> None:
    """Give `role` exactly the privileges the API needs on the current schema's tables and
    sequences, now and (by default privileges) for tables the connected role creates later.
    Run by the role that owns the schema; nothing on SQLite, which has no roles."""
    if connection.dialect.name != "postgresql":
        return
    found = connection.execute(
        text(
            "SELECT r.rolsuper, r.rolname = current_user, pg_has_role(r.oid, current_user, "
            "'MEMBER'), current_schema() FROM pg_roles r WHERE r.rolname = :role"
        ),
        {"role": role},
    ).one_or_none()
    if found is None:
        raise StartupError(
            f"SHANAKHT_DATABASE_APP_ROLE names {role}, which PostgreSQL does not know: create "
            "it first (LOGIN and a password, nothing else), as deploy/postgres/init.sh does"
        )
    superuser, connected_as_role, member_of_migrator, schema = found
    owned = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = :role AND c.relnamespace = CAST(current_schema() AS regnamespace) "
            "ORDER BY c.relname"
        ),
        {"role": role},
    ).scalars()
    if names := list(owned):
        raise StartupError(
            f"the application role {role} owns {', '.join(names)} in schema {schema}: "
            "whoever owns a table can alter or drop it. Migrate as another role (the owner, "
            "SHANAKHT_DATABASE_MIGRATION_URL) and give it the tables"
        )
    if connected_as_role:
        return  # a command run as the application role: the migration role granted already
    if superuser or member_of_migrator:
        raise StartupError(
            f"SHANAKHT_DATABASE_APP_ROLE names {role}, which is a superuser or a member of the "
            "migration role: it would bypass every grant. Name a role of its own"
        )
    quote = connection.dialect.identifier_preparer.quote
    grantee, where = quote(role), quote(schema)
    tables = set(
        connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
    )
    statements = [
        f"GRANT USAGE ON SCHEMA {where} TO {grantee}",
        # Only the schema's owner (and whom it names) creates in it; PostgreSQL 15 already
        # leaves PUBLIC without CREATE on the public schema, older ones do not.
        f"REVOKE CREATE ON SCHEMA {where} FROM PUBLIC, {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {where} FROM {grantee}",
        f"GRANT {APP_DML} ON ALL TABLES IN SCHEMA {where} TO {grantee}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {where} GRANT {APP_DML} ON TABLES TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {where} GRANT USAGE, SELECT ON SEQUENCES TO {grantee}",
    ]
    for table, privileges in APP_TABLE_PRIVILEGES.items():
        if table in tables:
            statements.append(f"REVOKE ALL ON {quote(table)} FROM {grantee}")
            statements.append(f"GRANT {privileges} ON {quote(table)} TO {grantee}")
    for statement in statements:
        connection.execute(text(statement))


def require_current_schema(engine: Engine) -> None:
    """Raise StartupError unless the database is at the revision this code needs: how a
    production replica, which migrates nothing, refuses to serve an old schema."""
    needed = set(migration_scripts().get_heads())
    with engine.connect() as connection:
        current = current_heads(connection)
    if current != needed:
        raise StartupError(
            f"the schema is at {', '.join(sorted(current)) or 'no revision'}, this code needs "
            f"{', '.join(sorted(needed))}: run `shanakht db upgrade` (as the migration role, "
            "SHANAKHT_DATABASE_MIGRATION_URL) first"
        )


def prepare(runtime: Runtime, *, migrate_schema: bool = True) -> None:
    """Everything a fresh data directory needs before serving: the schema (migrated through the
    migration URL, or, with `migrate_schema` false, only checked), then signing keys. The run
    that takes the schema past a sealing revision seals the rows its tables held before it
    (`seal_existing_rows`)."""
    settings = runtime.settings
    done = frozenset(found for found in SEALINGS if runtime.keys.done(sealing_record(found)))
    sealing = partial(seal_existing_rows, runtime, done)
    applied: tuple[str, ...] = ()
    if not migrate_schema:
        require_current_schema(runtime.engine)
    elif settings.resolved_migration_url == settings.resolved_database_url:
        applied = upgrade(runtime.engine, app_role=settings.database_app_role, seal_rows=sealing)
    else:
        try:
            engine = create_db_engine(settings.resolved_migration_url)
        except (SQLAlchemyError, ValueError) as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StartupError(f"SHANAKHT_DATABASE_MIGRATION_URL is not usable: {first}") from None
        try:
            applied = upgrade(engine, app_role=settings.database_app_role, seal_rows=sealing)
        finally:
            engine.dispose()
    for found in applied:
        if found in done:
            log.warning(
                "revision %s was applied again, but the key directory records its sealing: "
                "rows without a MAC were not sealed and are not honoured",
                found,
            )
        else:
            runtime.keys.record_done(sealing_record(found))
    with runtime.transaction() as session:
        runtime.provider(session).keys.ensure()


def seal_existing_rows(
    runtime: Runtime, done: frozenset[str], session: Session, applied: tuple[str, ...]
) -> None:
    """Seal the rows of the tables of the sealing revisions `applied` (`SEALINGS`) that were
    written before those tables had seals, in the transaction of the migration run that
    applies those revisions (`upgrade`), and in no other: once the schema is past a sealing
    revision, a row of its tables without a seal is one the service did not write, whatever
    the key directory or anything else says. Each revision seals only its own tables, so a
    later one never blesses a row an earlier one left unsealed. A revision whose sealing the
    key directory records (`done`) seals nothing, so a schema set back before it by whoever can
    write it (a DBA with the owner's rights) is not sealed again. A production replica
    (`serve`, which migrates nothing) and `shanakht audit integrity` never seal. The sealing
    is an audit entry, with how many rows of each table it sealed, when there were any."""
    tables = [table for found in applied if found not in done for table in SEALINGS[found]]
    counts = seal_unsealed(session, runtime.row_seal, tables)
    if any(counts.values()):
        runtime.audit_log(session).append(
            AuditEvent(
                actor="system:upgrade",
                action="integrity.sealed",
                resource="integrity:rows",
                details=dict(counts),
            )
        )
