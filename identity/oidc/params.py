"""An OAuth request's parameters as sent, with the names sent more than once.

RFC 6749 3.1 and 3.2: "Request and response parameters MUST NOT be included more than once."
A request that repeats one (`scope=openid&scope=openid%20locker.read`) means two things: a
proxy, a web application firewall or an e-service's own logging that reads the first value
judges another request than this server, which keeps the last (HTTP parameter pollution, ASVS
5.1.1). So such a request is refused as `invalid_request` before anything reads it, and at the
authorization endpoint before its redirect URI is trusted when the repeated name is the client
or the redirect URI itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from identity.oidc.errors import InvalidRequest


class Params(dict[str, str]):
    """Each parameter's value (the last, where one came more than once) and `repeated`, the
    names that did."""

    repeated: frozenset[str]

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        repeated = set()
        for name, value in pairs:
            if name in self:
                repeated.add(name)
            self[name] = value
        self.repeated = frozenset(repeated)


def repeated(params: Mapping[str, str]) -> frozenset[str]:
    """The names `params` received more than once: none for a plain mapping (built by the
    caller, not parsed from a request)."""
    return params.repeated if isinstance(params, Params) else frozenset()


def refuse_repeated(params: Mapping[str, str]) -> None:
    """InvalidRequest naming the parameters sent more than once, if any."""
    if names := repeated(params):
        raise InvalidRequest(f"sent more than once: {', '.join(sorted(names))}")
