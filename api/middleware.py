"""Headers every response carries, whatever produced it (a route, an error handler, a 404).

They are added by the outermost middleware, `api.metrics.Telemetry`, in the same look at the
response's start that adds its request id: a layer of its own cost every request a coroutine,
a wrapped `send` and a second headers object, for three constant headers."""

from __future__ import annotations

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # a JSON or text answer is never sniffed as a page
    "X-Frame-Options": "DENY",  # nothing here may be framed (clickjacking)
    "Referrer-Policy": "no-referrer",  # URLs may carry identifiers; never leak them onwards
}
