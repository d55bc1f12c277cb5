"""A live `shanakht serve`, a citizen, a registered e-service and panva's openid-client.

The peer tests check the provider against someone else's reading of the specifications: a
certified relying-party library, over real HTTP, against the real server process. Node.js and
the npm lockfile in `rp/` are required: a missing Node fails the tests, it never skips them.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from joserfc.jwk import RSAKey

from api.migrate import prepare
from api.runtime import open_runtime
from api.settings import Settings
from identity.nadra import SCENARIOS, ensure_registry, read_registry
from tests.cli.serving import SHANAKHT, free_port, wait_ready
from tests.http.oidc_kit import register_citizen

RP_DIR = Path(__file__).parent / "rp"
CLIENT_ID = "etransfer"
NODE_MAJOR = 20  # openid-client 6 needs Node 20 or newer (WebCrypto and fetch as globals)
WAIT = 20.0  # seconds: the most any single step may take before the test gives up
STOP_WAIT = 30.0  # seconds `shanakht serve` may take to stop on Ctrl-C on a loaded machine


# -- the relying party: Node.js and openid-client ------------------------------------------------


def _installed_version(package: str) -> str | None:
    manifest = RP_DIR / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@dataclass(frozen=True)
class NodeRp:
    """`rp.mjs`, run with Node: one JSON object out per step."""

    node: str

    def run(self, *args: str | Path) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(
            [self.node, str(RP_DIR / "rp.mjs"), *map(str, args)],
            cwd=RP_DIR,
            env={"PATH": "/usr/bin:/bin", "NODE_NO_WARNINGS": "1"},
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            pytest.fail(f"rp.mjs {args[0]} printed no JSON:\n{done.stdout}\n{done.stderr}")

    def ok(self, *args: str | Path) -> dict[str, Any]:
        code, result = self.run(*args)
        assert "error" not in result, f"openid-client failed: {result['error']}"
        assert code == 0, result
        return result


@pytest.fixture(scope="session")
def rp() -> NodeRp:
    """Node.js and the locked openid-client, installed with `npm ci` when missing or stale."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the peer tests need Node.js 20+ and npm on PATH (Debian: apt-get install nodejs "
            "npm, or see .ci/run); they run panva's openid-client against the server"
        )
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=WAIT, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR:
        pytest.fail(f"Node.js {version} is too old for openid-client 6: install Node 20 or newer")
    locked = json.loads((RP_DIR / "package-lock.json").read_text())["packages"]
    if _installed_version("openid-client") != locked["node_modules/openid-client"]["version"]:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=RP_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {RP_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return NodeRp(node)


# -- the e-service's back-channel logout endpoint -------------------------------------------------


@dataclass
class Receiver:
    """What the e-service's back-channel logout endpoint was sent."""

    port: int
    answer_after: float = 0.0  # seconds the e-service takes to answer a logout token
    logout_tokens: list[str] = field(default_factory=list)
    other_requests: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_tokens(self, count: int, timeout: float = WAIT) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.logout_tokens) >= count, timeout)
            return list(self.logout_tokens)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = parse_qs(body)
            is_logout = (
                self.path == "/backchannel"
                and self.headers.get("Content-Type", "").startswith(
                    "application/x-www-form-urlencoded"
                )
                and len(form.get("logout_token", [])) == 1
            )
            with receiver.changed:
                if is_logout:
                    receiver.logout_tokens.append(form["logout_token"][0])
                else:
                    receiver.other_requests.append(f"POST {self.path} {body[:200]}")
                receiver.changed.notify_all()
            time.sleep(receiver.answer_after if is_logout else 0)
            self.send_response(200 if is_logout else 400)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with receiver.changed:
                receiver.other_requests.append(f"GET {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what arrived instead."""

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The e-service's side, on a loopback port of its own, in a thread."""
    receiver = Receiver(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- the provider: a citizen, the e-service's registration, the server process -------------------


@dataclass(frozen=True)
class Live:
    """The running provider, with what the test needs to drive it."""

    issuer: str
    cnic: str
    log: Path


@dataclass(frozen=True)
class Eservice:
    """The e-service as registered: its URIs and its private key (a file for rp.mjs)."""

    client_id: str
    redirect_uri: str
    post_logout_redirect_uri: str
    backchannel_logout_uri: str
    private_jwk: Path


@pytest.fixture
def server_env(settings: Settings, cli_env: dict[str, str]) -> dict[str, str]:
    """This test's data directory and database, under an http://127.0.0.1 issuer."""
    return {
        **cli_env,
        "SHANAKHT_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "SHANAKHT_AUDIT_CHECKPOINT_INTERVAL": "0",
        "PATH": "/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",  # the whole log, even from a server that had to be killed
    }


@pytest.fixture
def citizen(settings: Settings, server_env: dict[str, str]) -> str:
    """A registered citizen (password `PASSWORD`), made before the server starts."""
    runtime = open_runtime(
        Settings(
            data_dir=settings.data_dir,
            database_url=settings.database_url,
            audit_checkpoint_interval=0,
            public_url=server_env["SHANAKHT_PUBLIC_URL"],
        )
    )
    try:
        prepare(runtime)
        ensure_registry(runtime.identity.nadra_file)
        record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_male"]]
        register_citizen(runtime, record)
    finally:
        runtime.close()
    return record.cnic


@pytest.fixture
def eservice(tmp_path: Path, server_env: dict[str, str], receiver: Receiver) -> Eservice:
    """The e-service registered through the CLI, with a key made now (never committed)."""
    key = RSAKey.generate_key(2048, parameters={"kid": f"{CLIENT_ID}-peer", "alg": "RS256"})
    public, private = tmp_path / "client-jwks.json", tmp_path / "client-private-jwk.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    private.write_text(json.dumps(key.as_dict(private=True)))
    private.chmod(0o600)
    service = Eservice(
        client_id=CLIENT_ID,
        redirect_uri=f"{receiver.base}/callback",
        post_logout_redirect_uri=f"{receiver.base}/signed-out",
        backchannel_logout_uri=f"{receiver.base}/backchannel",
        private_jwk=private,
    )
    done = subprocess.run(
        [
            SHANAKHT, "clients", "add", CLIENT_ID,
            "--name", "Excise and Taxation: vehicle transfer",
            "--kind", "eservice",
            "--auth", "private_key_jwt",
            "--jwks", str(public),
            "--redirect-uri", service.redirect_uri,
            "--post-logout-redirect-uri", service.post_logout_redirect_uri,
            "--backchannel-logout-uri", service.backchannel_logout_uri,
            "--scope", "openid", "--scope", "profile", "--scope", "cnic",
        ],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"registered {CLIENT_ID} (eservice, private_key_jwt)" in done.stdout
    return service


@pytest.fixture
def live(
    tmp_path: Path, server_env: dict[str, str], citizen: str, eservice: Eservice
) -> Iterator[Live]:
    """`shanakht serve` as its own process, up once /readyz answers; stopped with Ctrl-C."""
    issuer = server_env["SHANAKHT_PUBLIC_URL"]
    port = issuer.rsplit(":", 1)[1]
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [SHANAKHT, "serve", "--port", port],
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"{issuer}/readyz", server, log=log)
        yield Live(issuer=issuer, cnic=citizen, log=log)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=STOP_WAIT)
    output = log.read_text()
    assert server.returncode == 0, f"the server did not stop cleanly on Ctrl-C:\n{output}"
    assert "Traceback" not in output, output
