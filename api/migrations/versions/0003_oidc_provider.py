"""OpenID Connect provider: keys, clients, sessions, grants, codes, tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_clients",
        sa.Column("id", sa.String(length=64), nullable=False, comment="client_id"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="eservice | service"),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column(
            "secret_hash",
            sa.LargeBinary(length=32),
            nullable=True,
            comment="SHA-256 of a random secret",
        ),
        sa.Column("jwks", sa.Text(), nullable=True, comment="public keys for private_key_jwt"),
        sa.Column("redirect_uris", sa.Text(), nullable=False, comment="JSON list, matched exactly"),
        sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column(
            "scopes", sa.Text(), nullable=False, comment="space-separated scopes it may ask for"
        ),
        sa.Column("backchannel_logout_uri", sa.String(length=500), nullable=True),
        sa.Column("id_token_alg", sa.String(length=8), nullable=False),
        sa.Column("require_par", sa.Boolean(), nullable=False),
        sa.Column("require_dpop", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_clients")),
    )
    op.create_table(
        "identity_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False, comment="RS256 | ES256"),
        sa.Column("private_key", sa.LargeBinary(), nullable=False, comment="sealed PKCS#8 PEM"),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column(
            "retired_at", UtcDateTime(), nullable=True, comment="no longer signs; still in JWKS"
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_identity_signing_keys")),
    )
    op.create_table(
        "identity_used_assertions",
        sa.Column(
            "jti", sa.String(length=200), nullable=False, comment="client_id and jti: replay guard"
        ),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_identity_used_assertions")),
    )
    with op.batch_alter_table("identity_used_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_used_assertions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "identity_auth_requests",
        sa.Column("id", sa.String(length=32), nullable=False, comment="also the PAR request_uri"),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("params", sa.Text(), nullable=False, comment="the validated request, JSON"),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_clients.id"],
            name=op.f("fk_identity_auth_requests_client_id_identity_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_auth_requests")),
    )
    op.create_table(
        "identity_grants",
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column(
            "scopes", sa.Text(), nullable=False, comment="space-separated scopes consented to"
        ),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["identity_citizens.id"],
            name=op.f("fk_identity_grants_citizen_id_identity_citizens"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_clients.id"],
            name=op.f("fk_identity_grants_client_id_identity_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("citizen_id", "client_id", name=op.f("pk_identity_grants")),
    )
    op.create_table(
        "identity_sessions",
        sa.Column("id", sa.String(length=64), nullable=False, comment="SHA-256 of the cookie, hex"),
        sa.Column("sid", sa.String(length=32), nullable=False, comment="public id, in tokens"),
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column("acr", sa.String(length=64), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column("auth_time", UtcDateTime(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["identity_citizens.id"],
            name=op.f("fk_identity_sessions_citizen_id_identity_citizens"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_sessions")),
        sa.UniqueConstraint("sid", name=op.f("uq_identity_sessions_sid")),
    )
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_identity_sessions_citizen_id", ["citizen_id"], unique=False)

    op.create_table(
        "identity_tokens",
        sa.Column(
            "id",
            sa.String(length=64),
            nullable=False,
            comment="jti of an access token, or SHA-256 hex of a refresh token",
        ),
        sa.Column("kind", sa.String(length=8), nullable=False, comment="access | refresh"),
        sa.Column(
            "family", sa.String(length=64), nullable=False, comment="all tokens from one code"
        ),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("citizen_id", sa.String(length=32), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column(
            "dpop_jkt",
            sa.String(length=64),
            nullable=True,
            comment="DPoP key thumbprint it is bound to",
        ),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True, comment="refresh: rotated"),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_clients.id"],
            name=op.f("fk_identity_tokens_client_id_identity_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_tokens")),
    )
    with op.batch_alter_table("identity_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_identity_tokens_family", ["family"], unique=False)
        batch_op.create_index("ix_identity_tokens_session_id", ["session_id"], unique=False)

    op.create_table(
        "identity_codes",
        sa.Column("id", sa.String(length=64), nullable=False, comment="SHA-256 of the code, hex"),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column(
            "params", sa.Text(), nullable=False, comment="redirect_uri, scope, nonce, PKCE, acr"
        ),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_clients.id"],
            name=op.f("fk_identity_codes_client_id_identity_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["identity_sessions.id"],
            name=op.f("fk_identity_codes_session_id_identity_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_codes")),
    )
    op.create_table(
        "identity_session_clients",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_clients.id"],
            name=op.f("fk_identity_session_clients_client_id_identity_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["identity_sessions.id"],
            name=op.f("fk_identity_session_clients_session_id_identity_sessions"),
        ),
        sa.PrimaryKeyConstraint(
            "session_id", "client_id", name=op.f("pk_identity_session_clients")
        ),
    )


def downgrade() -> None:
    op.drop_table("identity_session_clients")
    op.drop_table("identity_codes")
    with op.batch_alter_table("identity_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_tokens_session_id")
        batch_op.drop_index("ix_identity_tokens_family")

    op.drop_table("identity_tokens")
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_sessions_citizen_id")

    op.drop_table("identity_sessions")
    op.drop_table("identity_grants")
    op.drop_table("identity_auth_requests")
    with op.batch_alter_table("identity_used_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_used_assertions_expires_at"))

    op.drop_table("identity_used_assertions")
    op.drop_table("identity_signing_keys")
    op.drop_table("identity_clients")
