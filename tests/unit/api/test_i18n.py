"""The Urdu catalogue is complete, and its translations keep every placeholder."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from api import i18n

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _extracted() -> set[str]:
    """Every message the pages can show: the templates' _("...") and the routes' Text("...")."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = extract_from_dir(
        ROOT / "api",
        method_map,
        keywords={"_": None, "Text": None},
        options_map={"templates/**.html": {}},
    )
    return {m for _file, _line, m, _comments, _context in found if isinstance(m, str) and m}


def test_every_page_message_has_an_urdu_translation() -> None:
    urdu = i18n.catalogue("ur")
    missing = sorted(m for m in _extracted() if m not in urdu)
    assert missing == [], "\n".join(missing)


def test_translations_keep_their_placeholders() -> None:
    for message, words in i18n.catalogue("ur").items():
        assert sorted(PLACEHOLDER.findall(message)) == sorted(PLACEHOLDER.findall(words)), message


def test_text_reads_in_the_chosen_language_and_falls_back_to_english() -> None:
    seconds = i18n.too_many_attempts(30)
    assert str(seconds) == "Too many attempts. Try again in 30 seconds."
    urdu = i18n.localise("ur", seconds)
    assert isinstance(urdu, str)
    assert "30" in urdu
    assert urdu != str(seconds)
    assert i18n.translate("ur", "words nobody translated") == "words nobody translated"


def test_only_paths_on_this_service_are_followed() -> None:
    from api.web import local_path

    assert local_path("/documents?x=1") == "/documents?x=1"
    for hostile in [
        "https://evil.example",
        "//evil.example",
        "/\\\\evil.example",
        "/\t/evil",
        "",
        None,
    ]:
        assert local_path(hostile) == "/"
