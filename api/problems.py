"""RFC 9457 problem details: the one shape every error leaves the service in.

Domain packages raise their own exceptions and know nothing of HTTP; this table is where each
becomes a status code. Nothing from the request is echoed back, so no input (which may carry
personal data) travels into an error body or the logs.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import web
from api.i18n import Text
from api.lanes import LaneFull
from api.logging_setup import request_id_var
from audit import AuditError, EntryError, NoteError, ProofError, ProofRequestError, TamperError
from identity.errors import (
    AccountExists,
    BreachCorpusUnavailable,
    CardNotValid,
    ChallengeFailed,
    DetailsNotVerified,
    IdentityError,
    InvalidCnic,
    InvalidCredentials,
    InvalidMobile,
    RegistryUnavailable,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from identity.oidc.errors import OAuthError
from identity.sms import SmsUnavailable
from locker.documents import DocumentRefused, DocumentTooLarge, UnknownDocument
from locker.errors import CiphertextInvalid, KeyUnavailable, LockerError, StoreUnavailable
from locker.exchange import (
    ConsentRefused,
    ConsentStateError,
    FetchLimitReached,
    NeedsSecondFactor,
    RequestClosed,
    RequestRefused,
    UnknownCitizen,
    UnknownConsent,
    UnknownRequest,
)
from locker.legal import GrantInvalid, LegalAccessRefused
from locker.release import ReleaseRefused
from locker.sharing import ShareRefused, ShareUnusable
from signing.files import NoQrCode, UnreadableFile
from signing.pki.authority import PkiError, PkiNotReady

log = logging.getLogger("shanakht.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"

# Paths that only programs call: they always answer in problem details, whatever they accept.
API_PREFIXES = (
    "/oauth",
    "/locker",
    "/exchange",
    "/signing",
    "/pki",
    "/audit",
    "/.well-known",
    "/metrics",
    "/healthz",
    "/readyz",
)

# Most specific first: the first class an exception is an instance of decides its status.
DOMAIN_STATUS: list[tuple[type[Exception], int, str]] = [
    (InvalidCnic, 400, "The CNIC is not valid"),
    (InvalidMobile, 400, "The mobile number is not valid"),
    (WrongCode, 400, "The code is not right"),
    (InvalidCredentials, 401, "The CNIC or password is not right"),
    (AccountExists, 409, "There is already an account"),
    (ChallengeFailed, 410, "The code has expired or was used; start again"),
    (WeakPassword, 422, "The password does not meet the policy"),
    (DetailsNotVerified, 422, "The details do not match the card"),
    (CardNotValid, 422, "The card is not valid"),
    (TooManyAttempts, 429, "Too many attempts"),
    (RegistryUnavailable, 503, "NADRA is not answering; try again later"),
    (SmsUnavailable, 503, "The SMS service is not answering; try again later"),
    (BreachCorpusUnavailable, 503, "New passwords cannot be checked just now; try again later"),
    (ProofRequestError, 400, "The proof asked for cannot exist"),
    (ProofError, 400, "The proof does not verify"),
    (NoteError, 400, "The signed note is not valid"),
    (EntryError, 400, "The audit entry is not valid"),
    (TamperError, 500, "The audit log failed an integrity check"),
    (AuditError, 500, "The audit log could not answer"),
    (IdentityError, 500, "The identity service could not answer"),
    (UnreadableFile, 400, "The file cannot be read"),
    (NoQrCode, 422, "No QR code was found"),
    (PkiNotReady, 503, "The PKI is not set up yet"),
    (PkiError, 409, "The PKI cannot do that"),
    (DocumentTooLarge, 413, "The document is too large"),
    (DocumentRefused, 422, "The document cannot be accepted"),
    (UnknownDocument, 404, "No such document"),
    (UnknownCitizen, 404, "No account for that CNIC"),
    (UnknownRequest, 404, "No such request"),
    (UnknownConsent, 404, "No such consent"),
    (ShareUnusable, 404, "No such share link or nominee"),
    (ShareRefused, 422, "That cannot be shared"),
    (RequestRefused, 422, "The request cannot be accepted"),
    (ReleaseRefused, 422, "Those documents cannot be released this way"),
    (RequestClosed, 409, "The request is no longer open"),
    (ConsentStateError, 409, "The consent cannot change that way"),
    (NeedsSecondFactor, 403, "Sign in with a second factor first"),
    (FetchLimitReached, 403, "The consent's fetch limit is reached"),
    (ConsentRefused, 403, "The consent does not allow this now"),
    (LegalAccessRefused, 403, "No legal-basis access for you here"),
    (GrantInvalid, 403, "The grant does not allow this"),
    (StoreUnavailable, 503, "Document storage is not answering; try again later"),
    (CiphertextInvalid, 500, "A stored document failed its integrity check"),
    (KeyUnavailable, 500, "A document key is not available"),
    (LockerError, 500, "The locker could not answer"),
]


class Problem(BaseModel):
    """RFC 9457 problem details, as the OpenAPI schema declares every error of the APIs.
    Some problems carry more members (`errors` for a malformed request), so more are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None


PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status in `statuses` answers problem+json, so
    the OpenAPI schema names every error a client must handle, in the shape it arrives in."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA_REF}},
        }
        for status in statuses
    }


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _declare_problems(schema: dict[str, Any]) -> None:
    """FastAPI declares a 422 `HTTPValidationError` for every operation with parameters, but
    this service answers a malformed request 400 in problem details (`_validation_error`):
    the schema says so instead, with the Problem shape every `problem_responses` refers to."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema()
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if _is_fastapi_validation_error(responses.get("422", {})):
                del responses["422"]
                responses.setdefault("400", problem_responses(400)[400])
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def _openapi_with_problems(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_problems(generate())  # generate() keeps what it made in app.openapi_schema
        return app.openapi_schema or generate()

    return openapi


def problem(status: int, title: str, detail: str | None = None, **extra: object) -> JSONResponse:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _status_for(exc: Exception) -> tuple[int, str]:
    for cls, status, title in DOMAIN_STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal error"


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    status, title = _status_for(exc)
    if status >= 500 and status != 503:
        log.error("%s: %s", type(exc).__name__, exc)
        return problem(status, title)
    response = problem(status, title, str(exc))
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _oauth_error(_request: Request, exc: Exception) -> JSONResponse:
    """OAuth endpoints answer in RFC 6749's error JSON, not problem details."""
    assert isinstance(exc, OAuthError)  # noqa: S101 (registered for OAuthError only)
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers={"Cache-Control": "no-store"},
    )


def _quality(accept: str, media_type: str) -> float:
    """How much `accept` wants `media_type` (its q), 0 when it does not name it."""
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        if name.lower() != media_type:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def wants_page(request: Request) -> bool:
    """A browser asking for a portal page: its Accept prefers HTML over JSON, and the path is
    not one of the APIs (which answer programs in problem details, whatever they accept)."""
    path = request.url.path
    if any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    html = _quality(accept, "text/html")
    json = max(_quality(accept, "application/json"), _quality(accept, PROBLEM_MEDIA_TYPE))
    return html > 0 and html >= json


def _page(request: Request, status: int, heading: Text, message: Text) -> Response:
    """The problem as a page, in the reader's language, with the same status code."""
    referer = urlsplit(request.headers.get("referer", ""))
    back = ""
    if referer.netloc == request.url.netloc and referer.path:
        back = web.local_path(referer.path + (f"?{referer.query}" if referer.query else ""))
    if back and back != "/":
        link, link_text = back, Text("Go back")
    else:
        link, link_text = "/", Text("Home")
    return web.render(
        request,
        request.app.state.runtime,
        "message.html",
        status_code=status,
        heading=heading,
        message=message,
        link=link,
        link_text=link_text,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    if wants_page(request):
        return _page(
            request,
            400,
            Text("Please try again"),
            Text("The form was incomplete: fill in every field and try again."),
        )
    errors = [
        {"location": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
        for err in exc.errors()
    ]
    return problem(
        400, "The request is malformed", "See `errors` for each bad field.", errors=errors
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    response: Response
    if exc.status_code == 404 and wants_page(request):
        response = _page(
            request,
            404,
            Text("This page does not exist"),
            Text(
                "There is no page at this address. Check the address, or start again from "
                "the home page."
            ),
        )
    else:
        response = problem(exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


FRAMES_LOGGED = 12  # the innermost frames: where the bug is, not how the request got there


def where_raised(exc: BaseException) -> str:
    """The exception's type and the frames it passed through (file, line, function), and the
    same for what it was raised from: enough to find a bug, without the exception's text
    (which may carry whatever data the failing code held) or any frame's values."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        frames = traceback.extract_tb(seen.__traceback__)[-FRAMES_LOGGED:]
        path = " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames[::-1])
        parts.append(f"{type(seen).__name__} at {path or 'an unknown place'}")
        seen = seen.__cause__ or seen.__context__
    return "; from ".join(parts)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """The last resort: a bug. Logged by where it happened, never by what it says; answered
    without a word of it (nor of the request), as a page for a browser, else a problem."""
    log.error("unhandled %s", where_raised(exc))
    if wants_page(request):
        try:
            return _page(
                request,
                500,
                Text("Something went wrong"),
                Text(
                    "The service failed to answer, and the fault is logged. Please try again "
                    "later; if it happens again, tell the helpline this reference: %(reference)s",
                    reference=request_id_var.get() or "-",
                ),
            )
        except Exception:  # the page itself failed (a broken template, a dead runtime)
            log.error("the error page failed too: %s", where_raised(exc))
    return problem(500, "Internal error", "The error was logged; please try again later.")


class LastResort:
    """Answers an exception no handler expected, inside the other middleware (so the answer
    carries their headers and is logged like any other) and without re-raising it.

    Starlette's own handler for `Exception` sends its answer and then raises the exception
    again, to the server, whose log line carries the exception's text: here it stops. An
    exception once the answer has begun (a streamed download) can only cut the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                log.error("unhandled, after the answer began: %s", where_raised(exc))
                return
            response = await _unexpected_error(Request(scope, receive), exc)
            await response(scope, receive, send)


UNSTORABLE = (
    "A value in it cannot be stored: leave out control characters such as NUL, and keep "
    "numbers within range."
)
DATABASE_RETRY_AFTER = 5  # seconds: a restart or a fail-over of the database takes about that


def database_outage(exc: Exception) -> bool:
    """Whether `exc` is the database unavailable (down, its connection dropped, its disk full,
    its lock held too long), which a retry after DATABASE_RETRY_AFTER may get past, rather
    than a bug; logged as such, by the exception's type alone (its text names the statement,
    whose parameters may carry personal data). The OAuth endpoints answer it in their own
    error JSON (api.routes.oidc), every other route as problem details (below)."""
    outage = isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    if outage:
        orig = getattr(exc, "orig", None)
        log.warning("database unavailable: %s", type(orig or exc).__name__)
    return outage


async def _database_error(request: Request, exc: Exception) -> Response:
    """The database is down, its connection dropped mid-transaction, its disk full or its
    lock held too long: the transaction was rolled back whole, so this is a 503 worth
    retrying, like a storage outage. A value the database cannot hold (a NUL character in a
    text, which PostgreSQL refuses; a number past its column) came from the request: a 400.
    Any other database error is a bug, and stays a 500. None names the statement or its
    parameters (which may carry personal data)."""
    if isinstance(exc, DataError):
        log.info("a value the database refused: %s", type(getattr(exc, "orig", exc)).__name__)
        if wants_page(request):
            return _page(request, 400, Text("Please try again"), Text(UNSTORABLE))
        return problem(400, "The request is malformed", UNSTORABLE)
    if not database_outage(exc):
        raise exc
    response = problem(503, "The database is not answering; try again later")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


BUSY_TITLE = "The service is busy; try again later"  # a lane or the pool shed the request


async def _lane_full(_request: Request, exc: Exception) -> Response:
    """A lane refused work it could not start in time (api.lanes) and its route did not
    answer that itself (the OAuth routes do, in their error JSON): a 503 to retry after."""
    assert isinstance(exc, LaneFull)  # noqa: S101 (registered for LaneFull only)
    response = problem(503, BUSY_TITLE)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OAuthError, _oauth_error)
    for cls, _status, _title in DOMAIN_STATUS:
        app.add_exception_handler(cls, domain_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(LaneFull, _lane_full)
    app.add_exception_handler(Exception, _unexpected_error)
    app.openapi = _openapi_with_problems(app)  # type: ignore[method-assign]
