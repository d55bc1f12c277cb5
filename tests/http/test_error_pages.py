"""What a browser is shown when it goes wrong: a missing page, an incomplete form, a failed
sign-in. Pages answer in the reader's language with the same status codes; APIs keep
answering programs in problem details."""

from __future__ import annotations

import io
import json

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from httpx2 import Response

from api import i18n
from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import HOSTILE, PASSWORD, assert_escaped, csrf_of, register_citizen
from tests.http.test_telemetry import json_log as json_log  # a fixture: the service's log

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PROBLEM = "application/problem+json"


def _in(web: TestClient, lang: str) -> None:
    web.get(f"/lang/{lang}?next=/", follow_redirects=False)


# -- a failed login keeps where the citizen was going ----------------------------------------


def test_a_failed_login_keeps_next_and_the_next_try_goes_there(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    page = web.get("/login?next=/documents")
    refused = web.post(
        "/login",
        data={
            "csrf": csrf_of(page.text),
            "cnic": record.cnic,
            "password": "not-the-password",
            "next": "/documents",
        },
    )
    assert refused.status_code == 401
    assert '<input type="hidden" name="next" value="/documents">' in refused.text
    signed_in = web.post(
        "/login",
        data={
            "csrf": csrf_of(refused.text),
            "cnic": record.cnic,
            "password": PASSWORD,
            "next": "/documents",
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/documents"


def test_a_failed_login_never_carries_an_outside_next(web: TestClient) -> None:
    page = web.get("/login")
    refused = web.post(
        "/login",
        data={
            "csrf": csrf_of(page.text),
            "cnic": "3520212345671",
            "password": "wrong",
            "next": "https://evil.example/",
        },
    )
    assert refused.status_code == 401
    assert "evil.example" not in refused.text


def test_what_was_typed_comes_back_in_its_field_escaped(web: TestClient) -> None:
    """A refused login shows the CNIC field as typed: inside a quoted attribute, where a
    quote would end it, so it comes back escaped (a link to this form cannot inject)."""
    page = web.get("/login")
    refused = web.post(
        "/login", data={"csrf": csrf_of(page.text), "cnic": HOSTILE, "password": "x"}
    )
    assert refused.status_code == 401
    assert_escaped(refused.text)


# -- a missing page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "This page does not exist"), ("ur", "یہ صفحہ موجود نہیں")],
)
def test_a_missing_page_is_a_page_in_the_readers_language(
    web: TestClient, lang: str, words: str
) -> None:
    _in(web, lang)
    missing = web.get("/nope", headers={"Accept": BROWSER})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert missing.headers["content-language"] == lang
    assert words in missing.text
    assert f'<html lang="{lang}"' in missing.text
    assert "Not Found" not in missing.text


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/nope", "application/json"),
        ("/nope", PROBLEM),
        ("/nope", ""),
        ("/nope", "application/json, text/html;q=0.5"),
        ("/locker/nope", BROWSER),
        ("/signing/nope", BROWSER),
        ("/pki/nope", BROWSER),
        ("/audit/nope", BROWSER),
        ("/exchange/nope", BROWSER),
        ("/oauth/nope", BROWSER),
        ("/.well-known/nope", BROWSER),
    ],
)
def test_programs_and_apis_still_get_problem_details(
    web: TestClient, path: str, accept: str
) -> None:
    missing = web.get(path, headers={"Accept": accept})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["status"] == 404


# -- an incomplete form -----------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ur"])
def test_a_form_missing_a_field_is_a_page_in_the_readers_language(
    web: TestClient, lang: str
) -> None:
    words = i18n.translate(lang, "The form was incomplete: fill in every field and try again.")
    assert lang == "en" or words.startswith("فارم نامکمل")
    _in(web, lang)
    page = web.get("/login")
    incomplete = web.post(
        "/login",
        data={"csrf": csrf_of(page.text), "cnic": "3520212345671"},
        headers={"Accept": BROWSER, "Referer": "https://shanakht.test/login?next=/documents"},
    )
    assert incomplete.status_code == 400
    assert incomplete.headers["content-type"].startswith("text/html")
    assert incomplete.headers["content-language"] == lang
    assert words in incomplete.text
    assert "Field required" not in incomplete.text
    assert 'href="/login?next=/documents"' in incomplete.text


def test_a_program_posting_an_incomplete_form_still_gets_problem_details(
    web: TestClient,
) -> None:
    incomplete = web.post("/login", data={"cnic": "3520212345671"})
    assert incomplete.status_code == 400
    assert incomplete.headers["content-type"] == PROBLEM
    assert incomplete.json()["errors"][0]["location"] == "body.password"


def test_an_incomplete_form_never_links_to_another_site(web: TestClient) -> None:
    incomplete = web.post(
        "/login",
        data={"cnic": "3520212345671"},
        headers={"Accept": BROWSER, "Referer": "https://evil.example/login"},
    )
    assert incomplete.status_code == 400
    assert "evil.example" not in incomplete.text
    assert 'href="/"' in incomplete.text


# -- the last resort: an exception nothing expected ------------------------------------------

NAME, MOBILE, SECRET = "Ghulam Fatima", "03001234567", "tok-Zq8vXb2LwP"


@pytest.fixture
def boom(web: TestClient) -> TestClient:
    """The app with two routes that fail as a bug would: with personal data in the
    exception's text, after reading a request that carries more of it."""

    async def broken(request: Request) -> None:
        await request.body()
        raise RuntimeError(f"cannot file {NAME} ({MOBILE}) with {SECRET}")

    web.app.add_api_route("/broken", broken, methods=["POST"])  # type: ignore[attr-defined]
    web.app.add_api_route("/locker/broken", broken, methods=["POST"])  # type: ignore[attr-defined]
    return web


def _send_boom(web: TestClient, path: str, accept: str) -> Response:
    """A request the default test client would raise on, had the exception left the app
    (as it would reach the server, whose own log line carries the exception's text)."""
    return web.post(
        path,
        content=f"name={NAME}&mobile={MOBILE}",
        headers={
            "Accept": accept,
            "Authorization": f"Bearer {SECRET}",
            "X-Mobile": MOBILE,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def _nothing_of_the_request_or_exception_in(text: str) -> None:
    for leaked in (NAME, MOBILE, SECRET, "RuntimeError", "Traceback", "cannot file", 'File "'):
        assert leaked not in text, f"{leaked!r} leaked"


def test_an_unexpected_error_is_a_plain_problem_for_programs(
    boom: TestClient, json_log: io.StringIO
) -> None:
    answer = _send_boom(boom, "/locker/broken", BROWSER)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json() == {
        "type": "about:blank",
        "title": "Internal error",
        "status": 500,
        "detail": "The error was logged; please try again later.",
    }
    _nothing_of_the_request_or_exception_in(answer.text)
    _nothing_of_the_request_or_exception_in(str(answer.headers))
    assert answer.headers["x-content-type-options"] == "nosniff", "the usual headers still"
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "Something went wrong"), ("ur", "کچھ غلط ہو گیا")],
)
def test_an_unexpected_error_is_a_page_in_the_readers_language_for_a_browser(
    boom: TestClient, lang: str, words: str
) -> None:
    _in(boom, lang)
    answer = _send_boom(boom, "/broken", BROWSER)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-language"] == lang
    assert words in answer.text
    assert answer.headers["x-request-id"] in answer.text, "an id to quote to the helpline"
    _nothing_of_the_request_or_exception_in(answer.text)
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_an_unexpected_error_is_logged_where_it_happened_and_without_its_text(
    boom: TestClient, json_log: io.StringIO
) -> None:
    """The exception's text and the request are the bug's data, which may be anyone's: the
    log keeps the exception's type, the request id and the frames (file, line, function),
    enough to find the bug, and none of the text."""
    answer = _send_boom(boom, "/locker/broken", PROBLEM)
    written = json_log.getvalue()
    _nothing_of_the_request_or_exception_in(written.replace("RuntimeError", ""))
    [line] = [json.loads(x) for x in written.splitlines() if "unhandled" in x]
    assert line["level"] == "ERROR"
    assert line["request_id"] == answer.headers["x-request-id"]
    assert "RuntimeError" in line["message"]
    assert "test_error_pages.py" in line["message"]
    assert "in broken" in line["message"]
    [access] = [json.loads(x) for x in written.splitlines() if '"shanakht.access"' in x]
    assert access["status"] == 500
