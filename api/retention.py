"""The sweeps that record what they remove (docs/retention.md), run hourly by every replica
(`api.app`): share links long expired, and what a removed account held beyond its pseudonym.

They are apart from the domains' `SWEEPS` because each batch writes an entry of the audit log
in its own transaction, so they need the log, and the periods they keep things for are
settings (`share_link_keep_days`, `removed_account_keep_days`), not constants of the domain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from api.runtime import Runtime
from audit.batched import Sweeps, sweep_all
from identity.housekeeping import erase_removed
from identity.models import citizens
from locker.housekeeping import sweep_shares
from locker.models import shares


def retention_sweeps(runtime: Runtime) -> Sweeps:
    """The recorded sweeps, by the table each removes from, with `runtime`'s log and periods."""
    settings = runtime.settings
    shares_keep = timedelta(days=settings.share_link_keep_days)
    accounts_keep = timedelta(days=settings.removed_account_keep_days)

    def links(session: Session, now: datetime, batch: int) -> int:
        return sweep_shares(session, now, batch, audit=runtime.audit_log(session), keep=shares_keep)

    def profiles(session: Session, now: datetime, batch: int) -> int:
        provider = runtime.provider(session)
        return erase_removed(
            session, now, batch, audit=runtime.audit_log(session), keep=accounts_keep,
            accounts=provider.accounts,
        )  # fmt: skip

    return ((shares.name, links), (citizens.name, profiles))


def sweep_retained(runtime: Runtime) -> dict[str, int]:
    """Every recorded sweep until nothing is left past its period; how many rows, by table."""
    return sweep_all(runtime.transaction, retention_sweeps(runtime), runtime.clock())
