"""`pki init` run twice at once makes one CA, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import func, select

from api.runtime import Runtime
from signing.models import authorities
from signing.pki.authority import Authority, PkiError
from signing.pki.custody import create_root


def test_two_initialisations_at_once_make_one_issuing_ca(runtime: Runtime, tmp_path: Path) -> None:
    root = create_root(tmp_path / "root", "a long test passphrase", common_name="Test Root",
                       now=runtime.clock())  # fmt: skip
    arrived = threading.Barrier(2)
    real = Authority._issuing_row

    def both_look_first(self: Authority) -> Any:
        """Both threads read "not initialised" before either writes, unless a lock keeps the
        second out until the first has committed (then the barrier gives up after a second)."""
        found = real(self)
        with contextlib.suppress(threading.BrokenBarrierError):
            arrived.wait(timeout=1)
        return found

    outcomes: list[str] = []

    def init() -> None:
        try:
            with runtime.transaction() as session:
                runtime.authority(session).initialise(root, actor="admin:test")
            outcomes.append("made")
        except PkiError:
            outcomes.append("refused")

    with mock.patch.object(Authority, "_issuing_row", both_look_first):
        threads = [threading.Thread(target=init) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(outcomes) == ["made", "refused"]
    with runtime.sessions() as session:
        issuing = session.execute(
            select(func.count()).where(authorities.c.kind == "issuing")
        ).scalar_one()
    assert issuing == 1
