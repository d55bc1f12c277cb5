"""Fault injection: each fault is injected, and then the same checks run. While the fault
lasts the service answers a clear problem+json (4xx or 503, never a 500 or a stack trace);
afterwards it answers normally; no half-written record is left (no row without its object, and
after the sweeper no object, temporary file or multipart upload without its row); documents
committed before the fault read back byte for byte; an idempotent re-issue after the fault
makes one document; and `shanakht audit verify` passes.

Fault -> the test that proves it ("here" = this file; the others were already in the suite):

- DB connection dropped mid-transaction (closed under an issue's version insert)
    here: test_a_connection_dropped_mid_issue_is_503_and_the_retry_makes_one_document
    (was a 500 with the exception re-raised: fixed, now 503 + Retry-After)
- PostgreSQL backends terminated (a restart, a fail-over), pooled or just checked out; a
  connection lost before and at a token grant's commit
    tests/faults/test_disconnects.py (no per-checkout ping: a socket check, one rerun of a
    token endpoint's transaction, 503 elsewhere)
- the database down at the OAuth endpoints (token, introspection, revocation, userinfo)
    tests/faults/test_disconnects.py::
    test_the_oauth_endpoints_answer_a_database_outage_in_their_error_json_and_recover
    (was problem+json, which their clients do not parse: fixed, now RFC 6749 error JSON,
    503 temporarily_unavailable with Retry-After, as when they shed load)
- DB file system full (a real SQLITE_FULL: max_page_count caps the file)
    here: test_a_database_disk_full_is_503_and_the_retry_makes_one_document (was a 500: fixed)
- a database error that is a bug (not an outage) stays a 500 naming nothing
    here: test_a_database_error_that_is_a_bug_stays_a_500_not_an_outage
- object store refusing connections, on issue
    tests/http/test_locker.py::
    test_a_store_that_does_not_answer_is_503_and_leaves_nothing
    tests/unit/locker/test_stores.py::test_s3_unreachable_is_unavailable
- object store answering 5xx
    tests/unit/locker/test_stores.py::test_s3_server_errors_are_unavailable
- object store down on a department's fetch
    tests/http/test_exchange.py::test_a_storage_outage_is_503_and_spends_nothing
- object store timing out (accepts, never answers), on issue and on download
    here: test_an_s3_store_that_stops_answering_times_out_to_503_then_serves_again
- S3 failing mid-multipart upload (part 2 times out)
    here: test_s3_failing_mid_multipart_upload_is_503_and_keeps_no_parts
    the caller's stream failing mid-multipart:
    tests/unit/locker/test_stores.py::test_failed_put_leaves_nothing
- local store disk full (ENOSPC mid-write), on issue and on upload
    here: test_a_full_disk_under_the_local_store_is_503_and_leaves_no_scrap
- NADRA down at registration
    tests/http/test_registration_pages.py::
    test_a_nadra_outage_says_try_later_and_creates_nothing
    tests/unit/identity/test_enrolment.py::test_a_nadra_outage_leaves_nothing_behind
- NADRA slow (past the adapter's timeout), at registration
    here: test_registration_with_nadra_slow_or_sms_down_says_try_later_and_keeps_nothing
    [nadra slow]
    tests/unit/identity/test_nadra.py::
    test_latency_beyond_the_timeout_waits_the_timeout_and_fails
- SMS gateway down at registration
    here: test_registration_with_nadra_slow_or_sms_down_says_try_later_and_keeps_nothing
    [sms down]
- SMS gateway down at the login second factor
    here: test_the_sms_second_factor_with_the_gateway_down_is_503_then_works
- SMS gateway down for a consent request's notice
    here: test_a_consent_request_whose_sms_notice_cannot_go_is_503_and_files_nothing
- SIGKILL during an audit append (the entry written, the head not moved)
    here: test_killed_mid_audit_append_loses_nothing_committed_and_the_log_verifies
- SIGKILL during an upload: mid-put, and stored but not committed
    here: test_killed_mid_upload_leaves_no_half_record_and_the_retry_makes_one
    (a temporary file no sweep ever removed: fixed)
- SIGKILL during a multipart upload to S3
    here: test_killed_mid_multipart_upload_on_s3_leaves_parts_the_sweeper_aborts
    (parts no sweep ever aborted: fixed)
- SIGKILL during a rewrap (one batch committed, one in flight)
    here: test_killed_mid_rewrap_keeps_every_document_readable_and_the_rerun_finishes
    an exception mid-rewrap: tests/unit/locker/test_rewrap.py::
    test_an_interrupted_rewrap_leaves_everything_readable_and_the_next_run_finishes
    tests/http/test_admin_pages.py::test_a_stopped_rewrap_resumes_where_it_left_off
- SIGKILL during a backup (mid object copy)
    here: test_killed_mid_backup_leaves_no_backup_that_restores_and_the_next_one_does
    tests/cli/test_backup.py::test_an_unfinished_backup_without_manifest_is_refused
- the sweeper never deletes live data (young objects, recorded objects)
    every test here, through `_swept_and_whole`
    tests/unit/locker/test_documents.py::
    test_an_object_whose_transaction_failed_is_swept_once_old_enough
    tests/cli/test_locker_cli.py::test_sweep_removes_shredded_ciphertext_and_old_orphans_only

Not covered: a slow SMS gateway (the development outbox has no latency and no real gateway
adapter ships); PostgreSQL's disk full (the disk-full test is SQLite's; the others run on
either database); whether the sweeper keeps a young S3 multipart upload (moto reports every
upload as initiated in 2010; the local store's kill test shows the grace is kept).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import DataError, IntegrityError

from api.app import create_app
from api.runtime import Runtime
from audit import AuditEvent
from audit.models import entries
from identity.login import ACR_SUBSTANTIAL
from identity.models import challenges, citizens
from identity.nadra import SCENARIOS, MockNadra, read_registry
from locker.access import Accessor
from locker.models import documents, inbox, requests, versions
from locker.stores import LocalStore, S3Store
from tests.cli.test_cli import run
from tests.cli.test_locker_cli import _kek_versions
from tests.http.oidc_kit import Browser, csrf_of, details_form, press_send, register_client
from tests.http.test_exchange import Scene, _file
from tests.http.test_locker import PDF, PROBLEM, Office, _download, _issue, _mine
from tests.http.test_signing import _stepped_up_token
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, s3_store

SWEEP_LATER = timedelta(hours=7)  # past the sweeper's grace: an orphan by then is one for sure


# -- checks made after every fault --------------------------------------------------------------


def _problem(response: Any, status: int) -> dict[str, Any]:
    """A problem+json answer with `status`, naming no code or statement."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    for leak in ("Traceback", 'File "', "INSERT", "UPDATE", "SELECT", "sqlite3", "psycopg"):
        assert leak not in response.text, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _recorded(runtime: Runtime) -> set[str]:
    with runtime.sessions() as session:
        return set(session.execute(select(versions.c.object_key)).scalars())


def _stored(runtime: Runtime) -> set[str]:
    return set(runtime.store.keys("documents/"))


def _count(runtime: Runtime, table: Any) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _swept_and_whole(runtime: Runtime) -> None:
    """No half-written record: every row has its object, and once the sweeper runs past its
    grace no object is left without its row. The sweep at the normal grace keeps a young
    orphan (it could be an upload still committing), so it never deletes live data."""
    with runtime.transaction() as session:
        runtime.locker(session).sweep_orphans()
    recorded = _recorded(runtime)
    assert recorded <= _stored(runtime), "a row without its object"
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        locker._clock = lambda: runtime.clock() + SWEEP_LATER
        locker.sweep_orphans()
    assert _stored(runtime) == recorded, "an object without its row after the sweep"


def _scraps(runtime: Runtime) -> list[str]:
    """Temporary files of the local store (none on S3): what a write killed mid-way left."""
    objects = runtime.settings.data_dir / "objects"
    return sorted(path.name for path in objects.rglob(".tmp-*"))


def _audit_verifies(env: dict[str, str]) -> None:
    code, out = run(env, "audit", "verify")
    assert code == 0, out


def _actions(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        return [json.loads(row)["action"] for row in rows]


@contextlib.contextmanager
def _failing_statement(runtime: Runtime, starts: str, fail: Any) -> Iterator[list[str]]:
    """Call `fail(cursor)` just before the first statement starting with `starts` runs."""
    hit: list[str] = []

    def before(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not hit and statement.lstrip().upper().startswith(starts.upper()):
            hit.append(statement)
            fail(cursor)

    event.listen(runtime.engine, "before_cursor_execute", before)
    try:
        yield hit
    finally:
        event.remove(runtime.engine, "before_cursor_execute", before)


def _drop_connection(cursor: Any) -> None:
    """The database connection goes away under the transaction (a server restart, a network
    cut): the statement about to run finds it closed."""
    if hasattr(cursor.connection, "close"):
        cursor.connection.close()


# -- the database connection dropped mid-transaction --------------------------------------------


def test_a_connection_dropped_mid_issue_is_503_and_the_retry_makes_one_document(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    kept = _issue(web, office, doc_id="BC/2026/0000")
    assert kept.status_code == 201, kept.text
    with _failing_statement(oidc_runtime, "INSERT INTO locker_versions", _drop_connection) as hit:
        dropped = _issue(web, office)
    assert hit, "the fault was injected"
    _problem(dropped, 503)
    assert _count(oidc_runtime, documents) == 1, "nothing of the failed issue was recorded"
    assert len(_stored(oidc_runtime)) == 2, "its ciphertext is an orphan, for the sweeper"
    retry = _issue(web, office)
    assert (retry.status_code, retry.json()["outcome"]) == (201, "created"), retry.text
    again = _issue(web, office)
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    assert _count(oidc_runtime, documents) == 2
    for listed in _mine(web, office.citizen):
        assert _download(web, office.citizen, listed["id"]).content == PDF
    _swept_and_whole(oidc_runtime)
    _audit_verifies(cli_env)


def test_a_database_disk_full_is_503_and_the_retry_makes_one_document(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str], backend: str
) -> None:
    """A real SQLITE_FULL: every connection may grow the file by not one page more."""
    if backend != "sqlite":
        pytest.skip("a database size cap is SQLite's; PostgreSQL's disk is the server's")
    engine = oidc_runtime.engine
    assert _issue(web, office, doc_id="BC/2026/0000").status_code == 201

    def cap(dbapi: Any, _record: Any) -> None:
        (pages,) = dbapi.execute("PRAGMA page_count").fetchone()
        dbapi.execute(f"PRAGMA max_page_count={pages}")

    engine.dispose()
    event.listen(engine, "connect", cap)
    issued = ["BC/2026/0000"]
    try:
        for n in range(1, 40):  # the file's free room runs out within a few documents
            full = _issue(web, office, doc_id=f"BC/2026/{n:04d}")
            if full.status_code != 201:
                break
            issued.append(f"BC/2026/{n:04d}")
    finally:
        event.remove(engine, "connect", cap)
        engine.dispose()
    _problem(full, 503)
    assert full.headers["retry-after"]
    assert _count(oidc_runtime, documents) == len(issued)
    retry = _issue(web, office, doc_id=f"BC/2026/{n:04d}")
    assert (retry.status_code, retry.json()["outcome"]) == (201, "created"), retry.text
    assert _issue(web, office, doc_id=f"BC/2026/{n:04d}").json()["outcome"] == "unchanged"
    assert _count(oidc_runtime, documents) == len(issued) + 1
    for listed in _mine(web, office.citizen):
        assert _download(web, office.citizen, listed["id"]).content == PDF
    _swept_and_whole(oidc_runtime)
    _audit_verifies(cli_env)


# -- the local store's disk full ----------------------------------------------------------------


class _FullDisk:
    """A file on a disk with `room` bytes left: the write past it fails with ENOSPC."""

    def __init__(self, file: Any, room: int) -> None:
        self._file, self._room = file, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()


def test_a_full_disk_under_the_local_store_is_503_and_leaves_no_scrap(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    assert _issue(web, office, doc_id="BC/2026/0000").status_code == 201
    original = LocalStore._create_temporary
    writes: list[int] = []

    def nearly_full(store: LocalStore, folder: Path, key: str) -> tuple[Any, Path]:
        file, temporary = original(store, folder, key)
        writes.append(1)
        return _FullDisk(file, 64 * 1024), temporary

    monkeypatch.setattr(LocalStore, "_create_temporary", nearly_full)
    full = _issue(web, office)
    upload = web.post("/locker/documents", params={"title": "My copy"}, content=PDF,
                      headers={"Authorization": f"Bearer {office.citizen}",
                               "Content-Type": "application/pdf"})  # fmt: skip
    monkeypatch.undo()
    assert len(writes) == 2, "the fault was injected in both"
    _problem(full, 503)
    _problem(upload, 503)
    objects = oidc_runtime.settings.data_dir / "objects"
    assert [p.name for p in objects.rglob(".tmp-*")] == [], "a half-written temporary file"
    assert _count(oidc_runtime, documents) == 1
    assert len(_stored(oidc_runtime)) == 1
    retry = _issue(web, office)
    assert (retry.status_code, retry.json()["outcome"]) == (201, "created"), retry.text
    assert _count(oidc_runtime, documents) == 2
    for listed in _mine(web, office.citizen):
        assert _download(web, office.citizen, listed["id"]).content == PDF
    _swept_and_whole(oidc_runtime)
    _audit_verifies(cli_env)


# -- the object store (S3) down, timing out, failing mid-multipart ------------------------------


def _s3(oidc_runtime: Runtime, endpoint: str) -> S3Store:
    store = s3_store(endpoint, f"faults-{os.urandom(4).hex()}", max_attempts=1)
    store.ensure_bucket()
    oidc_runtime.store = store
    return store


def test_an_s3_store_that_stops_answering_times_out_to_503_then_serves_again(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str],
    s3_endpoint: str,
) -> None:  # fmt: skip
    working = _s3(oidc_runtime, s3_endpoint)
    assert _issue(web, office, doc_id="BC/2026/0000").status_code == 201
    with socket.socket() as hole:  # accepts connections (the kernel does), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        oidc_runtime.store = s3_store(
            f"http://127.0.0.1:{hole.getsockname()[1]}", working._bucket,
            connect_timeout=0.5, read_timeout=0.5, max_attempts=1,
        )  # fmt: skip
        started = time.monotonic()
        slow = _issue(web, office)
        listed = web.get("/locker/documents", headers={"Authorization": f"Bearer {office.citizen}"})
        [kept] = listed.json()["documents"]
        read = _download(web, office.citizen, kept["id"])
        elapsed = time.monotonic() - started
    assert "Timeout" in _problem(slow, 503)["detail"], "says the store timed out"
    _problem(read, 503)
    assert elapsed < 30, "a store that does not answer is given up on, not waited for"
    assert _count(oidc_runtime, documents) == 1
    oidc_runtime.store = working
    retry = _issue(web, office)
    assert (retry.status_code, retry.json()["outcome"]) == (201, "created"), retry.text
    assert _count(oidc_runtime, documents) == 2
    for each in _mine(web, office.citizen):
        assert _download(web, office.citizen, each["id"]).content == PDF
    _swept_and_whole(oidc_runtime)
    _audit_verifies(cli_env)


def test_s3_failing_mid_multipart_upload_is_503_and_keeps_no_parts(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str],
    s3_endpoint: str, s3_admin: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    store = _s3(oidc_runtime, s3_endpoint)
    assert _issue(web, office, doc_id="BC/2026/0000").status_code == 201
    big = b"%PDF-1.7\n" + os.urandom(9 * 1024 * 1024)  # two parts of a multipart upload
    client = store._client
    real_upload_part = client.upload_part
    parts: list[int] = []

    def second_part_times_out(**kwargs: Any) -> Any:
        parts.append(kwargs["PartNumber"])
        if kwargs["PartNumber"] == 2:
            raise ReadTimeoutError(endpoint_url=client.meta.endpoint_url)
        return real_upload_part(**kwargs)

    monkeypatch.setattr(client, "upload_part", second_part_times_out)
    failed = _issue(web, office, content=big)
    monkeypatch.undo()
    assert parts == [1, 2], "the first part went up before the store failed"
    _problem(failed, 503)
    uploads = s3_admin.list_multipart_uploads(Bucket=store._bucket)
    assert uploads.get("Uploads", []) == [], "the unfinished upload was aborted"
    assert _count(oidc_runtime, documents) == 1
    assert len(_stored(oidc_runtime)) == 1
    retry = _issue(web, office, content=big)
    assert (retry.status_code, retry.json()["outcome"]) == (201, "created"), retry.text
    assert _issue(web, office, content=big).json()["outcome"] == "unchanged"
    assert _count(oidc_runtime, documents) == 2
    assert _download(web, office.citizen, retry.json()["id"]).content == big
    _swept_and_whole(oidc_runtime)
    _audit_verifies(cli_env)


# -- NADRA and the SMS gateway down or slow -----------------------------------------------------


@pytest.mark.parametrize("fault", ["nadra slow", "sms down"])
def test_registration_with_nadra_slow_or_sms_down_says_try_later_and_keeps_nothing(
    web: TestClient, oidc_runtime: Runtime, cli_env: dict[str, str], fault: str
) -> None:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["two_mobiles"]]
    healthy = oidc_runtime.nadra
    sleeps: list[float] = []
    if fault == "nadra slow":  # answers after 10 s; the adapter gives up at 0.05 s
        oidc_runtime._nadra = MockNadra.from_file(
            oidc_runtime.identity.nadra_file, today=lambda: oidc_runtime.clock().date(),
            latency=10.0, timeout=0.05, sleep=sleeps.append,
        )  # fmt: skip
    else:
        oidc_runtime.identity.sms.outage = True
    before = len(_actions(oidc_runtime))
    page = web.get("/register")
    form = details_form(record, csrf_of(page.text), mobile=record.mobile_numbers[0])
    refused = web.post("/register", data=form)
    assert refused.status_code == 503, refused.text
    assert "try again later" in refused.text
    assert "Traceback" not in refused.text
    if fault == "nadra slow":
        assert sleeps == [0.05], "waited the timeout, not the registry's 10 s"
    assert (_count(oidc_runtime, challenges), _count(oidc_runtime, citizens)) == (0, 0)
    assert len(_actions(oidc_runtime)) == before, "nothing logged as started"
    oidc_runtime._nadra, oidc_runtime.identity.sms.outage = healthy, False
    started = web.post("/register", data=form, follow_redirects=False)
    assert started.status_code == 303, started.text
    assert _count(oidc_runtime, challenges) == 1
    _audit_verifies(cli_env)


def test_the_sms_second_factor_with_the_gateway_down_is_503_then_works(
    web: TestClient, office: Office, oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    rp = register_client(oidc_runtime, "stepper", scopes=("openid", "locker"))
    oidc_runtime.identity.sms.outage = True
    browser = Browser(web)
    browser.sign_in(rp, office.cnic, scope="openid locker")
    pending = _count(oidc_runtime, challenges)
    response, _ = browser.authorize(rp, scope="openid locker", acr_values=ACR_SUBSTANTIAL)
    page = browser.follow(response)
    assert page.status_code == 200, "showing the code page sends nothing"
    refused = press_send(web, page.text)
    assert "SMS" in _problem(refused, 503)["title"]
    assert _count(oidc_runtime, challenges) == pending, "no code left that was never sent"
    oidc_runtime.identity.sms.outage = False
    web.cookies.clear()
    stepped = _stepped_up_token(web, oidc_runtime, rp, office.cnic, "openid locker")
    info = web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {stepped}"})
    assert info.status_code == 200, info.text
    _audit_verifies(cli_env)


def test_a_consent_request_whose_sms_notice_cannot_go_is_503_and_files_nothing(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    inbox_before = _count(oidc_runtime, inbox)
    oidc_runtime.identity.sms.outage = True
    refused = _file(web, scene)
    oidc_runtime.identity.sms.outage = False
    assert "SMS" in _problem(refused, 503)["title"]
    assert _count(oidc_runtime, requests) == 0, "no request the citizen was never told of"
    assert _count(oidc_runtime, inbox) == inbox_before
    filed = _file(web, scene)
    assert filed.status_code == 201, filed.text
    assert _count(oidc_runtime, requests) == 1, "the retry files one request"
    _audit_verifies(cli_env)


# -- the process killed (SIGKILL) mid-operation -------------------------------------------------

# A child process on the same data directory and database, as `shanakht` runs: it does one
# operation, says READY at the chosen point inside it, and waits there to be killed.
RUNNER = """
import sys, threading
from sqlalchemy import event
from api.runtime import open_runtime
from api.settings import Settings
from locker.access import Accessor

runtime = open_runtime(Settings())
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")


def ready():
    print("READY", flush=True)
    threading.Event().wait()  # until SIGKILL


def block_after(prefix, nth=1):
    seen = []

    def after(_conn, _cursor, statement, *_):
        if statement.lstrip().upper().startswith(prefix):
            seen.append(1)
            if len(seen) == nth:
                ready()

    event.listen(runtime.engine, "after_cursor_execute", after)
"""
OWNER = "p:" + "F" * 43
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")
KILL_TIMEOUT = 60.0  # generous: the child imports the whole service on a loaded machine


def _killed_at_ready(env: dict[str, str], tmp_path: Path, script: str) -> None:
    """Run `script` in a child process and SIGKILL it once it says READY."""
    errors = tmp_path / f"child-{os.urandom(3).hex()}.err"
    with errors.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", RUNNER + textwrap.dedent(script)],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            if not selector.select(KILL_TIMEOUT):
                pytest.fail(f"the child never got READY:\n{errors.read_text()}")
        line = child.stdout.readline().strip()
        assert line == "READY", f"{line!r}:\n{errors.read_text()}"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(KILL_TIMEOUT) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(KILL_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()


def _issue_here(runtime: Runtime, doc_id: str, content: bytes) -> str:
    with runtime.transaction() as session:
        issued = runtime.locker(session).issue(
            owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id=doc_id,
            title="Birth certificate", content=[content], content_type="application/pdf",
            who=ISSUER,
        )  # fmt: skip
    return issued.outcome


def _committed(runtime: Runtime, count: int) -> dict[str, bytes]:
    made = {}
    for n in range(count):
        content = b"%PDF-1.7\n" + os.urandom(5000)
        assert _issue_here(runtime, f"BC-{n}", content) == "created"
        made[f"BC-{n}"] = content
    return made


def _reads_back(runtime: Runtime, made: dict[str, bytes]) -> None:
    """Every document committed before the fault, byte for byte."""
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        for doc_id, content in made.items():
            found = locker.issued("lgcd", doc_id)
            assert found is not None, doc_id
            _, stream = locker.open(found.id, owner=OWNER, who=ISSUER)
            assert b"".join(stream) == content, doc_id


def test_killed_mid_audit_append_loses_nothing_committed_and_the_log_verifies(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    made = _committed(runtime, 2)
    size = _count(runtime, entries)
    _killed_at_ready(cli_env, tmp_path, """
        from audit import AuditEvent
        block_after("INSERT INTO AUDIT_ENTRIES")  # the entry written, the head not yet moved
        with runtime.transaction() as session:
            runtime.audit_log(session).append(AuditEvent(actor="system", action="faults.killed"))
    """)  # fmt: skip
    assert _count(runtime, entries) == size, "the uncommitted entry is gone whole"
    _audit_verifies(cli_env)
    with runtime.transaction() as session:  # the next append takes the next number
        appended = runtime.audit_log(session).append(
            AuditEvent(actor="system", action="faults.after")
        )
    assert appended.seq == size
    assert "faults.killed" not in _actions(runtime)
    _reads_back(runtime, made)
    _audit_verifies(cli_env)


@pytest.mark.parametrize("point", ["mid-put", "stored, not committed"])
def test_killed_mid_upload_leaves_no_half_record_and_the_retry_makes_one(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, point: str
) -> None:
    made = _committed(runtime, 2)
    content = b"%PDF-1.7\n" + os.urandom(200_000)
    (tmp_path / "content").write_bytes(content)
    if point == "mid-put":  # the ciphertext half written to the store
        hook = "def content():\n    yield data[:100_000]\n    ready()"
    else:  # the ciphertext stored, its rows written, the commit not reached
        hook = 'block_after("INSERT INTO LOCKER_VERSIONS")\ndef content():\n    yield data'
    _killed_at_ready(cli_env, tmp_path, f"""
        data = open({str(tmp_path / "content")!r}, "rb").read()
{textwrap.indent(hook, " " * 8)}
        with runtime.transaction() as session:
            runtime.locker(session).issue(
                owner={OWNER!r}, doctype="birth", issuer="lgcd", issuer_doc_id="BC-new",
                title="Birth certificate", content=content(), content_type="application/pdf",
                who=ISSUER,
            )
    """)  # fmt: skip
    assert _count(runtime, documents) == 2, "no row of the killed issue"
    assert _recorded(runtime) <= _stored(runtime), "a row without its object"
    scraps = _scraps(runtime)
    with runtime.transaction() as session:
        runtime.locker(session).sweep_orphans()
    assert _scraps(runtime) == scraps, "young, it may be a put still going on: kept"
    _swept_and_whole(runtime)
    assert _scraps(runtime) == [], "the killed write's temporary file outlived the sweep"
    assert _issue_here(runtime, "BC-new", content) == "created"
    assert _issue_here(runtime, "BC-new", content) == "unchanged"
    assert _count(runtime, documents) == 3, "the retry made one document"
    _reads_back(runtime, {**made, "BC-new": content})
    _audit_verifies(cli_env)


def test_killed_mid_rewrap_keeps_every_document_readable_and_the_rerun_finishes(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    made = _committed(runtime, 6)
    new = runtime.keks.rotate()
    _killed_at_ready(cli_env, tmp_path, """
        from locker.rewrap import rewrap_all
        block_after("UPDATE LOCKER_VERSIONS", nth=2)  # one batch committed, one in flight
        rewrap_all(runtime.transaction, runtime.keks, runtime.audit_log, actor="admin:test",
                   batch_size=2)
    """)  # fmt: skip
    under = _kek_versions(runtime)
    assert under.count(new) == 2, f"the first batch stands, the killed one is undone: {under}"
    _reads_back(runtime, made)
    _audit_verifies(cli_env)
    code, out = run(cli_env, "locker", "rewrap", "--batch-size", "2")
    assert code == 0, out
    assert _kek_versions(runtime) == [new] * 6
    _reads_back(runtime, made)
    _swept_and_whole(runtime)
    _audit_verifies(cli_env)


def test_killed_mid_backup_leaves_no_backup_that_restores_and_the_next_one_does(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    made = _committed(runtime, 3)
    killed = tmp_path / "killed-backup"
    _killed_at_ready(cli_env, tmp_path, f"""
        from pathlib import Path
        from api import cli_backup

        def copy_then_die(store, key, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"half an obj")
            ready()

        cli_backup._copy_object = copy_then_die
        cli_backup.backup.callback(Path({str(killed)!r}))
    """)  # fmt: skip
    assert killed.is_dir(), "the killed backup's files are there"
    assert not (killed / "manifest.json").exists(), "but it does not look finished"
    elsewhere = {
        **cli_env,
        "SHANAKHT_DATA_DIR": str(tmp_path / "restored"),
        "SHANAKHT_DATABASE_URL": f"sqlite:///{tmp_path / 'restored.db'}",
    }
    code, out = run(elsewhere, "restore", str(killed))
    assert code != 0, out
    assert "unfinished" in out, out
    assert not (tmp_path / "restored.db").exists(), "refused before writing anything"
    _reads_back(runtime, made)
    _audit_verifies(cli_env)
    whole = tmp_path / "whole-backup"
    code, out = run(cli_env, "backup", str(whole))
    assert code == 0, out
    manifest = json.loads((whole / "manifest.json").read_text())
    assert sorted(manifest["objects"]) == sorted(_recorded(runtime))
    assert manifest["audit"]["size"] == _count(runtime, entries)


def test_killed_mid_multipart_upload_on_s3_leaves_parts_the_sweeper_aborts(
    runtime: Runtime, cli_env: dict[str, str], tmp_path: Path, s3_endpoint: str, s3_admin: Any
) -> None:
    bucket = f"faults-{os.urandom(4).hex()}"
    runtime.store = s3_store(s3_endpoint, bucket)
    runtime.store.ensure_bucket()
    made = _committed(runtime, 2)
    on_s3 = {
        **cli_env, "SHANAKHT_STORE": "s3", "SHANAKHT_S3_BUCKET": bucket,
        "SHANAKHT_S3_ENDPOINT_URL": s3_endpoint, "SHANAKHT_S3_ACCESS_KEY": ACCESS_KEY,
        "SHANAKHT_S3_SECRET_KEY": SECRET_KEY, "SHANAKHT_S3_REGION": REGION,
    }  # fmt: skip
    _killed_at_ready(on_s3, tmp_path, f"""
        import os

        def content():  # the first 8 MiB part goes up, then the process dies
            yield b"%PDF-1.7\\n" + os.urandom(8 * 1024 * 1024 + 100_000)
            ready()

        with runtime.transaction() as session:
            runtime.locker(session).issue(
                owner={OWNER!r}, doctype="birth", issuer="lgcd", issuer_doc_id="BC-big",
                title="Birth certificate", content=content(), content_type="application/pdf",
                who=ISSUER,
            )
    """)  # fmt: skip
    [left] = s3_admin.list_multipart_uploads(Bucket=bucket)["Uploads"]
    parts = s3_admin.list_parts(Bucket=bucket, Key=left["Key"], UploadId=left["UploadId"])
    assert len(parts["Parts"]) == 1, "the killed upload left a part behind"
    assert _count(runtime, documents) == 2
    # (moto reports every upload as initiated in 2010, so whether the normal grace keeps a
    # young one cannot be seen here; the local store's test above shows the sweeper does.)
    _swept_and_whole(runtime)
    assert s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    _reads_back(runtime, made)
    _audit_verifies(cli_env)


def test_a_database_error_that_is_a_bug_stays_a_500_not_an_outage(runtime: Runtime) -> None:
    """Only an outage (a dropped connection, a full disk, a lock held too long) is a 503: a
    broken constraint is the service's own bug, a 500 that names nothing of the statement."""
    app = create_app(runtime)

    def broken() -> None:
        raise IntegrityError("INSERT INTO secrets VALUES (?)", ("3520212345671",), Exception("x"))

    app.add_api_route("/locker/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _problem(client.get("/locker/broken"), 500)
    assert body["title"] == "Internal error"
    assert "3520212345671" not in json.dumps(body)


def test_a_value_the_database_cannot_hold_is_the_requests_fault_a_400(runtime: Runtime) -> None:
    """PostgreSQL refuses a NUL in a text and a number past its column, where SQLite stores
    them: the value came from the request, so a 400 that names nothing of the statement."""
    app = create_app(runtime)

    def unstorable() -> None:
        raise DataError("INSERT INTO titles VALUES (?)", ("3520212345671",), Exception("NUL"))

    app.add_api_route("/locker/unstorable", unstorable)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = _problem(client.get("/locker/unstorable"), 400)
    assert "cannot be stored" in body["detail"]
    assert "3520212345671" not in json.dumps(body)
