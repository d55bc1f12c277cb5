"""`shanakht keys rotate locker`, `locker rewrap` and `locker sweep`, run as an operator would
against documents the service stored."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from api.runtime import Runtime
from audit.models import entries
from locker.access import Accessor
from locker.crypto import wrapped_under
from locker.models import versions
from tests.cli.test_cli import run

OWNER = "p:" + "D" * 43
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")
CITIZEN = Accessor(OWNER, "citizen", "owner")


def _issue(runtime: Runtime, count: int) -> dict[str, bytes]:
    made = {}
    for n in range(count):
        content = b"%PDF-1.7\n" + os.urandom(5000)
        with runtime.transaction() as session:
            issued = runtime.locker(session).issue(
                owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id=f"BC-{n}",
                title="Birth certificate", content=[content], content_type="application/pdf",
                who=ISSUER,
            )  # fmt: skip
        made[issued.document.id] = content
    return made


def _kek_versions(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        keys = session.execute(
            select(versions.c.wrapped_key).where(versions.c.wrapped_key.is_not(None))
        ).scalars()
        return sorted(wrapped_under(key) for key in keys)


def _logged(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    """The audit entries with `action`, oldest first."""
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == action]


def test_rotate_the_kek_then_rewrap_and_every_document_still_reads(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    made = _issue(runtime, 3)
    assert _kek_versions(runtime) == ["local:1"] * 3

    code, out = run(cli_env, "keys", "rotate", "locker")
    assert code == 0, out
    assert "new locker KEK: local:2" in out
    assert "signing keys" not in out, "only the KEK was asked for"
    assert run(cli_env, "keys", "list", "locker")[1].splitlines() == [
        "local:1\tKEK\tunwrap only",
        "local:2\tKEK\tcurrent",
    ]
    code, out = run(cli_env, "locker", "rewrap", "--batch-size", "2")
    assert code == 0, out
    assert "3/3 data keys done" in out
    assert out.splitlines()[-1].startswith("3 data keys re-wrapped under KEK local:2, 0 already")

    assert _kek_versions(runtime) == ["local:2"] * 3
    with runtime.transaction() as session:
        for document_id, content in made.items():
            _, stream = runtime.locker(session).open(document_id, owner=OWNER, who=CITIZEN)
            assert b"".join(stream) == content
    [rotated] = _logged(runtime, "locker.keys.rotated")
    assert (rotated["actor"], rotated["details"]) == ("admin:cli", {"kek_version": "local:2"})
    [rewrapped] = _logged(runtime, "locker.keys.rewrapped")
    assert rewrapped["details"] == {
        "kek_version": "local:2", "total": 3, "rewrapped": 3, "already_current": 0, "changed": 0,
    }  # fmt: skip


def test_rotate_all_is_the_default_and_rotates_both(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run(cli_env, "keys", "rotate")
    assert code == 0, out
    assert "new signing keys: " in out
    assert "new locker KEK: local:2" in out
    code, out = run(cli_env, "keys", "rotate", "oidc")
    assert (code, "KEK" in out) == (0, False)
    listed = run(cli_env, "keys", "list", "all")[1].splitlines()
    assert sum(line.endswith("in use") for line in listed) == 2, "the newest signing keys"
    assert listed[-2:] == ["local:1\tKEK\tunwrap only", "local:2\tKEK\tcurrent"]
    code, out = run(cli_env, "keys", "rotate", "oidc", "--compromised")
    assert (code, "withdrawn from the JWKS now" in out) == (0, True), out
    with runtime.transaction() as session:
        published = runtime.provider(session).keys.published()
    assert len(published) == 2, "only the two newest keys: the leaked ones are withdrawn"
    assert run(cli_env, "keys", "rotate", "nonsense")[0] == 2


def test_sweep_removes_shredded_ciphertext_and_old_orphans_only(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    [(kept, content)] = _issue(runtime, 1).items()
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        uploads = [
            locker.upload(owner=OWNER, doctype="other", title=f"copy {n}", who=CITIZEN,
                          content=[b"%PDF-1.4\n" + os.urandom(100)],
                          content_type="application/pdf").id
            for n in range(2)
        ]  # fmt: skip
    with runtime.transaction() as session:
        for document_id in uploads:
            runtime.locker(session).delete(document_id, owner=OWNER, who=CITIZEN)
    old = (runtime.clock() - timedelta(days=1)).strftime("%Y%m%dT%H%M%S")
    young = runtime.clock().strftime("%Y%m%dT%H%M%S")
    # Orphans in both layouts: documents/<2 letters>/<id>.<version>-<when>, and the earlier
    # documents/<id>/<version>-<when>.
    runtime.store.put(f"documents/aa/{'a' * 32}.1-{old}", [b"left by a failed upload"])
    runtime.store.put(f"documents/{'c' * 32}/1-{old}", [b"left by an older release"])
    runtime.store.put(f"documents/bb/{'b' * 32}.1-{young}", [b"an upload not yet committed"])
    assert len(list(runtime.store.keys("documents/"))) == 6

    code, out = run(cli_env, "locker", "sweep")

    assert code == 0, out
    assert out.strip() == "removed 2 objects of deleted documents and 2 orphaned objects"
    left = sorted(key.split("/")[2].split(".")[0] for key in runtime.store.keys("documents/"))
    assert left == sorted([kept, "b" * 32]), "the live document and the young upload stay"
    code, out = run(cli_env, "locker", "sweep")
    assert out.strip() == "removed 0 objects of deleted documents and 0 orphaned objects"
    with runtime.transaction() as session:
        _, stream = runtime.locker(session).open(kept, owner=OWNER, who=CITIZEN)
        assert b"".join(stream) == content


def test_a_key_that_does_not_open_fails_the_rewrap_naming_the_document(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    [document_id] = _issue(runtime, 1)
    with runtime.transaction() as session:
        session.execute(
            versions.update()
            .where(versions.c.document_id == document_id)
            .values(wrapped_key=b"not a wrapped key")
        )
    assert run(cli_env, "keys", "rotate", "locker")[0] == 0

    code, out = run(cli_env, "locker", "rewrap")

    assert code == 1
    assert f"document {document_id} version 1: not a wrapped locker data key" in out
    [entry] = _logged(runtime, "locker.keys.rewrapped")
    assert (entry["outcome"], entry["details"]["rewrapped"]) == ("failure", 0)
