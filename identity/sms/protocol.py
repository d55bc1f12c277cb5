"""What the identity service needs from an SMS gateway."""

from __future__ import annotations

from typing import Protocol

from identity.errors import IdentityError


class SmsUnavailable(IdentityError):
    """The gateway did not take the message; the citizen should try again later."""


class SmsGateway(Protocol):
    def send(self, to: str, text: str) -> None:
        """Send `text` to the E.164 number `to`; raise SmsUnavailable if it cannot be sent."""
        ...
