"""The pages' multipart reader: fields and the file come out the same however the body is cut
into chunks; the file's bytes come out only once the fields before it are read, and the file
ends only with the form's closing boundary; every malformed or oversized form is BrokenForm;
and memory stays at a few blocks however large the file is."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
from starlette.requests import Request

from api.form_stream import (
    BLOCK,
    BrokenForm,
    FilePart,
    FileTooLarge,
    FormStream,
    Parts,
)

BOUNDARY = "----shanakht-test-boundary"
Part = tuple[str, str | None, bytes]  # name, filename (None for a text field), content


def field(name: str, value: str) -> Part:
    return (name, None, value.encode())


def upload(name: str, filename: str, content: bytes) -> Part:
    return (name, filename, content)


def encode(parts: Iterable[Part], *, close: bool = True) -> bytes:
    out = bytearray()
    for name, filename, content in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        if filename is None:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        else:
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
        out += content + b"\r\n"
    if close:
        out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def cut(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def request(
    chunks: Iterable[bytes], content_type: str = f"multipart/form-data; boundary={BOUNDARY}"
) -> Request:
    """A request whose body arrives as `chunks`, one message each, as a server sends it."""
    pieces = iter(chunks)

    async def receive() -> dict[str, Any]:
        piece = next(pieces, None)
        if piece is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": piece, "more_body": True}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", content_type.encode())],
    }
    return Request(scope, receive)


def streamed(chunks: Iterable[bytes], **options: Any) -> tuple[dict[str, str], FilePart, bytes]:
    """Head on the event loop, then the content in a worker thread, as the pages read it."""

    async def main() -> tuple[dict[str, str], FilePart, bytes]:
        form = FormStream(request(chunks), max_fields=4, **options)
        fields, part = await form.head()
        assert part is not None
        content = await anyio.to_thread.run_sync(lambda: b"".join(form.content()))
        return fields, part, content

    return anyio.run(main)


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await make()

    return anyio.run(main)


DOCUMENT = b"%PDF-1.7\n" + os.urandom(200_000) + b"\r\n--not-the-boundary\r\n%%EOF"
FORM = [field("csrf", "token"), field("title", "Degree, ڈگری"), upload("file", "a.pdf", DOCUMENT)]


@pytest.mark.parametrize("size", [1, 7, 100, 4096, 65_536, 10**9])
def test_fields_and_file_come_out_the_same_however_the_body_is_cut(size: int) -> None:
    body = encode(FORM)
    chunks = cut(body, size) if size > 1 else cut(body[:5000], 1) + cut(body[5000:], 65_536)
    fields, part, content = streamed(chunks)
    assert fields == {"csrf": "token", "title": "Degree, ڈگری"}
    assert part == FilePart("file", "a.pdf", "application/pdf")
    assert content == DOCUMENT


def test_nothing_of_the_file_is_taken_before_the_head_is_read() -> None:
    parts = Parts(BOUNDARY.encode(), max_fields=4)
    body = encode(FORM)
    header_end = body.index(b"%PDF")
    parts.feed(body[:header_end])
    assert parts.fields == {"csrf": "token", "title": "Degree, ڈگری"}
    assert parts.file == FilePart("file", "a.pdf", "application/pdf")
    assert parts.take() == b""
    parts.feed(body[header_end:])
    assert parts.take() == DOCUMENT
    assert parts.ended


@pytest.mark.parametrize(
    "body",
    [
        encode(FORM, close=False),  # no closing boundary
        encode(FORM)[:-100],  # cut inside the file
        encode(FORM)[: -len(f"--{BOUNDARY}--\r\n") - 2],  # cut just before the boundary
    ],
)
def test_a_file_cut_short_never_ends_well(body: bytes) -> None:
    with pytest.raises(BrokenForm):
        streamed(cut(body, 65_536))


def test_the_file_ends_only_after_the_closing_boundary() -> None:
    """Every byte of the file can have come out while the form is still to end: the reader
    gets no end of the file until the boundary that ends the form has arrived."""
    body = encode(FORM)
    seen: list[str] = []

    async def main() -> None:
        form = FormStream(request(cut(body, 65_536)), max_fields=4)
        await form.head()

        def consume() -> None:
            for block in form.content():
                seen.append(f"{len(block)}")
            seen.append("end")

        await anyio.to_thread.run_sync(consume)

    anyio.run(main)
    assert seen[-1] == "end"
    assert sum(int(n) for n in seen[:-1]) == len(DOCUMENT)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (encode([*FORM, field("late", "x")]), "follows the file"),
        (encode([*FORM, upload("file", "b.pdf", b"%PDF")]), "follows the file"),
        (encode([upload("a", "a.pdf", b"1"), upload("file", "b.pdf", b"2")]), "follows"),
        (encode([field(f"f{i}", "x") for i in range(5)]), "more than 4 fields"),
        (encode([field("title", "x" * 70_000)]), "more than 65536 bytes"),
        (b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n", "no name"),
        (b"--" + BOUNDARY.encode() + b"\r\nno colon here\r\n\r\n", "well-formed"),
        (b"this is not multipart at all", "well-formed"),
        (b"", "ended before"),
    ],
)
def test_a_form_the_pages_do_not_take_is_broken(body: bytes, says: str) -> None:
    with pytest.raises(BrokenForm, match=says):
        streamed(cut(body, 1000) if body else [])


def test_only_a_multipart_form_with_a_boundary_is_read() -> None:
    for content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=" + "x" * 300,
    ):
        with pytest.raises(BrokenForm):
            FormStream(request([], content_type), max_fields=4)


def test_a_client_that_goes_away_has_broken_its_form() -> None:
    body = encode(FORM)
    sent = iter([body[:1000], body[1000:5000]])

    async def receive() -> dict[str, Any]:
        piece = next(sent, None)
        if piece is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": piece, "more_body": True}

    scope = {
        "type": "http", "method": "POST", "path": "/",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }  # fmt: skip

    async def main() -> None:
        form = FormStream(Request(scope, receive), max_fields=4)
        await form.head()
        await anyio.to_thread.run_sync(lambda: b"".join(form.content()))

    with pytest.raises(BrokenForm, match="went away"):
        anyio.run(main)


def test_the_whole_form_in_memory_takes_fields_after_the_file_and_a_limit() -> None:
    body = encode([upload("file", "a.pdf", DOCUMENT), field("csrf", "token")])

    def whole(limit: int) -> tuple[dict[str, str], FilePart | None, bytes]:
        form = FormStream(request(cut(body, 4096)), max_fields=2, fields_after_file=True)
        return run(lambda: form.whole(limit))

    fields, part, data = whole(len(DOCUMENT))
    assert (fields, part, data) == (
        {"csrf": "token"},
        FilePart("file", "a.pdf", "application/pdf"),
        DOCUMENT,
    )
    with pytest.raises(FileTooLarge):
        whole(len(DOCUMENT) - 1)
    no_file = FormStream(request([encode([field("csrf", "t")])]), max_fields=2)
    assert run(lambda: no_file.whole(10)) == ({"csrf": "t"}, None, b"")


def test_drain_reads_what_is_left_up_to_its_limit() -> None:
    taken: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            taken.append(1)
            yield b"x" * 1000

    form = FormStream(request(chunks()), max_fields=4)
    run(lambda: form.drain(2500))
    assert len(taken) == 3  # up to the limit, and no further


def test_memory_stays_bounded_for_a_50_mb_file() -> None:
    """A generated 50 MB body, sent in 64 KiB chunks, read as the pages read it: the peak of
    what the reader allocates stays at a few blocks, far under the body's size."""
    size = 50 * 1024 * 1024
    piece = os.urandom(65_536)
    head = (
        encode([field("csrf", "token")], close=False)
        + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
    )

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(size // len(piece)):
            yield piece
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    async def main() -> int:
        form = FormStream(request(chunks()), max_fields=4)
        await form.head()
        return await anyio.to_thread.run_sync(lambda: sum(len(b) for b in form.content()))

    tracemalloc.start()
    try:
        total = anyio.run(main)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == size
    assert peak < 8 * BLOCK, f"peak {peak / 2**20:.1f} MiB"
