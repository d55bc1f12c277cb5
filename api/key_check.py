"""Whether the keys in the data directory are the ones the database was made with.

The local key store and the KEK provider make a key that is missing when it is first asked
for, which is what a fresh data directory needs. But a data directory whose `keys/` folder is
lost (a volume not mounted, a restore that skipped it) would then start with fresh keys beside
a database sealed under the old ones: tokens signed by a key no one can open, a second KEK
"v1" wrapping new documents while the old documents no longer open, checkpoints a verifier
rejects. So `serve` and `/readyz` open the newest thing of each kind the database holds under
the keys at hand, and refuse with a clear message (restore the keys folder) if one does not
open.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import StartupError
from api.runtime import Runtime
from audit import AuditError
from identity.models import signing_keys
from identity.sealing import SealBroken
from locker.crypto import Context, unwrap
from locker.errors import LockerError
from locker.models import documents, versions

RESTORE = "restore the keys folder (and the master key) that belong to this database"


class KeysDoNotFit(StartupError):
    """The data directory's keys do not open what the database holds."""


def check_keys_fit_database(runtime: Runtime) -> None:
    """Raise KeysDoNotFit unless the newest token-signing key, audit checkpoint and wrapped
    data key in the database all open under this runtime's keys (each checked if any exists)."""
    with Session(runtime.engine) as session:  # the engine the readiness checks look at
        _signing_key_opens(runtime, session)
        _checkpoint_verifies(runtime, session)
        _data_key_unwraps(runtime, session)


def _signing_key_opens(runtime: Runtime, session: Session) -> None:
    newest = session.execute(
        select(signing_keys.c.kid, signing_keys.c.private_key)
        .order_by(signing_keys.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    if newest is None:
        return
    try:
        runtime.identity.sealer.open(newest.private_key, f"signing-key:{newest.kid}")
    except SealBroken:
        raise KeysDoNotFit(
            f"the token-signing keys in the database do not open under this data directory's "
            f"keys: {RESTORE}"
        ) from None


def _checkpoint_verifies(runtime: Runtime, session: Session) -> None:
    latest = runtime.audit_log(session).latest_checkpoint()
    if latest is None:
        return
    try:
        runtime.audit_verifier.open(latest.note)
    except AuditError:
        raise KeysDoNotFit(
            f"the audit log's latest checkpoint was not signed by this data directory's "
            f"checkpoint key: {RESTORE}"
        ) from None


def _data_key_unwraps(runtime: Runtime, session: Session) -> None:
    newest = session.execute(
        select(versions.c.document_id, versions.c.version, versions.c.wrapped_key)
        .add_columns(documents.c.owner)
        .join(documents, documents.c.id == versions.c.document_id)
        .where(versions.c.wrapped_key.is_not(None))
        .order_by(versions.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    if newest is None:
        return
    context = Context(newest.document_id, newest.version, newest.owner)
    try:
        unwrap(newest.wrapped_key, runtime.keks.get, context)
    except LockerError:
        raise KeysDoNotFit(
            f"the locker's data keys do not unwrap under this data directory's KEKs: {RESTORE}"
        ) from None
