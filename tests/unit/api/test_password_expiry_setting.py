"""SHANAKHT_PASSWORD_EXPIRY_DAYS reaches the identity policy: the province's expiry (90 days
by default) is a setting, and 0 turns it off, as ASVS 2.1.10 advises."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from api.runtime import open_runtime
from api.settings import Settings


@pytest.mark.parametrize(
    ("days", "expiry"), [("0", None), ("90", timedelta(days=90)), ("30", timedelta(days=30))]
)
def test_the_expiry_setting_reaches_the_identity_policy(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    days: str,
    expiry: timedelta | None,
) -> None:
    monkeypatch.setenv("SHANAKHT_PASSWORD_EXPIRY_DAYS", days)
    settings = Settings(data_dir=tmp_path / "var", database_url=database_url)
    runtime = open_runtime(settings)
    try:
        assert runtime.identity.policy.password_expiry == expiry
    finally:
        runtime.close()


def test_the_default_is_the_province_s_90_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHANAKHT_PASSWORD_EXPIRY_DAYS", raising=False)
    assert Settings().password_expiry_days == 90
