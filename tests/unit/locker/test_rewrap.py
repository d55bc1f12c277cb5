"""Re-wrapping every data key after a KEK rotation: every key moves and every document still
opens, an interrupted run leaves everything readable and the next one finishes, shredded keys
stay shredded, even when the shred lands between the job's read and its write, and each run is
one audit entry."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from sqlalchemy import select

from api.runtime import Runtime
from audit.models import entries
from locker.access import Accessor
from locker.crypto import wrapped_under
from locker.kek import Kek, KekProvider
from locker.models import versions
from locker.rewrap import RewrapFailed, RewrapReport, rewrap_all

OWNER = "p:" + "C" * 43
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")
CITIZEN = Accessor(OWNER, "citizen", "owner")


class Interrupted(Exception):
    pass


def _pdf(n: int) -> bytes:
    return b"%PDF-1.7\n" + f"document {n}\n".encode() + os.urandom(3000)


def _issue(runtime: Runtime, count: int) -> dict[str, bytes]:
    """`count` issued documents, each in its own transaction: {document id: content}."""
    made = {}
    for n in range(count):
        content = _pdf(n)
        with runtime.transaction() as session:
            issued = runtime.locker(session).issue(
                owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id=f"BC-{n}",
                title="Birth certificate", content=[content], content_type="application/pdf",
                who=ISSUER,
            )  # fmt: skip
        made[issued.document.id] = content
    return made


def _upload(runtime: Runtime) -> tuple[str, bytes]:
    content = _pdf(99)
    with runtime.transaction() as session:
        document = runtime.locker(session).upload(
            owner=OWNER, doctype="other", title="My own copy", content=[content],
            content_type="application/pdf", who=CITIZEN,
        )  # fmt: skip
    return document.id, content


def _delete(runtime: Runtime, document_id: str) -> None:
    with runtime.transaction() as session:
        runtime.locker(session).delete(document_id, owner=OWNER, who=CITIZEN)


def _run(runtime: Runtime, keks: KekProvider | None = None, **options: Any) -> RewrapReport:
    return rewrap_all(
        runtime.transaction, keks or runtime.keks, runtime.audit_log, actor="admin:test",
        **options,
    )  # fmt: skip


def _wrapped(runtime: Runtime) -> dict[tuple[str, int], bytes | None]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(versions.c.document_id, versions.c.version, versions.c.wrapped_key)
        ).all()
    return {(r.document_id, r.version): r.wrapped_key for r in rows}


def _under(runtime: Runtime) -> list[str]:
    """The KEK version of every stored (not shredded) key, in no particular order."""
    return sorted(wrapped_under(key) for key in _wrapped(runtime).values() if key is not None)


def _assert_all_open(runtime: Runtime, made: dict[str, bytes]) -> None:
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        for document_id, content in made.items():
            _, stream = locker.open(document_id, owner=OWNER, who=CITIZEN)
            assert b"".join(stream) == content


def _rewrap_entries(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == "locker.keys.rewrapped"]


def test_a_rewrap_after_rotation_moves_every_key_and_every_document_still_opens(
    runtime: Runtime,
) -> None:
    made = _issue(runtime, 5)
    old = runtime.keks.current().version_id
    new = runtime.keks.rotate()
    assert _under(runtime) == [old] * 5
    seen: list[tuple[int, int]] = []

    report = _run(runtime, batch_size=2, progress=lambda done, total: seen.append((done, total)))

    assert (report.kek_version, report.total) == (new, 5)
    assert (report.rewrapped, report.already_current, report.changed) == (5, 0, 0)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert _under(runtime) == [new] * 5
    _assert_all_open(runtime, made)
    again = _run(runtime)
    assert (again.rewrapped, again.already_current, again.changed) == (0, 5, 0), "idempotent"
    logged = _rewrap_entries(runtime)
    assert [(e["outcome"], e["details"]) for e in logged] == [
        ("success", {"kek_version": new, "total": 5, "rewrapped": 5, "already_current": 0,
                     "changed": 0}),
        ("success", {"kek_version": new, "total": 5, "rewrapped": 0, "already_current": 5,
                     "changed": 0}),
    ]  # fmt: skip


def test_an_interrupted_rewrap_leaves_everything_readable_and_the_next_run_finishes(
    runtime: Runtime,
) -> None:
    made = _issue(runtime, 7)
    old = runtime.keks.current().version_id
    new = runtime.keks.rotate()

    def stop_after_first_batch(done: int, total: int) -> None:
        raise Interrupted(f"killed at {done}/{total}")

    with pytest.raises(Interrupted, match="killed at 3/7"):
        _run(runtime, batch_size=3, progress=stop_after_first_batch)

    assert _under(runtime) == sorted([new] * 3 + [old] * 4), "the first batch committed alone"
    _assert_all_open(runtime, made)
    report = _run(runtime, batch_size=3)
    assert (report.rewrapped, report.already_current, report.changed) == (4, 3, 0)
    assert _under(runtime) == [new] * 7
    _assert_all_open(runtime, made)
    first, second = _rewrap_entries(runtime)
    assert (first["outcome"], first["details"]["rewrapped"]) == ("failure", 3)
    assert (second["outcome"], second["details"]["rewrapped"]) == ("success", 4)


def test_shredded_keys_stay_shredded(runtime: Runtime) -> None:
    made = _issue(runtime, 2)
    gone, _ = _upload(runtime)
    _delete(runtime, gone)
    new = runtime.keks.rotate()

    report = _run(runtime)

    assert (report.total, report.rewrapped, report.changed) == (2, 2, 0)
    assert _wrapped(runtime)[(gone, 1)] is None
    assert _under(runtime) == [new] * 2
    _assert_all_open(runtime, made)


class ShredOnFirstUnwrap:
    """A KEK provider that, the first time a key is unwrapped (after the job read its batch,
    before it writes), has the citizen delete a document in a transaction of its own."""

    def __init__(self, runtime: Runtime, document_id: str) -> None:
        self._runtime, self._document_id = runtime, document_id
        self._keks = runtime.keks
        self.shredded = False

    def current(self) -> Kek:
        return self._keks.current()

    def get(self, version_id: str) -> bytes:
        if not self.shredded:
            self.shredded = True
            _delete(self._runtime, self._document_id)
        return self._keks.get(version_id)

    def rotate(self) -> str:
        return self._keks.rotate()


def test_a_shred_between_the_read_and_the_write_is_not_undone(runtime: Runtime) -> None:
    made = _issue(runtime, 3)
    victim, _ = _upload(runtime)
    new = runtime.keks.rotate()
    racing = ShredOnFirstUnwrap(runtime, victim)

    report = _run(runtime, racing)

    assert racing.shredded
    assert (report.total, report.rewrapped, report.changed) == (4, 3, 1)
    assert _wrapped(runtime)[(victim, 1)] is None, "the delete stands"
    assert _under(runtime) == [new] * 3
    _assert_all_open(runtime, made)


def test_a_key_that_does_not_open_stops_the_run_naming_its_row_and_keeps_what_was_done(
    runtime: Runtime,
) -> None:
    made = _issue(runtime, 4)
    new = runtime.keks.rotate()
    first, *_, last = sorted(_wrapped(runtime))
    altered = bytearray(_wrapped(runtime)[last] or b"")
    altered[-1] ^= 1
    with runtime.transaction() as session:
        session.execute(
            versions.update()
            .where(versions.c.document_id == last[0], versions.c.version == last[1])
            .values(wrapped_key=bytes(altered))
        )

    with pytest.raises(RewrapFailed, match=f"document {last[0]} version 1"):
        _run(runtime, batch_size=2)

    moved = _wrapped(runtime)[first]
    assert moved is not None
    assert wrapped_under(moved) == new, "the batch before the bad key committed"
    del made[last[0]]
    _assert_all_open(runtime, made)
    (entry,) = _rewrap_entries(runtime)
    assert (entry["outcome"], entry["details"]["rewrapped"]) == ("failure", 2)
    assert bytes(altered).hex() not in json.dumps(entry), "no key material in the log"
