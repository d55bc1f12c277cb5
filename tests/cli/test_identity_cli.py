"""The identity commands: clients, keys, departments and roles, and the SMS outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from api.cli import main
from api.runtime import Runtime
from audit.row_seal import bad_rows
from identity.errors import InvalidCredentials
from identity.models import citizens, role_proposals
from identity.nadra import SCENARIOS, CitizenRecord, ensure_registry, read_registry
from tests.http.oidc_kit import PASSWORD, register_citizen
from tests.http.test_row_seals import by_sql


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_clients_add_list_remove(tmp_path: Path, cli_env: dict[str, str]) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    code, out = run(
        cli_env, "clients", "add", "etransfer", "--name", "e-Transfer", "--jwks", str(jwks),
        "--redirect-uri", "https://etransfer.example/cb", "--scope", "openid", "--scope", "cnic",
    )  # fmt: skip
    assert code == 0, out
    code, out = run(cli_env, "clients", "add", "legacy", "--name", "Legacy", "--auth",
                    "client_secret_basic", "--redirect-uri", "https://legacy.example/cb",
                    "--scope", "openid")  # fmt: skip
    assert code == 0
    assert "client secret (shown once" in out
    code, out = run(cli_env, "clients", "list")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["etransfer", "legacy"]
    assert run(cli_env, "clients", "remove", "legacy")[0] == 0
    assert run(cli_env, "clients", "remove", "legacy")[0] == 2


def test_bad_client_registrations_are_clear_messages(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    cases = [
        (["--auth", "client_secret_basic", "--redirect-uri", "http://evil.example/cb"], "https"),
        (
            [
                "--auth",
                "client_secret_basic",
                "--redirect-uri",
                "https://x.example/cb",
                "--scope",
                "openid",
                "--scope",
                "everything",
            ],
            "unknown scopes",
        ),
        (["--redirect-uri", "https://x.example/cb"], "needs the client's public JWKS"),
    ]
    for extra, message in cases:
        code, out = run(cli_env, "clients", "add", "bad", "--name", "Bad", *extra)
        assert code == 2, out
        assert message in out


def test_a_department_system_is_registered_for_a_known_department_only(
    cli_env: dict[str, str],
) -> None:
    system = ["clients", "add", "lgcd-crms", "--name", "CRMS", "--kind", "service", "--auth",
              "client_secret_basic", "--scope", "locker.issue.birth"]  # fmt: skip
    code, out = run(cli_env, *system, "--department", "lgcd")
    assert (code, "no department 'lgcd': add it first" in out) == (2, True)
    assert run(cli_env, "departments", "add", "lgcd", "--name", "Local Government")[0] == 0
    code, out = run(cli_env, "clients", "add", "portal", "--name", "Portal", "--auth",
                    "client_secret_basic", "--redirect-uri", "https://portal.example/cb",
                    "--scope", "openid", "--department", "lgcd")  # fmt: skip
    assert (code, "only a department system belongs to a department" in out) == (2, True)
    code, out = run(cli_env, *system, "--department", "lgcd")
    assert code == 0, out


def test_a_private_key_is_refused_as_a_client_jwks(tmp_path: Path, cli_env: dict[str, str]) -> None:
    key = RSAKey.generate_key(2048)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    code, out = run(cli_env, "clients", "add", "leaky", "--name", "Leaky", "--jwks", str(jwks),
                    "--redirect-uri", "https://leaky.example/cb")  # fmt: skip
    assert code == 2
    assert "public keys only" in out


def test_keys_rotate_keeps_the_old_keys_published(cli_env: dict[str, str]) -> None:
    assert run(cli_env, "db", "upgrade")[0] == 0
    before = run(cli_env, "keys", "list", "oidc")[1].splitlines()
    assert len(before) == 2
    assert run(cli_env, "keys", "rotate", "oidc")[0] == 0
    after = run(cli_env, "keys", "list", "oidc")[1].splitlines()
    assert len(after) == 4
    assert sum(line.endswith("in use") for line in after) == 2


def test_departments_and_roles(runtime: Runtime, cli_env: dict[str, str]) -> None:
    ensure_registry(runtime.identity.nadra_file)
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(runtime, record)
    assert run(cli_env, "departments", "add", "sed", "--name", "School Education")[0] == 0
    code, out = run(cli_env, "roles", "grant", record.cnic, "sed", "signing.officer")
    assert code == 0, out
    assert run(cli_env, "roles", "list", record.cnic)[1].strip() == "sed\tsigning.officer"
    assert run(cli_env, "roles", "grant", record.cnic, "nowhere", "audit.reader")[0] == 2
    assert run(cli_env, "roles", "grant", "35202-9999999-1", "sed", "audit.reader")[1].strip() == (
        "shanakht: no account holds that CNIC"
    )
    assert run(cli_env, "roles", "revoke", record.cnic, "sed", "signing.officer")[0] == 0
    assert run(cli_env, "roles", "revoke", record.cnic, "sed", "signing.officer")[0] == 2


def test_the_operator_grants_the_powerful_roles_directly(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """`shanakht roles grant` bootstraps administrators: no second administrator exists yet to
    approve, so the two-person rule of the pages does not hold the command line back."""
    ensure_registry(runtime.identity.nadra_file)
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(runtime, record)
    assert run(cli_env, "departments", "add", "pitb", "--name", "Punjab IT Board")[0] == 0
    for role in ("identity.admin", "locker.legal"):
        code, out = run(cli_env, "roles", "grant", record.cnic, "pitb", role)
        assert code == 0, out
    assert run(cli_env, "roles", "list", record.cnic)[1].splitlines() == [
        "pitb\tidentity.admin",
        "pitb\tlocker.legal",
    ]
    with runtime.sessions() as session:
        assert session.execute(select(role_proposals.c.id)).first() is None


def test_dev_outbox_prints_the_codes(runtime: Runtime, cli_env: dict[str, str]) -> None:
    ensure_registry(runtime.identity.nadra_file)
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(runtime, record)
    code, out = run(cli_env, "dev", "outbox", "--to", record.mobile_numbers[0])
    assert code == 0
    assert "Shanakht code" in out


def _signed_in_citizen(runtime: Runtime) -> tuple[CitizenRecord, str]:
    """A registered citizen with one sign-on session: (their registry record, account id)."""
    ensure_registry(runtime.identity.nadra_file)
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen_id = register_citizen(runtime, record)
    with runtime.transaction() as session:
        runtime.provider(session).sessions.create(
            citizen_id, acr="urn:shanakht:loa:low", amr=["pwd"], client_address="t", user_agent="t"
        )
    return record, citizen_id


def test_removing_a_citizen_ends_their_sessions_and_their_sign_in(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    record, citizen_id = _signed_in_citizen(runtime)
    assert run(cli_env, "citizens", "remove", record.cnic)[0] == 2, "a reason is required"
    code, out = run(cli_env, "citizens", "remove", record.cnic, "--reason", "deceased (NADRA)")
    assert code == 0, out
    assert "1 sessions ended" in out
    assert "fails its seal" not in out
    with runtime.transaction() as session:
        assert runtime.provider(session).sessions.active_for(citizen_id) == []
    with pytest.raises(InvalidCredentials):
        runtime.password_login().login(record.cnic, PASSWORD, client="t")


def test_an_account_changed_by_sql_can_still_be_removed(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A row that fails its seal signs nobody in, yet an administrator closing the account
    (the CNIC reported stolen, say) must reach it: the removal is written, ends its sessions,
    and the row stays listed as unsealed."""
    record, citizen_id = _signed_in_citizen(runtime)
    by_sql(runtime, update(citizens).values(failed_logins=7))
    code, out = run(cli_env, "citizens", "remove", record.cnic, "--reason", "card stolen")
    assert code == 0, out
    assert f"account row {citizen_id} fails its seal" in out, "the administrator is told"
    assert "1 sessions ended" in out
    with runtime.sessions() as session:
        status = session.execute(select(citizens.c.status)).scalar_one()
        assert status == "removed"
        assert [bad.key for bad in bad_rows(session, runtime.row_seal, [citizens])] == [citizen_id]
