"""The HTTP load generator of `bench/identity.py`, run as a process of its own.

A separate process so that its CPU is not the servers' (on a 2-core machine it still competes
for the cores, so it reports the CPU it used). It reads a JSON plan on stdin, runs closed-loop
virtual users with asyncio and httpx2 (each user one connection, kept alive, and its own cookie
jar), and prints one JSON report on stdout: per workload the requests completed inside the
measured window, errors, requests shed, p50 and p99 latency, the window on the wall clock (for the
caller's CPU samples of the servers), and the newest refresh token of every refresh
user (they rotate on every use, so the next phase must start from these).

Plan:
    {"warmup": s, "duration": s, "rate": r (optional), "users": [{"kind": ..., ...}, ...]}

Without a rate the users are a closed loop: each sends its next request when the last one is
answered, which finds the most the servers can do, and latencies that are mostly queueing.
With a rate they send on a schedule, `rate` requests per second in all, and a request's latency
counts from when it was due, not when it was sent: a server that falls behind is charged for
the wait it caused (no coordinated omission, as wrk2 measures).

Kinds: `login` (Shanakht's POST /login),
`client_credentials` and `refresh_token` (any token endpoint, client_secret_basic), `ocsp`
(a DER request POSTed to an OCSP responder), `http` (any request, described in the plan: see
`_http`; bench/soak.py's mixed workload).

A user may carry its own schedule (`interval` seconds between its requests, `offset` the share
of one interval its first waits) instead of the plan's `rate`, and a `name`: the report's
workloads are keyed by it (by kind without one).

The token grants go over a lean HTTP/1.1 client of its own (one kept-alive connection per
user, requests built as bytes, answers read by Content-Length) on uvloop: httpx2 spent about
as much CPU a request as the server did, on the same two cores, which the servers then lacked.

A request the server sheds (503 `temporarily_unavailable`, "the service is busy": its lane could
not start it in time, api/lanes.py) is counted as shed, not as an error nor in the latencies:
the server answered as designed, and did none of the work. The user goes on at its next due
time (a refresh user with the same refresh token, which the refusal left unspent).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import httpx2
import uvloop

TIMEOUT = 30.0
ERROR_SAMPLES = 5
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Window:
    """Where the measured part of the run starts and ends, on the perf_counter clock."""

    start: float
    end: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    shed: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(text[:300])


class Shed:
    """What `_timed` returns for a request the server shed (see `shed`)."""


SHED = Shed()
SHED_ERROR = b'"temporarily_unavailable"'
SHED_DESCRIPTION = b'"the service is busy'  # api.routes.oidc.BUSY, as the JSON has it
SHED_TITLE = b'"title":"The service is busy'  # api.problems.BUSY_TITLE, as problem+json has it


def shed(status: int, content: bytes) -> bool:
    """Whether an answer is the server shedding load: 503 with the OAuth error and the
    description the quick lane answers (api/routes/oidc.py), or with the problem details the
    pool's gate answers (api/pool_gate.py). Any other 503 stays an error: the database down
    answers the same error code (as RFC 6749 clients expect) with its own description, and
    elsewhere problem details with their own title."""
    if status != 503:
        return False
    return (SHED_ERROR in content and SHED_DESCRIPTION in content) or SHED_TITLE in content


class Stop(Exception):
    """A virtual user can go on no longer (its refresh token family is spent)."""


async def _due(user: dict[str, Any]) -> float:
    """When this user's next request is due (now, for a closed loop); waits until then."""
    interval = user.get("interval")
    if interval is None:
        return time.perf_counter()
    due: float = user.setdefault("next_due", time.perf_counter() + interval * user["offset"])
    user["next_due"] = due + interval
    await asyncio.sleep(max(0.0, due - time.perf_counter()))
    return due


def _running(user: dict[str, Any], window: Window) -> bool:
    """Whether the user sends another request: in a closed loop until the window ends; on a
    schedule until the next request would be due after it, so every request due inside the
    window is sent and counted however far behind the server has fallen."""
    if user.get("interval") is None:
        return time.perf_counter() < window.end
    return float(user.get("next_due", time.perf_counter())) < window.end


async def _timed(
    window: Window,
    tally: Tally,
    send: Any,
    expect: int,
    user: dict[str, Any],
    check: Callable[[Any], str | None] | None = None,
) -> httpx2.Response | Shed | None:
    """Send one request when due; count it when it completes inside the window. None on
    failure: another status than `expect`, or what `check` (if any) finds wrong with the
    answer; SHED when the server shed it."""
    start = await _due(user)
    try:
        response: httpx2.Response = await send()
    except httpx2.HTTPError as exc:
        moment = start if user.get("interval") is not None else time.perf_counter()
        if window.start <= moment <= window.end:
            tally.error(f"{type(exc).__name__}: {exc}")
        return None
    done = time.perf_counter()
    moment = start if user.get("interval") is not None else done
    if shed(response.status_code, response.content):
        if window.start <= moment <= window.end:
            tally.shed += 1
        return SHED
    wrong = None
    if response.status_code != expect:
        wrong = f"{response.status_code}: {response.text}"
    elif check is not None:
        wrong = check(response)
    # Counted by when it was due on a schedule (so a slow tail is not cut off at the end),
    # by when it finished in a closed loop.
    if window.start <= moment <= window.end:
        if wrong is None:
            tally.latencies.append(done - start)
        else:
            tally.error(wrong)
    return response if wrong is None else None


async def _login(
    client: httpx2.AsyncClient, user: dict[str, Any], window: Window, tally: Tally
) -> None:
    """Shanakht: the login page once (CSRF cookie and field), then POST /login again and again,
    cycling through the user's citizens. The session cookie each success sets is dropped, so
    the next login does not first end the previous session (work that is not the login)."""
    page = await client.get("/login")
    found = _CSRF.search(page.text)
    if page.status_code != 200 or not found:
        raise Stop(f"no login page: {page.status_code}")
    csrf = found.group(1)
    cnics: list[str] = user["cnics"]
    i = 0
    while _running(user, window):
        form = {"cnic": cnics[i % len(cnics)], "password": user["password"], "csrf": csrf}
        i += 1
        await _timed(window, tally, lambda f=form: client.post("/login", data=f), 303, user)
        client.cookies.delete("shanakht_session")


@dataclass
class Answer:
    """What the lean client read: the status and the body (as much of httpx2's Response as
    the grant workloads use)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class LeanConnection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection that sends a request and reads its answer, no
    more: a status line, headers, and a body of Content-Length bytes (what both servers send
    for a token answer)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiting: asyncio.Future[Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(httpx2.RemoteProtocolError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiting is None:
            return
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            self._waiting.set_exception(httpx2.RemoteProtocolError("no Content-Length"))
            return
        if len(self._buffer) < end + 4 + length:
            return
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        if not self._waiting.done():  # not given up on (`send` is cancelling it)
            self._waiting.set_result(Answer(int(head[0].split()[1]), body))

    @property
    def open(self) -> bool:
        return self._transport is not None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def send(self, request: bytes) -> Answer:
        """Send `request` and read its answer. A request not answered in time leaves the
        connection out of step (its late answer would be read as the next request's), so the
        connection is dropped: `LeanClient` opens a new one for the next request."""
        if self._transport is None:
            raise httpx2.RemoteProtocolError("the connection is closed")
        self._waiting = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            return await asyncio.wait_for(self._waiting, TIMEOUT)
        except TimeoutError:
            self._transport.abort()
            self._transport = None
            raise httpx2.ReadTimeout("no answer in time") from None
        finally:
            self._waiting = None


class LeanClient:
    """A LeanConnection to one server, opened again when the last one was dropped (a time-out,
    or the server closing it), so one slow answer costs a user one error, not the rest of the
    run."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._connection: LeanConnection | None = None

    async def send(self, request: bytes) -> Answer:
        if self._connection is None or not self._connection.open:
            self.close()
            loop = asyncio.get_running_loop()
            try:
                _, self._connection = await loop.create_connection(
                    LeanConnection, self.host, self.port
                )
            except OSError as exc:
                raise httpx2.ConnectError(str(exc)) from exc
        return await self._connection.send(request)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


def _form_post(user: dict[str, Any], form: dict[str, str]) -> bytes:
    """A POST of `form` to the user's token endpoint, client_secret_basic, as bytes."""
    body = urlencode(form).encode()
    basic = base64.b64encode(f"{user['client_id']}:{user['secret']}".encode()).decode()
    host = urlsplit(user["base"]).netloc
    return (
        f"POST {user['path']} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {basic}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _client_credentials(
    client: LeanClient, user: dict[str, Any], window: Window, tally: Tally
) -> None:
    request = _form_post(user, {"grant_type": "client_credentials", "scope": user["scope"]})
    while _running(user, window):
        await _timed(window, tally, lambda: client.send(request), 200, user)


async def _refresh(client: LeanClient, user: dict[str, Any], window: Window, tally: Tally) -> None:
    """Always the newest refresh token: an old one used again revokes the whole family."""
    while _running(user, window):
        form = {"grant_type": "refresh_token", "refresh_token": user["refresh_token"]}
        if user.get("scope"):
            form["scope"] = user["scope"]
        request = _form_post(user, form)
        response = await _timed(window, tally, lambda r=request: client.send(r), 200, user)
        if isinstance(response, Shed):
            continue  # refused before any work: the refresh token is still the newest
        if response is None:
            user["refresh_token"] = None
            raise Stop("refresh failed; this user's token family is spent")
        user["refresh_token"] = response.json()["refresh_token"]


async def _ocsp(
    client: httpx2.AsyncClient, user: dict[str, Any], window: Window, tally: Tally
) -> None:
    """POST one DER OCSP request (base64 in the plan) again and again."""
    body = base64.b64decode(user["request"])
    headers = {"content-type": "application/ocsp-request"}
    while _running(user, window):
        send = lambda: client.post(user["path"], content=body, headers=headers)  # noqa: E731
        await _timed(window, tally, send, 200, user)


TOKEN_AGE = 240.0  # seconds an `http` user's access token is used before it renews it


async def _access_token(client: httpx2.AsyncClient, bearer: dict[str, Any]) -> str:
    """The `http` user's access token, renewed (untimed, uncounted) once TOKEN_AGE old: by
    its refresh token if it has one (rotated: the newest is kept), else by client_credentials.

    A renewal the server sheds keeps the token the user has (valid 10 minutes, so tried again
    at the next request), or, for the first, waits the Retry-After and asks again.

    bearer: {"path", "client_id", "secret", "refresh_token" or "scope", "access_token"?}
    """
    token: str | None = bearer.get("access_token")
    if token is not None and time.perf_counter() - bearer["at"] < TOKEN_AGE:
        return token
    if bearer.get("refresh_token"):
        form = {"grant_type": "refresh_token", "refresh_token": bearer["refresh_token"]}
    else:
        form = {"grant_type": "client_credentials", "scope": bearer["scope"]}
    while True:
        try:
            response = await client.post(
                bearer["path"], data=form, auth=(bearer["client_id"], bearer["secret"])
            )
        except httpx2.HTTPError as exc:
            raise Stop(f"could not renew the access token: {type(exc).__name__}: {exc}") from None
        if not shed(response.status_code, response.content):
            break
        if token is not None:
            return token  # still valid (they last 10 minutes): renew at the next request
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    if response.status_code != 200:
        raise Stop(f"could not renew the access token: {response.status_code} {response.text}")
    answer = response.json()
    if bearer.get("refresh_token"):
        bearer["refresh_token"] = answer["refresh_token"]
    bearer["access_token"], bearer["at"] = answer["access_token"], time.perf_counter()
    return str(answer["access_token"])


def _answer_check(user: dict[str, Any]) -> Callable[[httpx2.Response], str | None] | None:
    """What an `http` user checks in an answer beyond its status: that it contains a string
    (`contains`), or that its body is `length` bytes long."""
    contains: str | None = user.get("contains")
    length: int | None = user.get("length")
    if contains is None and length is None:
        return None

    def check(response: httpx2.Response) -> str | None:
        if contains is not None and contains not in response.text:
            return f"{response.status_code} without {contains!r}: {response.text}"
        if length is not None and len(response.content) != length:
            return f"{response.status_code} with {len(response.content)} bytes, not {length}"
        return None

    return check


async def _http(
    client: httpx2.AsyncClient, user: dict[str, Any], window: Window, tally: Tally
) -> None:
    """Any request, again and again: `method` to `path`, with `headers`, a raw `body`
    (base64) or a `json` one, answered with `expect` (and passing `contains` or `length`).

    The path and `vary` (fields of the JSON body, as templates) are formatted for each
    request with `user` (the user's `id`), `n` (its request count) and the fields of an entry
    of `cycle`, each entry used for `repeat` requests in turn: ids to read, consents to spend.
    With `bearer` (see `_access_token`) each request carries an access token.
    """
    body = base64.b64decode(user["body"]) if "body" in user else None
    cycle: list[dict[str, Any]] = user.get("cycle") or [{}]
    repeat: int = user.get("repeat", 1)
    vary: dict[str, str] = user.get("vary", {})
    check = _answer_check(user)
    n = 0
    while _running(user, window):
        values = {"user": user.get("id", 0), "n": n, **cycle[(n // repeat) % len(cycle)]}
        n += 1
        headers = dict(user.get("headers", {}))
        if "bearer" in user:
            headers["authorization"] = f"Bearer {await _access_token(client, user['bearer'])}"
        content = None
        if "json" in user:
            fields = {**user["json"], **{k: v.format(**values) for k, v in vary.items()}}
            content = json.dumps(fields).encode()
            headers["content-type"] = "application/json"
        elif body is not None:
            content = body
        request = client.build_request(
            user["method"], user["path"].format(**values), headers=headers, content=content
        )
        await _timed(window, tally, lambda r=request: client.send(r), user["expect"], user, check)


WORKLOADS: dict[str, Callable[..., Awaitable[None]]] = {
    "login": _login,
    "client_credentials": _client_credentials,
    "refresh_token": _refresh,
    "ocsp": _ocsp,
    "http": _http,
}


LEAN = {"client_credentials", "refresh_token"}


async def _lean_user(user: dict[str, Any], window: Window, tally: Tally) -> None:
    parts = urlsplit(user["base"])
    client = LeanClient(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        await WORKLOADS[user["kind"]](client, user, window, tally)
    except Stop as exc:
        tally.error(str(exc))
    finally:
        client.close()


async def _user(user: dict[str, Any], window: Window, tally: Tally) -> None:
    if user["kind"] in LEAN:
        await _lean_user(user, window, tally)
        return
    auth = (user["client_id"], user["secret"]) if "client_id" in user else None
    async with httpx2.AsyncClient(
        base_url=user["base"],
        auth=auth,
        timeout=TIMEOUT,
        limits=httpx2.Limits(max_connections=1, max_keepalive_connections=1),
    ) as client:
        try:
            await WORKLOADS[user["kind"]](client, user, window, tally)
        except Stop as exc:
            tally.error(str(exc))


def _percentile(sorted_samples: list[float], q: float) -> float:
    if not sorted_samples:
        return float("nan")
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    now = time.perf_counter()
    window = Window(now + plan["warmup"], now + plan["warmup"] + plan["duration"])
    users: list[dict[str, Any]] = plan["users"]
    if plan.get("rate"):
        for i, user in enumerate(users):  # evenly spread over the schedule
            user["interval"] = len(users) / plan["rate"]
            user["offset"] = i / len(users)
    tallies = {name: Tally() for name in dict.fromkeys(map(_name, users))}
    every = Tally()

    async def cpu_at_window_start() -> float:
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        return _cpu()

    cpu_task = asyncio.create_task(cpu_at_window_start())
    await asyncio.gather(*(_user(u, window, tallies[_name(u)]) for u in users))
    cpu = _cpu() - await cpu_task
    elapsed = min(time.perf_counter(), window.end + TIMEOUT) - window.start
    wall = time.time() - time.perf_counter()  # the window on the clock other processes share
    report: dict[str, Any] = {
        "workloads": {},
        "cpu_cores": cpu / max(elapsed, 1e-9),
        "window": [wall + window.start, wall + window.end],
    }
    for kind, tally in tallies.items():
        every.latencies += tally.latencies
        every.errors += tally.errors
        every.shed += tally.shed
        every.samples += tally.samples
        report["workloads"][kind] = _summary(tally, plan["duration"])
    report["all"] = _summary(every, plan["duration"])
    report["refresh_tokens"] = [
        u.get("refresh_token") for u in users if u["kind"] == "refresh_token"
    ]
    return report


def _name(user: dict[str, Any]) -> str:
    """The workload a user's requests are counted in: its `name`, else its kind."""
    return str(user.get("name", user["kind"]))


def _summary(tally: Tally, duration: float) -> dict[str, Any]:
    ordered = sorted(tally.latencies)
    return {
        "count": len(ordered),
        "rate": len(ordered) / duration,
        "p50_ms": _percentile(ordered, 0.50) * 1000,
        "p99_ms": _percentile(ordered, 0.99) * 1000,
        "errors": tally.errors,
        "shed": tally.shed,
        "error_samples": tally.samples[:ERROR_SAMPLES],
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_beside(plan: dict[str, Any], sample: Callable[[], None], every: float) -> dict[str, Any]:
    """Run this load generator on `plan` in a process of its own, calling `sample` every
    `every` seconds until it ends (the benches watch the servers meanwhile); its report."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=Path(__file__).resolve().parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(json.dumps(plan))
    child.stdin.close()
    while child.poll() is None:
        sample()
        time.sleep(every)
    output = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"the load generator failed ({child.returncode})")
    report: dict[str, Any] = json.loads(output)
    return report


def main() -> None:
    plan = json.load(sys.stdin)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(run(plan))))


if __name__ == "__main__":
    main()
