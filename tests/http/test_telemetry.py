"""Metrics, logs and readiness, through the app: what an operator watches, and proof that no
CNIC, token or cookie reaches a metric label or a log line."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from api.app import create_app
from api.logging_setup import JsonFormatter, request_id_from, scrub
from api.routes import health
from api.runtime import AUDIT_CHECKPOINT_KEY, Runtime
from audit import AuditEvent
from audit.models import entries
from tests.http.oidc_kit import csrf_of
from tests.http.test_locker import PDF, Office, _download, _issue
from tests.http.test_locker import office as office  # a fixture (a department and citizens)
from tests.s3_server import s3_store

CNIC = "3520212345671"
DASHED = "35202-1234567-1"


def app_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route of the app, those of included routers too (FastAPI keeps them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from app_routes(nested.routes)
        else:
            yield route


def sample(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample in the app's /metrics, 0 if it has none yet."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in text_string_to_metric_families(response.text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def test_requests_are_counted_and_timed_by_route_template_never_by_path(
    client: TestClient,
) -> None:
    route = "/locker/documents/{document_id}"
    seen_before = _route_labels(client.get("/metrics").text)
    before = sample(client, "shanakht_http_requests_total", route=route, status="401")
    timed = sample(client, "shanakht_http_request_duration_seconds_count", route=route)

    for path in (f"/locker/documents/{CNIC}", f"/locker/documents/{DASHED}?cnic={CNIC}"):
        assert client.get(path).status_code == 401
    client.get(f"/nothing/here/{CNIC}")

    response = client.get("/metrics")
    assert CNIC not in response.text
    assert DASHED not in response.text
    assert sample(client, "shanakht_http_requests_total", route=route, status="401") == before + 2
    assert sample(client, "shanakht_http_request_duration_seconds_count", route=route) == timed + 2
    assert sample(client, "shanakht_http_requests_total", route="unmatched", status="404") >= 1
    # The registry is the process's: other tests' apps (one adds a route of its own) left
    # labels too. What this test's requests added must each be a template of this app.
    labels = _route_labels(response.text) - seen_before
    templates = {getattr(r, "path", None) for r in app_routes(client.app.routes)}  # type: ignore[attr-defined]
    assert labels <= templates | {"unmatched"}, "every route label is a template of the app"


def _route_labels(exposition: str) -> set[str | None]:
    return {
        found.labels.get("route")
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        if "route" in found.labels
    }


def test_an_odd_method_is_one_label_not_many(client: TestClient) -> None:
    before = sample(client, "shanakht_http_requests_total", route="/healthz", method="other")
    client.request("BREW", "/healthz")
    assert sample(client, "shanakht_http_requests_total", route="/healthz", method="other") == (
        before + 1
    )


def test_the_audit_log_size_is_what_the_database_holds(
    client: TestClient, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        log = runtime.audit_log(session)
        for n in range(3):
            log.append(AuditEvent(actor="admin:test", action="test.metrics", details={"n": n}))
        log.checkpoint()
    with runtime.sessions() as session:
        size = session.execute(select(func.count()).select_from(entries)).scalar()
    assert sample(client, "shanakht_audit_entries") == size == 3
    assert sample(client, "shanakht_audit_checkpoint_entries") == 3
    assert sample(client, "shanakht_audit_checkpoint_timestamp_seconds") > 1.7e9


def test_logins_tokens_seals_and_locker_bytes_are_counted(web: TestClient, office: Office) -> None:
    # The office fixture signed two citizens in (authorization code) and its department system
    # took a client_credentials token: counted before this test's baseline is read.
    assert sample(web, "shanakht_logins_total", outcome="success") >= 2
    assert sample(web, "shanakht_tokens_issued_total", grant_type="authorization_code") >= 2
    assert sample(web, "shanakht_tokens_issued_total", grant_type="client_credentials") >= 1

    failures = sample(web, "shanakht_logins_total", outcome="failure")
    page = web.get("/login")
    refused = web.post(
        "/login",
        data={"cnic": office.cnic, "password": "Not-the-password-1", "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert refused.status_code == 401
    assert sample(web, "shanakht_logins_total", outcome="failure") == failures + 1

    seals = sample(web, "shanakht_signatures_total", kind="seal")
    bytes_in = sample(web, "shanakht_locker_bytes_total", direction="in")
    bytes_out = sample(web, "shanakht_locker_bytes_total", direction="out")
    issued = _issue(web, office)
    assert issued.status_code == 201, issued.text
    assert sample(web, "shanakht_signatures_total", kind="seal") == seals + 1
    assert sample(web, "shanakht_locker_bytes_total", direction="in") == bytes_in + len(PDF)

    download = _download(web, office.citizen, issued.json()["id"])
    assert download.content == PDF
    assert sample(web, "shanakht_locker_bytes_total", direction="out") == bytes_out + len(PDF)
    refused_download = _download(web, office.other, issued.json()["id"])
    assert refused_download.status_code == 404
    assert sample(web, "shanakht_locker_bytes_total", direction="out") == bytes_out + len(PDF)


# -- request ids and logs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("9f1c2a7e-4b1d-4c3e-8f00-0123456789ab", True),
        ("req_01HZX3", True),
        (CNIC, False),
        (DASHED, False),
        (f"trace-{CNIC}", False),
        ("has space", False),
        ("x" * 200, False),
        ("", False),
    ],
)
def test_a_request_id_is_kept_only_when_sane(sent: str, kept: bool) -> None:
    got = request_id_from([(b"x-request-id", sent.encode())])
    assert (got == sent) is kept
    assert CNIC not in got


def test_the_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "abc-123.def"})
    assert given.headers["x-request-id"] == "abc-123.def"
    made = client.get("/healthz", headers={"X-Request-Id": CNIC})
    assert made.headers["x-request-id"] != CNIC
    assert len(made.headers["x-request-id"]) >= 16
    other = client.get("/healthz")
    assert other.headers["x-request-id"] not in (made.headers["x-request-id"], "")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged while a test runs, as the service writes it: JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    # Not the test client's own lines (httpx2 logs each URL it requests): the service's only.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_no_cnic_token_or_cookie_reaches_the_logs(
    client: TestClient, json_log: io.StringIO
) -> None:
    secret_token = "eyJhbGciOiJFUzI1NiJ9.secret-bearer-value"
    responses = [
        client.get(
            f"/locker/documents/{CNIC}/content?cnic={CNIC}&q={DASHED}",
            headers={
                "Authorization": f"Bearer {secret_token}",
                "Cookie": "__Host-shanakht-session=secret-cookie-value",
                "Shanakht-Cnic": CNIC,
                "X-Request-Id": CNIC,
            },
        ),
        client.get(f"/exchange/consents/{CNIC}/documents/{DASHED}"),
        client.get(f"/no/such/{CNIC}?name=Muhammad%20Ali"),
    ]
    logging.getLogger("shanakht.somewhere").warning("a careless line about %s", CNIC)

    written = json_log.getvalue()
    for secret in (CNIC, DASHED, secret_token, "secret-cookie-value", "Muhammad", "?"):
        assert secret not in written, f"{secret!r} reached the log"
    lines = [json.loads(line) for line in written.splitlines()]
    access = [line for line in lines if line["logger"] == "shanakht.access"]
    assert [line["route"] for line in access] == [
        "/locker/documents/{document_id}/content",
        "/exchange/consents/{consent_id}/documents/{document_id}",
        "unmatched",
    ]
    for line, response in zip(access, responses, strict=True):
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["status"] == response.status_code
        assert line["method"] == "GET"
        assert line["duration_ms"] >= 0
        assert set(line) <= {
            "time", "level", "logger", "message", "request_id",
            "method", "route", "status", "duration_ms", "bytes_in", "bytes_out",
        }  # fmt: skip
    [careless] = [line for line in lines if line["logger"] == "shanakht.somewhere"]
    assert careless["message"] == "a careless line about [cnic]"


def test_scrub_takes_every_cnic_shape() -> None:
    assert scrub(f"a {CNIC} b {DASHED} c 35202.1234567.1") == "a [cnic] b [cnic] c [cnic]"
    assert scrub("order 2026/0001 at 12:30") == "order 2026/0001 at 12:30"


# -- readiness ----------------------------------------------------------------------------------


def test_readiness_names_a_key_that_is_gone_and_liveness_stays_up(
    client: TestClient, runtime: Runtime
) -> None:
    key_file = runtime.settings.data_dir / "keys" / f"{AUDIT_CHECKPOINT_KEY}.json"
    key_file.rename(key_file.with_suffix(".moved"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["keys"].startswith(f"the key {AUDIT_CHECKPOINT_KEY} is missing")
    assert body["checks"]["database"] == "ok"
    assert "keys" in body["detail"]
    assert not key_file.exists(), "a readiness probe never makes a key"
    assert client.get("/healthz").status_code == 200


def test_readiness_names_a_key_that_does_not_open(client: TestClient, runtime: Runtime) -> None:
    key_file = runtime.settings.data_dir / "keys" / f"{AUDIT_CHECKPOINT_KEY}.json"
    record = json.loads(key_file.read_text())
    record["ciphertext"] = record["ciphertext"][::-1]
    key_file.write_text(json.dumps(record))
    body = client.get("/readyz").json()
    assert body["checks"]["keys"] != "ok"
    assert body["checks"]["object_store"] == "ok"


def test_readiness_names_a_schema_behind_the_code(client: TestClient, runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    body = client.get("/readyz").json()
    assert body["checks"]["database"].startswith("the schema is at 0001")
    assert "shanakht db upgrade" in body["checks"]["database"]


@pytest.fixture
def patient_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Readiness checks given 30 s, not 3: a test's first S3 call loads botocore's models,
    which on a machine running two test passes at once took longer than 3 s and read as a
    store that does not answer. These tests are about what the store says."""
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 30.0)


class _SlowStore:
    """A store whose listing takes a second: one that does not answer in time."""

    def keys(self, prefix: str) -> Iterator[str]:
        time.sleep(1.0)
        yield from ()


def test_readiness_gives_up_on_a_check_at_its_deadline(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.2)
    runtime.store = _SlowStore()  # type: ignore[assignment]
    with TestClient(create_app(runtime)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["object_store"] == "no answer within 0.2 s"


@pytest.mark.usefixtures("patient_checks")
def test_readiness_names_an_object_store_that_does_not_answer(
    runtime: Runtime, s3_endpoint: str, tmp_path: Path
) -> None:
    runtime.store = s3_store(s3_endpoint, "never-created-bucket")
    with TestClient(create_app(runtime)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "NoSuchBucket" in checks["object_store"]
    assert checks["database"] == checks["keys"] == "ok"


@pytest.mark.usefixtures("patient_checks")
def test_readiness_of_an_s3_store_that_answers(runtime: Runtime, s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint, "readyz-bucket")
    store.ensure_bucket()
    runtime.store = store
    with TestClient(create_app(runtime)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
