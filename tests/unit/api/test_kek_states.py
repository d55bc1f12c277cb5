"""The keys page's KEK list: an unavailable version says why, in the reader's language."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from api.administration import UNAVAILABLE, kek_states
from api.i18n import translate
from api.refusals import refusal
from locker.kek import LocalKeks


@pytest.mark.parametrize(
    ("harm", "code", "urdu"),
    [
        ("remove", "kek.missing", "بیک اپ سے بحال"),
        ("damage", "kek.damaged", "خراب ہے"),
    ],
)
def test_an_unavailable_kek_says_why_in_either_language(
    tmp_path: Path, harm: str, code: str, urdu: str
) -> None:
    secret = secrets.token_bytes(32)
    LocalKeks(tmp_path, secret).rotate()  # versions 1 and 2
    first = tmp_path / "kek-000001.sealed"
    if harm == "remove":
        first.unlink()
    else:
        first.write_bytes(b"not a sealed KEK")
    states = kek_states(LocalKeks(tmp_path, secret))  # a process that never opened version 1
    assert states[0].state == UNAVAILABLE
    problem = states[0].problem
    assert problem is not None
    assert problem.code == code
    said = refusal(problem)
    assert said.known
    english = translate("en", said.words.message, **said.words.params)
    assert "kek-000001.sealed" in english
    in_urdu = translate("ur", said.words.message, **said.words.params)
    assert urdu in in_urdu
    assert "restore" not in in_urdu
