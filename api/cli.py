"""The `shanakht` command line. Every command works on the data directory SHANAKHT_DATA_DIR."""

from __future__ import annotations

import base64
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from api.errors import StartupError
from api.migrate import upgrade
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit import AuditError, TamperError, verify_log

EXIT_TAMPERED = 1
EXIT_USAGE = 2


class _FlatGroup(click.Group):
    """A group whose help lists every command, sub-commands included, with one line each."""

    def _leaves(self, ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            if isinstance(command, click.Group):
                for sub in command.list_commands(ctx):
                    leaf = command.get_command(ctx, sub)
                    if leaf is not None and not leaf.hidden:
                        yield f"{name} {sub}", leaf
            else:
                yield name, command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=200)) for name, cmd in self._leaves(ctx)]
        width = max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            for name, text in rows:  # unwrapped: one line per command, easy to grep
                formatter.write(f"{'':{formatter.current_indent}}{name:<{width}}  {text}\n")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"shanakht: {message}", err=True)
    sys.exit(code)


@contextmanager
def _runtime() -> Iterator[Runtime]:
    """Open the runtime from the environment, turning configuration errors into messages."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors())  # fmt: skip
        _fail(f"bad configuration: {problems}")
    try:
        runtime = open_runtime(settings)
    except StartupError as exc:
        _fail(str(exc))
    try:
        yield runtime
    except StartupError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}")
    finally:
        runtime.close()


def _migrate(runtime: Runtime) -> None:
    runtime.check_database()
    upgrade(runtime.engine)


@click.group(cls=_FlatGroup)
def main() -> None:
    """Shanakht: digital identity, document locker and signatures, on one audit log."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Migrate the database, then serve the API on 127.0.0.1:8000."""
    import uvicorn

    from api.app import create_app

    with _runtime() as runtime:
        logging.basicConfig(
            level=runtime.settings.log_level, format="%(levelname)s %(name)s: %(message)s"
        )
        _migrate(runtime)
        click.echo(f"Shanakht on http://{host}:{port} (data in {runtime.settings.data_dir})")
        uvicorn.run(
            create_app(runtime), host=host, port=port, log_level=runtime.settings.log_level.lower()
        )


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database schema to the latest version."""
    with _runtime() as runtime:
        _migrate(runtime)
        click.echo("database is up to date")


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Re-check the whole log and its checkpoints; exit 1 naming the first bad entry."""
    with _runtime() as runtime, runtime.engine.connect() as connection:
        _migrate(runtime)
        origin = runtime.settings.resolved_audit_origin
        try:
            report = verify_log(connection, runtime.audit_verifier, origin)
        except TamperError as exc:
            where = f" at seq {exc.seq}" if exc.seq is not None else ""
            _fail(f"audit log FAILED verification{where}: {exc}", EXIT_TAMPERED)
        click.echo(
            f"audit log verified: {report.size} entries, {report.checkpoints} checkpoints, "
            f"root {base64.b64encode(report.root).decode()}"
        )


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign, record and print a checkpoint of the log as it stands."""
    with _runtime() as runtime:
        _migrate(runtime)
        with runtime.sessions() as session, session.begin():
            signed = runtime.audit_log(session).checkpoint()
        click.echo(signed.note, nl=False)


@audit.command("prove")
@click.argument("seq", type=click.IntRange(min=0))
def audit_prove(seq: int) -> None:
    """Print entry SEQ, its inclusion proof and a checkpoint, as JSON."""
    with _runtime() as runtime:
        _migrate(runtime)
        with runtime.sessions() as session, session.begin():
            log = runtime.audit_log(session)
            try:
                entry = log.entry(seq)
                signed = log.latest_checkpoint()
                if signed is None or signed.checkpoint.size <= seq:
                    signed = log.checkpoint()
                proof = log.inclusion_proof(seq, signed.checkpoint.size)
            except AuditError as exc:
                _fail(str(exc))
        bundle = {
            "entry": entry.to_bytes().decode(),
            "index": proof.index,
            "size": proof.size,
            "leaf_hash": base64.b64encode(proof.leaf_hash).decode(),
            "proof": [base64.b64encode(h).decode() for h in proof.proof],
            "checkpoint": signed.note,
            "verifier_key": runtime.audit_signer.verifier_key,
        }
        click.echo(json.dumps(bundle, indent=2, ensure_ascii=False))
