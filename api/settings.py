"""Configuration, from environment variables prefixed `SHANAKHT_` (the README has the table)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # SHANAKHT_SECRETS_DIR (read once, at import) names a folder of files, one per setting,
    # named like its variable in lower case (`shanakht_master_key`): Docker's and Kubernetes'
    # secrets. A variable set in the environment wins over a file.
    model_config = SettingsConfigDict(
        env_prefix="SHANAKHT_",
        frozen=True,
        extra="ignore",
        secrets_dir=os.environ.get("SHANAKHT_SECRETS_DIR") or None,
    )

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses to start without a master key and a database URL.",
    )
    data_dir: Path = Field(
        Path("var"),
        description="Where the embedded default keeps its database, keys and objects.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default: a SQLite file in the data directory. "
        "PostgreSQL: `postgresql+psycopg://user:pass@host/db`.",
    )
    database_migration_url: str | None = Field(
        None,
        description="SQLAlchemy URL that `shanakht db upgrade` migrates through: the role that "
        "owns the schema. Default: the database URL.",
    )
    database_app_role: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="PostgreSQL: the role the API connects as (in the database URL). The "
        "migrations grant it only what it needs: DML on ordinary tables, SELECT and INSERT "
        "on the audit log, nothing it could own, alter or drop. Default: no such grants.",
    )
    master_key: SecretStr | None = Field(
        None,
        description="Base64 of 32 random bytes that encrypt every key at rest. Development "
        "generates one into the data directory; production requires it.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The URL citizens and relying parties reach the service at.",
    )
    audit_origin: str | None = Field(
        None,
        description="The audit log's name in its checkpoints and key; default: the public "
        "URL's host and `/audit`.",
    )
    issuer: str | None = Field(
        None,
        description="The OpenID Connect issuer URL; default: the public URL. Never taken from "
        "a request's Host header.",
    )
    password_expiry_days: int = Field(
        90, ge=0, description="Days a password lasts before it must be changed; 0: no expiry."
    )
    breached_passwords_dir: Path | None = Field(
        None,
        description="A local mirror of Have I Been Pwned's Pwned Passwords (one `XXXXX.txt` "
        "range file per SHA-1 prefix, as `haveibeenpwned-downloader -s false` writes them): "
        "a new password found in it is refused. Default: none, only the common-password list.",
    )
    share_link_keep_days: int = Field(
        90,
        ge=0,
        description="Days an expired share link's record is kept past its expiry (the owner "
        "sees it among their links), then deleted and the deletion logged.",
    )
    removed_account_keep_days: int = Field(
        365,
        ge=0,
        description="Days a removed account keeps its sealed profile and mobile number after "
        "its removal was logged, then they are erased (its pseudonym stays for the log).",
    )
    login_attempts_per_account: int = Field(
        10, ge=1, description="Login attempts per account per 15 minutes before 429."
    )
    login_attempts_per_address: int = Field(
        100,
        ge=1,
        description="Login attempts per client address per 15 minutes before 429; raise it "
        "where many citizens share an address (carrier-grade NAT).",
    )
    quick_lane_max_wait: float = Field(
        2.0,
        ge=0,
        description="Seconds a token, introspection, revocation or userinfo request may be "
        "expected to wait for the quick lane before it is refused at once, 503 with "
        "Retry-After (api.lanes); 0: never refused, however long the queue.",
    )
    pool_max_wait: float = Field(
        5.0,
        ge=0,
        description="Seconds any other API or page request may be expected to wait for the "
        "shared thread pool before it is refused at once, 503 with Retry-After "
        "(api.pool_gate); 0: never refused, however long the queue.",
    )
    nadra_latency: float = Field(
        0.0, ge=0, description="Simulated NADRA: seconds each call takes (2 s or more times out)."
    )
    nadra_failure_rate: float = Field(
        0.0, ge=0, le=1, description="Simulated NADRA: share of calls that fail at random."
    )
    nadra_outage: bool = Field(False, description="Simulated NADRA: every call fails.")
    audit_checkpoint_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between automatic checkpoints while the log grows; 0 turns them off.",
    )
    tsa_url: str | None = Field(
        None,
        description="An outside RFC 3161 time-stamp authority for signed PDFs; default: the "
        "service's own (`POST /pki/tsa`).",
    )
    store: Literal["local", "s3"] = Field(
        "local",
        description="Where locker documents are kept (always encrypted): `local`, a folder in "
        "the data directory, or `s3`, any S3-compatible store such as MinIO.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint, for example `http://minio:9000`; default: AWS."
    )
    s3_bucket: str = Field("shanakht-locker", description="S3 bucket for locker documents.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_access_key: str | None = Field(None, description="S3 access key id.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key.")
    locker_max_bytes: int = Field(
        1024**3, ge=1024, description="Largest document the locker accepts, in bytes."
    )
    helpline: str = Field(
        "the Shanakht helpline",
        min_length=3,
        max_length=40,
        description="Whom a citizen is told to call when a text reports a change of password or "
        "second factor they did not make: set the province's support number.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the service's own log."
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="`json`: one object per line with a request id and no personal data; "
        "`text`: the same fields for a terminal.",
    )

    @model_validator(mode="after")
    def _needed_together(self) -> Settings:
        if self.env == "production":
            if self.master_key is None:
                raise ValueError("SHANAKHT_MASTER_KEY is required when SHANAKHT_ENV=production")
            if self.database_url is None:
                raise ValueError("SHANAKHT_DATABASE_URL is required when SHANAKHT_ENV=production")
        if self.store == "s3" and (self.s3_access_key is None or self.s3_secret_key is None):
            raise ValueError("SHANAKHT_STORE=s3 needs SHANAKHT_S3_ACCESS_KEY and _S3_SECRET_KEY")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'shanakht.db').resolve()}"

    @cached_property
    def resolved_migration_url(self) -> str:
        return self.database_migration_url or self.resolved_database_url

    @cached_property
    def resolved_issuer(self) -> str:
        return (self.issuer or self.public_url).rstrip("/")

    @cached_property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_url).scheme == "https"

    @cached_property
    def resolved_audit_origin(self) -> str:
        if self.audit_origin:
            return self.audit_origin
        host = urlsplit(self.public_url).netloc or "localhost"
        return f"{host}/audit"
