"""What the parser fuzz tests (tests/fuzz/test_parsers_*.py) share: the budget, in one place,
the mutations they apply to signed things, and a runtime that lives for a module.

The budget is examples per property, chosen so that all of test_parsers_*.py runs in well under
a minute on two cores; derandomised, so CI and a desk see the same examples.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings

# Examples per property, by parser. Pure parsers are cheap; the OIDC ones touch a database.
EXAMPLES = {
    "cnic": 1000,
    "qr": 500,
    "consent": 300,
    "audit": 300,
    "upload": 500,
    "upload_locker": 100,
    "oidc": 200,
}


def budget(parser: str) -> settings:
    """The hypothesis settings of one parser's properties."""
    return settings(
        max_examples=EXAMPLES[parser],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Any text, lone surrogates included: JSON carries them ("\ud800"), so parsers get them.
# Mutations mostly use ASCII, the alphabet of every encoding here, so they stay near-valid.
ANY_CHARACTER = st.one_of(
    st.characters(codec="ascii"),
    st.characters(exclude_categories=()),
    st.sampled_from(["\ud800", "\udfff", "\u2014", "\x00"]),  # rare in a uniform draw
)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def flip_bit(data: bytes, position: int) -> bytes:
    """`data` with one bit flipped, `position` taken modulo its length in bits."""
    position %= 8 * len(data)
    changed = bytearray(data)
    changed[position // 8] ^= 1 << (position % 8)
    return bytes(changed)


@st.composite
def text_mutation(draw: st.DrawFn, original: str) -> str:
    """`original` changed one way: a character replaced, removed or added, cut short, or
    extended. Never `original` itself."""
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "extend"]))
    at = draw(st.integers(0, len(original) - 1))
    if kind == "replace":
        other = draw(ANY_CHARACTER.filter(lambda c: c != original[at]))
        return original[:at] + other + original[at + 1 :]
    if kind == "delete":
        return original[:at] + original[at + 1 :]
    if kind == "insert":
        return original[:at] + draw(ANY_CHARACTER) + original[at:]
    if kind == "truncate":
        return original[:at]
    return original + draw(st.text(ANY_CHARACTER, min_size=1, max_size=8))


def jws_segments_mutation(token: str, data: st.DataObject) -> str:
    """A compact JWS with one of its decoded segments (header, payload, signature) changed by
    one bit and re-encoded canonically: the signed bytes or the signature always differ."""
    parts = token.split(".")
    segment = data.draw(st.integers(0, 2), label="segment")
    raw = unb64url(parts[segment])
    parts[segment] = b64url(flip_bit(raw, data.draw(st.integers(0, 8 * len(raw) - 1))))
    return ".".join(parts)


@pytest.fixture(scope="module")
def fuzz_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A runtime on its own SQLite file, with the schema and signing keys, kept for a module:
    hypothesis runs many examples per test, and a fresh database each would cost seconds."""
    base: Path = tmp_path_factory.mktemp("fuzz-parsers")
    runtime = open_runtime(
        Settings(
            data_dir=base / "var",
            database_url=f"sqlite:///{base / 'fuzz.db'}",
            audit_checkpoint_interval=0,
            public_url="https://shanakht.test",
        )
    )
    prepare(runtime)
    yield runtime
    runtime.close()
