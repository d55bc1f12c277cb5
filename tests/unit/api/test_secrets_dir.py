"""SHANAKHT_SECRETS_DIR: settings from files (Docker's and Kubernetes' secrets), as
docker-compose.yml mounts them; a variable in the environment still wins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SHOW = (
    "from api.settings import Settings; import json; s = Settings(); "
    "print(json.dumps([s.database_url, s.master_key.get_secret_value(), s.s3_bucket]))"
)


def _settings(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def test_settings_are_read_from_secret_files_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "shanakht_database_url").write_text("postgresql+psycopg://u:p@db/shanakht\n")
    (tmp_path / "shanakht_master_key").write_text("a" * 43 + "=")
    env = {"SHANAKHT_SECRETS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert _settings(env) == [
        "postgresql+psycopg://u:p@db/shanakht",
        "a" * 43 + "=",
        "shanakht-locker",
    ]
    env["SHANAKHT_MASTER_KEY"] = "b" * 43 + "="
    assert _settings(env)[1] == "b" * 43 + "="
