"""One place that turns settings into the live objects the app and the CLI share."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.database import create_db_engine, session_factory
from api.errors import StartupError
from api.hashing import BackgroundHasher
from api.key_versions import KeyVersions
from api.keystore import (
    LocalKeyStore,
    development_master_key,
    parse_master_key,
    version_number,
)
from api.models import key_retirements
from api.settings import Settings
from audit import AuditLog, NoteError, NoteKeyRing, NoteSigner
from audit.row_seal import RowSeal, RowSealKeys
from identity.breached import BreachedPasswords, PwnedPasswordsMirror
from identity.enrolment import Enrolment
from identity.failures import FailureRecords
from identity.login import PasswordLogin
from identity.nadra import MockNadra, NadraRegistry, ensure_registry
from identity.oidc.logout import HttpLogoutNotifier, LogoutNotifier
from identity.oidc.provider import Provider, ProviderConfig
from identity.passwords import PasswordHasher
from identity.policy import THROTTLE_WINDOW, IdentityPolicy, Limit
from identity.sealing import Sealer, SealingKeys
from identity.second_factor import SecondFactor
from identity.sms import OutboxSmsGateway
from locker.consents import ConsentSigner
from locker.documents import Locker
from locker.errors import LockerError, StoreError
from locker.kek import KekProvider, LocalKeks
from locker.stores import LocalStore, ObjectStore, S3Store
from signing.pki.authority import Authority, SignerCaches
from signing.pki.ca import Endpoints
from signing.pki.keys import SealedKeys

AUDIT_CHECKPOINT_KEY = "audit-checkpoint"
CONSENT_KEY = "locker-consent"  # signs the exchange's consent artifacts and legal grants
AUDIT_PSEUDONYM_KEY = "audit-pseudonym"
IDENTITY_SEAL_KEY = "identity-seal"
IDENTITY_CODE_KEY = "identity-codes"
IDENTITY_PAIRWISE_KEY = "identity-pairwise"
IDENTITY_PEPPER_KEY = "identity-pepper"  # the passwords' pepper (identity.passwords)
SIGNING_SEAL_KEY = "signing-seal"
LOCKER_KEK_SEAL_KEY = "locker-kek-seal"
STATE_MAC_KEY = "state-mac"  # seals rows of authorization state: audit.row_seal

T = TypeVar("T")
log = logging.getLogger(__name__)


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
class IdentityParts:
    """The identity service's collaborators that outlive a request."""

    sms: OutboxSmsGateway
    hasher: PasswordHasher
    sealer: Sealer
    code_key: bytes
    pairwise_key: bytes
    policy: IdentityPolicy
    notifier: LogoutNotifier
    nadra_file: Path
    nadra_options: dict[str, Any]
    breached: BreachedPasswords | None = None


@dataclass(frozen=True)
class CheckpointKeys:
    """Every version of the checkpoint key: the newest signs, each checks what it signed."""

    signer: NoteSigner  # the newest version
    verifier_keys: tuple[str, ...]  # every version's verifier key, newest first
    verifier: NoteKeyRing

    @classmethod
    def of(cls, signers: list[NoteSigner]) -> CheckpointKeys:
        vkeys = tuple(signer.verifier_key for signer in signers)
        return cls(signers[0], vkeys, NoteKeyRing.parse(vkeys))


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: LocalKeyStore
    # Every version of the checkpoint key and of the consent key, as this process holds them:
    # a rotation made meanwhile by `shanakht keys rotate` reaches it (`api.key_versions`).
    checkpoint_keys: KeyVersions[CheckpointKeys]
    consent_keys: KeyVersions[ConsentSigner]
    pseudonym_key: bytes
    identity: IdentityParts
    signing_seal_key: bytes
    store: ObjectStore
    keks: KekProvider
    row_seal: RowSeal
    signer_caches: SignerCaches = field(default_factory=SignerCaches)
    clock: Callable[[], datetime] = utc_now
    _nadra: NadraRegistry | None = None

    @property
    def nadra(self) -> NadraRegistry:
        """The (simulated) registry, loaded on first use: most commands never need it."""
        if self._nadra is None:
            ensure_registry(self.identity.nadra_file)
            self._nadra = MockNadra.from_file(
                self.identity.nadra_file,
                today=lambda: self.clock().date(),
                **self.identity.nadra_options,
            )
        return self._nadra

    def enrolment(self, session: Session) -> Enrolment:
        parts = self.identity
        return Enrolment(
            session,
            nadra=self.nadra,
            sms=parts.sms,
            hasher=parts.hasher,
            sealer=parts.sealer,
            row_seal=self.row_seal,
            pseudonym_key=self.pseudonym_key,
            code_key=parts.code_key,
            audit=self.audit_log(session),
            policy=parts.policy,
            clock=self.clock,
            breached=parts.breached,
        )

    def password_login(self) -> PasswordLogin:
        """Login runs its own short transactions (see PasswordLogin), not the request's."""
        parts = self.identity
        return PasswordLogin(
            self.transaction,
            sms=parts.sms,
            hasher=parts.hasher,
            sealer=parts.sealer,
            row_seal=self.row_seal,
            pseudonym_key=self.pseudonym_key,
            audit_for=self.audit_log,
            policy=parts.policy,
            clock=self.clock,
        )

    def second_factor(self, session: Session) -> SecondFactor:
        parts = self.identity
        return SecondFactor(
            session,
            sms=parts.sms,
            sealer=parts.sealer,
            code_key=parts.code_key,
            pseudonym_key=self.pseudonym_key,
            audit=self.audit_log(session),
            policy=parts.policy,
            clock=self.clock,
        )

    def failure_records(self, session: Session) -> FailureRecords:
        """Where authentication failures past the password are audited (within their caps)."""
        return FailureRecords(
            session,
            audit=self.audit_log(session),
            pseudonym_key=self.pseudonym_key,
            clock=self.clock,
        )

    def provider(self, session: Session) -> Provider:
        config = ProviderConfig(
            issuer=self.settings.resolved_issuer,
            sealer=self.identity.sealer,
            pairwise_key=self.identity.pairwise_key,
            row_seal=self.row_seal,
            policy=self.identity.policy,
        )
        return Provider(session, config, audit=self.audit_log(session), clock=self.clock)

    def authority(self, session: Session) -> Authority:
        """The issuing CA, its keys sealed under the key store's signing key."""
        return Authority(
            session,
            keys=SealedKeys(session, self.signing_seal_key, self.clock),
            audit=self.audit_log(session),
            clock=self.clock,
            endpoints=Endpoints(self.settings.public_url.rstrip("/")),
            caches=self.signer_caches,
        )

    def locker(self, session: Session) -> Locker:
        return Locker(
            session,
            store=self.store,
            keks=self.keks,
            audit=self.audit_log(session),
            clock=self.clock,
            seal=self.row_seal,
            max_bytes=self.settings.locker_max_bytes,
        )

    @property
    def audit_signer(self) -> NoteSigner:
        """The newest version of the checkpoint key, the one that signs checkpoints now."""
        return self.checkpoint_keys.get().signer

    @property
    def audit_verifier_keys(self) -> tuple[str, ...]:
        """Every version's verifier key, newest first: each checks what it signed."""
        return self.checkpoint_keys.get().verifier_keys

    @property
    def audit_verifier(self) -> NoteKeyRing:
        """Checks a checkpoint signed by any version of the checkpoint key."""
        return self.checkpoint_keys.get().verifier

    @property
    def consent_signer(self) -> ConsentSigner:
        """The newest version of the consent key signs; every earlier one still verifies."""
        return self.consent_keys.get()

    def checkpoint_key_of(self, note: str) -> str:
        """The verifier key of the version that signed the checkpoint `note`, for a bundle
        that carries both (after a rotation, the latest checkpoint may be an older version's).
        A note no version signed (altered in the database) gets the newest key, under which
        whoever holds the bundle then refuses it, as they did before keys had versions."""
        try:
            return self.audit_verifier.signer_of(note).verifier_key
        except NoteError:
            return self.audit_signer.verifier_key

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

    def rerunnable(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a transaction of its own (as `transaction`), run once more if the
        database connection died under it before the commit.

        Why a second run is safe: a connection that dies mid-transaction takes its
        transaction with it (the server rolls back whatever it had not committed), so after a
        disconnect raised before COMMIT was sent nothing of the first run is in the database,
        and the second run, on a new connection (SQLAlchemy has invalidated the dead one and
        the pool with it), is the first to count. A disconnect raised by the COMMIT itself is
        not retried: the server may have committed before the connection went, and a second
        run could then do it twice; it goes on as a 503. Nor is any other error, nor a
        second disconnect (the database is down: 503 and Retry-After say to come back).

        Why only here, and not for every request: a retry re-runs `work` whole, so `work` must
        be a function that opens nothing but this transaction and has no effect outside the
        database before it returns: no object store write, no SMS, no back-channel notice, no
        password hash worth not repeating. The request-wide transaction (`api.deps`) wraps a
        handler that may have done such things by the time its statement fails, and the
        handler cannot be called again from the dependency; it answers 503 instead. The token
        endpoints (grant, introspect, revoke, userinfo) qualify: they read the form before,
        sign with keys in memory, and keep their replay guards (assertion and DPoP jtis) in
        the same transaction, so a rerun spends them afresh. What `work` counts in memory (a
        metric) may count a failed first run too; what it returns is sent only once.
        """
        try:
            return self._once(work)
        except _DroppedBeforeCommit as dropped:
            log.warning(
                "the database connection dropped mid-transaction (%s); running it once more",
                type(dropped.error.orig or dropped.error).__name__,
            )
        try:
            return self._once(work)
        except _DroppedBeforeCommit as dropped:
            raise dropped.error from None

    def _once(self, work: Callable[[Session], T]) -> T:
        committing = False
        try:
            with self.transaction() as session:
                result = work(session)
                session.flush()  # the ORM's pending writes, while a failure can still be retried
                committing = True
        except DBAPIError as exc:
            if exc.connection_invalidated and not committing:
                raise _DroppedBeforeCommit(exc) from exc
            raise
        return result

    def check_database(self) -> None:
        """Raise StartupError unless the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StartupError(f"the database is not reachable: {_first_line(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


class _DroppedBeforeCommit(Exception):
    """`Runtime.rerunnable`'s signal: the connection died before COMMIT was sent."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def open_store(settings: Settings) -> ObjectStore:
    """The configured object store for locker ciphertext."""
    if settings.store == "s3":
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else ""
        return S3Store(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key or "",
            secret_key=secret,
            region=settings.s3_region,
        )
    return LocalStore(settings.data_dir / "objects")


def _ready_store(settings: Settings) -> ObjectStore:
    store = open_store(settings)
    if isinstance(store, S3Store):
        try:
            store.ensure_bucket()
        except StoreError as exc:
            raise StartupError(f"the object store is not usable: {exc}") from None
    return store


def _breached_passwords(folder: Path | None) -> BreachedPasswords | None:
    if folder is None:
        return None
    try:
        return PwnedPasswordsMirror(folder)
    except ValueError as exc:
        raise StartupError(f"SHANAKHT_BREACHED_PASSWORDS_DIR: {exc}") from None


def _secret_versions(
    keys: LocalKeyStore,
    name: str,
    build: Callable[[dict[int, bytes]], T],
    retired: Callable[[], frozenset[str]],
) -> KeyVersions[T]:
    """Every version of the secret `name` by number, as `build` makes them, kept up with
    while the replicas run (`api.key_versions`): `keys rotate` adds versions and `keys
    retire` takes them away. Version 1 is made now if new, and a version that does not open
    stops the start. A version is read only if its file is there (one retired between the
    listing and the read is not made anew at random), and never one the database records as
    retired (`retired`, read when the listing changes): a keys folder restored from before a
    retirement brings it back to the folder, not to the service."""
    keys.secret(keys.current(name))

    def versions(made: Sequence[str]) -> T:
        gone = retired()
        if made[-1] in gone:
            raise StartupError(f"key {made[-1]}, the newest in the keys folder, was retired")
        kept = [key for key in made[:-1] if key not in gone] + [made[-1]]
        if len(kept) < len(made):
            log.error("key %s: a retired version is back in the keys folder, not used", name)
        return build({version_number(name, key): keys.existing(key) for key in kept})

    found = KeyVersions(keys, name, versions)
    found.get()
    return found


def _retired_reader(engine: Engine) -> Callable[[], frozenset[str]]:
    """The key versions the database records as retired: none before it is migrated, and a
    StartupError if it cannot say (`KeyVersions` then keeps what it built before and tries
    again at its next listing), never "none" for a database that did not answer."""

    def retired() -> frozenset[str]:
        try:
            with engine.connect() as connection:
                if not inspect(connection).has_table(key_retirements.name):
                    return frozenset()
                return frozenset(connection.execute(select(key_retirements.c.name)).scalars())
        except SQLAlchemyError as exc:
            raise StartupError(
                f"the database is not reachable (to read the retired key versions): "
                f"{_first_line(exc)}"
            ) from None

    return retired


def open_runtime(settings: Settings) -> Runtime:
    data_dir = prepare_data_dir(settings.data_dir)
    if settings.master_key is not None:
        master = parse_master_key(settings.master_key.get_secret_value())
    else:
        master = development_master_key(data_dir)
    keys = LocalKeyStore(data_dir / "keys", master)
    keks = _open_keks(data_dir, keys)
    try:
        engine = create_db_engine(settings.resolved_database_url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StartupError(f"SHANAKHT_DATABASE_URL is not usable: {_first_line(exc)}") from None
    try:
        return _assembled(settings, data_dir, keys, keks, engine)
    except BaseException:
        engine.dispose()  # a start refused after the engine's first connection leaves none open
        raise


def _assembled(
    settings: Settings, data_dir: Path, keys: LocalKeyStore, keks: LocalKeks, engine: Engine
) -> Runtime:
    """The runtime's parts over `engine` (see `open_runtime`)."""
    origin = settings.resolved_audit_origin
    retired = _retired_reader(engine)
    checkpoint_keys = KeyVersions(
        keys,
        AUDIT_CHECKPOINT_KEY,
        lambda made: CheckpointKeys.of(_note_signers(keys, origin, made)),
    )
    checkpoint_keys.get()  # made now if new; a version that does not open stops the start
    expiry = settings.password_expiry_days
    identity = IdentityParts(
        sms=OutboxSmsGateway(data_dir / "sms-outbox.jsonl", clock=utc_now),
        hasher=BackgroundHasher(pepper=keys.secret(IDENTITY_PEPPER_KEY)),
        sealer=Sealer(_secret_versions(keys, IDENTITY_SEAL_KEY, SealingKeys, retired)),
        code_key=keys.secret(IDENTITY_CODE_KEY),
        pairwise_key=keys.secret(IDENTITY_PAIRWISE_KEY),
        policy=IdentityPolicy(
            password_expiry=timedelta(days=expiry) if expiry else None,
            per_account=Limit(settings.login_attempts_per_account, THROTTLE_WINDOW),
            per_address=Limit(settings.login_attempts_per_address, THROTTLE_WINDOW),
            helpline=settings.helpline,
        ),
        notifier=HttpLogoutNotifier(),
        nadra_file=data_dir / "nadra" / "registry.jsonl",
        nadra_options={
            "latency": settings.nadra_latency,
            "failure_rate": settings.nadra_failure_rate,
            "outage": settings.nadra_outage,
        },
        breached=_breached_passwords(settings.breached_passwords_dir),
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        keys=keys,
        checkpoint_keys=checkpoint_keys,
        # Made on first use (the first consent or legal grant), as before keys had versions.
        consent_keys=KeyVersions(keys, CONSENT_KEY, lambda made: _consent_signer(keys, made)),
        pseudonym_key=keys.secret(AUDIT_PSEUDONYM_KEY),
        identity=identity,
        signing_seal_key=keys.secret(SIGNING_SEAL_KEY),
        store=_ready_store(settings),
        keks=keks,
        row_seal=RowSeal(_secret_versions(keys, STATE_MAC_KEY, RowSealKeys, retired)),
    )


def _note_signers(keys: LocalKeyStore, origin: str, made: Sequence[str]) -> list[NoteSigner]:
    """A signer for every version `made` of the checkpoint key, newest (the one that signs)
    first. All carry the log's origin as their name, so a verifier tells them apart by key
    hash (`audit.note`)."""
    return [NoteSigner(origin, keys.ed25519(version)) for version in reversed(made)]


def _consent_signer(keys: LocalKeyStore, made: Sequence[str]) -> ConsentSigner:
    """The consent key's newest version `made[-1]` to sign, the earlier ones to verify."""
    return ConsentSigner(
        keys.ed25519(made[-1]), [keys.ed25519(old).public_key() for old in reversed(made[:-1])]
    )


def _open_keks(data_dir: Path, keys: LocalKeyStore) -> LocalKeks:
    """The locker's KEKs, refused by name if they do not open under the key that seals them
    (a keys folder put together from two deployments), rather than failing with a traceback."""
    try:
        return LocalKeks(data_dir / "keys" / "locker", keys.secret(LOCKER_KEK_SEAL_KEY))
    except LockerError as exc:
        raise StartupError(
            f"the locker's KEKs do not open under the locker KEKs' seal key "
            f"({LOCKER_KEK_SEAL_KEY}): {exc}: restore the keys folder (and the master key) "
            "that belong to this data directory"
        ) from None
