"""One place that turns settings into the live objects the app and the CLI share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.database import create_db_engine, session_factory
from api.errors import StartupError
from api.keystore import LocalKeyStore, development_master_key, parse_master_key
from api.settings import Settings
from audit import AuditLog, NoteSigner, NoteVerifier

AUDIT_CHECKPOINT_KEY = "audit-checkpoint"
AUDIT_PSEUDONYM_KEY = "audit-pseudonym"


def utc_now() -> datetime:
    return datetime.now(UTC)


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory on first use; refuse clearly if it cannot be written."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the data directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(f"the data directory {path} is not writable by this user")
    return path


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: LocalKeyStore
    audit_signer: NoteSigner
    pseudonym_key: bytes
    clock: Callable[[], datetime] = utc_now

    @property
    def audit_verifier(self) -> NoteVerifier:
        return NoteVerifier.parse(self.audit_signer.verifier_key)

    def audit_log(self, session: Session) -> AuditLog:
        return AuditLog(session, signer=self.audit_signer, clock=self.clock)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error, except for errors
        that say the refusal must leave a record (a counted failed login, its audit entry)."""
        with self.sessions() as session:
            session.begin()
            try:
                yield session
            except Exception as exc:
                if getattr(exc, "keep_transaction", False):
                    session.commit()
                else:
                    session.rollback()
                raise
            session.commit()

    def check_database(self) -> None:
        """Raise StartupError unless the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StartupError(f"the database is not reachable: {_first_line(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def open_runtime(settings: Settings) -> Runtime:
    data_dir = prepare_data_dir(settings.data_dir)
    if settings.master_key is not None:
        master = parse_master_key(settings.master_key.get_secret_value())
    else:
        master = development_master_key(data_dir)
    keys = LocalKeyStore(data_dir / "keys", master)
    try:
        engine = create_db_engine(settings.resolved_database_url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StartupError(f"SHANAKHT_DATABASE_URL is not usable: {_first_line(exc)}") from None
    signer = NoteSigner(settings.resolved_audit_origin, keys.ed25519(AUDIT_CHECKPOINT_KEY))
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        keys=keys,
        audit_signer=signer,
        pseudonym_key=keys.secret(AUDIT_PSEUDONYM_KEY),
    )
