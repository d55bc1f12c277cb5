"""`shanakht keys retire pii`: once the re-seal has moved everything off the PII key's older
versions, their files are deleted and the service stops opening what they seal, in every
replica, so a leaked version no longer lets a database writer plant a value the service reads
as its own. It refuses while anything that opens is still under them; a key file that comes
back is refused by the key check; and a backup whose snapshot needs a version retired while it
ran fails instead of leaving a backup that cannot be restored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, update

from api import cli_backup, key_retirement
from api.key_check import KeysDoNotFit, check_keys_fit_database
from api.key_retirement import retire_versions
from api.key_versions import RECHECK_SECONDS
from api.models import key_fingerprints, key_retirements
from api.runtime import IDENTITY_SEAL_KEY, Runtime, open_runtime
from api.settings import Settings
from audit.entry import grouped
from audit.models import entries
from identity.models import totp_factors
from identity.sealing import SealBroken, Sealer
from identity.totp import totp_context
from tests.cli.test_cli import run
from tests.cli.test_pii_rotation import _versions

V1 = f"{IDENTITY_SEAL_KEY}.json"
PLANTED = "OBWGC3TUMVSC2YTZFVSGEYJNGIYA"  # base32, 136 bits: a TOTP secret of their own


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests rotate and retire within a second; the wait for replicas is tested alone."""
    monkeypatch.setattr(key_retirement, "SETTLE_SECONDS", 0.0)


def _key_file(settings: Settings, name: str = V1) -> Path:
    return settings.data_dir / "keys" / name


def _retired_entries(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == "keys.pii.retired"]


def _rotated_and_resealed(cli_env: dict[str, str]) -> None:
    code, out = run(cli_env, "keys", "rotate", "pii")
    assert code == 0, out
    code, out = run(cli_env, "keys", "reseal", "pii")
    assert code == 0, out


def test_nothing_is_retired_while_a_value_that_opens_is_under_an_older_version(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    assert run(cli_env, "keys", "rotate", "pii")[0] == 0

    code, out = run(cli_env, "keys", "retire", "pii")

    assert code == 1, out
    assert "version 1 still seals 7 values in use" in out  # as the re-seal counts them
    assert "nothing retired: run `shanakht keys reseal pii`" in out
    assert _key_file(settings).is_file()
    with runtime.engine.connect() as connection:
        assert connection.execute(select(key_retirements)).all() == []
    assert _retired_entries(runtime) == []


def test_a_retired_version_opens_nothing_and_the_rest_reads_as_before(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    """Retired, version 1's file is gone, its retirement recorded and audited; the key check,
    the integrity check and the account pass; and a TOTP secret of an attacker's choosing,
    sealed under the leaked version 1 and written into the database, is refused: by a process
    started afterwards, and by one that was running, within the key listing's recheck time."""
    citizen, _secret = people
    leaked = Sealer.of(runtime.keys.secret(IDENTITY_SEAL_KEY))
    _rotated_and_resealed(cli_env)
    running = open_runtime(settings)
    try:
        planted = leaked.seal(PLANTED.encode(), totp_context(citizen))
        assert running.identity.sealer.open(planted, totp_context(citizen)) == PLANTED.encode()

        code, out = run(cli_env, "keys", "retire", "pii")

        assert code == 0, out
        assert "retired pii key versions 1: their key files are deleted" in out
        assert not _key_file(settings).exists()
        with runtime.engine.connect() as connection:
            (retired,) = connection.execute(select(key_retirements)).all()
            recorded = connection.execute(
                select(key_fingerprints.c.fingerprint).where(
                    key_fingerprints.c.name == IDENTITY_SEAL_KEY
                )
            ).scalar_one()
        assert (retired.name, retired.fingerprint) == (IDENTITY_SEAL_KEY, recorded)
        (entry,) = _retired_entries(runtime)
        assert entry["details"] == {
            "versions": [1],
            "fingerprints": [grouped(recorded)],
            "lost_already": 0,
        }

        with runtime.engine.begin() as connection:
            connection.execute(update(totp_factors).values(secret=planted))
        time.sleep(RECHECK_SECONDS * 1.1)
        for process in (running, open_runtime(settings)):
            with pytest.raises(SealBroken, match="version 1, which this service lacks"):
                process.identity.sealer.open(planted, totp_context(citizen))
            with process.transaction() as session:  # refused, and no error page
                assert not process.second_factor(session).apps.verify(
                    citizen, pyotp.TOTP(PLANTED).now()
                )
            with process.transaction() as session:
                account = process.provider(session).accounts.by_id(citizen)
            assert account is not None, "what the re-seal moved reads as before"
            check_keys_fit_database(process)
            if process is not running:
                process.close()
    finally:
        running.close()
    code, out = run(cli_env, "keys", "list", "pii")
    assert code == 0, out
    assert any(line.startswith("1 ") and "retired" in line for line in out.splitlines()), out
    assert any("identity-seal.v2" in line and "current" in line for line in out.splitlines())


def test_versions_keep_their_numbers_and_a_later_retirement_takes_the_next(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    _rotated_and_resealed(cli_env)
    assert run(cli_env, "keys", "retire", "pii")[0] == 0
    code, out = run(cli_env, "keys", "retire", "pii")
    assert (code, out.strip()) == (0, "no older version of the pii key to retire")

    _rotated_and_resealed(cli_env)
    assert set().union(*_versions(runtime).values()) == {3}
    code, out = run(cli_env, "keys", "retire", "pii")
    assert code == 0, out
    assert "retired pii key versions 2:" in out
    assert runtime.keys.versions(IDENTITY_SEAL_KEY) == [f"{IDENTITY_SEAL_KEY}.v3"]
    assert [e["details"]["versions"] for e in _retired_entries(runtime)] == [[1], [2]]  # type: ignore[index]
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out


def test_values_that_did_not_open_are_counted_not_kept(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    """A TOTP secret altered in the database opens under no version: the re-seal leaves it,
    and the retirement, which loses nothing by it, counts it and goes ahead."""
    with runtime.engine.begin() as connection:
        stored = connection.execute(select(totp_factors.c.secret)).scalar_one()
        connection.execute(
            update(totp_factors).values(secret=stored[:-1] + bytes([stored[-1] ^ 1]))
        )
    assert run(cli_env, "keys", "rotate", "pii")[0] == 0
    assert run(cli_env, "keys", "reseal", "pii")[0] == 1

    code, out = run(cli_env, "keys", "retire", "pii")

    assert code == 0, out
    assert "1 values under version 1 were unusable already and stay so" in out
    assert _retired_entries(runtime)[0]["details"]["lost_already"] == 1  # type: ignore[index]
    assert _versions(runtime)["identity_totp.secret"] == {1}


def test_a_retired_key_that_comes_back_is_refused_and_retire_removes_it_again(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    """A keys folder restored from before the retirement brings version 1 back: the key check
    (`serve`, `/readyz`) refuses it by name, a process already running does not take it back
    (the database says it is retired), and `keys retire pii` counts again and deletes it."""
    citizen, _secret = people
    leaked = Sealer.of(runtime.keys.secret(IDENTITY_SEAL_KEY))
    _rotated_and_resealed(cli_env)
    kept = _key_file(settings).read_bytes()
    assert run(cli_env, "keys", "retire", "pii")[0] == 0
    running = open_runtime(settings)
    try:
        _key_file(settings).write_bytes(kept)
        with pytest.raises(
            KeysDoNotFit, match=r"\(identity-seal\) was retired, but its key is back"
        ):
            check_keys_fit_database(running)
        time.sleep(RECHECK_SECONDS * 1.1)
        planted = leaked.seal(PLANTED.encode(), totp_context(citizen))
        with pytest.raises(SealBroken):
            running.identity.sealer.open(planted, totp_context(citizen))
    finally:
        running.close()
    code, out = run(cli_env, "keys", "retire", "pii")
    assert code == 0, out
    assert "pii key versions 1, retired before, were back: deleted again" in out
    assert not _key_file(settings).exists()
    assert len(_retired_entries(runtime)) == 1, "nothing retired twice"
    check_keys_fit_database(runtime)


def test_a_retirement_written_by_sql_deletes_nothing(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    """Whoever can write the database records the current version, or a version before the
    re-seal, as retired: the key check refuses the first as a row the service did not write;
    the second stops the service opening that version's values until the row is deleted; and
    `keys retire pii` deletes no key file in either case."""
    assert run(cli_env, "keys", "rotate", "pii")[0] == 0
    current = f"{IDENTITY_SEAL_KEY}.v2"
    with runtime.engine.connect() as connection:
        prints = dict(
            connection.execute(
                select(key_fingerprints.c.name, key_fingerprints.c.fingerprint)
            ).all()
        )
    with runtime.engine.begin() as connection:
        connection.execute(
            key_retirements.insert().values(
                name=current, fingerprint=prints[current], retired_at=runtime.clock()
            )
        )
    with pytest.raises(KeysDoNotFit, match=f"key_retirements names {current}, which this"):
        check_keys_fit_database(runtime)
    code, out = run(cli_env, "keys", "retire", "pii")
    assert code != 0, out
    assert _key_file(settings, f"{current}.json").is_file()

    with runtime.engine.begin() as connection:
        connection.execute(key_retirements.delete())
        connection.execute(
            key_retirements.insert().values(
                name=IDENTITY_SEAL_KEY,
                fingerprint=prints[IDENTITY_SEAL_KEY],
                retired_at=runtime.clock(),
            )
        )
    code, out = run(cli_env, "keys", "retire", "pii")
    assert code != 0, out  # the service stops opening version 1: a denial, no loss
    assert _key_file(settings).is_file()
    with runtime.engine.begin() as connection:
        connection.execute(key_retirements.delete())
    check_keys_fit_database(runtime)


def test_a_retirement_waits_for_the_replicas_and_stops_if_the_key_rotates_meanwhile(
    runtime: Runtime,
    settings: Settings,
    cli_env: dict[str, str],
    people: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _rotated_and_resealed(cli_env)
    waited: list[float] = []

    def rotated_while_waiting(seconds: float) -> None:
        waited.append(seconds)
        runtime.keys.add_version(IDENTITY_SEAL_KEY)

    monkeypatch.setattr(key_retirement, "SETTLE_SECONDS", 3.0)
    monkeypatch.setattr(key_retirement.time, "sleep", rotated_while_waiting)
    code, out = run(cli_env, "keys", "retire", "pii")
    assert code == 1, out
    assert "the pii key was rotated meanwhile" in out
    assert waited == [3.0]
    assert _key_file(settings).is_file()


def test_a_backup_whose_snapshot_needs_a_version_retired_meanwhile_fails(
    runtime: Runtime,
    settings: Settings,
    cli_env: dict[str, str],
    people: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The snapshot is taken, then version 1 is retired, then the keys are copied: the copy
    lacks a key the snapshot's database records and had not retired, and the backup fails,
    leaving nothing, where it would have left a backup that cannot be restored. After the
    retirement, a backup passes."""
    _rotated_and_resealed(cli_env)
    copy_keys = cli_backup._copy_keys

    def retired_in_between(data_dir: Path, out: Path, retired: list[str]) -> None:
        retire_versions(runtime, "pii", actor="admin:test")
        copy_keys(data_dir, out, retired)

    monkeypatch.setattr(cli_backup, "_copy_keys", retired_in_between)
    code, out = run(cli_env, "backup", str(tmp_path / "during"))
    assert code == 1, out
    assert f"the key {IDENTITY_SEAL_KEY} that the database snapshot needs" in out
    assert "retired during the backup (run it again)" in out
    assert not (tmp_path / "during").exists()

    monkeypatch.setattr(cli_backup, "_copy_keys", copy_keys)
    code, out = run(cli_env, "backup", str(tmp_path / "after"))
    assert code == 0, out
    assert not (tmp_path / "after" / "keys" / V1).exists()
