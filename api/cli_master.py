"""`shanakht keys rotate master`: the key files re-sealed under a new master key.

Only the key store's files (`keys/<name>.json`) are sealed under the master key itself;
everything else is sealed under one of them (the KEKs under `locker-kek-seal`, the PKI's keys
under `signing-seal`, the OIDC keys and TOTP secrets under `identity-seal`), so re-sealing
those files rotates the master key and changes no key: fingerprints, tokens, signatures and
documents stay as they were.

One way to resume, the command's own: it takes the current key where the service takes it
(SHANAKHT_MASTER_KEY, or `master.key` in development) and the new key from a file, opens each
file under either, and re-seals those still under the current one. So a run stopped anywhere
is finished by running it again with the same new key, and no setting ever holds two master
keys. The price is that the service is stopped while it runs (a second or so for the few dozen
files), which the help says.
"""

from __future__ import annotations

import base64
from typing import TextIO

import click
from pydantic import SecretStr

from api.administration import CLI_ACTOR, record_master_rotation
from api.cli_support import cli_runtime, cli_settings, fail, migrate
from api.errors import StartupError
from api.key_check import check_keys_fit_database
from api.keystore import (
    MAKE_ONE,
    parse_master_key,
    replace_development_master_key,
    rotate_master_key,
)
from api.settings import Settings

STOPPED = (
    "the rotation stopped part way ({why}): every key still opens under the current master "
    "key or the new one; run this command again, with the same new key, to finish"
)
NEXT_IN_PRODUCTION = (
    "now put the new key in SHANAKHT_MASTER_KEY (the secret `shanakht_master_key`) and start "
    "the service; keep the old key only as long as you keep backups made before now (their "
    "keys open under it alone), then destroy it and the new key's file"
)

HELP = f"""MASTER: `keys rotate master --new-key-file FILE` re-seals every key file under a new
master key (never part of `all`). No key itself changes, so tokens, signatures and documents
stay valid. FILE (`-`: standard input) holds the new key, the base64 of 32 random bytes; make
one with:

\b
    (umask 077; {MAKE_ONE} > new-master.key)

Stop every replica, then run it with the current key still configured. If it stops part way,
run it again with the same new key: it finishes the job. Then, in production, put the new key
in SHANAKHT_MASTER_KEY (the secret `shanakht_master_key`) and restart every replica; in
development `master.key` is replaced, last. Keep the old key as long as backups made before:
their keys open under it alone.

A replica left running under the old key is not ready at its next /readyz (its key files no
longer open) and any key it makes from then on is sealed under the old key: the restarted
service refuses to start, naming it, and running this command again with the same two keys
re-seals it.
"""


def rotate_master(key_file: TextIO) -> None:
    """Re-seal the key files under the key in `key_file`, record it, and say what is next."""
    settings = cli_settings()
    try:
        current = _current_master_key(settings)
        new = parse_master_key(key_file.read(), what=f"the new master key ({key_file.name})")
        done = rotate_master_key(settings.data_dir / "keys", current, new)
    except StartupError as exc:  # MasterKeyRefused among them: nothing was changed
        fail(str(exc))
    except OSError as exc:
        fail(STOPPED.format(why=exc.strerror or exc))
    encoded = SecretStr(base64.b64encode(new).decode())
    with cli_runtime(settings.model_copy(update={"master_key": encoded})) as runtime:
        migrate(runtime)
        check_keys_fit_database(runtime)  # every key is the one the database was made with
        record_master_rotation(runtime, resealed=done.resealed, actor=CLI_ACTOR)
    click.echo(
        f"re-sealed {done.resealed} key files under the new master key "
        f"({done.already} were already under it)"
    )
    if settings.master_key is not None:
        click.echo(NEXT_IN_PRODUCTION)
        return
    try:  # last: until now, the current key in master.key and the new one finish the job
        replace_development_master_key(settings.data_dir, new)
    except OSError as exc:
        fail(STOPPED.format(why=exc.strerror or exc))
    click.echo(f"{settings.data_dir / 'master.key'} now holds the new master key")


def _current_master_key(settings: Settings) -> bytes:
    """The key the service now starts with, without making one (as a first start would)."""
    if settings.master_key is not None:
        return parse_master_key(settings.master_key.get_secret_value())
    path = settings.data_dir / "master.key"
    if not path.is_file():
        raise StartupError(
            f"{path} does not exist and SHANAKHT_MASTER_KEY is not set: there is no master "
            "key to rotate (is SHANAKHT_DATA_DIR the service's data directory?)"
        )
    return parse_master_key(path.read_text(), what=str(path))
