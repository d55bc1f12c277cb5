"""The bulk page's temporary spool: what it holds reads back whole and seekable (a ZIP opens
from it), its file holds only ciphertext and has no name, and a chunk altered, moved or cut
short fails to open rather than reading as other bytes."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.sealed_spool import CHUNK, TAG, SealedSpool, SpoolDamaged

MARKER = b"SPOOL-MARKER-7f3a9c"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "tmp"
    made.mkdir()
    return made


def _filled(folder: Path, data: bytes, piece: int = 10_000) -> SealedSpool:
    spool = SealedSpool(str(folder))
    for start in range(0, len(data), piece):
        spool.write(data[start : start + piece])
    spool.finish()
    return spool


def _on_disk(spool: SealedSpool) -> bytes:
    size = os.fstat(spool.fileno()).st_size
    return os.pread(spool.fileno(), size, 0)


@pytest.fixture
def content() -> bytes:
    """Three full chunks and a part of one, the marker in the second."""
    return os.urandom(CHUNK + 100) + MARKER + os.urandom(2 * CHUNK)


@pytest.fixture
def spool(folder: Path, content: bytes) -> Iterator[SealedSpool]:
    made = _filled(folder, content)
    yield made
    made.close()


def test_what_is_written_reads_back_whole_from_anywhere(spool: SealedSpool, content: bytes) -> None:
    assert spool.size == len(content)
    with spool.open() as reader:
        assert reader.read() == content
        assert reader.seekable()
        assert not reader.writable()
        for offset in (0, 5, CHUNK - 3, CHUNK, 2 * CHUNK + 7, len(content) - 1, len(content)):
            reader.seek(offset)
            assert reader.read(10) == content[offset : offset + 10]
        reader.seek(-4, io.SEEK_END)
        assert reader.read() == content[-4:]
    with spool.open() as one, spool.open() as two:  # each reader has its own position
        one.seek(CHUNK)
        assert two.read(3) == content[:3]
        assert one.read(3) == content[CHUNK : CHUNK + 3]


def test_the_file_holds_only_ciphertext_and_has_no_name(
    folder: Path, spool: SealedSpool, content: bytes
) -> None:
    written = _on_disk(spool)
    assert len(written) == len(content) + 4 * TAG
    assert MARKER not in written
    assert content[:64] not in written
    assert list(folder.iterdir()) == []  # unlinked as soon as it was made
    spool.close()
    assert spool.closed
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(spool.fileno())  # the descriptor is closed: the file is gone


def test_two_spools_of_the_same_content_share_no_ciphertext(folder: Path, content: bytes) -> None:
    one, two = _filled(folder, content), _filled(folder, content)
    try:
        assert _on_disk(one)[:CHUNK] != _on_disk(two)[:CHUNK]  # a key of each spool's own
    finally:
        one.close()
        two.close()


def test_an_empty_spool_reads_empty_and_a_chunk_sized_one_whole(folder: Path) -> None:
    for data in (b"", os.urandom(CHUNK), os.urandom(2 * CHUNK)):
        spool = _filled(folder, data, piece=CHUNK)
        with spool.open() as reader:
            assert reader.read() == data
        spool.close()


def test_a_zip_opens_from_it_as_zipfile_reads_it(folder: Path) -> None:
    buffer = io.BytesIO()
    members = {f"doc{i}.pdf": b"%PDF-" + os.urandom(50_000 + i) for i in range(5)}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    spool = _filled(folder, buffer.getvalue(), piece=7_777)
    try:
        with spool.open() as reader, zipfile.ZipFile(reader) as archive:
            assert archive.testzip() is None
            assert {n: archive.read(n) for n in reversed(archive.namelist())} == members
    finally:
        spool.close()


def _chunk_at(index: int) -> int:
    return index * (CHUNK + TAG)


def _read_all(spool: SealedSpool) -> bytes:
    with spool.open() as reader:
        return reader.read()


def test_an_altered_byte_fails_to_open(spool: SealedSpool) -> None:
    fd = spool.fileno()
    at = _chunk_at(1) + 10
    os.pwrite(fd, bytes([os.pread(fd, 1, at)[0] ^ 1]), at)
    with pytest.raises(SpoolDamaged, match="chunk 1"):
        _read_all(spool)
    with spool.open() as reader:  # what comes before the altered chunk still reads
        assert len(reader.read(CHUNK)) == CHUNK


def test_chunks_swapped_fail_to_open(spool: SealedSpool) -> None:
    fd = spool.fileno()
    first, second = os.pread(fd, CHUNK + TAG, _chunk_at(0)), os.pread(fd, CHUNK + TAG, _chunk_at(1))
    os.pwrite(fd, second, _chunk_at(0))
    os.pwrite(fd, first, _chunk_at(1))
    with pytest.raises(SpoolDamaged, match="chunk 0"):
        _read_all(spool)


@pytest.mark.parametrize("cut", [_chunk_at(3), _chunk_at(3) + 20, _chunk_at(2) + 5])
def test_a_file_cut_short_fails_to_open(spool: SealedSpool, cut: int) -> None:
    os.ftruncate(spool.fileno(), cut)
    with pytest.raises(SpoolDamaged):
        _read_all(spool)


def test_a_spool_cut_at_a_chunk_boundary_fails_even_where_its_length_is_believed(
    spool: SealedSpool,
) -> None:
    """Cut after two of its four chunks, and its length (which the spool keeps in memory)
    made to agree: chunk 1 was sealed as not the last, so it does not open as the last."""
    os.ftruncate(spool.fileno(), _chunk_at(2))
    spool.size, spool._chunks = 2 * CHUNK, 2  # the cut made whole
    with spool.open() as reader:
        assert len(reader.read(CHUNK)) == CHUNK  # chunk 0 is not the last either way
        with pytest.raises(SpoolDamaged, match="chunk 1"):
            reader.read()


def test_the_spool_is_read_only_once_finished(folder: Path) -> None:
    spool = SealedSpool(str(folder))
    try:
        spool.write(b"abc")
        with pytest.raises(ValueError, match="finish"):
            spool.open()
        spool.finish()
        with pytest.raises(ValueError, match="finished"):
            spool.write(b"more")
        reader = spool.open()
        spool.close()
        with pytest.raises(ValueError, match="closed"):
            reader.read()
        reader.close()
    finally:
        spool.close()
