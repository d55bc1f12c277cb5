"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from api.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    for name in Settings.model_fields:
        assert f"`SHANAKHT_{name.upper()}`" in README, f"SHANAKHT_{name.upper()} is not in README"
