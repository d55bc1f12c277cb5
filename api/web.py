"""Server-rendered pages: templates, cookies and CSRF, in one place.

Cookies are `__Host-` prefixed when the service runs on https (bound to this host, Secure,
Path=/), HttpOnly, and SameSite=Lax for the session (it must survive the top-level redirect
back from an e-service) and Strict for the CSRF token. Every form carries the CSRF token,
compared in constant time with the cookie (double submit), so another site cannot post a
login, a consent or a logout in the citizen's name.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError

from api import i18n, local_time, metrics
from api.runtime import Runtime

log = logging.getLogger("shanakht.web")
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.globals["_"] = i18n.gettext
TEMPLATES.env.globals["LANGUAGES"] = i18n.NAMES
TEMPLATES.env.filters["moment"] = local_time.moment
TEMPLATES.env.filters["day"] = local_time.day
# A route's words that may be `i18n.Text`, translated into the reader's language when drawn.
LOCALISED = ("error", "notice", "heading", "message")
SESSION_COOKIE = "shanakht_session"
CSRF_COOKIE = "shanakht_csrf"

# Pages may load only what the service itself serves, post forms only to it, and nothing may
# frame them.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# A page that runs the service's own script from /static, which talks back to the service.
SCRIPTED_CSP = PAGE_CSP + "; script-src 'self'; connect-src 'self'"
# The sign-in pages' forms end in a redirect to an e-service (its redirect or post-logout URI,
# on any host it registered), and browsers hold form-action to every hop of the redirect.
SIGN_IN_CSP = PAGE_CSP.replace(
    "form-action 'self'", "form-action 'self' https: http://127.0.0.1:* http://localhost:*"
)
SIGN_IN_TEMPLATES = frozenset({"login.html", "code.html", "consent.html", "logout.html"})
# The pages with password fields run /static/password.js (a show-password button; a checklist
# and strength meter where a new password is chosen) and the estimator it loads from
# /static/vendor: scripts of this service only, none inline, and nothing they may fetch.
PASSWORD_TEMPLATES = frozenset({"login.html", "password.html", "account_password.html"})
OWN_SCRIPTS = "; script-src 'self'"


class CsrfRejected(Exception):
    """A form came without the CSRF token this browser was given."""


class NotSignedIn(Exception):
    """A page was asked for without a live session (or, with `step_up`, without the second
    factor it needs): the browser is sent to sign in and brought back to `next_page`."""

    def __init__(self, message: str, *, next_page: str = "/", step_up: bool = False) -> None:
        super().__init__(message)
        self.next_page = next_page
        self.step_up = step_up


def cookie_name(runtime: Runtime, base: str) -> str:
    return f"__Host-{base}" if runtime.settings.secure_cookies else base


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def language(request: Request, runtime: Runtime) -> str:
    return i18n.chosen(request, cookie_name(runtime, i18n.LANG_COOKIE))


def here(request: Request) -> str:
    """This page's path and query, for the language switch to come back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def local_path(target: str | None) -> str:
    """`target` if it is a path on this service, else "/": never an open redirect. Browsers
    drop tabs and newlines from URLs and read a backslash as a slash, so "/\\t/evil" would
    leave the site: any control character or backslash is refused outright."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return "/"
    return target


def csrf_token(request: Request, runtime: Runtime) -> str:
    """This browser's CSRF token (made on first use; set on the response by `render`)."""
    existing = request.cookies.get(cookie_name(runtime, CSRF_COOKIE))
    token = existing or getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def check_csrf(request: Request, runtime: Runtime, submitted: str | None) -> None:
    expected = request.cookies.get(cookie_name(runtime, CSRF_COOKIE))
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfRejected("the form has expired; reload the page and try again")


def record_csrf_refusal(request: Request, runtime: Runtime) -> None:
    """Audit a refused form when its browser holds a live session, naming its citizen (within
    the per-account cap); count it either way. A forged cross-site post carries no session
    cookie (SameSite=Lax), names nobody and earns no entry (`identity.failures` says why).
    Looking the session up does not count as using it: its idle time does not slide. A
    database that fails here leaves the refusal page standing, and the count."""
    recorded = False
    try:
        with runtime.transaction() as session:
            provider = runtime.provider(session)
            token = request.cookies.get(cookie_name(runtime, SESSION_COOKIE))
            sso = provider.sessions.current(token, touch=False)
            account = provider.accounts.by_id(sso.citizen_id) if sso is not None else None
            if account is not None:
                recorded = runtime.failure_records(session).csrf(
                    account.pseudonym,
                    route=metrics.route_template(request.scope),
                    client=client_address(request),
                )
    except SQLAlchemyError as exc:
        log.warning("a CSRF refusal could not be audited: %s", type(exc).__name__)
        recorded = False
    metrics.auth_failure("csrf", recorded=recorded)


def set_cookie(response: Response, runtime: Runtime, base: str, value: str, **options: Any) -> None:
    response.set_cookie(
        cookie_name(runtime, base),
        value,
        httponly=True,
        secure=runtime.settings.secure_cookies,
        path="/",
        **options,
    )


# What a browser is told to forget when its session ends (ASVS 8.2.3): the pages it cached and
# anything a page stored. Not "cookies": that would also take the device cookie (which spares a
# known browser a stranger's lockout) and the language; the session cookie is deleted by name.
CLEAR_SITE_DATA = '"cache", "storage"'


def signed_out(response: Response, runtime: Runtime) -> Response:
    """`response`, which ends this browser's session: the session cookie deleted, and the
    browser told to clear what it kept of the signed-in pages."""
    response.delete_cookie(cookie_name(runtime, SESSION_COOKIE), path="/")
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


def render(
    request: Request,
    runtime: Runtime,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    csrf = csrf_token(request, runtime)
    lang = language(request, runtime)
    for key in LOCALISED:
        if key in context:
            context[key] = i18n.localise(lang, context[key])
    if "errors" in context:  # field name -> what is wrong with it, shown beside the field
        context["errors"] = {k: i18n.localise(lang, v) for k, v in context["errors"].items()}
    page = {"csrf": csrf, "lang": lang, "dir": i18n.direction(lang), "here": here(request)}
    response = TEMPLATES.TemplateResponse(
        request, template, {**page, **context}, status_code=status_code
    )
    response.headers["Content-Language"] = lang
    policy = SIGN_IN_CSP if template in SIGN_IN_TEMPLATES else PAGE_CSP
    if template in PASSWORD_TEMPLATES:
        policy += OWN_SCRIPTS
    response.headers["Content-Security-Policy"] = policy
    response.headers["Cache-Control"] = "no-store"
    if getattr(request.state, "new_csrf", None):
        set_cookie(response, runtime, CSRF_COOKIE, csrf, samesite="strict")
    return response
