"""The signing package's tables: the CA's certificates, its keys (sealed), revocations, CRLs.

Certificates are stored whole (DER) beside the columns that are searched, so what the CA
answers about a serial (OCSP, CRL, trust list) is always the certificate it issued.
Serials are 159-bit integers, kept as lowercase hex text: no database integer holds them.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table

from audit.models import NAMING_CONVENTION
from audit.sqltypes import UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SERIAL = 40  # hex digits of a serial under 20 bytes
KEY_REF = 64

keys = Table(
    "signing_keys",
    metadata,
    Column("ref", String(KEY_REF), primary_key=True),
    Column("sealed", LargeBinary, nullable=False, comment="PKCS#8 DER, AES-256-GCM sealed"),
    Column("created_at", UtcDateTime(), nullable=False),
)

authorities = Table(
    "signing_authorities",
    metadata,
    Column("serial", String(SERIAL), primary_key=True),
    Column("kind", String(16), nullable=False, comment="root | issuing"),
    Column("certificate", LargeBinary, nullable=False, comment="DER"),
    Column("key_ref", String(KEY_REF), ForeignKey(keys.c.ref), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

certificates = Table(
    "signing_certificates",
    metadata,
    Column("serial", String(SERIAL), primary_key=True),
    Column("issuer", String(SERIAL), ForeignKey(authorities.c.serial), nullable=False),
    Column("profile", String(32), nullable=False),
    Column("common_name", String(200), nullable=False),
    Column("department", String(32), nullable=True),
    Column("holder", String(64), nullable=True, comment="an officer's pseudonym, or none"),
    Column("key_ref", String(KEY_REF), ForeignKey(keys.c.ref), nullable=True),
    Column("certificate", LargeBinary, nullable=False, comment="DER"),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("not_after", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("reason", String(32), nullable=True, comment="RFC 5280 CRLReason, by name"),
    Index("ix_signing_certificates_profile_department", "profile", "department"),
)

crls = Table(
    "signing_crls",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("issuer", String(SERIAL), ForeignKey(authorities.c.serial), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("this_update", UtcDateTime(), nullable=False),
    Column("next_update", UtcDateTime(), nullable=False),
)

trust_lists = Table(
    "signing_trust_lists",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("document", LargeBinary, nullable=False, comment="JWS, see signing.trustlist"),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("next_update", UtcDateTime(), nullable=False),
)
