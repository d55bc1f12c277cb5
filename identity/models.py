"""The identity package's tables.

Personal data is sealed (see `identity.sealing`); rows are found by the citizen's keyed
pseudonym, the same one the audit log names them by, so "entries about me" is a lookup.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from audit.models import NAMING_CONVENTION
from audit.row_seal import RETIRED_BY
from audit.sqltypes import UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID = 32  # uuid4 hex, or a 24-byte urlsafe token for challenges

citizens = Table(
    "identity_citizens",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("pseudonym", String(45), nullable=False, unique=True, comment="audit.pseudonym(cnic)"),
    Column("profile", LargeBinary, nullable=False, comment="sealed NADRA-verified details"),
    Column("mobile", LargeBinary, nullable=False, comment="sealed E.164 number, OTP-verified"),
    Column("password_hash", String(200), nullable=False, comment="argon2id"),
    Column("password_changed_at", UtcDateTime(), nullable=False),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("status", String(16), nullable=False, comment="active | removed"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

challenges = Table(
    "identity_challenges",
    metadata,
    Column("id", String(ID), primary_key=True, comment="unguessable: it is the browser's ticket"),
    Column("purpose", String(16), nullable=False, comment="register | reset"),
    Column("pseudonym", String(45), nullable=False, index=True),
    Column("code_hash", LargeBinary(32), nullable=False, comment="HMAC of the one-time code"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("payload", LargeBinary, nullable=False, comment="sealed details to act on"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("verified_at", UtcDateTime(), nullable=True),
    Column("consumed_at", UtcDateTime(), nullable=True),
)

throttles = Table(
    "identity_throttles",
    metadata,
    Column("key", String(120), primary_key=True, comment="what is counted, never raw PII"),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("hits", Integer, nullable=False),
)

Index("ix_identity_challenges_expires_at", challenges.c.expires_at)

# -- OpenID Connect provider ------------------------------------------------------------------

signing_keys = Table(
    "identity_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False, comment="RS256 | ES256"),
    Column("private_key", LargeBinary, nullable=False, comment="sealed PKCS#8 PEM"),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("retired_at", UtcDateTime(), nullable=True, comment="no longer signs; still in JWKS"),
)

clients = Table(
    "identity_clients",
    metadata,
    Column("id", String(64), primary_key=True, comment="client_id"),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False, comment="eservice | service"),
    Column("auth_method", String(32), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=True, comment="SHA-256 of a random secret"),
    Column("jwks", Text, nullable=True, comment="public keys for private_key_jwt"),
    Column("redirect_uris", Text, nullable=False, comment="JSON list, matched exactly"),
    Column("post_logout_redirect_uris", Text, nullable=False, comment="JSON list"),
    Column("scopes", Text, nullable=False, comment="space-separated scopes it may ask for"),
    Column("backchannel_logout_uri", String(500), nullable=True),
    Column("id_token_alg", String(8), nullable=False),
    Column("require_par", Boolean, nullable=False),
    Column("require_dpop", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("department", String(32), nullable=True, comment="whom a department system speaks for"),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

used_assertions = Table(
    "identity_used_assertions",
    metadata,
    Column("jti", String(200), primary_key=True, comment="client_id and jti: replay guard"),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
)

auth_requests = Table(
    "identity_auth_requests",
    metadata,
    Column("id", String(ID), primary_key=True, comment="also the PAR request_uri"),
    Column("client_id", String(64), ForeignKey("identity_clients.id", ondelete="CASCADE")),
    Column("params", Text, nullable=False, comment="the validated request, JSON"),
    Column("pushed", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

sessions = Table(
    "identity_sessions",
    metadata,
    Column("id", String(64), primary_key=True, comment="random hex (older rows: a cookie hash)"),
    Column("sid", String(ID), nullable=False, unique=True, comment="public id, in tokens"),
    Column("citizen_id", String(ID), ForeignKey("identity_citizens.id"), nullable=False),
    Column(
        "token_hash",
        String(64),
        nullable=False,
        unique=True,
        comment="SHA-256 of the cookie, hex; renewed when the session steps up",
    ),
    Column("acr", String(64), nullable=False),
    Column("amr", Text, nullable=False, comment="JSON list"),
    Column("auth_time", UtcDateTime(), nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("user_agent", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("ended_reason", String(32), nullable=True),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
    Index("ix_identity_sessions_citizen_id", "citizen_id"),
    Index("ix_identity_sessions_ended_at", "ended_at"),  # the retention sweep's
)

session_clients = Table(
    "identity_session_clients",
    metadata,
    Column("session_id", String(64), ForeignKey("identity_sessions.id"), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("identity_clients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

grants = Table(
    "identity_grants",
    metadata,
    Column("citizen_id", String(ID), ForeignKey("identity_citizens.id"), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("identity_clients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("scopes", Text, nullable=False, comment="space-separated scopes consented to"),
    Column("granted_at", UtcDateTime(), nullable=False),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

codes = Table(
    "identity_codes",
    metadata,
    Column("id", String(64), primary_key=True, comment="SHA-256 of the code, hex"),
    Column("client_id", String(64), ForeignKey("identity_clients.id", ondelete="CASCADE")),
    Column("session_id", String(64), ForeignKey("identity_sessions.id"), nullable=False),
    Column("params", Text, nullable=False, comment="redirect_uri, scope, nonce, PKCE, acr"),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
    info={RETIRED_BY: ("used_at",)},
)

tokens = Table(
    "identity_tokens",
    metadata,
    Column(
        "id",
        String(64),
        primary_key=True,
        comment="jti of an access token, or SHA-256 hex of a refresh token",
    ),
    Column("kind", String(8), nullable=False, comment="access | refresh"),
    Column("family", String(64), nullable=False, comment="all tokens from one code"),
    Column("client_id", String(64), ForeignKey("identity_clients.id", ondelete="CASCADE")),
    Column("citizen_id", String(ID), nullable=True),
    Column("session_id", String(64), nullable=True),
    Column("scope", Text, nullable=False),
    Column("dpop_jkt", String(64), nullable=True, comment="DPoP key thumbprint it is bound to"),
    Column(
        "acr",
        String(64),
        nullable=True,
        comment="the sign-in's acr when the grant was made; none for client credentials",
    ),
    Column("amr", Text, nullable=True, comment="JSON list, as acr"),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True, comment="refresh: rotated"),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
    Index("ix_identity_tokens_family", "family"),
    Index("ix_identity_tokens_session_id", "session_id"),
    Index("ix_identity_tokens_expires_at", "expires_at"),  # the retention sweep's
    info={RETIRED_BY: ("used_at", "revoked_at")},
)

# -- departments and officers' roles ------------------------------------------------------------

departments = Table(
    "identity_departments",
    metadata,
    Column("id", String(32), primary_key=True, comment="short code, e.g. sed"),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

roles = Table(
    "identity_roles",
    metadata,
    Column("citizen_id", String(ID), ForeignKey("identity_citizens.id"), primary_key=True),
    Column("department_id", String(32), ForeignKey("identity_departments.id"), primary_key=True),
    Column("role", String(32), primary_key=True, comment="e.g. signing.officer"),
    Column("granted_at", UtcDateTime(), nullable=False),
    Column("granted_by", String(100), nullable=False, comment="who granted it (an actor)"),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

# A grant of a powerful role (locker.legal, identity.admin) proposed by one administrator,
# waiting for a second one (identity.role_proposals); people are named by pseudonym only.
role_proposals = Table(
    "identity_role_proposals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("grantee", String(45), nullable=False, index=True, comment="the officer's pseudonym"),
    Column("department_id", String(32), ForeignKey("identity_departments.id"), nullable=False),
    Column("role", String(32), nullable=False),
    Column("proposer", String(45), nullable=False, comment="the first administrator's pseudonym"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column(
        "status", String(16), nullable=False, index=True, comment="pending | approved | refused"
    ),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("decider", String(45), nullable=True, comment="the second administrator's pseudonym"),
    Column("refusal", String(500), nullable=True, comment="why the second administrator refused"),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

# -- authenticator apps (TOTP) and recovery codes -------------------------------------------------

totp_factors = Table(
    "identity_totp",
    metadata,
    Column("citizen_id", String(ID), ForeignKey("identity_citizens.id"), primary_key=True),
    Column("secret", LargeBinary, nullable=False, comment="sealed RFC 6238 secret"),
    Column("confirmed_at", UtcDateTime(), nullable=True, comment="null until a first code"),
    Column("last_step", Integer, nullable=False, server_default="0", comment="replay guard"),
)

recovery_codes = Table(
    "identity_recovery_codes",
    metadata,
    Column("citizen_id", String(ID), ForeignKey("identity_citizens.id"), primary_key=True),
    Column("code_hash", LargeBinary(32), primary_key=True, comment="HMAC of the code"),
    Column("used_at", UtcDateTime(), nullable=True),
)
