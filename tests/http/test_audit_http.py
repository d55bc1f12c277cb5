"""The public audit endpoints, checked the way an outside verifier would check them."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from api.database import create_db_engine
from api.runtime import Runtime
from audit import Checkpoint, NoteVerifier, merkle
from tests.unit.audit.helpers import append

PROBLEM = "application/problem+json"


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _checkpoint(client: TestClient) -> Checkpoint:
    """Fetch key and checkpoint and check the signature, trusting nothing else the server says."""
    key = client.get("/audit/key")
    assert key.status_code == 200
    verifier = NoteVerifier.parse(key.text.strip())
    note = client.get("/audit/checkpoint")
    assert note.status_code == 200
    assert note.headers["content-type"].startswith("text/plain")
    return Checkpoint.open(note.text, verifier, "shanakht.test/audit")


def test_key_and_checkpoint_verify(client: TestClient, runtime: Runtime) -> None:
    append(runtime, 5)
    checkpoint = _checkpoint(client)
    assert checkpoint.size == 5
    assert client.get("/audit/key").text.startswith("shanakht.test/audit+")


def test_inclusion_proofs_verify_against_the_signed_checkpoint(
    client: TestClient, runtime: Runtime
) -> None:
    append(runtime, 13)
    checkpoint = _checkpoint(client)
    for index in (0, 6, 12):
        response = client.get(f"/audit/proofs/inclusion?index={index}&size={checkpoint.size}")
        assert response.status_code == 200
        assert "immutable" in response.headers["cache-control"]
        body = response.json()
        merkle.verify_inclusion(
            _b64(body["leaf_hash"]),
            index,
            checkpoint.size,
            [_b64(p) for p in body["proof"]],
            checkpoint.root,
        )


def test_consistency_proofs_link_two_checkpoints(client: TestClient, runtime: Runtime) -> None:
    append(runtime, 6)
    old = _checkpoint(client)
    append(runtime, 9)
    with runtime.sessions() as session, session.begin():
        runtime.audit_log(session).checkpoint()
    new = _checkpoint(client)
    assert (old.size, new.size) == (6, 15)
    body = client.get(f"/audit/proofs/consistency?from={old.size}&to={new.size}").json()
    merkle.verify_consistency(
        old.size, new.size, old.root, new.root, [_b64(p) for p in body["proof"]]
    )


@pytest.mark.parametrize(
    "query",
    [
        "/audit/proofs/inclusion?index=0&size=0",
        "/audit/proofs/inclusion?index=4&size=4",
        "/audit/proofs/inclusion?index=0&size=99",
        "/audit/proofs/inclusion?index=x&size=4",
        "/audit/proofs/inclusion?index=1.5&size=4",
        "/audit/proofs/inclusion?size=4",
        "/audit/proofs/inclusion?index=-1&size=4",
        "/audit/proofs/inclusion?index=0&size=99999999999999999999999999",
        "/audit/proofs/consistency?from=3&to=2",
        "/audit/proofs/consistency?from=0&to=2",
        "/audit/proofs/consistency?from=a&to=2",
        "/audit/proofs/consistency?from=1&to=50",
        "/audit/proofs/consistency?to=2",
    ],
)
def test_malformed_proof_queries_get_a_400_problem(
    client: TestClient, runtime: Runtime, query: str
) -> None:
    append(runtime, 4)
    response = client.get(query)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 400
    assert body["title"]
    assert "Traceback" not in response.text


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "object_store": "ok",
        "keys": "ok",
        "storage": "ok",
    }


def test_readiness_fails_when_the_database_is_gone(
    client: TestClient, runtime: Runtime, backend: str
) -> None:
    missing = "no_such_database_here" if backend == "postgresql" else "/nonexistent/dir/db"
    runtime.engine.dispose()
    runtime.engine = create_db_engine(runtime.engine.url.set(database=missing))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["checks"]["database"] != "ok"


def test_unknown_paths_are_problems_too(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


def test_an_entry_number_no_column_holds_is_a_400_problem(client: TestClient) -> None:
    """Found by the API fuzzer: a seq past 2**63 - 1 reached the database driver, which cannot
    send it (OverflowError: a 500)."""
    response = client.get(f"/audit/entries?after={2**63}")
    assert (response.status_code, response.headers["content-type"]) == (400, PROBLEM)


def test_the_openapi_schema_says_how_the_apis_answer(client: TestClient) -> None:
    """Found by the API fuzzer: GET and POST of one route shared an operation id (the schema
    forbids it, and FastAPI's warning made /openapi.json a 500 wherever warnings are errors),
    and every operation declared FastAPI's 422 while a malformed request is a 400 problem."""
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    schema = response.json()
    operations = [op for item in schema["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert "HTTPValidationError" not in response.text
    inclusion = schema["paths"]["/audit/proofs/inclusion"]["get"]["responses"]
    declared = inclusion["400"]["content"][PROBLEM]["schema"]
    assert declared == {"$ref": "#/components/schemas/Problem"}
    required = schema["components"]["schemas"]["Problem"]["required"]
    assert {"type", "title", "status"} <= set(required)


@pytest.mark.parametrize("path", ["/healthz", "/no/such/page", "/audit/proofs/inclusion?size=x"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
