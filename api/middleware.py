"""Headers every response carries, whatever produced it (a route, an error handler, a 404)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # a JSON or text answer is never sniffed as a page
    "X-Frame-Options": "DENY",  # nothing here may be framed (clickjacking)
    "Referrer-Policy": "no-referrer",  # URLs may carry identifiers; never leak them onwards
}


class SecurityHeaders:
    """Pure ASGI, so it costs one dict update per response and never buffers a body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
