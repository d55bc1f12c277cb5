"""Past its bound the token lane answers at once "try again later", while the requests it
took in are served: tests/unit/api/test_lanes.py has the decision, this its answer on the
wire. One event loop runs the app and the clients (httpx2 over ASGI), so the lane's queue is
filled and read on the same loop, with a hand-turned clock: nothing depends on the machine's
speed."""

from __future__ import annotations

import threading
from functools import partial

import anyio
import httpx2
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api import problems
from api.app import create_app
from api.lanes import Lane, LaneFull, quick_lane
from api.pool_gate import PoolGate
from api.problems import PROBLEM_MEDIA_TYPE
from api.runtime import Runtime
from identity.oidc.clients import SERVICE
from tests.http.oidc_kit import RelyingParty, register_client
from tests.unit.api.test_lanes import GATE_TIMEOUT, Clock, until


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _shed() -> float:
    return _count("shanakht_requests_shed_total", lane="quick")


def _granted() -> float:
    return _count("shanakht_tokens_issued_total", grant_type="client_credentials")


def test_a_grant_past_the_lanes_bound_is_refused_at_once_while_those_queued_are_served(
    oidc_runtime: Runtime,
) -> None:
    assert oidc_runtime.settings.quick_lane_max_wait == 2.0  # the default
    rp: RelyingParty = register_client(oidc_runtime, "records", kind=SERVICE, secret=True)
    _form, headers = rp.auth()
    form = {"grant_type": "client_credentials"}
    app = create_app(oidc_runtime)
    clock = Clock()
    gate = threading.Event()
    answers: dict[str, httpx2.Response] = {}
    before, granted = _shed(), _granted()

    async def grant(name: str, client: httpx2.AsyncClient) -> None:
        answers[name] = await client.post("/oauth/token", data=form, headers=headers)

    async def main() -> None:
        lane: Lane = quick_lane()
        lane.clock = clock
        # The lane learns that a job takes 1 s; then one that does not finish fills it.
        await lane.run(clock.advance, 1.0, max_wait=0)
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url="https://shanakht.test"
        ) as client:
            async with anyio.create_task_group() as group:
                group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=0))
                await until(lambda: lane.running == 1)
                group.start_soon(grant, "first", client)  # 1 s to wait: queued
                await until(lambda: lane.waiting == 1)
                group.start_soon(grant, "second", client)  # 2 s, the bound itself: queued
                await until(lambda: lane.waiting == 2)
                await grant("third", client)  # 3 s: refused, the lane still blocked
                assert (lane.waiting, lane.running) == (2, 1)
                assert answers.keys() == {"third"}
                gate.set()
            assert (lane.waiting, lane.running) == (0, 0)
            await grant("after", client)  # the queue gone, the lane serves again

    anyio.run(main)
    refused = answers["third"]
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "3"
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["cache-control"] == "no-store"
    body = refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert set(body) == {"error", "error_description"}
    for name in ("first", "second", "after"):
        assert answers[name].status_code == 200, answers[name].text
        assert answers[name].json()["token_type"] in ("Bearer", "DPoP")
        assert answers[name].json()["access_token"]
    assert _shed() == before + 1
    assert _granted() == granted + 3, "the refused grant issued nothing"


def test_every_endpoint_in_the_lane_refuses_in_its_error_json_while_the_lane_is_stuck(
    oidc_runtime: Runtime,
) -> None:
    """Introspection, revocation and userinfo share the lane with the token endpoint, and
    its refusal: here a lane stuck on one job for 2.5 s, past the 2 s bound."""
    app = create_app(oidc_runtime)
    clock = Clock()
    gate = threading.Event()
    answers: dict[str, httpx2.Response] = {}
    calls = {
        "introspect": ("POST", "/oauth/introspect", {"token": "x"}),
        "revoke": ("POST", "/oauth/revoke", {"token": "x"}),
        "userinfo": ("GET", "/oauth/userinfo", None),
    }

    async def main() -> None:
        lane = quick_lane()
        lane.clock = clock
        transport = httpx2.ASGITransport(app=app)
        async with (
            httpx2.AsyncClient(transport=transport, base_url="https://shanakht.test") as client,
            anyio.create_task_group() as group,
        ):
            group.start_soon(partial(lane.run, gate.wait, GATE_TIMEOUT, max_wait=0))
            await until(lambda: lane.running == 1)
            clock.advance(2.5)
            for name, (method, path, form) in calls.items():
                answers[name] = await client.request(method, path, data=form)
            gate.set()

    anyio.run(main)
    for name, answer in answers.items():
        assert answer.status_code == 503, name
        assert answer.headers["retry-after"] == "3", name
        assert answer.json()["error"] == "temporarily_unavailable", name


def test_a_lane_refusal_no_route_answers_itself_is_a_problem_to_retry() -> None:
    """The OAuth routes answer a full lane themselves; any other use of a lane would reach
    this handler, and still get a 503 to retry, never a 500."""
    app = FastAPI()
    problems.install(app)

    @app.get("/busy")
    def busy() -> None:
        raise LaneFull("quick", 4.2)

    with TestClient(app) as client:
        answer = client.get("/busy")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert answer.json()["status"] == 503


class _BusyPool(PoolGate):
    """A pool whose queue would keep a newcomer 12 s."""

    def expected_wait(self) -> float:
        return 12.0


def test_past_the_pools_bound_pages_and_apis_are_refused_before_any_work(
    oidc_runtime: Runtime,
) -> None:
    """Refused by the router's gate before any handler or dependency runs: 503 problem+json
    with Retry-After, nothing recorded; health, metrics and the OAuth endpoints (which shed in
    their own lane) still answer."""
    assert oidc_runtime.settings.pool_max_wait == 5.0  # the default
    app = create_app(oidc_runtime)
    app.state.pool_gate = _BusyPool()
    web = TestClient(app, base_url="https://shanakht.test")
    with oidc_runtime.sessions() as session:
        logged = oidc_runtime.audit_log(session).size()
    before = _count("shanakht_requests_shed_total", lane="pool")
    for method, path in (("GET", "/"), ("GET", "/login"), ("POST", "/login")):
        refused = web.request(
            method, path, data={"cnic": "x", "password": "y"} if method == "POST" else None
        )
        assert refused.status_code == 503, (method, path)
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.headers["retry-after"] == "12"
    assert _count("shanakht_requests_shed_total", lane="pool") == before + 3
    with oidc_runtime.sessions() as session:
        assert oidc_runtime.audit_log(session).size() == logged, "a refused login wrote nothing"
    assert web.get("/healthz").status_code == 200
    assert web.get("/oauth/jwks").status_code == 200
