"""The `shanakht` command line, run as a user would: exit codes and messages."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.cli import main
from api.runtime import Runtime
from audit import Checkpoint, NoteVerifier, address_pseudonym, merkle
from tests.unit.audit.helpers import append, checkpoint, tampering

SHANAKHT = shutil.which("shanakht", path=str(Path(sys.executable).parent))


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_help_lists_every_command_with_one_line_each() -> None:
    assert SHANAKHT, "the console script is installed"
    out = subprocess.run([SHANAKHT, "--help"], capture_output=True, text=True, check=True).stdout
    commands = out.split("Commands:")[1].strip().splitlines()
    names = [line.strip().split("  ")[0] for line in commands]
    assert names == [
        "audit address",
        "audit checkpoint",
        "audit integrity",
        "audit prove",
        "audit verify",
        "audit watch",
        "backup",
        "citizens remove",
        "clients add",
        "clients list",
        "clients remove",
        "db upgrade",
        "demo",
        "departments add",
        "dev outbox",
        "keys list",
        "keys reseal",
        "keys retire",
        "keys rotate",
        "locker rewrap",
        "locker sweep",
        "pki init",
        "pki issue",
        "pki list",
        "pki renew",
        "pki revoke",
        "restore",
        "roles grant",
        "roles list",
        "roles revoke",
        "serve",
        "verify",
    ]


def test_db_upgrade_creates_the_data_directory(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "SHANAKHT_DATA_DIR": str(tmp_path / "fresh" / "var")}
    code, out = run(env, "db", "upgrade")
    assert code == 0, out
    assert (tmp_path / "fresh" / "var" / "keys").is_dir()
    assert run(env, "db", "upgrade")[0] == 0, "upgrading twice is harmless"


def test_verify_passes_on_a_sound_log(runtime: Runtime, cli_env: dict[str, str]) -> None:
    append(runtime, 30)
    checkpoint(runtime)
    code, out = run(cli_env, "audit", "verify")
    assert code == 0, out
    assert "30 entries, 1 checkpoints" in out


def test_verify_names_the_first_bad_seq(runtime: Runtime, cli_env: dict[str, str]) -> None:
    append(runtime, 30)
    with tampering(runtime) as connection:
        connection.exec_driver_sql("DELETE FROM audit_entries WHERE seq = 17")
    code, out = run(cli_env, "audit", "verify")
    assert code == 1
    assert "at seq 17" in out


def test_audit_address_prints_the_name_the_log_gives_an_address(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    code, out = run(cli_env, "audit", "address", "203.0.113.7")
    assert code == 0
    assert out.strip() == address_pseudonym("203.0.113.7", key=runtime.pseudonym_key)


def test_checkpoint_prints_a_signed_note(runtime: Runtime, cli_env: dict[str, str]) -> None:
    append(runtime, 4)
    code, out = run(cli_env, "audit", "checkpoint")
    assert code == 0
    assert Checkpoint.open(out, runtime.audit_verifier, "shanakht.test/audit").size == 4


def _outside_check(bundle: dict) -> None:
    """What an outside verifier does with `audit prove` output, using no Shanakht code but the
    RFC 9162 verifier: check the note's Ed25519 signature by hand, then the inclusion proof."""
    _name, key_hash_hex, material = bundle["verifier_key"].split("+", 2)
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(material)[1:])
    text, _, signature_line = bundle["checkpoint"].rpartition("\n\n")
    text += "\n"
    blob = base64.b64decode(signature_line.strip().split(" ")[-1])
    assert blob[:4].hex() == key_hash_hex
    public_key.verify(blob[4:], text.encode())
    _origin, size, root = text.splitlines()
    assert int(size) == bundle["size"]
    leaf = merkle.leaf_hash(bundle["entry"].encode())
    proof = [base64.b64decode(p) for p in bundle["proof"]]
    merkle.verify_inclusion(leaf, bundle["index"], int(size), proof, base64.b64decode(root))


def test_prove_prints_a_proof_an_outsider_can_check(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    append(runtime, 21)
    code, out = run(cli_env, "audit", "prove", "13")
    assert code == 0, out
    bundle = json.loads(out)
    assert json.loads(bundle["entry"])["seq"] == 13
    _outside_check(bundle)
    NoteVerifier.parse(bundle["verifier_key"]).open(bundle["checkpoint"])


def test_prove_refuses_an_entry_that_does_not_exist(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    append(runtime, 3)
    code, out = run(cli_env, "audit", "prove", "3")
    assert code == 2
    assert "no entry 3" in out
    assert run(cli_env, "audit", "prove", "-1")[0] == 2


def test_a_data_directory_that_is_a_file_is_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a directory")
    code, out = run({"SHANAKHT_DATA_DIR": str(tmp_path / "var")}, "db", "upgrade")
    assert code == 2
    assert "cannot create the data directory" in out
    assert "Traceback" not in out


def test_an_unreachable_database_is_a_clear_message(tmp_path: Path) -> None:
    env = {
        "SHANAKHT_DATA_DIR": str(tmp_path / "var"),
        "SHANAKHT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
    }
    code, out = run(env, "db", "upgrade")
    assert code == 2
    assert "database is not reachable" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHANAKHT_DATABASE_URL": "nonsense://"}, "SHANAKHT_DATABASE_URL is not usable"),
        ({"SHANAKHT_MASTER_KEY": "too-short"}, "SHANAKHT_MASTER_KEY must be"),
        ({"SHANAKHT_ENV": "production"}, "SHANAKHT_MASTER_KEY is required"),
        ({"SHANAKHT_ENV": "staging"}, "bad configuration: env"),
    ],
)
def test_bad_settings_are_clear_messages(tmp_path: Path, env: dict[str, str], message: str) -> None:
    code, out = run({"SHANAKHT_DATA_DIR": str(tmp_path / "var"), **env}, "db", "upgrade")
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_a_wrong_master_key_says_so(tmp_path: Path) -> None:
    env = {"SHANAKHT_DATA_DIR": str(tmp_path / "var")}
    assert run(env, "db", "upgrade")[0] == 0
    other = base64.b64encode(bytes(32)).decode()
    code, out = run({**env, "SHANAKHT_MASTER_KEY": other}, "db", "upgrade")
    assert code == 2
    assert "does not open under this master key" in out


def test_verify_sees_one_consistent_log_while_appends_go_on(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """Checkpoints, entries and head are read in separate statements: without one snapshot,
    an append between them looks like tampering."""
    append(runtime, 50)
    checkpoint(runtime)
    stop = threading.Event()

    def keep_appending() -> None:
        while not stop.is_set():
            append(runtime, 5, batch=1)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        for _ in range(5):
            code, output = run(cli_env, "audit", "verify")
            assert code == 0, output
    finally:
        stop.set()
        writer.join(timeout=30)
