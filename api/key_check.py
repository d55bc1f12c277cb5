"""Whether the keys in the data directory are the ones the database was made with.

The local key store and the KEK provider make a key that is missing when it is first asked
for, which is what a fresh data directory needs. But a data directory whose `keys/` folder is
lost (a volume not mounted, a restore that skipped it) would then start with fresh keys beside
a database sealed under the old ones: tokens signed by a key no one can open, a second KEK
"v1" wrapping new documents while the old documents no longer open, checkpoints a verifier
rejects. So `serve` and `/readyz` open the newest thing of each kind the database holds under
the keys at hand, and refuse with a clear message (restore the keys folder) if one does not
open.

That catches a lost folder, not a swapped one: a keys folder restored from another deployment
(with the same master key), or half of one, can open everything the newest rows need and
still hold the wrong pseudonym, pairwise, device-cookie or consent key. So every key also has a
fingerprint in the database (`key_fingerprints`): an HMAC-SHA256 of a fixed label and the key's
name under the key, which says whether two keys are the same and nothing about either. A key
is recorded the first time a check sees it (a fresh data directory, a key made since, a KEK
version or a version of the checkpoint or consent key since a rotation: each version its own
row), and from then on a key that differs from its row, or a row whose key is gone, is refused
by the key's kind. Rows are only ever added: the application role may not change or delete
them (`api.migrate`). A database from before this check records the keys it is first started
with, so the newest-row checks above still matter for it.

A key version retired on purpose (`shanakht keys retire pii`) is recorded in `key_retirements`:
its file is expected to be gone, and one that is back (a keys folder restored from before the
retirement) is refused, since the service would then open what anyone holding that version,
which may have leaked, wrote into the database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.cli_backup import MAC_KEY
from api.errors import StartupError
from api.keystore import KeyGone, is_version_of, version_number
from api.models import KEK_PREFIX, key_fingerprints, key_retirements
from api.routes.signin import DEVICE_KEY
from api.runtime import (
    AUDIT_CHECKPOINT_KEY,
    AUDIT_PSEUDONYM_KEY,
    CONSENT_KEY,
    IDENTITY_CODE_KEY,
    IDENTITY_PAIRWISE_KEY,
    IDENTITY_PEPPER_KEY,
    IDENTITY_SEAL_KEY,
    LOCKER_KEK_SEAL_KEY,
    SIGNING_SEAL_KEY,
    STATE_MAC_KEY,
    Runtime,
)
from audit import AuditError
from identity.models import signing_keys
from identity.oidc.keys import signing_key_context
from identity.sealing import SealBroken
from locker.crypto import Context, unwrap
from locker.errors import LockerError
from locker.kek import LocalKeks
from locker.models import documents, versions

RESTORE = "restore the keys folder (and the master key) that belong to this database"
FINGERPRINT_LABEL = b"shanakht key fingerprint v1:"

# The keys whose older versions `keys retire` deletes, as it names them.
RETIRABLE = {IDENTITY_SEAL_KEY: "pii", STATE_MAC_KEY: "row-seal"}
# What each key is, for the message that names it (a key not listed is named by its name).
KINDS = {
    AUDIT_CHECKPOINT_KEY: "the audit checkpoint signing key",
    AUDIT_PSEUDONYM_KEY: "the audit pseudonym key",
    IDENTITY_SEAL_KEY: "the PII sealing key (personal data, TOTP secrets, OIDC keys)",
    IDENTITY_CODE_KEY: "the one-time code key",
    IDENTITY_PAIRWISE_KEY: "the pairwise subject key",
    IDENTITY_PEPPER_KEY: "the password pepper",
    SIGNING_SEAL_KEY: "the signing seal key (the CA's, department seals' and signers' keys)",
    LOCKER_KEK_SEAL_KEY: "the locker KEKs' seal key",
    STATE_MAC_KEY: "the authorization state MAC key (role grants, consents, clients)",
    DEVICE_KEY: "the device cookie key",
    CONSENT_KEY: "the consent signing key",
    MAC_KEY: "the backup manifest key",
}


class KeysDoNotFit(StartupError):
    """The data directory's keys do not open what the database holds."""


def check_keys_fit_database(runtime: Runtime, *, retired_back: bool = False) -> None:
    """Raise KeysDoNotFit unless every key matches the fingerprint the database holds for it,
    and the newest token-signing key, audit checkpoint and wrapped data key in the database
    all open under this runtime's keys (each checked if any exists). Only then are the keys
    the database has no fingerprint for recorded: a folder that does not fit records nothing.
    `retired_back`: a retired key whose file is back passes (`keys retire`, which removes it)."""
    present = dict(_present(runtime))
    recorded = _recorded(runtime)
    _compare(present, recorded, retired_keys(runtime), retired_back=retired_back)
    with Session(runtime.engine) as session:  # the engine the readiness checks look at
        _signing_key_opens(runtime, session)
        _checkpoint_verifies(runtime, session)
        _data_key_unwraps(runtime, session)
    _record(runtime, present, recorded)


def _recorded(runtime: Runtime) -> dict[str, str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(key_fingerprints.c.name, key_fingerprints.c.fingerprint))
        return {row.name: row.fingerprint for row in rows}


def retired_keys(runtime: Runtime) -> dict[str, str]:
    """The key versions retired so far, each with its fingerprint as it was retired."""
    query = select(key_retirements.c.name, key_retirements.c.fingerprint)
    with runtime.engine.connect() as connection:
        return {row.name: row.fingerprint for row in connection.execute(query)}


def _record(runtime: Runtime, present: dict[str, str], recorded: dict[str, str]) -> None:
    """Add the fingerprints of keys seen for the first time; if another replica recorded one
    first, compare with what it recorded instead."""
    new = sorted(present.keys() - recorded.keys())
    if not new:
        return
    rows = [{"name": n, "fingerprint": present[n], "recorded_at": runtime.clock()} for n in new]
    try:
        with runtime.engine.begin() as connection:
            connection.execute(insert(key_fingerprints), rows)
    except IntegrityError:
        _compare(present, _recorded(runtime), retired_keys(runtime), retired_back=True)
        _record(runtime, present, _recorded(runtime))


def fingerprint(key: bytes, name: str) -> str:
    """What says whether two keys called `name` are the same: nothing about the key itself."""
    return hmac.new(key, FINGERPRINT_LABEL + name.encode(), hashlib.sha256).hexdigest()


def _present(runtime: Runtime) -> Iterator[tuple[str, str]]:
    """The fingerprint of every key in the keys folder, made so far; makes none (a key
    retired between the listing and its read is passed over, not made anew)."""
    for name in runtime.keys.names():
        try:
            yield name, fingerprint(runtime.keys.existing(name), name)
        except KeyGone:
            continue
    if not isinstance(runtime.keks, LocalKeks):
        return  # a KMS keeps its own keys; the data key check above covers it
    for version_id in runtime.keks.versions():
        name = KEK_PREFIX + version_id
        try:
            key = runtime.keks.get(version_id)
        except LockerError as exc:
            raise KeysDoNotFit(f"{_kind(name)} does not open: {exc}: {RESTORE}") from None
        yield name, fingerprint(key, name)


def _compare(
    present: dict[str, str],
    recorded: dict[str, str],
    retired: dict[str, str],
    *,
    retired_back: bool = False,
) -> None:
    """Refuse at the first recorded key that is missing or different, at a retirement the
    service cannot have made, or (unless `retired_back`) at a retired key that is back, naming
    its kind."""
    for name in sorted(recorded.keys() - retired.keys()):
        if name not in present:
            raise KeysDoNotFit(
                f"{_kind(name)} is missing from the keys folder, but this database was made "
                f"with it: {RESTORE}"
            )
        if not hmac.compare_digest(present[name], recorded[name]):
            raise KeysDoNotFit(
                f"{_kind(name)} is not the one this database was made with (another "
                f"deployment's?): {RESTORE}"
            )
    for name, retired_print in sorted(retired.items()):
        if not older_version(name, present) or recorded.get(name) != retired_print:
            raise KeysDoNotFit(
                f"key_retirements names {name}, which this service did not retire (the table "
                "was changed outside it): delete that row as the schema's owner, or restore the "
                "database; keep the key file"
            )
        if name in present and not retired_back:
            raise KeysDoNotFit(
                f"{_kind(name)} was retired, but its key is back in the keys folder (restored "
                f"from before the retirement?): run `shanakht keys retire "
                f"{RETIRABLE[base_name(name)]}` to remove it again"
            )


def base_name(name: str) -> str:
    """The key of which the key name `name` is a version: `identity-seal` for
    `identity-seal.v2` and for itself."""
    return name.rpartition(".v")[0] or name


def older_version(name: str, present: Iterable[str]) -> bool:
    """Whether `name` is a version of a key that retires (RETIRABLE) and a newer version of it
    is in the keys folder: the only keys a retirement may remove."""
    base = base_name(name)
    if base not in RETIRABLE or not is_version_of(base, name):
        return False
    number = version_number(base, name)
    return any(is_version_of(base, key) and version_number(base, key) > number for key in present)


def _kind(name: str) -> str:
    if name.startswith(KEK_PREFIX):
        return f"the locker KEK version {name.removeprefix(KEK_PREFIX)}"
    base, dot, version = name.rpartition(".v")
    if dot and base in KINDS and version.isdigit():  # a rotated key's version (`keys rotate`)
        return f"{KINDS[base]}, version {version} ({name})"
    kind = KINDS.get(name)
    return f"{kind} ({name})" if kind else f"the key {name}"


def _signing_key_opens(runtime: Runtime, session: Session) -> None:
    newest = session.execute(
        select(signing_keys.c.kid, signing_keys.c.private_key)
        .order_by(signing_keys.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    if newest is None:
        return
    try:
        runtime.identity.sealer.open(newest.private_key, signing_key_context(newest.kid))
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
