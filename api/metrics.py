"""Prometheus metrics at `/metrics`, and the one middleware that times, counts and logs every
request.

Labels are bounded sets, so a scrape stays small however the service is used: a route is its
*template* (`/locker/documents/{document_id}`), never the path a client sent, so no document
id, share token or CNIC ever becomes a label value; a path no route matches is `unmatched`; a
method outside the usual few is `other`.

Several worker processes (`shanakht serve --workers N`) each count in their own memory; with
`PROMETHEUS_MULTIPROC_DIR` set (before this module is imported) prometheus_client keeps the
values in files in that directory instead, and a scrape of any worker sums them all, so it
does not matter which worker the scrape lands on. Several replicas are several scrape targets,
summed in PromQL (`sum by (route) (rate(...))`), as usual.

The domain's own counts (logins, tokens, signatures) are incremented by one-line hooks in the
routes (`api/routes/...`), where the outcome is known: the domain packages stay free of
metrics. Locker bytes are counted here, on the wire, from the routes that carry document
content. The audit log's size is read from its head row when scraped, so it is the log's
size, whichever replica wrote the entries.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Iterator
from time import perf_counter
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import RuntimeDep
from api.logging_setup import access_log, request_id_from, request_id_var
from api.middleware import SECURITY_HEADERS
from api.runtime import Runtime
from audit.models import checkpoints, head

log = logging.getLogger("shanakht.metrics")
auth_log = logging.getLogger("shanakht.auth")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})

REQUESTS = Counter(
    "shanakht_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "shanakht_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its response, by route template.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
)
AUTH_FAILURES = Counter(
    "shanakht_auth_failures",
    "Authentication failures other than passwords, and accesses refused, by kind "
    "(second_factor, client_authentication, csrf, access_denied, access_token) and whether the "
    "audit log recorded them (`no`: an unknown client, ticket or token, a browser with no "
    "session, or past the per-client or per-account cap; see identity.failures).",
    ["kind", "recorded"],
)
LOGINS = Counter(
    "shanakht_logins", "Password logins, by outcome (success, failure, throttled).", ["outcome"]
)
TOKENS = Counter(
    "shanakht_tokens_issued", "Tokens issued at /oauth/token, by grant type.", ["grant_type"]
)
LOCKER_BYTES = Counter(
    "shanakht_locker_bytes",
    "Document bytes the locker stored (uploads, issues; API, pages and bulk alike) and served "
    "(downloads, as they are sent).",
    ["direction"],
)
SIGNATURES = Counter(
    "shanakht_signatures",
    "Signatures made: `seal` (a department's seal on an issued document), `document` (an "
    "officer's signature on an order or a file).",
    ["kind"],
)
SHED = Counter(
    "shanakht_requests_shed",
    "Requests refused at once (503 with Retry-After) because the lane their work runs in "
    "would not have started it within its maximum wait (`quick`: the token, introspection, "
    "revocation and userinfo endpoints; see api.lanes).",
    ["lane"],
)


# -- hooks for the routes ---------------------------------------------------------------------


def login(outcome: Literal["success", "failure", "throttled"]) -> None:
    LOGINS.labels(outcome).inc()


FailureKind = Literal[
    "second_factor", "client_authentication", "csrf", "access_denied", "access_token"
]


def auth_failure(kind: FailureKind, *, recorded: bool) -> None:
    """Count an authentication failure and write a log line for it, whether or not the audit
    log took it: what the log does not record is still seen here. The line names nobody."""
    AUTH_FAILURES.labels(kind, "yes" if recorded else "no").inc()
    auth_log.warning(
        "authentication failure: %s (%s)",
        kind,
        "recorded in the audit log" if recorded else "counted only, not audited",
        extra={"kind": kind, "audited": recorded},
    )


def token_issued(grant_type: str | None) -> None:
    _tokens_of(grant_type if grant_type in GRANT_TYPES else "other").inc()


# A metric's child for a set of label values, looked up once per set and kept: `labels()`
# takes a lock and checks its values on every call, a few percent of a token grant. The sets
# are bounded (route templates, methods, statuses, grant types), so these caches are too.
_tokens_of = functools.cache(TOKENS.labels)


@functools.cache
def _request_metrics(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)


def locker_bytes(direction: Literal["in", "out"], count: int) -> None:
    """Counted where every path meets: the shared upload and issue internals, and the one
    function that streams a document out (api.routes.locker_views)."""
    LOCKER_BYTES.labels(direction).inc(count)


def signature(kind: Literal["seal", "document"]) -> None:
    SIGNATURES.labels(kind).inc()


LaneName = Literal["quick", "pool"]


def shed(lane: LaneName) -> None:
    """Counted by the lane itself, where the refusal is decided (api.lanes)."""
    SHED.labels(lane).inc()


# -- the middleware -----------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The template of the route that answered, set on the scope by the router; `unmatched`
    if none did (a 404), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class Telemetry:
    """Pure ASGI: per request a request id, a clock reading at each end, a few counter
    updates and one access log line; the body is never buffered, only its length counted.
    Every answer, whatever produced it, also gets the security headers (`api.middleware`).

    The request id is the caller's `X-Request-Id` when it is a sane token, else a new one; it
    is echoed in the response, set for every log line written while the request runs, and is
    what to quote when a citizen reports a problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = request_id_from(scope["headers"])
        token = request_id_var.set(request_id)
        status = 500  # what the client gets if the app raises before answering
        bytes_in = bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.update(SECURITY_HEADERS)
                headers.append("X-Request-Id", request_id)
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        finally:
            elapsed = perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(scope)
            counted, timed = _request_metrics(route, method, status)
            counted.inc()
            timed.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):  # not built for a line not written
                access_log.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "bytes_in": bytes_in,
                        "bytes_out": bytes_out,
                    },
                )
            request_id_var.reset(token)


# -- the scrape ---------------------------------------------------------------------------------


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def audit_families(runtime: Runtime) -> list[Metric]:
    """The log's size and its newest checkpoint, read from the database (two indexed reads)."""
    with runtime.engine.connect() as connection:
        size = connection.execute(select(head.c.size)).scalar() or 0
        latest = connection.execute(
            select(checkpoints.c.size, checkpoints.c.issued_at)
            .order_by(checkpoints.c.id.desc())
            .limit(1)
        ).first()
    entries = GaugeMetricFamily("shanakht_audit_entries", "Entries in the audit log.")
    entries.add_metric([], float(size))
    families: list[Metric] = [entries]
    if latest is not None:
        checkpointed = GaugeMetricFamily(
            "shanakht_audit_checkpoint_entries", "The audit log's size at its newest checkpoint."
        )
        checkpointed.add_metric([], float(latest.size))
        when = GaugeMetricFamily(
            "shanakht_audit_checkpoint_timestamp_seconds",
            "When the newest audit checkpoint was signed (Unix time).",
        )
        when.add_metric([], latest.issued_at.timestamp())
        families += [checkpointed, when]
    return families


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(runtime: Runtime) -> bytes:
    """Every metric in Prometheus' text format: this process's (or, in multiprocess mode,
    every worker's, summed) and the audit log's."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # not annotated
    else:
        registry.register(_Families(REGISTRY.collect()))
    try:
        registry.register(_Families(audit_families(runtime)))
    except SQLAlchemyError as exc:  # the request metrics are worth having even then
        log.warning("metrics: the audit log's size is unavailable: %s", type(exc).__name__)
    return generate_latest(registry)


router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics. For the scraper on the internal network: the reverse proxy in
    docker-compose.yml does not serve it to the outside."""
    return Response(exposition(runtime), media_type=CONTENT_TYPE_LATEST)
