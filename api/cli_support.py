"""What every `shanakht` command shares: opening the runtime, failing with one clear line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from api.administration import find_citizen
from api.errors import StartupError
from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from identity.errors import InvalidCnic

EXIT_TAMPERED = 1
EXIT_USAGE = 2


class FlatGroup(click.Group):
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


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"shanakht: {message}", err=True)
    sys.exit(code)


def cli_settings() -> Settings:
    """The settings from the environment, or one line saying what is wrong with them."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                             for e in exc.errors())  # fmt: skip
        fail(f"bad configuration: {problems}")


@contextmanager
def cli_runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """Open the runtime from `settings` (default: the environment's), turning configuration
    errors into messages."""
    if settings is None:
        settings = cli_settings()
    try:
        runtime = open_runtime(settings)
    except StartupError as exc:
        fail(str(exc))
    try:
        yield runtime
    except StartupError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database error: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}")
    finally:
        runtime.close()


def migrate(runtime: Runtime) -> None:
    runtime.check_database()
    prepare(runtime)


def citizen_for(
    runtime: Runtime, session: Any, cnic: str, *, sealed: bool = True
) -> tuple[str, str]:
    """(citizen id, pseudonym) of the account holding `cnic`, or a clear failure (`sealed`:
    see `find_citizen`)."""
    try:
        found = find_citizen(runtime, session, cnic, sealed=sealed)
    except InvalidCnic as exc:
        fail(str(exc))
    if found is None:
        fail("no account holds that CNIC")
    return found
