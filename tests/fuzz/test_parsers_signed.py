"""Fuzzing what the service signs and others hand back: QR payloads, consent artifacts, audit
proofs and checkpoints.

Arbitrary input must be refused with the domain's error; a valid object made here, with a key
made here, must verify; and any change to it must be refused, unless it leaves the signed bytes
exactly as they were (base64 padding bits, a witness's extra line), in which case what is
accepted is the original and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from api.runtime import Runtime
from audit import Checkpoint, NoteError, NoteSigner, NoteVerifier, ProofError, merkle
from locker.consents import CONSENT_TYPE, GRANT_TYPE, ConsentSigner, SignatureInvalid
from signing.errors import SignatureInvalid as QrSignatureInvalid
from signing.errors import SigningError
from signing.qr import PREFIX, QrPayload, UnknownSigner, base45, decode, encode, verify
from signing.qr.dictionary import DICTIONARY_V1
from tests.fuzz.parser_kit import (
    ANY_TEXT,
    b64url,
    budget,
    flip_bit,
    fuzz_runtime,
    jws_segments_mutation,
    text_mutation,
    unb64url,
)
from tests.unit.audit.helpers import append

__all__ = ["fuzz_runtime"]

# -- QR payloads -----------------------------------------------------------------------------

QR_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_QR_KEY = ec.generate_private_key(ec.SECP256R1())
KID = bytes(range(1, 9))
ISSUED = datetime(2026, 3, 14, 5, 30, tzinfo=UTC)
NOW = ISSUED + timedelta(days=1)
ORDER = QrPayload(
    document_type="tto",
    document_hash=hashlib.sha256(b"the signed PDF of order SED/TR/2026/004512").digest(),
    issued_at=ISSUED,
    expires_at=ISSUED.replace(year=2027),
    issuer="PK-PB",
    fields={"no": "SED/TR/2026/004512", "nm": "Muhammad Imran Akhtar", "to": "Lahore", "bp": 16},
)
QR_TEXT = encode(ORDER, QR_KEY, KID)


def trust(kid: bytes) -> ec.EllipticCurvePublicKey | None:
    return QR_KEY.public_key() if kid == KID else None


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, zdict=DICTIONARY_V1)
    return compressor.compress(data) + compressor.flush()


def _inflate(data: bytes) -> bytes:
    return zlib.decompressobj(zdict=DICTIONARY_V1).decompress(data)


def _qr_of_cose(cose: bytes) -> str:
    return PREFIX + base45.encode(_deflate(cose))


QR_COMPRESSED = base45.decode(QR_TEXT[len(PREFIX) :])
QR_COSE = _inflate(QR_COMPRESSED)
QR_SIGN1 = cbor2.loads(QR_COSE).value  # [protected, unprotected, claims, signature]


def _assert_refused_or_original(text: object) -> None:
    """`verify` refuses `text` with a SigningError, or what it accepts is the original order,
    carried by the same protected header, claims and signature."""
    try:
        accepted = verify(text, trust, NOW)  # type: ignore[arg-type]  # fuzzing the type too
    except SigningError:
        return
    assert accepted == ORDER
    assert isinstance(text, str)
    assert cbor2.loads(_inflate(base45.decode(text[len(PREFIX) :]))).value == QR_SIGN1


def test_qr_original_verifies() -> None:
    """The control: the unmutated code verifies, so refusals below are the mutations' doing."""
    assert verify(QR_TEXT, trust, NOW) == ORDER
    assert decode(QR_TEXT) == (KID, ORDER)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary(max_size=40) | ANY_TEXT,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.integers() | ANY_TEXT, inner, max_size=5)
        | st.builds(cbor2.CBORTag, st.integers(0, 300), inner)
    ),
    max_leaves=12,
)


@st.composite
def claims_like(draw: st.DrawFn) -> dict[int, Any]:
    """A claims set of the payload's layout with any value in any position, to reach every
    check in QrPayload.from_cbor."""
    good = {1: "PK-PB", 6: int(ISSUED.timestamp()), 4: int(NOW.timestamp()) + 10**6}
    claims: dict[int, Any] = {
        key: draw(st.one_of(st.just(value), cbor_values)) for key, value in good.items()
    }
    document = [
        draw(st.one_of(st.just(1), cbor_values)),
        draw(st.one_of(st.just("tto"), cbor_values)),
        draw(st.one_of(st.just(bytes(32)), cbor_values)),
        draw(
            st.one_of(
                st.dictionaries(
                    st.from_regex(r"[a-z]{1,3}", fullmatch=True),
                    st.integers() | ANY_TEXT,
                    max_size=4,
                ),
                cbor_values,
            )
        ),
    ]
    claims[-65537] = draw(st.one_of(st.just(document), st.lists(cbor_values, max_size=5)))
    for key in draw(st.lists(st.sampled_from([1, 4, 6, -65537]), max_size=2)):
        claims.pop(key, None)
    return claims


@st.composite
def cose_like(draw: st.DrawFn) -> bytes:
    """A COSE_Sign1 of our shape with any part replaced by anything."""
    protected = draw(
        st.one_of(
            st.just(cbor2.dumps({1: -7, 4: KID})),
            st.builds(cbor2.dumps, cbor_values),
            st.binary(max_size=40),
        )
    )
    claims = draw(st.one_of(st.builds(cbor2.dumps, claims_like()), st.binary(max_size=80)))
    parts = [
        protected,
        draw(st.one_of(st.just({}), cbor_values)),
        claims,
        draw(st.one_of(st.binary(min_size=64, max_size=64), cbor_values)),
    ]
    value: Any = draw(st.one_of(st.just(parts), cbor_values))
    tag = draw(st.one_of(st.just(18), st.none(), st.integers(0, 2**16)))
    return cbor2.dumps(value if tag is None else cbor2.CBORTag(tag, value))


qr_inputs = st.one_of(
    ANY_TEXT,
    st.binary(max_size=200),
    st.builds(lambda t: PREFIX + t, st.text(base45.ALPHABET.decode(), max_size=300)),
    st.builds(lambda b: PREFIX + base45.encode(b), st.binary(max_size=200)),
    st.builds(lambda b: PREFIX + base45.encode(zlib.compress(b)), st.binary(max_size=200)),
    st.builds(_qr_of_cose, st.binary(max_size=200)),
    st.builds(_qr_of_cose, cose_like()),
)


@budget("qr")
@given(qr_inputs)
def test_qr_arbitrary_input_is_refused(text: str) -> None:
    """Any text or bytes, down to well-formed COSE with any claims: a SigningError, never
    another exception, never accepted; and what `decode` reads re-encodes to itself."""
    with pytest.raises(SigningError):
        verify(text, trust, NOW)
    try:
        kid, payload = decode(text)
    except SigningError:
        return
    assert isinstance(kid, bytes)
    assert QrPayload.from_cbor(payload.to_cbor()) == payload


@budget("qr")
@given(text_mutation(QR_TEXT))
def test_qr_text_mutations_are_refused(text: str) -> None:
    _assert_refused_or_original(text)


@budget("qr")
@given(st.integers(0, 8 * len(QR_COMPRESSED) - 1), st.sampled_from(["zlib", "cose"]))
def test_qr_bit_flips_are_refused(position: int, layer: str) -> None:
    """One bit flipped in the zlib stream or in the COSE_Sign1 inside it."""
    if layer == "zlib":
        text = PREFIX + base45.encode(flip_bit(QR_COMPRESSED, position))
    else:
        text = _qr_of_cose(flip_bit(QR_COSE, position))
    _assert_refused_or_original(text)


@st.composite
def swapped_claims(draw: st.DrawFn) -> bytes:
    """The signed claims with one thing changed (fields swapped, issuer, hash, times,
    version), re-encoded: the signature stays the original's."""
    claims = cbor2.loads(QR_SIGN1[2])
    document = claims[-65537]
    fields = document[3]
    change = draw(
        st.sampled_from(["swap", "field", "issuer", "hash", "iat", "exp", "no-exp", "version"])
    )
    if change == "swap":
        a, b = draw(st.lists(st.sampled_from(sorted(fields)), min_size=2, max_size=2, unique=True))
        fields[a], fields[b] = fields[b], fields[a]
    elif change == "field":
        name = draw(st.sampled_from(sorted(fields)))
        fields[name] = draw(
            (st.text(max_size=20) | st.integers()).filter(lambda v: v != fields[name])
        )
    elif change == "issuer":
        claims[1] = draw(st.from_regex(r"[A-Z]{2}-[A-Z]{2}", fullmatch=True))
    elif change == "hash":
        document[2] = flip_bit(document[2], draw(st.integers(0, 255)))
    elif change in ("iat", "exp"):
        key = 6 if change == "iat" else 4
        claims[key] += draw(st.integers(-(10**6), 10**6).filter(bool))
    elif change == "no-exp":
        del claims[4]
    else:
        document[0] = draw(st.integers(2, 10))
    encoded = cbor2.dumps(claims, canonical=True)
    assert encoded != QR_SIGN1[2]
    return encoded


@budget("qr")
@given(swapped_claims())
def test_qr_claim_changes_under_the_old_signature_are_refused(claims: bytes) -> None:
    protected, unprotected, _, signature = QR_SIGN1
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, claims, signature]))
    with pytest.raises(QrSignatureInvalid):
        verify(_qr_of_cose(cose), trust, NOW)


@budget("qr")
@given(st.binary(min_size=1, max_size=64), st.booleans())
def test_qr_other_signer_or_kid_is_refused(kid: bytes, resign: bool) -> None:
    """Another kid (unknown), or the same kid with another key's signature."""
    if resign:
        text = encode(ORDER, OTHER_QR_KEY, KID)
        with pytest.raises(QrSignatureInvalid):
            verify(text, trust, NOW)
        return
    text = encode(ORDER, QR_KEY, kid)
    if kid == KID:
        assert verify(text, trust, NOW) == ORDER
    else:
        with pytest.raises(UnknownSigner):
            verify(text, trust, NOW)


# -- consent artifacts -----------------------------------------------------------------------

CONSENT_KEY = Ed25519PrivateKey.generate()
CONSENTS = ConsentSigner(CONSENT_KEY)
OTHER_CONSENTS = ConsentSigner(Ed25519PrivateKey.generate())
CONSENT_CLAIMS = {
    "v": 1,
    "consent_id": "c" * 32,
    "requester": "client:police-cms",
    "purpose": "character certificate renewal",
    "doctypes": ["chr", "dom"],
    "not_before": "2026-03-14T05:30:00Z",
    "exp": int((NOW + timedelta(days=30)).timestamp()),
    "fetch_limit": 3,
}
ARTIFACT = CONSENTS.sign(CONSENT_CLAIMS, CONSENT_TYPE)


def _open(token: object) -> dict[str, Any]:
    return CONSENTS.open(token, CONSENT_TYPE, now=NOW)  # type: ignore[arg-type]  # fuzzing


def test_consent_original_opens() -> None:
    assert _open(ARTIFACT) == CONSENT_CLAIMS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=9),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


jws_like = st.one_of(
    ANY_TEXT,
    st.builds(
        lambda parts: ".".join(parts),
        st.lists(st.text("ABCDEFabcdef0123456789-_=.", max_size=60), min_size=1, max_size=5),
    ),
    st.builds(
        lambda header, payload, signature: (
            f"{b64url(header)}.{b64url(payload)}.{b64url(signature)}"
        ),
        st.one_of(st.builds(lambda v: json.dumps(v).encode(), json_values), st.binary(max_size=60)),
        st.binary(max_size=80),
        st.binary(max_size=70),
    ),
)


@budget("consent")
@given(jws_like)
def test_consent_arbitrary_input_is_refused(token: str) -> None:
    with pytest.raises(SignatureInvalid):
        _open(token)


@budget("consent")
@given(st.data())
def test_consent_segment_bit_flips_are_refused(data: st.DataObject) -> None:
    with pytest.raises(SignatureInvalid):
        _open(jws_segments_mutation(ARTIFACT, data))


@budget("consent")
@given(text_mutation(ARTIFACT))
def test_consent_text_mutations_are_refused(token: str) -> None:
    try:
        opened = _open(token)
    except SignatureInvalid:
        return
    assert opened == CONSENT_CLAIMS
    assert [unb64url(p) for p in token.split(".")] == [unb64url(p) for p in ARTIFACT.split(".")]


def _public_raw() -> bytes:
    return base64.urlsafe_b64decode(CONSENTS.jwks()["keys"][0]["x"] + "==")


@st.composite
def forged_artifacts(draw: st.DrawFn) -> str:
    """Artifacts a forger can make without the key: alg none, HS256 keyed with the public key,
    the deprecated EdDSA name, another key under our kid, a grant as a consent, changed claims
    under the original signature."""
    header64, payload64, signature64 = ARTIFACT.split(".")
    header = json.loads(unb64url(header64))
    claims = dict(CONSENT_CLAIMS)
    kind = draw(st.sampled_from(["none", "hs256", "eddsa", "other-key", "grant", "claims"]))
    if kind == "claims":
        claims[draw(st.sampled_from(sorted(claims)))] = draw(st.integers() | st.text(max_size=9))
        return f"{header64}.{b64url(json.dumps(claims).encode())}.{signature64}"
    if kind == "other-key":
        return OTHER_CONSENTS.sign(claims, CONSENT_TYPE)
    if kind == "grant":
        return CONSENTS.sign(claims, GRANT_TYPE)
    header["alg"] = {"none": "none", "hs256": "HS256", "eddsa": "EdDSA"}[kind]
    signing_input = f"{b64url(json.dumps(header).encode())}.{payload64}"
    if kind == "none":
        return signing_input + "."
    if kind == "eddsa":
        return f"{signing_input}.{b64url(CONSENT_KEY.sign(signing_input.encode()))}"
    secret = draw(st.sampled_from([_public_raw(), json.dumps(CONSENTS.jwks()).encode()]))
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@budget("consent")
@given(forged_artifacts())
def test_consent_forgeries_are_refused(token: str) -> None:
    with pytest.raises(SignatureInvalid):
        _open(token)


@budget("consent")
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), json_values)
def test_consent_signed_claims_of_any_shape_open_or_expire(
    claims: dict[str, Any], exp: Any
) -> None:
    """Whatever claims were signed, `open` answers them or SignatureInvalid (an `exp` that is
    not a time in the future), never a TypeError on an odd `exp`."""
    claims["exp"] = exp
    try:
        opened = _open(CONSENTS.sign(claims, CONSENT_TYPE))
    except SignatureInvalid:
        assert exp is not None
        return
    assert opened == claims


# -- audit proofs and checkpoints ------------------------------------------------------------

LOG_SIZE = 37  # not a power of two, so trees have ragged right edges
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962"


@pytest.fixture(scope="module")
def log(fuzz_runtime: Runtime) -> Runtime:
    """A real log of LOG_SIZE entries and a signed checkpoint of it."""
    append(fuzz_runtime, LOG_SIZE)
    with fuzz_runtime.transaction() as session:
        fuzz_runtime.audit_log(session).checkpoint()
    return fuzz_runtime


def _happy(kind: str) -> list[dict[str, Any]]:
    files = sorted((VECTORS / kind).glob("*/happy-path.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [json.loads(f.read_text()) for f in files]


def _mutate_proof(data: st.DataObject, proof: list[bytes]) -> list[bytes]:
    """The proof changed one way: a bit flipped, a hash dropped, one added, two swapped."""
    kinds = ["add"] + (["flip", "drop"] if proof else []) + (["swap"] if len(proof) > 1 else [])
    kind = data.draw(st.sampled_from(kinds))
    changed = list(proof)
    if kind == "add":
        at = data.draw(st.integers(0, len(changed)))
        changed.insert(at, data.draw(st.binary(min_size=32, max_size=32)))
    elif kind == "flip":
        at = data.draw(st.integers(0, len(changed) - 1))
        changed[at] = flip_bit(changed[at], data.draw(st.integers(0, 255)))
    elif kind == "drop":
        del changed[data.draw(st.integers(0, len(changed) - 1))]
    else:
        i, j = data.draw(
            st.lists(st.integers(0, len(changed) - 1), min_size=2, max_size=2, unique=True)
        )
        changed[i], changed[j] = changed[j], changed[i]
    return changed


@budget("audit")
@given(st.data())
def test_inclusion_proofs_from_a_real_log(log: Runtime, data: st.DataObject) -> None:
    """A proof the log serves verifies; the same proof changed in any one way does not."""
    size = data.draw(st.integers(1, LOG_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    with log.sessions() as session:
        served = log.audit_log(session).inclusion_proof(index, size)
    leaf, root, proof = served.leaf_hash, served.root, list(served.proof)
    merkle.verify_inclusion(leaf, index, size, proof, root)
    target = data.draw(st.sampled_from(["proof", "leaf", "root", "index"]))
    if target == "proof":
        proof = _mutate_proof(data, proof)
    elif target == "leaf":
        leaf = flip_bit(leaf, data.draw(st.integers(0, 255)))
    elif target == "root":
        root = flip_bit(root, data.draw(st.integers(0, 255)))
    else:
        index = data.draw(
            st.integers(0, size - 1).filter(lambda i: i != index)
            if size > 1
            else st.sampled_from([-1, 1, 2**64])
        )
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@budget("audit")
@given(st.data())
def test_consistency_proofs_from_a_real_log(log: Runtime, data: st.DataObject) -> None:
    new = data.draw(st.integers(1, LOG_SIZE), label="new")
    old = data.draw(st.integers(1, new), label="old")
    with log.sessions() as session:
        served = log.audit_log(session).consistency_proof(old, new)
    old_root, new_root, proof = served.old_root, served.new_root, list(served.proof)
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    target = data.draw(st.sampled_from(["proof", "old_root", "new_root"]))
    if target == "proof":
        proof = _mutate_proof(data, proof)
    elif target == "old_root":
        old_root = flip_bit(old_root, data.draw(st.integers(0, 255)))
    else:
        new_root = flip_bit(new_root, data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)


@budget("audit")
@given(st.sampled_from(_happy("inclusion")), st.data())
def test_inclusion_vectors_mutated(vector: dict[str, Any], data: st.DataObject) -> None:
    """The transparency-dev happy paths, each changed in one way, are refused."""
    proof = [base64.b64decode(p) for p in vector["proof"] or []]
    leaf, root = base64.b64decode(vector["leafHash"]), base64.b64decode(vector["root"])
    index, size = vector["leafIdx"], vector["treeSize"]
    merkle.verify_inclusion(leaf, index, size, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, _mutate_proof(data, proof), root)


@budget("audit")
@given(st.sampled_from(_happy("consistency")), st.data())
def test_consistency_vectors_mutated(vector: dict[str, Any], data: st.DataObject) -> None:
    proof = [base64.b64decode(p) for p in vector["proof"] or []]
    old_root, new_root = base64.b64decode(vector["root1"]), base64.b64decode(vector["root2"])
    old, new = vector["size1"], vector["size2"]
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, _mutate_proof(data, proof))


hash_like = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=40),
    st.just(bytes(32)),
    st.none(),
    st.text(max_size=40),
    st.integers(),
)
sizes = st.one_of(
    st.integers(1, 9), st.integers(-3, 70), st.integers(), st.sampled_from([2**63, 2**64 + 1])
)


@budget("audit")
@given(hash_like, sizes, sizes, st.lists(hash_like, max_size=8), hash_like)
def test_inclusion_arbitrary_input_is_refused(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    """Anything: ProofError. The only acceptance is the true one a random draw can hit: a tree
    of one leaf, whose root is that leaf, with an empty proof."""
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return
    assert (index, size, proof) == (0, 1, [])
    assert leaf == root
    assert isinstance(root, bytes)
    assert len(root) == 32


@budget("audit")
@given(sizes, sizes, hash_like, hash_like, st.lists(hash_like, max_size=8))
def test_consistency_arbitrary_input_is_refused(
    old: Any, new: Any, old_root: Any, new_root: Any, proof: Any
) -> None:
    """Anything: ProofError; or the one true acceptance, equal sizes, equal roots, no proof."""
    try:
        merkle.verify_consistency(old, new, old_root, new_root, proof)
    except ProofError:
        return
    assert old == new >= 1
    assert not proof
    assert old_root == new_root
    assert isinstance(old_root, bytes)


@pytest.fixture(scope="module")
def note(log: Runtime) -> tuple[str, Checkpoint, NoteVerifier, str]:
    """The log's latest signed checkpoint: the note, what it says, its verifier and origin."""
    with log.sessions() as session:
        audit = log.audit_log(session)
        signed = audit.latest_checkpoint()
        origin = audit.origin
    assert signed is not None
    return signed.note, signed.checkpoint, NoteVerifier.parse(log.audit_signer.verifier_key), origin


def _assert_note_refused_or_original(
    text: str, note: tuple[str, Checkpoint, NoteVerifier, str]
) -> None:
    _, checkpoint, verifier, origin = note
    try:
        opened = Checkpoint.open(text, verifier, origin)
    except NoteError:
        return
    assert opened == checkpoint


@budget("audit")
@given(st.data())
def test_checkpoint_original_and_mutations(
    note: tuple[str, Checkpoint, NoteVerifier, str], data: st.DataObject
) -> None:
    """The checkpoint opens; changed one character at a time, it is refused or opens to the
    very same checkpoint (a change in the base64 padding bits)."""
    original, checkpoint, verifier, origin = note
    assert Checkpoint.open(original, verifier, origin) == checkpoint
    _assert_note_refused_or_original(data.draw(text_mutation(original)), note)


@st.composite
def checkpoint_forgeries(draw: st.DrawFn, original: str, checkpoint: Checkpoint) -> str:
    """Line-level changes: another size or root under the old signature, lines swapped, our
    name on another key's line, a checkpoint signed by another key under our key hash."""
    text, _, signatures = original.partition("\n\n")
    lines = text.split("\n")[:3]
    kind = draw(st.sampled_from(["size", "root", "origin", "swap", "other-key", "our-hash"]))
    if kind == "size":
        lines[1] = str(checkpoint.size + draw(st.integers(1, 10**6)))
    elif kind == "root":
        root = flip_bit(checkpoint.root, draw(st.integers(0, 255)))
        lines[2] = base64.b64encode(root).decode()
    elif kind == "origin":
        lines[0] += draw(
            st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1, max_size=5)
        )
    elif kind == "swap":
        i, j = draw(st.lists(st.integers(0, 2), min_size=2, max_size=2, unique=True))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        name = signatures.split(" ")[1]
        other = NoteSigner(name, Ed25519PrivateKey.generate())
        forged = other.sign(text + "\n")
        if kind == "other-key":
            return forged
        prefix, _, blob = forged.rpartition(" ")
        ours = base64.b64decode(signatures.rpartition(" ")[2])[:4]
        return f"{prefix} {base64.b64encode(ours + base64.b64decode(blob)[4:]).decode()}\n"
    return "\n".join(lines) + "\n\n" + signatures


@budget("audit")
@given(st.data())
def test_checkpoint_forgeries_are_refused(
    note: tuple[str, Checkpoint, NoteVerifier, str], data: st.DataObject
) -> None:
    original, checkpoint, verifier, origin = note
    forged = data.draw(checkpoint_forgeries(original, checkpoint))
    with pytest.raises(NoteError):
        Checkpoint.open(forged, verifier, origin)


@budget("audit")
@given(st.data())
def test_checkpoint_witness_lines_are_ignored(
    note: tuple[str, Checkpoint, NoteVerifier, str], data: st.DataObject
) -> None:
    """A witness's cosignature added (C2SP signed-note): still the same checkpoint; a malformed
    line anywhere in the signature block refuses the note."""
    original, checkpoint, verifier, origin = note
    witness = NoteSigner(
        data.draw(st.from_regex(r"[a-z.]{1,12}", fullmatch=True)), Ed25519PrivateKey.generate()
    )
    line = witness.sign(original.partition("\n\n")[0] + "\n").partition("\n\n")[2]
    assert Checkpoint.open(original + line, verifier, origin) == checkpoint
    junk = data.draw(
        st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=30).filter(
            lambda j: not j.startswith("\u2014 ")
        )
    )
    with pytest.raises(NoteError):
        Checkpoint.open(original + junk + "\n", verifier, origin)


@budget("audit")
@given(ANY_TEXT)
def test_checkpoint_arbitrary_notes_are_refused(
    note: tuple[str, Checkpoint, NoteVerifier, str], text: str
) -> None:
    _, _, verifier, origin = note
    with pytest.raises(NoteError):
        Checkpoint.open(text, verifier, origin)
    with pytest.raises(NoteError):
        Checkpoint.open(text + "\n\n\u2014 " + verifier.name + " AAAAAAAA\n", verifier, origin)


roots_b64 = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda r: base64.b64encode(r).decode()),
    st.binary(max_size=40).map(lambda r: base64.b64encode(r).decode()),
    ANY_TEXT,
)
bodies = st.builds(
    lambda origin, size, root, rest: f"{origin}\n{size}\n{root}\n{rest}",
    st.one_of(st.from_regex(r"[a-z./]{1,20}", fullmatch=True), ANY_TEXT),
    st.one_of(st.integers(-5, 10**30).map(str), st.just("1" * 5000), ANY_TEXT),
    roots_b64,
    st.one_of(st.just(""), ANY_TEXT),
)


@budget("audit")
@given(st.one_of(ANY_TEXT, bodies))
def test_checkpoint_body_parser(text: str) -> None:
    """Any body: NoteError, or a checkpoint of a named origin, a uint64 size and a 32-byte
    root, whose own body parses back to it."""
    try:
        parsed = Checkpoint.parse_body(text)
    except NoteError:
        return
    assert parsed.origin
    assert "\n" not in parsed.origin
    assert 0 <= parsed.size < 2**64
    assert len(parsed.root) == 32
    assert Checkpoint.parse_body(parsed.body()) == parsed


@budget("audit")
@given(
    st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1, max_size=30),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
)
def test_checkpoint_body_round_trip(origin: str, size: int, root: bytes) -> None:
    checkpoint = Checkpoint(origin, size, root)
    assert Checkpoint.parse_body(checkpoint.body()) == checkpoint


vkeys = st.builds(
    lambda name, key_hash, material: f"{name}+{key_hash}+{material}",
    ANY_TEXT,
    st.one_of(st.text("0123456789abcdef", min_size=8, max_size=8), st.text(max_size=10)),
    st.one_of(
        st.binary(min_size=32, max_size=32).map(lambda k: base64.b64encode(b"\x01" + k).decode()),
        st.binary(max_size=40).map(lambda r: base64.b64encode(r).decode()),
        ANY_TEXT,
    ),
)


@budget("audit")
@given(st.one_of(ANY_TEXT, vkeys))
def test_verifier_key_parser(text: str) -> None:
    """Any verifier key text: NoteError or a verifier whose key hash matches its name and key."""
    try:
        parsed = NoteVerifier.parse(text)
    except NoteError:
        return
    assert parsed.name == text.split("+")[0]


@budget("audit")
@given(st.data())
def test_verifier_key_mutations(log: Runtime, data: st.DataObject) -> None:
    """The log's verifier key, changed one character: refused, or the very same key (a change
    in the base64 padding bits)."""
    text = log.audit_signer.verifier_key
    verifier = NoteVerifier.parse(text)
    try:
        parsed = NoteVerifier.parse(data.draw(text_mutation(text)))
    except NoteError:
        return
    assert (parsed.name, parsed.key_hash) == (verifier.name, verifier.key_hash)
    assert _raw(parsed) == _raw(verifier)


def _raw(verifier: NoteVerifier) -> bytes:
    return verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# -- bugs the properties found, pinned -------------------------------------------------------


def test_note_with_a_malformed_line_after_ours_is_refused(
    note: tuple[str, Checkpoint, NoteVerifier, str],
) -> None:
    """Was accepted: `open` returned at our signature without reading the lines after it."""
    original, _, verifier, origin = note
    with pytest.raises(NoteError):
        Checkpoint.open(original + "0\n", verifier, origin)


def test_note_and_key_name_with_a_lone_surrogate_are_refused(
    note: tuple[str, Checkpoint, NoteVerifier, str], log: Runtime
) -> None:
    """Were a UnicodeEncodeError: the text and the key name are encoded to be checked."""
    original, _, verifier, origin = note
    with pytest.raises(NoteError):
        Checkpoint.open("\ud800" + original, verifier, origin)
    _, key_hash, material = log.audit_signer.verifier_key.split("+", 2)
    with pytest.raises(NoteError):
        NoteVerifier.parse(f"\ud800+{key_hash}+{material}")


@pytest.mark.parametrize("size", ["1" * 5000, str(2**64)])
def test_checkpoint_size_past_uint64_is_refused(size: str) -> None:
    """Was a ValueError for 4,301+ digits (int()'s limit), and any size was taken."""
    root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(NoteError):
        Checkpoint.parse_body(f"origin\n{size}\n{root}\n")


def test_consistency_roots_that_are_not_hashes_are_refused() -> None:
    """Was a TypeError (str + bytes) or, for equal sizes, an acceptance of equal non-hashes."""
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 2, "x" * 32, bytes(32), [bytes(32)])  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 3, None, None, [])  # type: ignore[arg-type]
