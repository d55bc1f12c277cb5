"""Ending sessions everywhere: back-channel logout tokens to every e-service in a session.

OpenID Connect Back-Channel Logout 1.0: the provider POSTs a signed logout token to each
e-service's registered URI, naming the citizen (their pairwise `sub` for that e-service) and the
session (`sid`), so each ends its own session without the browser's help. Tokens are built
here, inside the transaction that ends the session; they are delivered after it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx2

from audit import AuditEvent, AuditLog
from identity.oidc.claims import pairwise_subject
from identity.oidc.clients import ClientRegistry
from identity.oidc.keys import SigningKeys
from identity.oidc.sessions import EndedSession, logged_as
from identity.reconciled import SESSION, SESSION_ENDED

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_TTL = timedelta(minutes=2)
DELIVERY_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class LogoutNotice:
    client_id: str
    uri: str
    token: str


class LogoutNotifier(Protocol):
    def deliver(self, notice: LogoutNotice) -> bool:
        """POST the logout token; True when the e-service answered 200 or 204."""
        ...


class HttpLogoutNotifier:
    def deliver(self, notice: LogoutNotice) -> bool:
        try:
            response = httpx2.post(
                notice.uri,
                data={"logout_token": notice.token},
                timeout=DELIVERY_TIMEOUT,
                follow_redirects=False,
            )
        except httpx2.HTTPError:
            return False
        return response.status_code in (200, 204)


class LogoutTokens:
    def __init__(
        self,
        *,
        clients: ClientRegistry,
        keys: SigningKeys,
        issuer: str,
        pairwise_key: bytes,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._clients = clients
        self._keys = keys
        self._issuer = issuer
        self._pairwise_key = pairwise_key
        self._audit = audit
        self._clock = clock

    def notices(self, ended: EndedSession, *, subject: str, reason: str) -> list[LogoutNotice]:
        """Logout tokens for every e-service in an ended session, and its audit entry."""
        now = self._clock()
        notices = []
        for client_id in ended.client_ids:
            client = self._clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            claims = {
                "iss": self._issuer,
                "aud": client.id,
                "iat": int(now.timestamp()),
                "exp": int((now + TOKEN_TTL).timestamp()),
                "jti": uuid.uuid4().hex,
                "sub": pairwise_subject(self._pairwise_key, client.id, ended.citizen_id),
                "sid": ended.sid,
                "events": {EVENT: {}},
            }
            token = self._keys.sign(claims, alg=client.id_token_alg, typ="logout+jwt")
            notices.append(LogoutNotice(client.id, client.backchannel_logout_uri, token))
        self._audit.append(
            AuditEvent(
                actor=f"citizen:{subject}" if reason == "logout" else "system",
                action=SESSION_ENDED,
                subject=subject,
                details={
                    "reason": reason,
                    "eservices": list(ended.client_ids),
                    SESSION: logged_as(ended.sid),
                },
            )
        )
        return notices
