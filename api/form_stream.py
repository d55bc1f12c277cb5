"""Multipart forms read part by part as they arrive, for the pages that take a file.

Starlette's form parser spools a file part of over 1 MB to a temporary file, in plaintext,
before the route sees it (threat model item 15): a citizen's document or a department's batch
lay unencrypted on the disk while the request lasted, and in its free blocks after. Here
python-multipart's streaming parser (the one Starlette drives) calls back with each part's
bytes, and a file's go straight to whoever reads `FormStream.content`: the locker, which
encrypts them as they come, or `api.sealed_spool`. Nothing of the file is written anywhere in
plaintext, and memory stays at about one block of the body however large the file is.

A page's file is its form's last part: the text fields before it (the CSRF token among them)
are read and checked before a byte of the file is taken, so a form refused for them stores
nothing. Browsers send the parts in the order of the form's fields, and the pages put the file
last. A field after the file (which the page could no longer weigh), a second file, too many
fields, a field over FIELD_BYTES, a part that does not parse, and a body that ends before its
closing boundary are each `BrokenForm`, which the pages answer with their 400. `content` raises
it before it ends, so the locker, whose store writes all or nothing, keeps nothing of such a
body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anyio.from_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

MULTIPART = "multipart/form-data"
FIELD_BYTES = 64 * 1024  # a text field's value: a title is 200 characters, a token 43
BLOCK = 1024 * 1024  # the body a worker thread takes from the event loop at a time


class BrokenForm(Exception):
    """The body is not a form the page takes: not multipart, a part that does not parse, too
    many fields or files, a field too long or after the file, or a body cut short."""


class FileTooLarge(Exception):
    """`FormStream.whole`: the file passed the limit it was read to."""


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file part's headers: its field, the file's name and the type the browser gave it
    (lower case, without parameters; empty if none)."""

    name: str
    filename: str
    content_type: str


def _decode(raw: bytes) -> str:
    """As Starlette decodes names and values: UTF-8, or Latin-1 if it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class Parts:
    """The parser's callbacks made into text fields and one file's bytes: no I/O, so it is
    fed the body as it arrives (by `FormStream`, or directly by a test)."""

    def __init__(
        self,
        boundary: bytes,
        *,
        max_fields: int,
        field_bytes: int = FIELD_BYTES,
        fields_after_file: bool = False,
    ) -> None:
        self.fields: dict[str, str] = {}
        self.file: FilePart | None = None
        self.file_done = False
        self.ended = False
        self._max_fields, self._field_bytes = max_fields, field_bytes
        self._fields_after_file = fields_after_file
        self._count = 0
        self._in_file = False
        self._name = ""
        self._value = bytearray()
        self._data = bytearray()  # the file's bytes not taken yet
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value_data,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except (FormParserError, ValueError) as exc:
            raise BrokenForm("the multipart boundary is not usable") from exc

    def feed(self, chunk: bytes) -> None:
        """Parse the next piece of the body; what follows the closing boundary is ignored."""
        if self.ended:
            return
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise BrokenForm("the body is not a well-formed multipart form") from exc

    def take(self) -> bytes:
        """The file's bytes parsed since the last call."""
        data = bytes(self._data)
        self._data.clear()
        return data

    # -- the parser's callbacks ----------------------------------------------------------------

    def _part_begin(self) -> None:
        if self.file_done and not self._fields_after_file:
            raise BrokenForm("a part follows the file")
        self._headers.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).strip().lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise BrokenForm("a part has no name")
        name = _decode(options[b"name"])
        if b"filename" in options:
            if self.file is not None:
                raise BrokenForm("more than one file")
            kind, _ = parse_options_header(self._headers.get(b"content-type", b""))
            self.file = FilePart(name, _decode(options[b"filename"]), kind.decode("latin-1"))
            self._in_file = True
            return
        self._count += 1
        if self._count > self._max_fields:
            raise BrokenForm(f"more than {self._max_fields} fields")
        self._name = name
        self._value.clear()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._data += data[start:end]
            return
        if len(self._value) + end - start > self._field_bytes:
            raise BrokenForm(f"a field of more than {self._field_bytes} bytes")
        self._value += data[start:end]

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self.file_done = False, True
        else:
            self.fields[self._name] = _decode(bytes(self._value))

    def _end(self) -> None:
        self.ended = True


class FormStream:
    """A request's multipart form, read as it arrives: `head` on the event loop, then either
    `content` in a worker thread (a file that streams on) or `whole` (a small file, held)."""

    def __init__(
        self, request: Request, *, max_fields: int, fields_after_file: bool = False
    ) -> None:
        kind, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if kind.decode("latin-1") != MULTIPART or not boundary:
            raise BrokenForm("not a multipart form")
        self._parts = Parts(boundary, max_fields=max_fields, fields_after_file=fields_after_file)
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()
        self._exhausted = False

    async def _read(self, most: int) -> bytes:
        """At least one chunk of the body, up to about `most` bytes; b"" once it has all been
        read. A client that goes away has cut its form short."""
        block = bytearray()
        while len(block) < most and not self._exhausted:
            try:
                block += await self._chunks.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
            except ClientDisconnect:
                self._exhausted = True
                raise BrokenForm("the client went away before its form ended") from None
        return bytes(block)

    async def head(self) -> tuple[dict[str, str], FilePart | None]:
        """The text fields up to the file part, and its headers (None if the form has none):
        nothing of the file is taken yet but what arrived with its headers."""
        parts = self._parts
        while parts.file is None and not parts.ended:
            chunk = await self._read(1)
            if not chunk:
                raise BrokenForm("the body ended before the form did")
            parts.feed(chunk)
        return dict(parts.fields), parts.file

    def content(self) -> Iterator[bytes]:
        """The file's bytes as they arrive, for a worker thread of anyio's (it hops to the event
        loop for each block of the body). It ends only once the form has ended well, with its
        closing boundary; until then a reader has had no last byte to act on."""
        parts = self._parts
        while True:
            data = parts.take()
            if data:
                yield data
            if parts.ended:
                return
            block = anyio.from_thread.run(self._read, BLOCK)
            if not block:
                raise BrokenForm("the body ended before its closing boundary")
            parts.feed(block)

    async def whole(self, limit: int) -> tuple[dict[str, str], FilePart | None, bytes]:
        """The whole form held in memory: its fields, its file part (None if it has none) and
        the file's bytes, for a file small enough to hold; FileTooLarge once it passes `limit`."""
        parts = self._parts
        data = bytearray()
        while not parts.ended:
            chunk = await self._read(1)
            if not chunk:
                raise BrokenForm("the body ended before its closing boundary")
            parts.feed(chunk)
            data += parts.take()
            if len(data) > limit:
                raise FileTooLarge(f"the file is more than {limit} bytes")
        return dict(parts.fields), parts.file, bytes(data)

    async def drain(self, most: int) -> None:
        """Read what is left of the body and drop it, up to `most` bytes, so that a browser
        still sending it hears the page that refuses it (one that is no longer read from may
        see its connection reset instead); past `most`, stop."""
        seen = 0
        try:
            while seen <= most and (chunk := await self._read(1)):
                seen += len(chunk)
        except BrokenForm:
            return
