"""The `WWW-Authenticate` challenges of the protected resources (RFC 6750 3, RFC 9449 7.1).

RFC 6750 3.1 tells two refusals apart. A request that carries no authentication at all (the
client did not know the resource is protected, or tried a scheme this service does not read)
gets a bare challenge, `Bearer realm="shanakht"`: no error code, as nothing was wrong with a
token that was never sent, and a client that sees `invalid_token` may throw away a token it
holds or report a fault where there is none. A token that was sent and does not verify gets
`error="invalid_token"`. The same split keeps the count of tokens that do not verify (`api.
denials.invalid_token`) a count of bad tokens, not of every page a browser asked for bare.
"""

from __future__ import annotations

from fastapi import Request

REALM = "shanakht"

# The schemes an access token is read in (RFC 6750 2.1, RFC 9449 7.1).
TOKEN_SCHEMES = frozenset({"bearer", "dpop"})


def unauthenticated(request: Request) -> bool:
    """True when `request` carries no credentials a protected resource here reads: no token
    in a Bearer or DPoP Authorization header, and no DPoP proof either. Another scheme (Basic,
    say) is an unsupported method, which RFC 6750 3.1 counts as no authentication too."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    sent_token = scheme.lower() in TOKEN_SCHEMES and bool(value.strip())
    return not sent_token and "dpop" not in request.headers


def challenge(scheme: str = "Bearer", **params: str) -> str:
    """A challenge in `scheme` under this service's realm, with `params` (error,
    error_description, scope) in the order given; none for a request that sent nothing."""
    fields = [f'realm="{REALM}"', *(f'{name}="{value}"' for name, value in params.items())]
    return f"{scheme} {', '.join(fields)}"


def refusing(request: Request, description: str, scheme: str = "Bearer") -> str:
    """The challenge of a 401 to `request`: bare when it sent nothing, `invalid_token` with
    `description` when what it sent did not verify."""
    if unauthenticated(request):
        return challenge()
    return challenge(scheme, error="invalid_token", error_description=description)
