"""The pages' languages: English, in which the templates are written, and Urdu.

The province asks for e-services in the local language, so every page can be switched, and
the choice sticks (a cookie). Translations live in gettext catalogues
(`api/locale/<lang>/*.po`, one per part of the portal, read with Babel), the format
translators already work in; English needs none, since the
English text is the message id. A message that has no translation yet shows in English
rather than not at all, and a test holds the Urdu catalogue complete.

Words a route hands to a page (an error, a notice) are wrapped in `Text`, so they are
translated when the page is drawn, in the reader's language, and extracted like the
templates' `_("...")` calls (see `babel.cfg`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context

LOCALES = ("en", "ur")
DEFAULT = "en"
RIGHT_TO_LEFT = frozenset({"ur"})
NAMES = {"en": "English", "ur": "اردو"}
LANG_COOKIE = "shanakht_lang"
CATALOGUES = Path(__file__).parent / "locale"


@dataclass(frozen=True, slots=True)
class Text:
    """Words for a page, translated when drawn: `Text("Try again in %(s)s seconds.", s=30)`."""

    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, message: str, **params: Any) -> None:
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "params", params)

    def __str__(self) -> str:  # the English, for logs and for API callers
        return translate(DEFAULT, self.message, **self.params)

    def stored(self) -> dict[str, Any]:
        """As JSON keeps it (a job's problem, written by one replica and read by another):
        the message and its facts, a fact that is itself `Text` nested alike."""
        return {
            "message": self.message,
            "params": {
                k: {"text": v.stored()} if isinstance(v, Text) else v
                for k, v in self.params.items()
            },
        }

    @classmethod
    def restored(cls, kept: Any) -> Text | None:
        """`stored()` read back; None for anything else (an older or damaged record)."""
        if not isinstance(kept, dict) or not isinstance(kept.get("message"), str):
            return None
        params = kept.get("params")
        facts = {
            k: (cls.restored(v["text"]) or "") if isinstance(v, dict) and "text" in v else v
            for k, v in (params.items() if isinstance(params, dict) else ())
        }
        return cls(kept["message"], **facts)


@cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid -> msgstr for one language, read once (the files ship with the code)."""
    found: dict[str, str] = {}
    if lang == DEFAULT:
        return found
    for path in sorted((CATALOGUES / lang).glob("*.po")):
        with path.open("rb") as file:
            entries = read_po(file)
        found.update(
            (m.id, m.string)
            for m in entries
            if isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy
        )
    return found


def translate(lang: str, message: str, **params: Any) -> str:
    """`message` in `lang`, its %(name)s filled from `params` (a `Text` among them is said in
    `lang` too, such as a document type's name inside a sentence)."""
    words = catalogue(lang).get(message, message)
    if not params:
        return words
    return words % {name: localise(lang, value) for name, value in params.items()}


def localise(lang: str, words: object) -> object:
    """A route's words in the reader's language: `Text` is translated, anything else passes."""
    if isinstance(words, Text):
        return translate(lang, words.message, **words.params)
    return words


@pass_context
def gettext(context: Context, message: str | Text, **params: Any) -> str:
    """The templates' `_("...")` (or `_(text)` of a route's `Text`): the page's language
    comes from its context."""
    lang = context.get("lang", DEFAULT)
    if isinstance(message, Text):
        return translate(lang, message.message, **message.params)
    return translate(lang, message, **params)


def chosen(request: Request, cookie: str) -> str:
    """The reader's language: `?lang=`, then their earlier choice, then their browser's."""
    asked = request.query_params.get("lang") or request.cookies.get(cookie)
    if asked in LOCALES:
        return asked
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return DEFAULT


def direction(lang: str) -> str:
    return "rtl" if lang in RIGHT_TO_LEFT else "ltr"


def too_many_attempts(seconds: int) -> Text:
    """The one throttling message every form shows (with its Retry-After)."""
    return Text("Too many attempts. Try again in %(seconds)s seconds.", seconds=seconds)
