"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from api.models import metadata as service_tables
from api.settings import Settings
from audit.models import metadata as audit_tables
from identity.models import metadata as identity_tables
from locker.models import metadata as locker_tables
from signing.models import metadata as signing_tables

DOCS = Path(__file__).resolve().parents[1]
README = (DOCS / "README.md").read_text()
RETENTION = (DOCS / "docs" / "retention.md").read_text()


def test_readme_documents_every_setting() -> None:
    for name in Settings.model_fields:
        assert f"`SHANAKHT_{name.upper()}`" in README, f"SHANAKHT_{name.upper()} is not in README"


def test_the_retention_page_states_every_tables_retention() -> None:
    """docs/retention.md has a row for every table of the schema: a table added without saying
    how long its rows are kept fails here."""
    schema = (service_tables, audit_tables, identity_tables, locker_tables, signing_tables)
    for name in (name for metadata in schema for name in metadata.tables):
        assert f"| `{name}` |" in RETENTION, f"docs/retention.md does not state {name}'s retention"
