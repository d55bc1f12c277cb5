"""Issue 7: every private or secret key the service keeps is encrypted at rest under a key that
comes from the settings (SHANAKHT_MASTER_KEY), or, where a secret is only ever compared, kept
as a hash.

The key hierarchy under test:

- `keys/<name>.json` in the data directory (api.keystore): random secrets, AES-256-GCM under
  the master key: the audit checkpoint signer (Ed25519), the audit pseudonym key, the identity
  seal key, the one-time-code MAC key, the pairwise-subject key, the PKI's seal key, the locker
  KEKs' seal key, the device-cookie key, the exchange's consent signer (Ed25519);
- `keys/locker/kek-*.sealed`: the locker's KEKs, AES-256-GCM under `locker-kek-seal`;
- database `identity_signing_keys.private_key`: the OIDC token-signing keys (RS256, ES256),
  sealed under `identity-seal`;
- database `signing_keys.sealed`: the issuing CA's, the OCSP responder's, the TSA's and every
  seal and QR signer's key, sealed under `signing-seal`;
- database `identity_totp.secret`: TOTP secrets, sealed under `identity-seal`;
- database `locker_versions.wrapped_key`: documents' data keys, wrapped under a KEK;
- client secrets, session cookies, recovery codes (and, not exercised here, refresh tokens,
  authorisation codes and share links): hashes or HMACs only;
- the root CA's key: outside the data directory, PKCS#8 under a passphrase (not the master key).

The test builds a runtime with a master key made now, exercises everything that makes a key,
then scans every file of the data directory and every column of every table for a key in the
clear: a PEM private key, a DER private key `cryptography` opens without a password, a JWK with
its private member, or any secret the test can get hold of, in any common encoding. A second
test plants such leaks and checks that the scanner finds each of them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import SecretStr
from sqlalchemy import MetaData, select, update
from sqlalchemy.engine import Engine

from api.errors import StartupError
from api.migrate import prepare
from api.routes.exchange import _signer
from api.routes.signin import DEVICE_KEY, device_cookies
from api.runtime import (
    AUDIT_CHECKPOINT_KEY,
    AUDIT_PSEUDONYM_KEY,
    CONSENT_KEY,
    IDENTITY_CODE_KEY,
    IDENTITY_PAIRWISE_KEY,
    IDENTITY_PEPPER_KEY,
    IDENTITY_SEAL_KEY,
    LOCKER_KEK_SEAL_KEY,
    SIGNING_SEAL_KEY,
    STATE_MAC_KEY,
    Runtime,
    open_runtime,
)
from api.settings import Settings
from identity.models import clients, signing_keys, totp_factors
from identity.nadra import SCENARIOS, ensure_registry, read_registry
from identity.oidc.clients import CLIENT_SECRET_BASIC, SERVICE, NewClient
from identity.passwords import HashParameters, PasswordHasher
from identity.sealing import SealBroken, Sealer
from locker.access import Accessor
from locker.crypto import Context, unwrap
from locker.errors import MasterSecretMismatch
from locker.exchange import Exchange
from locker.kek import LocalKeks
from locker.models import documents, versions
from signing.models import keys as sealed_keys
from signing.pki.authority import Subject
from signing.pki.custody import KEY_FILE, create_root
from signing.pki.keys import KeyUnavailable, SealedKeys
from signing.pki.profiles import DEPARTMENT_SEAL, QR_SIGNER
from tests.conftest import POSTGRES_URL
from tests.http.oidc_kit import register_citizen

ROOT_PASSPHRASE = "an offline root passphrase for this test"
OWNER = "p:" + "K" * 43
MOBILE = "+923001234567"
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")
KEYSTORE_NAMES = {
    AUDIT_CHECKPOINT_KEY,
    AUDIT_PSEUDONYM_KEY,
    CONSENT_KEY,
    IDENTITY_SEAL_KEY,
    IDENTITY_CODE_KEY,
    IDENTITY_PAIRWISE_KEY,
    IDENTITY_PEPPER_KEY,
    SIGNING_SEAL_KEY,
    LOCKER_KEK_SEAL_KEY,
    STATE_MAC_KEY,
    DEVICE_KEY,
    CONSENT_KEY,
}


# -- the scanner -------------------------------------------------------------------------------

# The start of a DER private key: a SEQUENCE, then INTEGER 0 or 1 (the version of PKCS#8,
# PKCS#8 v2, PKCS#1 RSA or SEC1 EC), then a SEQUENCE (PKCS#8's algorithm), an INTEGER (RSA's
# modulus) or an OCTET STRING (SEC1's private value). Each candidate is then handed to
# `cryptography`: only what it opens without a password counts.
_DER_START = re.compile(
    rb"\x30(?:[\x00-\x7f]|\x81[\x80-\xff]|\x82[\x00-\xff]{2})\x02\x01[\x00\x01][\x02\x04\x30]",
    re.DOTALL,
)
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{40,}={0,2}")
_PRIVATE_JWK_MEMBER = re.compile(rb'"d"\s*:\s*"[A-Za-z0-9+/_-]{16,}')


def _der_length(blob: bytes, start: int) -> int:
    """The total length of the DER element at `start`, from its header."""
    first = blob[start + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(blob[start + 2 : start + 2 + count], "big")


def _der_private_keys(blob: bytes) -> Iterator[int]:
    """Offsets in `blob` where a DER private key opens without a password."""
    for found in _DER_START.finditer(blob):
        start = found.start()
        candidate = blob[start : start + _der_length(blob, start)]
        try:
            serialization.load_der_private_key(candidate, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        yield start


def _decoded_runs(blob: bytes) -> Iterator[bytes]:
    """What each long run of base64 (either alphabet) in `blob` decodes to."""
    for found in _BASE64_RUN.finditer(blob):
        text = found.group().rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
        if len(text) % 4 == 1:
            text = text[:-1]
        try:
            yield base64.b64decode(text + b"=" * (-len(text) % 4))
        except ValueError:
            continue


def _encodings(secret: bytes) -> set[bytes]:
    """The ways a secret could be written down: raw, hex, base64, base64url, base32."""
    forms = {
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        base64.b32encode(secret).rstrip(b"="),
    }
    return {form for form in forms if len(form) >= 16}


@dataclass
class Secrets:
    """Secrets the test got hold of, by name, each in every encoding it might be stored in."""

    forms: dict[str, set[bytes]] = field(default_factory=dict)

    def add(self, name: str, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else value
        assert len(raw) >= 16, f"{name}: too short to look for safely"
        self.forms.setdefault(name, set()).update(_encodings(raw))

    def add_private_key(self, name: str, key: Any) -> None:
        """A private key's secret numbers, big-endian, and its unencrypted encodings."""
        if isinstance(key, rsa.RSAPrivateKey):
            numbers = key.private_numbers()
            for part, value in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q)):
                self.add(f"{name}.{part}", value.to_bytes((value.bit_length() + 7) // 8, "big"))
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            size = (key.curve.key_size + 7) // 8
            self.add(name, key.private_numbers().private_value.to_bytes(size, "big"))
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            raw = serialization.Encoding.Raw
            self.add(name, key.private_bytes(raw, serialization.PrivateFormat.Raw, _none()))
            return
        else:
            raise TypeError(f"{name}: no private numbers for {type(key).__name__}")
        self.add(f"{name}.der", key.private_bytes(serialization.Encoding.DER, _pkcs8(), _none()))


def _pkcs8() -> serialization.PrivateFormat:
    return serialization.PrivateFormat.PKCS8


def _none() -> serialization.NoEncryption:
    return serialization.NoEncryption()


def scan_blob(where: str, blob: bytes, secrets: Secrets) -> list[str]:
    """Every key in the clear in `blob`, as `where: what` lines."""
    found = []
    if b"PRIVATE KEY" in blob:
        found.append(f"{where}: a PEM private key header")
    found += [f"{where}: a DER private key at byte {at}" for at in _der_private_keys(blob)]
    if _PRIVATE_JWK_MEMBER.search(blob):
        found.append(f"{where}: a JWK with its private member 'd'")
    for decoded in _decoded_runs(blob):
        found += [f"{where}: a base64 DER private key" for _ in _der_private_keys(decoded)]
        found += [
            f"{where}: {name}, base64 encoded"
            for name, forms in secrets.forms.items()
            if any(form in decoded for form in forms)
        ]
    found += [
        f"{where}: {name}"
        for name, forms in secrets.forms.items()
        if any(form in blob for form in forms)
    ]
    return found


def scan_directory(root: Path, secrets: Secrets) -> list[str]:
    found = []
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    assert files, f"nothing to scan in {root}"
    for path in files:
        found += scan_blob(str(path.relative_to(root)), path.read_bytes(), secrets)
    return found


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    return None


def scan_database(engine: Engine, secrets: Secrets) -> list[str]:
    """Every text or binary value of every table (as the database has them, not the models)."""
    found: list[str] = []
    metadata = MetaData()
    metadata.reflect(bind=engine)
    assert len(metadata.tables) > 20, "the schema is missing"
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    blob = _as_bytes(value)
                    if blob:
                        found += scan_blob(f"{table.name}.{column}", blob, secrets)
    return found


def check_modes(data_dir: Path) -> list[str]:
    """Key files readable by their owner only, in folders only their owner can enter."""
    found = []
    key_dirs = [data_dir, data_dir / "keys", data_dir / "keys" / "locker"]
    for folder in key_dirs:
        if stat.S_IMODE(folder.stat().st_mode) != 0o700:
            found.append(f"{folder}: mode {stat.S_IMODE(folder.stat().st_mode):o}, not 700")
    key_files = [p for p in (data_dir / "keys").rglob("*") if p.is_file()]
    assert key_files, "no key files"
    for path in key_files:
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            found.append(f"{path}: mode {stat.S_IMODE(path.stat().st_mode):o}, not 600")
    return found


# -- the runtime -------------------------------------------------------------------------------


def _settings(data_dir: Path, database_url: str, master_key: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        # SQLite: the embedded default, a file in the data directory, so it is scanned too.
        database_url=database_url if POSTGRES_URL else None,
        master_key=SecretStr(master_key),
        audit_checkpoint_interval=0,
        public_url="https://shanakht.test",
    )


def _new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def master_key() -> str:
    return _new_master_key()


@pytest.fixture
def keyed(tmp_path: Path, database_url: str, master_key: str) -> Iterator[Runtime]:
    runtime = open_runtime(_settings(tmp_path / "var", database_url, master_key))
    runtime.identity.hasher = PasswordHasher(HashParameters(time_cost=1, memory_kib=64))
    try:
        prepare(runtime)
        yield runtime
    finally:
        runtime.close()


@dataclass
class Phones:
    def mobile(self, owner: str) -> str | None:
        return MOBILE if owner == OWNER else None

    def send(self, to: str, text: str) -> None:
        pass


def _register(runtime: Runtime) -> str:
    record = read_registry(ensure_registry(runtime.identity.nadra_file))[SCENARIOS["active_female"]]
    return register_citizen(runtime, record, "Kinnow#Orchard2026")


def _exercise(runtime: Runtime, tmp_path: Path, secrets: Secrets) -> None:
    """Everything that makes, uses or rotates a key; what it hands out goes into `secrets`."""
    now = datetime.now(UTC)
    root = create_root(
        tmp_path / "offline-root", ROOT_PASSPHRASE, common_name="Test Root CA", now=now
    )
    secrets.add_private_key("root CA key", root.key)
    secrets.add("root passphrase", ROOT_PASSPHRASE)
    with runtime.transaction() as session:
        runtime.provider(session).roles.add_department("sed", "School Education Department")
        authority = runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        for profile, label in ((DEPARTMENT_SEAL, "seal"), (QR_SIGNER, "QR signer")):
            authority.issue(profile, Subject(f"SED {label}", "sed"), actor="admin:test")
        runtime.provider(session).keys.rotate()  # two generations of OIDC keys
        _client, client_secret = runtime.provider(session).clients.add(
            NewClient(
                id="sed-system",
                name="SED back office",
                kind=SERVICE,
                auth_method=CLIENT_SECRET_BASIC,
                scopes=("locker.request",),
                department="sed",
            )
        )
    assert client_secret is not None
    secrets.add("client secret", client_secret)

    citizen_id = _register(runtime)
    with runtime.transaction() as session:
        apps = runtime.second_factor(session).apps
        totp_secret, _uri = apps.begin(citizen_id, "Test Citizen")
        recovery = apps.confirm(citizen_id, pyotp.TOTP(totp_secret).at(runtime.clock()))
    assert recovery is not None
    secrets.add("TOTP secret (base32)", totp_secret)
    secrets.add("TOTP secret (raw)", base64.b32decode(totp_secret + "=" * (-len(totp_secret) % 8)))
    for number, recovery_code in enumerate(recovery):
        secrets.add(f"recovery code {number}", recovery_code)
    with runtime.transaction() as session:
        token, _sso = runtime.provider(session).sessions.create(
            citizen_id, acr="urn:test", amr=["pwd", "otp"], client_address="203.0.113.7",
            user_agent="pytest",
        )  # fmt: skip
    secrets.add("SSO session cookie", token)
    device_cookies(runtime).issue("p:" + "D" * 43, "2026-11-26T00:00:00+00:00")

    runtime.keks.rotate()  # a second KEK version, which the document below is wrapped under
    with runtime.transaction() as session:
        runtime.locker(session).issue(
            owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id="BC-7",
            title="Birth certificate", content=[b"%PDF-1.7\n" + os.urandom(4096)],
            content_type="application/pdf", who=ISSUER,
        )  # fmt: skip
    with runtime.transaction() as session:
        exchange = Exchange(
            session,
            locker=runtime.locker(session),
            audit=runtime.audit_log(session),
            signer=_signer(runtime),
            seal=runtime.row_seal,
            citizens=Phones(),
            texts=Phones(),
            clock=runtime.clock,
        )
        request = exchange.file_request(
            requester="sed-system", requester_name="SED", owner=OWNER, doctypes=["birth"],
            purpose_code="edu.admission", purpose_text="Admission", data_life_days=30,
            valid_until=runtime.clock() + timedelta(days=7), fetch_limit=1,
        )  # fmt: skip
        exchange.approve(request.id, owner=OWNER, substantial=True)
    with runtime.transaction() as session:
        runtime.audit_log(session).checkpoint()


def _gather_stored_keys(runtime: Runtime, secrets: Secrets) -> None:
    """Open every stored key through the service's own code and remember its secret parts."""
    data_dir = runtime.settings.data_dir
    names = {path.stem for path in (data_dir / "keys").glob("*.json")}
    assert names >= KEYSTORE_NAMES, f"keys not made: {KEYSTORE_NAMES - names}"
    for name in names:
        secrets.add(f"key store: {name}", runtime.keys.secret(name))
    kek_files = sorted((data_dir / "keys" / "locker").glob("kek-*.sealed"))
    assert len(kek_files) == 2, kek_files
    for number in (1, 2):
        secrets.add(f"KEK local:{number}", runtime.keks.get(f"local:{number}"))
    sealer = runtime.identity.sealer
    with runtime.transaction() as session:
        oidc = session.execute(select(signing_keys)).all()
        assert len(oidc) == 4, "RS256 and ES256, two generations"
        for row in oidc:
            pem = sealer.open(row.private_key, f"signing-key:{row.kid}")
            key = serialization.load_pem_private_key(pem, password=None)
            secrets.add_private_key(f"OIDC {row.alg} key {row.kid}", key)
        provider = SealedKeys(session, runtime.signing_seal_key, runtime.clock)
        refs = list(session.execute(select(sealed_keys.c.ref)).scalars())
        assert len(refs) >= 5, "issuing CA, OCSP responder, TSA, seal, QR signer"
        for ref in refs:
            secrets.add_private_key(f"PKI key {ref}", provider.private_key(ref))
        document = session.execute(select(documents.c.id, documents.c.owner)).one()
        version = session.execute(select(versions)).one()
        data_key = unwrap(
            version.wrapped_key,
            runtime.keks.get,
            Context(document.id, version.version, document.owner),
        )
        secrets.add("document data key", data_key)
    secrets.add_private_key("consent signer", runtime.keys.ed25519(CONSENT_KEY))
    secrets.add_private_key("audit checkpoint signer", runtime.keys.ed25519(AUDIT_CHECKPOINT_KEY))


# -- the tests ---------------------------------------------------------------------------------


def test_every_key_is_encrypted_at_rest_under_the_master_key(
    keyed: Runtime, master_key: str, tmp_path: Path, database_url: str
) -> None:
    runtime, data_dir = keyed, keyed.settings.data_dir
    secrets = Secrets()
    secrets.add("master key", base64.b64decode(master_key))
    secrets.add("master key (as configured)", master_key)
    _exercise(runtime, tmp_path, secrets)
    _gather_stored_keys(runtime, secrets)
    assert len(secrets.forms) > 40

    assert not (data_dir / "master.key").exists(), "a master key from the settings is not copied"
    assert scan_directory(data_dir, secrets) == []
    assert scan_database(runtime.engine, secrets) == []
    assert check_modes(data_dir) == []

    # The root CA's key is kept elsewhere, under a passphrase: encrypted, private, not opened
    # without it.
    root_key = tmp_path / "offline-root" / KEY_FILE
    assert root_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(root_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(root_key.parent.stat().st_mode) == 0o700
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(root_key.read_bytes(), password=None)

    # Another master key opens nothing, and says so, rather than making fresh keys.
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    other = _settings(data_dir, database_url, _new_master_key())
    with pytest.raises(StartupError, match="does not open under this master key"):
        open_runtime(other)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    # ...and each layer below refuses on its own, should a sealed key reach it some other way.
    wrong = os.urandom(32)
    with pytest.raises(MasterSecretMismatch):
        LocalKeks(data_dir / "keys" / "locker", wrong)
    with runtime.transaction() as session:
        row = session.execute(select(signing_keys)).first()
        assert row is not None
        with pytest.raises(SealBroken):
            Sealer.of(wrong).open(row.private_key, f"signing-key:{row.kid}")
        totp = session.execute(select(totp_factors)).one()
        with pytest.raises(SealBroken):
            Sealer.of(wrong).open(totp.secret, f"citizen:{totp.citizen_id}:totp")
        ref = session.execute(select(sealed_keys.c.ref)).scalars().first()
        assert ref is not None
        with pytest.raises(KeyUnavailable, match="does not open"):
            SealedKeys(session, wrong, runtime.clock).private_key(ref)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before


def _pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, _pkcs8(), _none()))


def _der(key: Any, form: serialization.PrivateFormat) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.DER, form, _none()))


def _planted(scan: Iterable[str], where: str, what: str) -> None:
    assert any(line.startswith(where) and what in line for line in scan), (where, what, scan)


def test_the_scanner_finds_keys_in_the_clear(keyed: Runtime, master_key: str) -> None:
    """The scans above can fail: each kind of leak, planted, is found where it was put."""
    runtime, data_dir = keyed, keyed.settings.data_dir
    secrets = Secrets()
    secrets.add("master key", base64.b64decode(master_key))
    secrets.add("master key (as configured)", master_key)
    kek = runtime.keks.current().key
    secrets.add("KEK", kek)
    assert scan_directory(data_dir, secrets) == []
    assert scan_database(runtime.engine, secrets) == []
    assert check_modes(data_dir) == []

    ec_key, rsa_key = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    plants = {
        "objects/leak.pem": _pem(ec_key),
        "nadra/leak.der": b"junk" + _der(ec_key, serialization.PrivateFormat.PKCS8) + b"junk",
        "keys/leak-rsa.der": _der(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL),
        "keys/leak-sec1.b64": base64.b64encode(
            _der(ec_key, serialization.PrivateFormat.TraditionalOpenSSL)
        ),
        "leak.jwk": json.dumps({"kty": "EC", "crv": "P-256", "d": "A" * 43}).encode(),
        "leak.env": f"SHANAKHT_MASTER_KEY={master_key}\n".encode(),
        "keys/locker/leak.bin": b"\x00" + kek + b"\x00",
    }
    for name, content in plants.items():
        (data_dir / name).parent.mkdir(exist_ok=True)
        (data_dir / name).write_bytes(content)
    found = scan_directory(data_dir, secrets)
    _planted(found, "objects/leak.pem", "PEM private key")
    _planted(found, "nadra/leak.der", "DER private key at byte 4")
    _planted(found, "keys/leak-rsa.der", "DER private key at byte 0")
    _planted(found, "keys/leak-sec1.b64", "base64 DER private key")
    _planted(found, "leak.jwk", "private member 'd'")
    _planted(found, "leak.env", "master key (as configured)")
    _planted(found, "keys/locker/leak.bin", "KEK")
    (data_dir / "keys" / "leak-rsa.der").chmod(0o644)
    (data_dir / "keys").chmod(0o755)
    modes = check_modes(data_dir)
    assert any("leak-rsa.der: mode 644" in line for line in modes), modes
    assert any(line.endswith("keys: mode 755, not 700") for line in modes), modes

    with runtime.transaction() as session:
        kid = session.execute(select(signing_keys.c.kid)).scalars().first()
        session.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(private_key=_pem(ec_key))
        )
        session.execute(
            update(signing_keys)
            .where(signing_keys.c.kid != kid)
            .values(public_jwk=json.dumps({"kty": "oct", "d": base64.b64encode(kek).decode()}))
        )
        session.execute(
            clients.insert().values(
                id="leaky", name="Leaky", kind=SERVICE, auth_method=CLIENT_SECRET_BASIC,
                secret_hash=base64.b64decode(master_key), redirect_uris="[]",
                post_logout_redirect_uris="[]", scopes="x.y", id_token_alg="RS256",
                require_par=False, require_dpop=False, created_at=runtime.clock(),
            )
        )  # fmt: skip
    found = scan_database(runtime.engine, secrets)
    _planted(found, "identity_signing_keys.private_key", "PEM private key")
    _planted(found, "identity_signing_keys.public_jwk", "private member 'd'")
    _planted(found, "identity_signing_keys.public_jwk", "KEK, base64 encoded")
    _planted(found, "identity_clients.secret_hash", "master key")


def test_development_keeps_its_own_master_key_private_and_production_needs_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SHANAKHT_MASTER_KEY, development makes one in the data directory, beside the
    keys it protects (owner-only); production refuses to start without one."""
    monkeypatch.delenv("SHANAKHT_MASTER_KEY", raising=False)
    settings = Settings(data_dir=tmp_path / "var", database_url=None, audit_checkpoint_interval=0)
    runtime = open_runtime(settings)
    runtime.close()
    made = tmp_path / "var" / "master.key"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    with pytest.raises(ValueError, match="SHANAKHT_MASTER_KEY is required"):
        Settings(env="production", data_dir=tmp_path / "p", database_url="sqlite://")
