"""OAuth 2.0 / OpenID Connect errors, each with its protocol code and HTTP status.

The codes come from RFC 6749 section 5.2 and 4.1.2.1, OpenID Connect Core 3.1.2.6, RFC 7009,
RFC 9126 and RFC 9449. The api layer renders them as OAuth error JSON at the token endpoint,
as a redirect to the client when the redirect URI is trusted, and as a page otherwise.
"""

from __future__ import annotations

from identity.errors import IdentityError


class OAuthError(IdentityError):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 5.2): 401 at the token endpoint.

    `client_id` is for the caller alone, never for the response: the registered client the
    request claimed to be, when there is one (so the failure can be audited against it, see
    `identity.failures`); None when the request named no registered client."""

    error = "invalid_client"
    status = 401

    def __init__(self, description: str, *, client_id: str | None = None) -> None:
        super().__init__(description)
        self.client_id = client_id


class InvalidGrant(OAuthError):
    """The code or refresh token is no good. What was recorded on the way (a burnt code, a
    revoked token family, the audit entry) must stand, so the caller commits."""

    error = "invalid_grant"
    keep_transaction = True


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InvalidToken(OAuthError):
    """RFC 6750 3.1: the bearer token is expired, revoked or malformed."""

    error = "invalid_token"
    status = 401


class InvalidDpopProof(OAuthError):
    error = "invalid_dpop_proof"
    status = 400


class TemporarilyUnavailable(OAuthError):
    """The server cannot take the request now; the client should retry later. RFC 6749
    4.1.2.1 defines the code for the authorization endpoint (where a 503 cannot travel in a
    redirect); 5.2 names no server-side code for the token endpoint, so the 503 status says
    it there, with this code in the error JSON every other refusal at these endpoints uses,
    which a client already parses (a problem+json body it would not)."""

    error = "temporarily_unavailable"
    status = 503


class UntrustedRedirect(OAuthError):
    """The client or redirect URI is unknown: never redirect, show the citizen a page."""

    error = "invalid_request"
