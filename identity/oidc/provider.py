"""The provider's services for one database session, built in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from audit import AuditLog
from audit.row_seal import RowSeal
from identity.accounts import Accounts
from identity.oidc.authorize import Authorizer
from identity.oidc.clients import ClientRegistry
from identity.oidc.dpop import DpopVerifier
from identity.oidc.grants import Grants
from identity.oidc.keys import SigningKeys
from identity.oidc.logout import LogoutTokens
from identity.oidc.sessions import Sessions
from identity.oidc.tokens import TokenService
from identity.policy import IdentityPolicy
from identity.role_proposals import RoleProposals
from identity.roles import Roles
from identity.sealing import Sealer


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    issuer: str
    sealer: Sealer
    pairwise_key: bytes
    row_seal: RowSeal  # accounts, roles, clients, consents and sessions are sealed rows
    # Its session idle time and lifetime are the provider's (the rest is login's business).
    policy: IdentityPolicy = field(default_factory=IdentityPolicy)


class Provider:
    def __init__(
        self,
        session: Session,
        config: ProviderConfig,
        *,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self.issuer = config.issuer
        self.accounts = Accounts(session, config.sealer, config.row_seal)
        self.keys = SigningKeys(session, config.sealer, clock)
        self.clients = ClientRegistry(session, clock, config.row_seal)
        self.grants = Grants(session, clock, config.row_seal)
        self.sessions = Sessions(
            session,
            clock,
            config.row_seal,
            idle=config.policy.session_idle,
            lifetime=config.policy.session_lifetime,
        )
        self.dpop = DpopVerifier(session, clock)
        self.authorizer = Authorizer(
            session,
            clients=self.clients,
            grants=self.grants,
            sessions=self.sessions,
            accounts=self.accounts,
            clock=clock,
            seal=config.row_seal,
        )
        self.roles = Roles(session, audit=audit, clock=clock, seal=config.row_seal)
        self.role_proposals = RoleProposals(
            session, roles=self.roles, audit=audit, clock=clock, seal=config.row_seal
        )
        self.tokens = TokenService(
            session,
            keys=self.keys,
            sessions=self.sessions,
            grants=self.grants,
            accounts=self.accounts,
            issuer=config.issuer,
            pairwise_key=config.pairwise_key,
            audit=audit,
            clock=clock,
            seal=config.row_seal,
            roles=self.roles.claim,
        )
        self.logout = LogoutTokens(
            clients=self.clients,
            keys=self.keys,
            issuer=config.issuer,
            pairwise_key=config.pairwise_key,
            audit=audit,
            clock=clock,
        )

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"
