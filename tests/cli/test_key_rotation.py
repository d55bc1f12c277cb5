"""`shanakht keys rotate checkpoint|consent`: a new version of a signing key signs from then on,
and whatever every earlier version signed (checkpoints that auditors hold, consent artifacts
that departments keep) still verifies against what the service publishes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from sqlalchemy import select

from api.app import create_app
from api.key_check import KeysDoNotFit, check_keys_fit_database
from api.key_versions import RECHECK_SECONDS
from api.keystore import LocalKeyStore, development_master_key
from api.migrate import prepare
from api.models import key_fingerprints
from api.routes.exchange import _signer
from api.runtime import AUDIT_CHECKPOINT_KEY, CONSENT_KEY, Runtime, open_runtime
from api.settings import Settings
from audit import AuditEvent, NoteError, NoteKeyRing, NoteVerifier, holds_cnic
from audit.entry import grouped
from audit.models import entries
from locker.consents import CONSENT_TYPE, GRANT_TYPE, SignatureInvalid
from tests.cli.test_cli import run


@contextmanager
def _opened(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings)
    try:
        prepare(runtime)
        yield runtime
    finally:
        runtime.close()


def _checkpoint(settings: Settings, what: str) -> str:
    """An entry and a checkpoint covering it, signed by the version of the checkpoint key
    that signs now: the note an auditor would keep."""
    with _opened(settings) as runtime, runtime.transaction() as session:
        log = runtime.audit_log(session)
        log.append(AuditEvent(actor="admin:cli", action="test.happened", details={"what": what}))
        return log.checkpoint().note


def _rotated(cli_env: dict[str, str], which: str) -> str:
    code, out = run(cli_env, "keys", "rotate", which)
    assert code == 0, out
    return out


def _after_recheck() -> None:
    """Wait until a runtime already open lists the keys folder again at its next use
    (`api.key_versions`): how long a rotation takes at most to reach a running replica."""
    time.sleep(RECHECK_SECONDS)


def _logged(runtime: Runtime, action: str) -> list[dict[str, object]]:
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == action]


def _fingerprints(runtime: Runtime) -> dict[str, str]:
    """The recorded fingerprints, grouped as the rotation's entry writes them."""
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(key_fingerprints.c.name, key_fingerprints.c.fingerprint))
        return {row.name: grouped(row.fingerprint) for row in rows}


def _tampered(note: str) -> str:
    """The note with its tree size changed, its signature line kept."""
    origin, size, rest = note.split("\n", 2)
    return f"{origin}\n{int(size) + 1}\n{rest}"


def test_old_checkpoints_verify_after_rotations_and_new_ones_are_signed_by_the_new_key(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    before = _checkpoint(settings, "before")
    with _opened(settings) as runtime:
        first_key = runtime.audit_signer.verifier_key
    out = _rotated(cli_env, "checkpoint")
    assert "version 2 (audit-checkpoint.v2" in out
    after = _checkpoint(settings, "after")
    _rotated(cli_env, "checkpoint")
    latest = _checkpoint(settings, "latest")

    with _opened(settings) as runtime, TestClient(create_app(runtime)) as client:
        published = client.get("/audit/keys").text.splitlines()
        assert len(published) == 3
        assert published[-1] == first_key
        assert client.get("/audit/key").text.strip() == published[0]
        ring = NoteKeyRing.parse(published)  # what an auditor holds: every version
        for note, key in ((before, published[2]), (after, published[1]), (latest, published[0])):
            ring.open(note)
            assert runtime.checkpoint_key_of(note) == key
            NoteVerifier.parse(key).open(note)  # signed by exactly that version
        with pytest.raises(NoteError, match="carries no signature"):
            NoteVerifier.parse(first_key).open(after)  # the old key signs no more
        for note in (before, after, latest):
            with pytest.raises(NoteError, match="does not verify"):
                ring.open(_tampered(note))
        assert client.get("/readyz").status_code == 200
        # Three versions, three fingerprints; the entries name each new one and no more.
        recorded = _fingerprints(runtime)
        versions = [
            AUDIT_CHECKPOINT_KEY,
            f"{AUDIT_CHECKPOINT_KEY}.v2",
            f"{AUDIT_CHECKPOINT_KEY}.v3",
        ]
        assert set(versions) <= recorded.keys()
        logged = _logged(runtime, "keys.checkpoint.rotated")
        assert [e["details"] for e in logged] == [
            {"version": 2, "fingerprint": recorded[versions[1]]},
            {"version": 3, "fingerprint": recorded[versions[2]]},
        ]
        assert [e["resource"] for e in logged] == [f"keys:{AUDIT_CHECKPOINT_KEY}"] * 2
    code, out = run(cli_env, "audit", "verify")  # every stored checkpoint, whichever version
    assert code == 0, out


def test_a_rotation_signs_a_checkpoint_with_the_new_key_at_once(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    """The rotation's own entry is covered by a checkpoint of the new version, so the latest
    checkpoint an outsider fetches is the new key's."""
    _checkpoint(settings, "before")
    _rotated(cli_env, "checkpoint")
    with _opened(settings) as runtime, TestClient(create_app(runtime)) as client:
        latest = client.get("/audit/checkpoint").text
        assert runtime.checkpoint_key_of(latest) == runtime.audit_signer.verifier_key
        size = int(latest.split("\n")[1])
        assert size == len(_logged(runtime, "test.happened")) + 1  # the rotation's entry too
        code, out = run(cli_env, "audit", "prove", str(size - 1))
        assert code == 0, out
        bundle = json.loads(out)
        assert bundle["verifier_key"] == runtime.audit_signer.verifier_key


def test_old_consent_artifacts_and_grants_verify_after_rotations_and_new_ones_use_the_new_key(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    terms = {"ver": 1, "id": "c1", "owner": "p:someone"}
    artifacts = [_signer(runtime).sign({**terms, "n": 0}, CONSENT_TYPE)]
    expires = int((runtime.clock() + timedelta(minutes=10)).timestamp())
    grant = _signer(runtime).sign({"grant": "g1", "exp": expires}, GRANT_TYPE)
    for n in (1, 2):
        _rotated(cli_env, "consent")
        _after_recheck()
        artifacts.append(_signer(runtime).sign({**terms, "n": n}, CONSENT_TYPE))

    signer = _signer(runtime)
    assert runtime.keys.versions(CONSENT_KEY) == [
        CONSENT_KEY,
        f"{CONSENT_KEY}.v2",
        f"{CONSENT_KEY}.v3",
    ]
    with TestClient(create_app(runtime)) as client:
        published = client.get("/exchange/consent-keys").json()
    kids = [key["kid"] for key in published["keys"]]
    assert len(set(kids)) == 3
    assert kids[0] == signer.kid
    keys = KeySet.import_key_set(published)
    for n, artifact in enumerate(artifacts):  # as a department checks one it kept
        signed = jws.deserialize_compact(artifact, keys, algorithms=["Ed25519"])
        assert json.loads(signed.payload)["n"] == n
        assert signed.headers()["kid"] == kids[2 - n]
        assert signer.open(artifact, CONSENT_TYPE)["n"] == n
        tampered = artifact[:-4] + ("AAAA" if artifact[-4:] != "AAAA" else "BBBB")
        with pytest.raises(BadSignatureError):
            jws.deserialize_compact(tampered, keys, algorithms=["Ed25519"])
        with pytest.raises(SignatureInvalid):
            signer.open(tampered, CONSENT_TYPE)
    # A legal grant handed out before the rotation still opens while it lasts.
    assert signer.open(grant, GRANT_TYPE, now=runtime.clock())["grant"] == "g1"
    check_keys_fit_database(runtime)
    recorded = _fingerprints(runtime)
    logged = _logged(runtime, "keys.consent.rotated")
    assert [e["details"] for e in logged] == [
        {"version": 2, "fingerprint": recorded[f"{CONSENT_KEY}.v2"]},
        {"version": 3, "fingerprint": recorded[f"{CONSENT_KEY}.v3"]},
    ]


def test_a_lost_or_swapped_version_is_refused_by_its_version(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The key check knows every version: one lost (the newest, or the first) or swapped for
    another deployment's is named."""
    _checkpoint(settings, "before")
    _rotated(cli_env, "checkpoint")
    keys = settings.data_dir / "keys"
    second = keys / f"{AUDIT_CHECKPOINT_KEY}.v2.json"
    kept = second.read_bytes()
    second.unlink()
    missing = r"checkpoint signing key, version 2 .* missing"
    with _opened(settings) as runtime, pytest.raises(KeysDoNotFit, match=missing):
        check_keys_fit_database(runtime)
    elsewhere = LocalKeyStore(tmp_path / "elsewhere", development_master_key(settings.data_dir))
    elsewhere.secret(second.stem)  # another deployment's version 2, under the same master key
    second.write_bytes((tmp_path / "elsewhere" / second.name).read_bytes())
    swapped = r"checkpoint signing key, version 2 .* is not the one"
    with _opened(settings) as runtime, pytest.raises(KeysDoNotFit, match=swapped):
        check_keys_fit_database(runtime)
    second.write_bytes(kept)
    with _opened(settings) as runtime:
        check_keys_fit_database(runtime)  # put back, it fits again
    first = keys / f"{AUDIT_CHECKPOINT_KEY}.json"
    first.unlink()  # not made afresh: a newer version is there, so the first one is lost
    lost = r"checkpoint signing key \(audit-checkpoint\) is missing"
    with _opened(settings) as runtime, pytest.raises(KeysDoNotFit, match=lost):
        check_keys_fit_database(runtime)


def test_a_fingerprint_that_looks_like_a_cnic_is_audited_grouped() -> None:
    """One hex fingerprint in a hundred holds a run of exactly 13 decimal digits, which an
    audit entry refuses as a CNIC: the rotation's entry groups it so that none does."""
    shaped = "ab" + "1234567890123" + "c" * 49
    assert holds_cnic(shaped)
    assert not holds_cnic(grouped(shaped))
    assert grouped(shaped).replace(":", "") == shaped


def test_the_pseudonym_key_is_refused_in_one_line_and_nothing_changes(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    _checkpoint(settings, "before")
    keys = settings.data_dir / "keys"
    files = sorted(path.name for path in keys.iterdir())
    code, out = run(cli_env, "keys", "rotate", "pseudonym")
    assert code == 2
    assert out.count("\n") == 1
    assert out.startswith("shanakht: ")
    assert "pseudonym key is not rotated: the append-only audit log" in out
    assert sorted(path.name for path in keys.iterdir()) == files


@pytest.mark.parametrize("option", [["--compromised"], ["--new-key-file", "-"]])
def test_options_of_other_rotations_are_refused_for_a_signing_key(
    settings: Settings, cli_env: dict[str, str], option: list[str]
) -> None:
    _checkpoint(settings, "before")
    code, out = run(cli_env, "keys", "rotate", "consent", *option)
    assert code == 2
    assert out.count("\n") == 1
    assert "are not for `keys rotate consent`" in out
    assert not list(Path(settings.data_dir / "keys").glob("*.v2.json"))


def test_a_checkpoint_no_version_signed_is_named_with_the_newest_key(runtime: Runtime) -> None:
    """A bundle built on a checkpoint altered in the database still answers (with the newest
    key, under which its reader refuses it), rather than failing on the server."""
    with runtime.transaction() as session:
        note = runtime.audit_log(session).checkpoint().note
    altered = _tampered(note)
    assert runtime.checkpoint_key_of(altered) == runtime.audit_signer.verifier_key
    with pytest.raises(NoteError):
        NoteVerifier.parse(runtime.checkpoint_key_of(altered)).open(altered)


def test_a_running_process_signs_with_the_versions_a_rotation_made_without_a_restart(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    """A server opened before `keys rotate` (another process) signs its next checkpoint and
    consent artifact with the new versions, and what it signed before still verifies."""
    with _opened(settings) as server, TestClient(create_app(server)) as client:
        with server.transaction() as session:
            old_note = server.audit_log(session).checkpoint().note
        old_key = client.get("/audit/key").text.strip()
        terms = {"ver": 1, "id": "c1", "owner": "p:someone"}
        old_artifact = _signer(server).sign(terms, CONSENT_TYPE)
        old_kid = _signer(server).kid

        _rotated(cli_env, "checkpoint")
        _rotated(cli_env, "consent")
        _after_recheck()

        new_key = client.get("/audit/key").text.strip()
        assert new_key != old_key
        assert client.get("/audit/keys").text.splitlines() == [new_key, old_key]
        with server.transaction() as session:
            log = server.audit_log(session)
            log.append(AuditEvent(actor="admin:cli", action="test.happened", details={}))
            new_note = log.checkpoint().note
        NoteVerifier.parse(new_key).open(new_note)  # the signature line is version 2's
        with pytest.raises(NoteError, match="carries no signature"):
            NoteVerifier.parse(old_key).open(new_note)
        assert NoteVerifier.parse(old_key).open(old_note)
        assert server.checkpoint_key_of(old_note) == old_key
        assert server.checkpoint_key_of(new_note) == new_key

        new_artifact = _signer(server).sign({**terms, "id": "c2"}, CONSENT_TYPE)
        published = client.get("/exchange/consent-keys").json()
        kids = [key["kid"] for key in published["keys"]]
        assert kids[1:] == [old_kid]
        keys = KeySet.import_key_set(published)
        for artifact, kid in ((new_artifact, kids[0]), (old_artifact, old_kid)):
            assert (
                jws.deserialize_compact(artifact, keys, algorithms=["Ed25519"]).headers()["kid"]
                == kid
            )
            _signer(server).open(artifact, CONSENT_TYPE)
        assert kids[0] != old_kid
        assert client.get("/readyz").status_code == 200
    code, out = run(cli_env, "audit", "verify")
    assert code == 0, out


def _table(out: str) -> tuple[str, list[dict[str, str]]]:
    """The title and the rows of a `keys list checkpoint|consent` table, by its header's
    columns (a cell may hold a space: "verifies only")."""
    title, header, *lines = out.splitlines()
    names = ["VERSION", "KEY", "STATE", "CREATED (UTC)", "KEY ID", "FINGERPRINT"]
    starts = [header.index(name) for name in names]
    assert header.split("  ")[0] == "VERSION"
    ends = [*starts[1:], None]
    rows = [
        {
            name: line[start:end].strip()
            for name, start, end in zip(names, starts, ends, strict=True)
        }
        for line in lines
    ]
    return title, rows


def test_keys_list_shows_every_version_of_the_checkpoint_and_consent_keys(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    code, out = run(cli_env, "keys", "list", "consent")
    assert (code, out) == (
        0,
        "consent key versions (locker-consent): none yet, version 1 is made when it first signs\n",
    )
    assert not list((settings.data_dir / "keys").glob(f"{CONSENT_KEY}*")), "listing made none"
    _checkpoint(settings, "before")
    for which in ("checkpoint", "checkpoint", "consent"):
        _rotated(cli_env, which)
    latest = _checkpoint(settings, "after")
    with _opened(settings) as runtime:
        recorded = _fingerprints(runtime)
        published = {  # the key ids each published version carries, oldest first
            "checkpoint": [vkey.split("+")[1] for vkey in reversed(runtime.audit_verifier_keys)],
            "consent": [key["kid"] for key in reversed(_signer(runtime).jwks()["keys"])],
        }
    for which, name in (("checkpoint", AUDIT_CHECKPOINT_KEY), ("consent", CONSENT_KEY)):
        code, out = run(cli_env, "keys", "list", which)
        assert code == 0, out
        title, rows = _table(out)
        assert title == f"{which} key versions ({name}):"
        count = len(published[which])
        assert count == (3 if which == "checkpoint" else 2)
        assert [row["VERSION"] for row in rows] == [str(n) for n in range(1, count + 1)]
        assert [row["KEY"] for row in rows] == [name] + [
            f"{name}.v{n}" for n in range(2, count + 1)
        ]
        assert [row["STATE"] for row in rows] == ["verifies only"] * (count - 1) + ["current"]
        assert [row["KEY ID"] for row in rows] == published[which]
        assert [row["FINGERPRINT"] for row in rows] == [recorded[row["KEY"]] for row in rows]
        created = [datetime.fromisoformat(row["CREATED (UTC)"]) for row in rows]
        assert created == sorted(created)
        assert started <= created[0]
        assert created[-1] <= datetime.now(UTC)
        if which == "checkpoint":  # the latest note carries the current version's key id
            blob = latest.splitlines()[-1].rpartition(" ")[2]
            assert base64.b64decode(blob)[:4].hex() == rows[-1]["KEY ID"]
    code, out = run(cli_env, "keys", "list")
    listed = out.splitlines()
    assert code == 0, out
    assert "checkpoint key versions (audit-checkpoint):" in listed
    assert "consent key versions (locker-consent):" in listed
    assert listed[-1] == "local:1\tKEK\tcurrent"
