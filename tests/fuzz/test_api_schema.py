"""Every JSON API operation in the OpenAPI schema, fuzzed by schemathesis within a fixed budget.

What must hold for any input, well formed or not: no 5xx, no status code, content type, body or
header the schema does not declare, and no Python traceback in a body. The fuzzer holds a
citizen's token (the `locker` scope), a department system's client-credentials token and that
system's client credentials, so it gets past 401 into the locker, the once-only exchange, the
access log and the OAuth grants. Each operation gets `EXAMPLES_PER_OPERATION` valid and as many
invalid requests, derandomised: the same ones every run, so a failure in CI is one on a desk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.clients import SERVICE
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL
from tests.http.conftest import nadra_file, oidc_runtime
from tests.http.live_server import served
from tests.http.oidc_kit import Browser, register_citizen, register_client, token

__all__ = ["nadra_file", "oidc_runtime"]  # fixtures from the HTTP tests: keys, NADRA, notifier

EXAMPLES_PER_OPERATION = 40  # x 2 (valid, invalid) x 67 operations: about a minute on 2 cores
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')

# Operations only a department system may call (client credentials); every other operation
# that wants a token is the citizen's (the `locker` scope) and gets the citizen's.
DEPARTMENT_OPERATIONS = frozenset(
    {
        ("PUT", "/locker/issued/{doctype}"),
        ("GET", "/locker/issued/{doctype}"),
        ("POST", "/locker/issued/{doctype}/revoke"),
        ("POST", "/exchange/requests"),
        ("GET", "/exchange/requests/{request_id}"),
        ("GET", "/exchange/consents/{consent_id}"),
        ("GET", "/exchange/consents/{consent_id}/documents"),
        ("GET", "/exchange/consents/{consent_id}/documents/{document_id}"),
        ("GET", "/exchange/consents/{consent_id}/documents/{document_id}/signature"),
    }
)


# The OAuth endpoints that authenticate the client: the department system's Basic credentials.
CLIENT_AUTHENTICATED = frozenset(
    {"/oauth/token", "/oauth/par", "/oauth/introspect", "/oauth/revoke"}
)
CITIZEN_PATHS = (
    "/locker",
    "/exchange",
    "/audit/entries",
    "/oauth/userinfo",
    "/signing/cms",
    "/signing/orders",
)


@schemathesis.check
def no_traceback(ctx: Any, response: Any, case: Any) -> None:
    """A stack trace in a body tells an attacker the code's layout and leaks whatever the
    frames held; an error leaves the service as problem details, nothing more."""
    text = response.content.decode("utf-8", "replace")
    for marker in TRACEBACK_MARKERS:
        if marker in text:
            raise AssertionError(f"the body carries a stack trace ({marker!r})")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    no_traceback,
]


def _prepare_department(runtime: Runtime, tmp_path: Path) -> None:
    """A department (lgcd) with a seal on an initialised PKI, so the PKI and signing endpoints
    answer as in production instead of 503 "not set up yet"."""
    root = create_root(tmp_path / "root", "a long test passphrase", common_name="Fuzz Root",
                       now=runtime.clock())  # fmt: skip
    with runtime.transaction() as session:
        runtime.provider(session).roles.add_department("lgcd", "Local Government")
        authority = runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", "lgcd"), actor="admin:test")


CITIZEN_CNIC_SCENARIO = "active_male"


def _citizen_token(web: TestClient, runtime: Runtime) -> str:
    """A citizen's access token with the `locker` scope, through the code flow as the portal."""
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS[CITIZEN_CNIC_SCENARIO]]
    register_citizen(runtime, record)
    portal = register_client(runtime, "portal", scopes=("openid", "locker"))
    callback, verifier = Browser(web).sign_in(portal, record.cnic, scope="openid locker")
    response = token(web, portal, grant_type="authorization_code", code=callback["code"],
                     redirect_uri=portal.redirect_uri, code_verifier=verifier)  # fmt: skip
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _department_system(web: TestClient, runtime: Runtime) -> tuple[str, str]:
    """The lgcd records system, which issues birth certificates and files once-only requests:
    its client-credentials token and its own Basic credentials."""
    scopes = ("locker.issue.birth", "locker.request")
    system = register_client(
        runtime, "lgcd-crms", kind=SERVICE, secret=True, scopes=scopes, department="lgcd"
    )
    response = token(web, system, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"]), system.auth()[1]["Authorization"]


@dataclass(frozen=True)
class Callers:
    """The Authorization headers the fuzzer sends, out of every repr so that no failure
    report prints a credential."""

    citizen: str = field(repr=False)
    department: str = field(repr=False)
    client: str = field(repr=False)
    cnic: str = field(repr=False)  # the citizen's, for issuing into their locker


@pytest.fixture
def callers(oidc_runtime: Runtime, tmp_path: Path) -> Callers:
    """A citizen (portal token, `locker` scope) and a department system (its token, and its
    client credentials for the OAuth endpoints that authenticate clients)."""
    _prepare_department(oidc_runtime, tmp_path)
    with TestClient(create_app(oidc_runtime), base_url="https://shanakht.test") as web:
        citizen = _citizen_token(web, oidc_runtime)
        department, client = _department_system(web, oidc_runtime)
    return Callers(citizen=f"Bearer {citizen}", department=f"Bearer {department}",
                   client=client, cnic=SCENARIOS[CITIZEN_CNIC_SCENARIO])  # fmt: skip


@pytest.fixture
def api_schema(oidc_runtime: Runtime, callers: Callers) -> Iterator[Any]:
    """The schema the app serves, loaded from the app on a real HTTP server (after the
    callers are set up, so their requests are not the fuzzer's)."""
    with served(oidc_runtime) as address:
        yield schemathesis.openapi.from_url(f"http://{address}/openapi.json")


def _authorization(case: Any, callers: Callers) -> dict[str, str]:
    """Who calls: the department system where only it may, its client credentials at the
    OAuth endpoints that authenticate clients, the citizen wherever else a token is wanted,
    nobody at the public operations."""
    path = case.operation.path
    if (case.method.upper(), path) in DEPARTMENT_OPERATIONS:
        return {"Authorization": callers.department}
    if path in CLIENT_AUTHENTICATED:
        return {"Authorization": callers.client}
    if path.startswith(CITIZEN_PATHS):
        return {"Authorization": callers.citizen}
    return {}


def _fuzz(operation: APIOperation, mode: GenerationMode, callers: Callers) -> None:
    """`EXAMPLES_PER_OPERATION` requests of one kind (valid or invalid data) at one operation,
    the same ones every run (derandomised, no example database)."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        headers = {**(case.headers or {}), **_authorization(case, callers)}
        if mode is GenerationMode.POSITIVE and "Shanakht-Cnic" in headers:
            headers["Shanakht-Cnic"] = callers.cnic  # a locker that exists: issuing goes on
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


def test_no_input_breaks_an_api(
    api_schema: Any, callers: Callers, subtests: pytest.Subtests
) -> None:
    """Whatever arrives at any operation, the answer is one the schema declares, never a 5xx.

    One subtest an operation (schemathesis's own pytest loader does not run on pytest 9), so a
    failure names its operation and the others still run."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50, "the schema lists the APIs"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                try:
                    _fuzz(operation, mode, callers)
                except Unsatisfiable:
                    # Nothing about the operation can be sent wrong (no parameters, or only
                    # unconstrained strings in the path): there is no invalid input to try.
                    assert mode is GenerationMode.NEGATIVE
