"""Signing: keys, authorities, certificates, CRLs, trust lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column(
            "sealed", sa.LargeBinary(), nullable=False, comment="PKCS#8 DER, AES-256-GCM sealed"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "signing_authorities",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="root | issuing"),
        sa.Column("certificate", sa.LargeBinary(), nullable=False, comment="DER"),
        sa.Column("key_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_ref"],
            ["signing_keys.ref"],
            name=op.f("fk_signing_authorities_key_ref_signing_keys"),
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_signing_authorities")),
    )
    op.create_table(
        "signing_certificates",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=40), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("common_name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column(
            "holder", sa.String(length=64), nullable=True, comment="an officer's pseudonym, or none"
        ),
        sa.Column("key_ref", sa.String(length=64), nullable=True),
        sa.Column("certificate", sa.LargeBinary(), nullable=False, comment="DER"),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column(
            "reason", sa.String(length=32), nullable=True, comment="RFC 5280 CRLReason, by name"
        ),
        sa.ForeignKeyConstraint(
            ["issuer"],
            ["signing_authorities.serial"],
            name=op.f("fk_signing_certificates_issuer_signing_authorities"),
        ),
        sa.ForeignKeyConstraint(
            ["key_ref"],
            ["signing_keys.ref"],
            name=op.f("fk_signing_certificates_key_ref_signing_keys"),
        ),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_signing_certificates")),
    )
    op.create_index(
        "ix_signing_certificates_profile_department",
        "signing_certificates",
        ["profile", "department"],
    )

    op.create_table(
        "signing_crls",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issuer", sa.String(length=40), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("this_update", UtcDateTime(), nullable=False),
        sa.Column("next_update", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer"],
            ["signing_authorities.serial"],
            name=op.f("fk_signing_crls_issuer_signing_authorities"),
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_signing_crls")),
    )

    op.create_table(
        "signing_trust_lists",
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "document", sa.LargeBinary(), nullable=False, comment="JWS, see signing.trustlist"
        ),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("next_update", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_signing_trust_lists")),
    )


def downgrade() -> None:
    op.drop_table("signing_trust_lists")
    op.drop_table("signing_crls")
    op.drop_index("ix_signing_certificates_profile_department", "signing_certificates")
    op.drop_table("signing_certificates")
    op.drop_table("signing_authorities")
    op.drop_table("signing_keys")
