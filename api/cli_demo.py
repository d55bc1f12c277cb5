"""`shanakht demo`: the whole product on one machine, walked end to end.

Shanakht starts on the embedded defaults (SQLite, the local object store, generated keys) in a
data directory of its own, with the three sample e-services beside it (`examples/`:
e-Transfer and Domicile). What the journeys need is set up the way an
administrator and the departments would: departments, the PKI, citizens registered from the
synthetic NADRA registry through the registration service (codes read from the development
SMS outbox), an officer's role, certificates and authenticator app, the e-services and
department systems as clients, and a birth certificate issued into a locker over the locker
API by the birth registration system. Then a browser (httpx2 and a cookie jar) walks the
three journeys over HTTP, printing each step, and everything stays up until Ctrl-C.

`--check` does the same in a fresh temporary directory on free ports, exits 0 only if every
step passed (1 naming the failed step otherwise), and shuts everything down.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
import httpx2
import pyotp
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey

from api.cli_support import fail, migrate
from api.errors import StartupError
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from identity.cnic import format_cnic
from identity.enrolment import REGISTER
from identity.nadra import SCENARIOS, CitizenRecord, ensure_registry, read_registry
from identity.oidc.clients import ESERVICE, PRIVATE_KEY_JWT, SERVICE, NewClient
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER

MARKER = "demo.json"
PASSWORD = "Kinnow#Orchard2026"  # noqa: S105 (the demo accounts' published password)
OFFICER_POST = "CEO (DEA) Lahore"
DEPARTMENTS = {
    "sed": "School Education Department",
    "lgcd": "Local Government and Community Development Department",
    "home": "Home Department",
}

DEMO_OFFICER_ROLES = (
    "signing.officer",
    "locker.issuer",
    "locker.legal",
    "identity.admin",
    "audit.reader",
)


def _examples() -> Any:
    """The sample e-services and the journeys; a clear message if their extra is missing."""
    try:
        from examples import journeys
        from examples.domicile import app as domicile
        from examples.etransfer import app as etransfer
        from examples.relying_party import ServiceConfig
    except ImportError as exc:
        fail(f"the demo needs the sample e-services: pip install -e '.[examples]' ({exc})")
    return journeys, etransfer, domicile, ServiceConfig


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    shanakht: int
    etransfer: int
    domicile: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base, base + 1, base + 2)

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


# -- the data directory ------------------------------------------------------------------------


def _fresh_directory(path: Path) -> None:
    """Start from nothing: a directory a previous demo left is emptied; anything else that is
    not empty is refused, so the demo never deletes data it did not make."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            fail(f"{path} is not empty and not a demo's: choose another with --data-dir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(json.dumps({"made_by": "shanakht demo"}))


def _settings(data_dir: Path, port: int) -> Settings:
    """The embedded defaults whatever the environment says: SQLite, local store, own keys."""
    return Settings(
        env="development",
        data_dir=data_dir,
        database_url=None,
        master_key=None,
        public_url=_url(port),
        issuer=None,
        audit_origin=None,
        store="local",
        tsa_url=None,
        nadra_latency=0,
        nadra_failure_rate=0,
        nadra_outage=False,
        log_level="WARNING",
        password_expiry_days=90,
    )


# -- seeding -----------------------------------------------------------------------------------


def _code(runtime: Runtime, mobile: str) -> str:
    """The newest one-time code in the development SMS outbox for `mobile`."""
    for _attempt in range(50):
        message = runtime.identity.sms.last_to(mobile)
        found = re.search(r"\b(\d{6})\b", message.text) if message else None
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"no code in the SMS outbox for {mobile}")


def _register(runtime: Runtime, record: CitizenRecord) -> str:
    """Registration as the /register pages run it: NADRA check, SMS code, password."""
    details = record.card()
    mobile = record.mobile_numbers[0]
    with runtime.transaction() as session:
        ticket = runtime.enrolment(session).start_registration(details, mobile, client="demo")
    code = _code(runtime, mobile)
    with runtime.transaction() as session:
        enrolment = runtime.enrolment(session)
        enrolment.verify_code(ticket, REGISTER, code)
        return enrolment.complete_registration(ticket, PASSWORD)


def _key(directory: Path, client_id: str) -> tuple[Path, dict[str, Any]]:
    """A department's own key pair: the private JWK in a file only it reads, the public JWKS
    for Shanakht."""
    key = RSAKey.generate_key(2048, parameters={"kid": f"{client_id}-{date.today():%Y%m}"})
    path = directory / f"{client_id}.jwk.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(key.as_dict(private=True)))
    return path, {"keys": [key.as_dict(private=False)]}


@dataclass(frozen=True)
class World:
    people: dict[str, Any]  # journeys.Person by role
    keys: dict[str, Path]
    teacher_born: date


def seed(runtime: Runtime, ports: Ports, journeys: Any, echo: Any) -> World:
    migrate(runtime)
    now = datetime.now(UTC)
    with runtime.transaction() as session:
        roles = runtime.provider(session).roles
        for department, name in DEPARTMENTS.items():
            roles.add_department(department, name)
    echo(f"  departments: {', '.join(DEPARTMENTS)}")

    root_dir = runtime.settings.data_dir / "root-ca"
    root = create_root(
        root_dir, secrets.token_urlsafe(24), common_name="Punjab Root CA (demo)", now=now
    )
    with runtime.transaction() as session:
        runtime.authority(session).initialise(root, actor="admin:demo")
    echo("  PKI: root CA (offline, its passphrase thrown away), issuing CA, OCSP, CRL")

    registry = read_registry(ensure_registry(runtime.identity.nadra_file))
    cast = {
        "teacher": registry[SCENARIOS["active_female"]],
        "approver": registry[SCENARIOS["two_mobiles"]],
        "officer": registry[SCENARIOS["active_male"]],
    }
    ids = {role: _register(runtime, record) for role, record in cast.items()}
    echo("  citizens registered from the NADRA registry, codes read from the SMS outbox")

    officer = cast["officer"]
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        account = provider.accounts.by_id(ids["officer"])
        assert account is not None  # noqa: S101 (registered a moment ago)
        # Every desk in one demo account: the officer's pages (/officer) and the
        # administrator's (/admin) are there to try, not only signing.
        for role in DEMO_OFFICER_ROLES:
            provider.roles.grant(account.id, account.pseudonym, "sed", role, by="admin:demo")
        authority = runtime.authority(session)
        subject = Subject(officer.full_name, "sed", account.pseudonym, OFFICER_POST)
        authority.issue(OFFICER_SIGNING, subject, actor="admin:demo")
        authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="admin:demo")
        authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", "lgcd"), actor="admin:demo")
        authority.issue(DEPARTMENT_SEAL, Subject("SED seal", "sed"), actor="admin:demo")
        apps = runtime.second_factor(session).apps
        totp_secret, _uri = apps.begin(account.id, officer.full_name)
        # The app's first code confirms it; the previous step's, so the sign-in in the next
        # few seconds has a fresh step to use (each step's code is accepted once). The time is
        # read here, not at the start: setting up the PKI and the citizens can take longer than
        # the one step of drift a code is forgiven.
        previous = pyotp.TOTP(totp_secret).at(datetime.now(UTC) - timedelta(seconds=30))
        if apps.confirm(account.id, previous) is None:
            raise RuntimeError("the authenticator app did not confirm")
    echo(
        "  officer: signing.officer, locker.issuer, locker.legal, identity.admin and "
        "audit.reader in sed, signing certificate, authenticator app; QR signer for sed; "
        "seals for sed and lgcd"
    )

    key_dir = runtime.settings.data_dir / "examples"
    key_dir.mkdir(mode=0o700, exist_ok=True)
    keys: dict[str, Path] = {}
    clients: list[tuple[str, str, str, int | None, tuple[str, ...], str | None]] = [
        (
            "etransfer",
            "e-Transfer",
            ESERVICE,
            ports.etransfer,
            ("openid", "profile", "cnic", "roles", "signing"),
            None,
        ),
        (
            "domicile",
            "Domicile",
            ESERVICE,
            ports.domicile,
            ("openid", "profile", "cnic", "birthdate", "address"),
            None,
        ),
        (
            "domicile-system",
            "Domicile (Home Department)",
            SERVICE,
            None,
            ("locker.request",),
            "home",
        ),
        ("lgcd-crvs", "Birth registration (LGCD)", SERVICE, None, ("locker.issue.birth",), "lgcd"),
    ]
    with runtime.transaction() as session:
        registered = runtime.provider(session).clients
        for client_id, name, kind, port, scopes, speaks_for in clients:
            keys[client_id], jwks = _key(key_dir, client_id)
            base = _url(port) if port else None
            registered.add(
                NewClient(
                    id=client_id,
                    name=name,
                    kind=kind,
                    auth_method=PRIVATE_KEY_JWT,
                    redirect_uris=(f"{base}/callback",) if base else (),
                    post_logout_redirect_uris=(f"{base}/",) if base else (),
                    scopes=scopes,
                    jwks=jwks,
                    department=speaks_for,
                )
            )
    echo("  clients: " + ", ".join(c[0] for c in clients) + " (private_key_jwt)")

    people = {
        role: journeys.Person(
            role=role,
            name=record.full_name,
            cnic=format_cnic(record.cnic),
            password=PASSWORD,
            mobile=record.mobile_numbers[0],
            totp_secret=totp_secret if role == "officer" else None,
        )
        for role, record in cast.items()
    }
    return World(people=people, keys=keys, teacher_born=cast["teacher"].date_of_birth)


def _birth_certificate(person: Any, born: date) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 12, "Birth Certificate", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("helvetica", size=12)
    pdf.cell(
        0, 8, "Union Council 112, Model Town, Lahore", new_x="LMARGIN", new_y="NEXT", align="C"
    )
    for label, value in (
        ("Name", person.name),
        ("Date of birth", born.strftime("%d %B %Y")),
        ("Place of birth", "Lahore"),
        ("Registration no.", "BC-LHR-2026-000112"),
    ):
        pdf.cell(0, 8, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def issue_birth_certificate(shanakht: str, key_file: Path, person: Any, born: date) -> str:
    """The birth registration system issues the certificate into the applicant's locker, as
    any department system would: client credentials, then `PUT /locker/issued/birth`."""
    key = RSAKey.import_key(json.loads(key_file.read_text()))
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "RS256", "kid": key.kid},
        {
            "iss": "lgcd-crvs",
            "sub": "lgcd-crvs",
            "aud": f"{shanakht}/oauth/token",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
        },
        key,
    )
    with httpx2.Client(base_url=shanakht, trust_env=False, timeout=30) as http:
        token = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "scope": "locker.issue.birth",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
        token.raise_for_status()
        query = urlencode({"doc_id": "BC-LHR-2026-000112", "title": "Birth certificate"})
        issued = http.put(
            f"/locker/issued/birth?{query}",
            content=_birth_certificate(person, born),
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "Shanakht-Cnic": person.cnic,
                "Content-Type": "application/pdf",
            },
        )
        if issued.status_code != 201:
            raise RuntimeError(f"issuing the birth certificate: {issued.status_code} {issued.text}")
        return str(issued.json()["uri"])


# -- the servers -------------------------------------------------------------------------------


@contextmanager
def serving(apps: list[tuple[Any, int]]) -> Iterator[None]:
    """Each app on 127.0.0.1 at its port, in a thread of this process, while the block runs."""
    servers = []
    for app, port in apps:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread, port))
    try:
        deadline = time.monotonic() + 20
        for server, thread, port in servers:
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise StartupError(f"could not serve on 127.0.0.1:{port} (is it in use?)")
                time.sleep(0.02)
        yield
    finally:
        for server, _thread, _port in servers:
            server.should_exit = True
        for _server, thread, _port in servers:
            thread.join(10)


# -- the command -------------------------------------------------------------------------------


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="Fresh temporary data and free ports; exit 0 only if every step passed, then stop.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Where the demo keeps its data (emptied first if a demo made it).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65532),
    help="Shanakht's port; e-Transfer and Domicile take the next two.",
)
def demo(check: bool, data_dir: Path, port: int) -> None:
    """Start Shanakht and two sample e-services, walk three journeys, keep them up."""
    journeys, etransfer, domicile, service_config = _examples()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    temporary = Path(tempfile.mkdtemp(prefix="shanakht-demo-")) if check else None
    directory = temporary or data_dir
    ports = Ports.free() if check else Ports.from_base(port)
    if not check:
        _fresh_directory(directory)
    try:
        code = _run(directory, ports, check, journeys, etransfer, domicile, service_config)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    raise SystemExit(code)


def _run(
    directory: Path,
    ports: Ports,
    check: bool,
    journeys: Any,
    etransfer: Any,
    domicile: Any,
    service_config: Any,
) -> int:
    from api.app import create_app

    echo = click.echo
    urls = journeys.Urls(
        shanakht=_url(ports.shanakht),
        etransfer=_url(ports.etransfer),
        domicile=_url(ports.domicile),
    )
    started = time.monotonic()
    try:
        runtime = open_runtime(_settings(directory, ports.shanakht))
    except StartupError as exc:
        fail(str(exc))
    try:
        echo(f"Setting up Shanakht in {directory} (SQLite, local object store, generated keys)")
        world = seed(runtime, ports, journeys, echo)
        people = world.people

        def config(client_id: str, port: int, system: str | None = None) -> Any:
            return service_config(
                client_id=client_id,
                issuer=urls.shanakht,
                base_url=_url(port),
                key_file=world.keys[client_id],
                system_client_id=system,
                system_key_file=world.keys[system] if system else None,
            )

        approvers = frozenset({people["approver"].cnic.replace("-", "")})
        apps = [
            (create_app(runtime), ports.shanakht),
            (
                etransfer.create_app(
                    etransfer.Settings(config("etransfer", ports.etransfer), approvers=approvers)
                ),
                ports.etransfer,
            ),
            (
                domicile.create_app(config("domicile", ports.domicile, "domicile-system")),
                ports.domicile,
            ),
        ]
        with serving(apps):
            document = issue_birth_certificate(
                urls.shanakht, world.keys["lgcd-crvs"], people["teacher"], world.teacher_born
            )
            echo(
                f"  a birth certificate issued into {people['teacher'].name}'s locker by "
                f"lgcd-crvs over the locker API (document {document})"
            )
            echo(f"Everything is up ({time.monotonic() - started:.1f} s). The journeys:")
            steps = journeys.Steps(echo)
            cast = journeys.Cast(people["teacher"], people["approver"], people["officer"])
            sms = lambda mobile: _code(runtime, mobile)  # noqa: E731
            try:
                journeys.run_journeys(urls, cast, sms, steps)
            except journeys.StepFailed:
                echo(f"\nFAILED at: {steps.failed} ({steps.passed} steps passed before it)")
                if check:
                    return 1
            else:
                echo(f"\nAll {steps.passed} steps passed in {time.monotonic() - started:.1f} s.")
            if check:
                return 0
            _welcome(urls, people, directory)
            _wait_for_interrupt()
            return 0 if steps.failed is None else 1
    finally:
        runtime.close()


def _welcome(urls: Any, people: dict[str, Any], directory: Path) -> None:
    echo = click.echo
    echo("\nStill running; try it in a browser:")
    echo(f"  Shanakht    {urls.shanakht}/login   (account page {urls.shanakht}/account)")
    echo(f"  e-Transfer  {urls.etransfer}/       (officers: {urls.etransfer}/login?as=officer)")
    echo(f"  Domicile    {urls.domicile}/")
    echo(f"  Locker      {urls.shanakht}/documents (requests: {urls.shanakht}/requests)")
    echo(f"  Officer     {urls.shanakht}/officer  Administration {urls.shanakht}/admin")
    echo(f"  Verifier    {urls.shanakht}/verify   (no sign-in)")
    echo(f"Demo accounts (password {PASSWORD} for all):")
    for person in people.values():
        extra = f", authenticator secret {person.totp_secret}" if person.totp_secret else ""
        echo(
            f"  {person.role:<9} {person.name:<14} CNIC {person.cnic}  mobile {person.mobile}"
            f"{extra}"
        )
    echo(f"One-time codes: SHANAKHT_DATA_DIR={directory} shanakht dev outbox")
    echo("Ctrl-C stops everything.")


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        click.echo("\nstopping")
