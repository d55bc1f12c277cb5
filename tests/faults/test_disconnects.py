"""The database connection lost under the service, without `pool_pre_ping`'s round trip.

PostgreSQL: the server side of pooled connections is terminated (`pg_terminate_backend`, what a
restart or a fail-over does to them), before a request checks a connection out (the checkout's
socket check replaces it) and between its checkout and its first statement (the statement
fails: a token grant is run once more, a request-wide transaction answers 503). On either
database: a connection that dies before the commit makes a grant run once more, and one that
dies at the commit is never run twice; the database down answers the OAuth endpoints' clients
in their error JSON (503 `temporarily_unavailable`, as shed load), problem details elsewhere.
In every case: no 500, nothing half-written (an issued
token has its one audit entry, a failed one none), the next requests succeed, and the audit log
verifies.

Only the backends of this test's own pool are terminated, not every backend of the database
(`pid <> pg_backend_pid()`): the tests share one PostgreSQL database, a schema each, and
another run's connections are not this test's to end.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from api.problems import DATABASE_RETRY_AFTER
from api.routes.oidc import DATABASE_DOWN as DOWN
from api.runtime import Runtime
from identity.oidc.clients import SERVICE
from tests.faults.test_faults import _actions, _audit_verifies, _problem
from tests.http.oidc_kit import RelyingParty, register_client, token

ISSUED = "identity.token.issued"


@pytest.fixture
def system(oidc_runtime: Runtime) -> RelyingParty:
    """A department system, which takes client_credentials grants (each one audited)."""
    return register_client(oidc_runtime, "education-dept", kind=SERVICE)


@pytest.fixture
def admin(runtime: Runtime, backend: str) -> Iterator[Engine]:
    """A connection of the test's own to terminate backends with (outside the pool)."""
    if backend != "postgresql":
        pytest.skip("terminating the server's side of a connection is PostgreSQL's")
    engine = create_engine(runtime.engine.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def listening(engine: Engine, event_name: str, fn: Callable[..., None]) -> Iterator[None]:
    """`fn` hears the engine's `event_name` for the block only: a fault injected by one test
    must not go on firing in the next (engines outlive a test's block)."""
    event.listen(engine, event_name, fn)
    try:
        yield
    finally:
        event.remove(engine, event_name, fn)


def _grant(web: TestClient, system: RelyingParty) -> Any:
    return token(web, system, grant_type="client_credentials")


def _issued(runtime: Runtime) -> int:
    return _actions(runtime).count(ISSUED)


def _outage(response: Any) -> None:
    """The answer to a lost connection that could not be retried: 503 problem+json."""
    _problem(response, 503)
    assert response.headers["retry-after"] == str(DATABASE_RETRY_AFTER)


def _oauth_outage(response: Any) -> None:
    """The same at an OAuth endpoint (token, introspection, revocation, userinfo): 503 in its
    RFC 6749 error JSON, as when the endpoint sheds load, with Retry-After; naming nothing of
    the statement or the driver."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    assert response.json() == {"error": "temporarily_unavailable", "error_description": DOWN}
    assert response.headers["retry-after"] == str(DATABASE_RETRY_AFTER)
    assert response.headers["cache-control"] == "no-store"


def _terminate(admin: Engine, pids: list[int]) -> None:
    """End these backends and wait until they are gone (each has then written its FATAL
    message and closed its socket)."""
    with admin.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid = ANY(:pids)"
            ),
            {"pids": pids},
        ).scalars()
        assert list(ended) == [True] * len(pids), pids
        deadline = time.monotonic() + 10
        left = len(pids)
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": pids},
            ).scalar_one()
        assert not left, "the terminated backends did not exit"


def _pooled_pids(engine: Engine, count: int) -> list[int]:
    """Put `count` connections in the pool (all checked out at once), and say whose they are."""
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(engine.connect()) for _ in range(count)]
        return [c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in connections]


@contextlib.contextmanager
def _killed_after_checkout(runtime: Runtime, admin: Engine, times: int) -> Iterator[list[int]]:
    """Terminate the backend of each of the next `times` connections checked out, after the
    pool's own check and before their first statement: the race the check cannot see."""
    killed: list[int] = []

    def kill(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if len(killed) < times:
            pid = int(dbapi_connection.info.backend_pid)
            _terminate(admin, [pid])
            poller = select.poll()
            poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLHUP)
            assert poller.poll(5000), "the client never saw its backend go"
            killed.append(pid)

    with listening(runtime.engine, "checkout", kill):
        yield killed


def test_terminated_pooled_connections_are_replaced_at_checkout_and_cost_no_request(
    web: TestClient,
    oidc_runtime: Runtime,
    system: RelyingParty,
    admin: Engine,
    cli_env: dict[str, str],
) -> None:
    assert _grant(web, system).status_code == 200
    assert web.get("/oauth/jwks").status_code == 200
    pids = _pooled_pids(oidc_runtime.engine, 3)
    before = _issued(oidc_runtime)
    _terminate(admin, pids)

    failed: list[BaseException] = []

    def error(context: Any) -> None:
        failed.append(context.original_exception)

    with listening(oidc_runtime.engine, "handle_error", error):
        # The request-wide transaction first: it would not be rerun.
        answers = [web.get("/oauth/jwks"), _grant(web, system), _grant(web, system)]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert not failed, "a statement ran on a dead connection"
    assert _issued(oidc_runtime) == before + 2, "one audit entry for each token, no more"
    assert set(_pooled_pids(oidc_runtime.engine, 3)).isdisjoint(pids), "a dead one was kept"
    _audit_verifies(cli_env)


def test_a_backend_terminated_after_checkout_reruns_a_grant_and_is_503_elsewhere(
    web: TestClient,
    oidc_runtime: Runtime,
    system: RelyingParty,
    admin: Engine,
    cli_env: dict[str, str],
) -> None:
    assert _grant(web, system).status_code == 200
    before = _issued(oidc_runtime)

    with _killed_after_checkout(oidc_runtime, admin, times=1) as killed:
        rerun = _grant(web, system)
    assert killed, "the fault was injected"
    assert rerun.status_code == 200, rerun.text
    assert _issued(oidc_runtime) == before + 1, "the grant was recorded once"

    # A request-wide transaction is not rerun (its handler may have acted outside the
    # database): a clear 503 worth retrying, and the retry works.
    with _killed_after_checkout(oidc_runtime, admin, times=1) as killed:
        dropped = web.get("/oauth/jwks")
    assert killed, "the fault was injected"
    _outage(dropped)
    assert web.get("/oauth/jwks").status_code == 200

    # Lost twice in a row, the database is taken to be down: 503, once only, nothing recorded.
    with _killed_after_checkout(oidc_runtime, admin, times=3) as killed:
        down = _grant(web, system)
    assert len(killed) == 2, "one run, and one more"
    _oauth_outage(down)
    assert _issued(oidc_runtime) == before + 1
    assert _grant(web, system).status_code == 200
    assert _issued(oidc_runtime) == before + 2
    _audit_verifies(cli_env)


# -- on either database: the connection closed under the grant ----------------------------------


def _close(dbapi_connection: Any) -> None:
    """The connection goes away (closed by the driver: a network cut, a restart)."""
    dbapi_connection.close()


@contextlib.contextmanager
def _closed_before(runtime: Runtime, starts: str) -> Iterator[list[str]]:
    """Close the connection just before the first statement starting with `starts`."""
    hit: list[str] = []

    def before(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not hit and statement.lstrip().upper().startswith(starts):
            hit.append(statement)
            _close(cursor.connection)

    with listening(runtime.engine, "before_cursor_execute", before):
        yield hit


def test_a_connection_lost_before_the_commit_reruns_the_grant_once(
    web: TestClient, oidc_runtime: Runtime, system: RelyingParty, cli_env: dict[str, str]
) -> None:
    assert _grant(web, system).status_code == 200
    before = _issued(oidc_runtime)
    # The grant's audit entry is written: lost then, it was not committed.
    with _closed_before(oidc_runtime, "INSERT INTO AUDIT_ENTRIES") as hit:
        rerun = _grant(web, system)
    assert hit, "the fault was injected"
    assert rerun.status_code == 200, rerun.text
    assert _issued(oidc_runtime) == before + 1, "the grant was recorded once"
    assert _grant(web, system).status_code == 200
    _audit_verifies(cli_env)


def test_a_connection_lost_at_the_commit_is_503_and_never_run_twice(
    web: TestClient, oidc_runtime: Runtime, system: RelyingParty, cli_env: dict[str, str]
) -> None:
    """Lost at the COMMIT, a transaction may or may not have committed: a rerun could do it
    twice, so the grant is answered 503 and the client asks again."""
    assert _grant(web, system).status_code == 200
    before = _issued(oidc_runtime)
    commits: list[int] = []

    def commit(connection: Any) -> None:
        commits.append(1)
        if len(commits) == 1:
            _close(connection.connection.dbapi_connection)

    with listening(oidc_runtime.engine, "commit", commit):
        lost = _grant(web, system)
    _oauth_outage(lost)
    assert len(commits) == 1, "the grant was not run again"
    assert _issued(oidc_runtime) == before, "closed before its COMMIT was sent: nothing kept"
    assert _grant(web, system).status_code == 200
    _audit_verifies(cli_env)


@contextlib.contextmanager
def _database_down(runtime: Runtime) -> Iterator[list[str]]:
    """Every statement finds its connection gone, a fresh one too: the database is down (a
    restart that takes a while), not one connection lost."""
    hit: list[str] = []

    def before(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        hit.append(statement)
        _close(cursor.connection)

    with listening(runtime.engine, "before_cursor_execute", before):
        yield hit


def test_the_oauth_endpoints_answer_a_database_outage_in_their_error_json_and_recover(
    web: TestClient, oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A client of the token, introspection and revocation endpoints parses RFC 6749 error
    JSON: a database outage there is the 503 `temporarily_unavailable` with Retry-After that
    shedding answers (not problem details), nothing of the request is kept, and once the
    database is back every endpoint answers as before."""
    records = register_client(oidc_runtime, "records-dept", kind=SERVICE, secret=True)
    _, basic = records.auth()
    issued = _grant(web, records)
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]
    before = _actions(oidc_runtime)

    def introspect() -> Any:
        return web.post("/oauth/introspect", data={"token": access}, headers=basic)

    with _database_down(oidc_runtime) as hit:
        answers = {
            "token": _grant(web, records),
            "introspect": introspect(),
            "revoke": web.post("/oauth/revoke", data={"token": access}, headers=basic),
            "userinfo": web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}),
        }
    assert hit, "the fault was injected"
    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.status_code, answer.text)
        _oauth_outage(answer)
    # Elsewhere the same outage stays problem details (the request-wide transaction).
    with _database_down(oidc_runtime):
        _outage(web.get("/oauth/jwks"))

    assert _actions(oidc_runtime) == before, "nothing of the failed requests was recorded"
    assert introspect().json()["active"] is True, "the revocation did not happen"
    assert _grant(web, records).status_code == 200
    assert web.post("/oauth/revoke", data={"token": access}, headers=basic).status_code == 200
    assert introspect().json() == {"active": False}
    _audit_verifies(cli_env)
