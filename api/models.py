"""The service's own tables, beside the domain packages': the fingerprints of its keys, and
the key versions retired since.

`api.key_check` records one row per key the first time it sees the key, and from then on
compares the keys folder with these rows at `serve` and `/readyz`, so a keys folder that is not
the one this database was made with (lost, or restored from another deployment, or half of
one) is refused by name. A row holds an HMAC of a fixed label under the key, never the key.
The application role may read and add rows, never change or delete one (`api.migrate`).

A retired key version (`shanakht keys retire pii`, `api.key_retirement`) has a row in
`key_retirements` and no file: the key check then accepts its absence, and refuses its return
(a keys folder restored from before the retirement), which would let the service open values
sealed under a key that may have leaked.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table

from audit.models import NAMING_CONVENTION
from audit.sqltypes import UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

KEK_PREFIX = "kek:"  # a locker KEK version's name here: kek:<version id>

key_fingerprints = Table(
    "key_fingerprints",
    metadata,
    Column(
        "name",
        String(64),
        primary_key=True,
        comment="a key store name, or kek:<version id> for a locker KEK version",
    ),
    Column(
        "fingerprint",
        String(64),
        nullable=False,
        comment="HMAC-SHA256 of a fixed label and the name under the key, hex",
    ),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

key_retirements = Table(
    "key_retirements",
    metadata,
    Column("name", String(64), primary_key=True, comment="the key store name of the version"),
    Column(
        "fingerprint",
        String(64),
        nullable=False,
        comment="its fingerprint as key_fingerprints recorded it",
    ),
    Column("retired_at", UtcDateTime(), nullable=False),
)
