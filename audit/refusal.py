"""The base of every domain error a person may be shown (identity, locker and signing derive
theirs from it; `audit` is the package they all may import)."""

from __future__ import annotations


class RefusalError(Exception):
    """A refusal kept as data as well as words, so that a page can say it in its reader's
    language: `code` names what was refused (stable, such as "consent.expired"; a class may set
    one for all its cases), `field` the form field it is about (None if none) and `facts` the
    values its sentence names. `str(exc)` stays the English sentence, for logs, the CLI and the
    API's problem details.
    """

    code: str | None = None
    field: str | None = None

    def __init__(
        self, *args: object, code: str | None = None, field: str | None = None, **facts: object
    ) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code
        if field is not None:
            self.field = field
        self.facts: dict[str, object] = facts
