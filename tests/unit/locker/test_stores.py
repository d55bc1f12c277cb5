"""One contract, two stores: the same tests on the local folder and on S3 through boto3 against
a real S3 API server over HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker.errors import ObjectMissing, StoreUnavailable
from locker.stores import LocalStore, ObjectStore
from tests.s3_server import free_port, s3_store
from tests.unit.locker.conftest import Backend

MIB = 1024 * 1024


class Boom(Exception):
    """What a caller's iterator raises midway through a put."""


def pieces(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """`size` random bytes, made a piece at a time so the test holds none of it whole."""
    for start in range(0, size, piece):
        yield os.urandom(min(piece, size - start))


def failing_after(size: int) -> Iterator[bytes]:
    yield from pieces(size)
    raise Boom


def read(store: ObjectStore, key: str) -> bytes:
    return b"".join(store.get(key))


def test_put_get_round_trip(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    assert store.put("documents/a/1", [data[:1], data[1:70_000], b"", data[70_000:]]) == len(data)
    assert store.exists("documents/a/1")
    assert read(store, "documents/a/1") == data


def test_an_empty_object(store: ObjectStore) -> None:
    assert store.put("empty", []) == 0
    assert store.exists("empty")
    assert read(store, "empty") == b""


def test_put_replaces(store: ObjectStore) -> None:
    store.put("k", [b"old"])
    store.put("k", [b"new"])
    assert read(store, "k") == b"new"


def test_missing_object(store: ObjectStore) -> None:
    assert not store.exists("nothing/here")
    with pytest.raises(ObjectMissing):
        store.get("nothing/here")  # raised at once, before a block is asked for
    store.delete("nothing/here")  # not an error


def test_delete(backend: Backend) -> None:
    store = backend.store
    store.put("a/b/c", [b"x"])
    store.put("a/d", [b"y"])
    store.delete("a/b/c")
    assert not store.exists("a/b/c")
    assert store.exists("a/d")
    assert backend.leftovers() == ["a/d"]
    with pytest.raises(ObjectMissing):
        store.get("a/b/c")


def test_keys_by_prefix(store: ObjectStore) -> None:
    for key in ["a/1", "a/2", "ab/3", "b/4", "a/x/5"]:
        store.put(key, [b"."])
    assert set(store.keys()) == {"a/1", "a/2", "ab/3", "b/4", "a/x/5"}
    assert set(store.keys("a/")) == {"a/1", "a/2", "a/x/5"}
    assert set(store.keys("a")) == {"a/1", "a/2", "ab/3", "a/x/5"}
    assert set(store.keys("a/x")) == {"a/x/5"}
    assert list(store.keys("c")) == []


def test_big_object_streams_in_flat_memory(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    """20 MB through put (a multipart upload on S3) and get, while Python's allocations stay
    under half the object: nothing holds it whole."""
    size = 20 * MIB
    store, written = backend.store, hashlib.sha256()

    def source() -> Iterator[bytes]:
        for piece in pieces(size):
            written.update(piece)
            yield piece

    tracemalloc.start()
    try:
        assert store.put("big", source()) == size
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        got, count = hashlib.sha256(), 0
        for block in store.get("big"):
            got.update(block)
            count += len(block)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (count, got.digest()) == (size, written.digest())
    assert put_peak < size / 2, f"put peaked at {put_peak / MIB:.1f} MiB"
    assert get_peak < size / 8, f"get peaked at {get_peak / MIB:.1f} MiB"
    if backend.name == "s3":  # S3 says how an object was uploaded: a multipart ETag ends "-N"
        etag = request.getfixturevalue("s3_admin").head_object(Bucket=backend.bucket, Key="big")
        assert etag["ETag"].endswith('-3"')  # 8 + 8 + 4 MiB


@pytest.mark.parametrize("fail_after", [0, 100_000, 17 * MIB])  # 17 MiB: after two S3 parts
def test_failed_put_leaves_nothing(backend: Backend, fail_after: int) -> None:
    with pytest.raises(Boom):
        backend.store.put("doomed", failing_after(fail_after))
    assert not backend.store.exists("doomed")
    assert backend.leftovers() == []


def test_failed_put_keeps_the_previous_object(backend: Backend) -> None:
    backend.store.put("kept", [b"before"])
    with pytest.raises(Boom):
        backend.store.put("kept", failing_after(9 * MIB))
    assert read(backend.store, "kept") == b"before"
    assert backend.leftovers() == ["kept"]


BAD_KEYS = [
    "",
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a//b",
    "a/",
    ".hidden",
    "a/./b",
    "a\\b",
    "a b",
    "ä",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match=r"object key"):
        store.put(key, [b"x"])
    for operation in (store.get, store.delete, store.exists):
        with pytest.raises(ValueError, match=r"object key"):
            operation(key)


@pytest.mark.parametrize("prefix", ["../", "a/../", "/", ".x"])
def test_bad_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError, match=r"prefix"):
        list(store.keys(prefix))


def test_local_paths_stay_under_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    for key in ["../escape", "a/../../escape", "/tmp/escape"]:  # noqa: S108
        with pytest.raises(ValueError, match=r"object key"):
            store.put(key, [b"x"])
    assert [p.name for p in tmp_path.iterdir()] == ["root"]
    assert list((tmp_path / "root").iterdir()) == []


def test_local_key_through_an_object(tmp_path: Path) -> None:
    """A folder cannot also be a file: a local store refuses what S3 would allow."""
    store = LocalStore(tmp_path)
    store.put("a", [b"x"])
    with pytest.raises(ValueError, match="runs through another object"):
        store.put("a/b", [b"y"])
    store.put("c/d", [b"x"])
    with pytest.raises(ValueError, match="names a folder"):
        store.put("c", [b"y"])
    assert sorted(store.keys()) == ["a", "c/d"]


def test_local_new_folders_are_synced_into_their_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut after the commit must not lose the folder a new object went into: each
    folder a put makes is synced into its parent, and the object's own folder after the
    rename."""
    from locker.stores import local

    root = tmp_path / "root"
    store = LocalStore(root)
    synced: list[Path] = []
    monkeypatch.setattr(local, "_sync_directory", synced.append)
    store.put("a/b/c", [b"x"])
    assert synced == [root, root / "a", root / "a" / "b"]
    synced.clear()
    store.put("a/b/d", [b"y"])
    assert synced == [root / "a" / "b"], "an existing folder is not synced again"


def test_local_temporary_files_are_not_keys(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", [b"x"])
    (tmp_path / "a" / ".tmp-left-by-a-crash").write_bytes(b"partial")
    assert list(store.keys()) == ["a/b"]


def open_descriptors(path: Path) -> int:
    """How many of this process's file descriptors are open on `path`."""
    count = 0
    for descriptor in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own, for one)
            count += os.readlink(f"/proc/self/fd/{descriptor}") == str(path)
    return count


def test_local_stream_closes_its_file_when_dropped(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", [b"x" * 10])
    stream = store.get("k")
    assert open_descriptors(tmp_path / "k") == 1
    del stream  # never read: the file must still be closed (and no ResourceWarning)
    assert open_descriptors(tmp_path / "k") == 0
    stream = store.get("k")
    assert next(stream) == b"x" * 10
    assert list(stream) == []
    assert open_descriptors(tmp_path / "k") == 0  # read to its end: closed at once


def test_s3_unreachable_is_unavailable() -> None:
    store = s3_store(
        f"http://127.0.0.1:{free_port()}", "no-server", max_attempts=1, connect_timeout=1
    )
    with pytest.raises(StoreUnavailable, match="did not answer"):
        store.put("k", [b"x"])
    with pytest.raises(StoreUnavailable):
        store.get("k")
    with pytest.raises(StoreUnavailable):
        store.exists("k")
    with pytest.raises(StoreUnavailable):
        list(store.keys())


class _Failing(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint in trouble: every request is answered 503 SlowDown."""

    def _fail(self) -> None:
        body = b"<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>"
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_s3_server_errors_are_unavailable() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = s3_store(f"http://127.0.0.1:{server.server_port}", "bucket", max_attempts=1)
        with pytest.raises(StoreUnavailable, match="ServiceUnavailable"):
            store.put("k", [b"x"])
        with pytest.raises(StoreUnavailable, match="ServiceUnavailable"):
            store.get("k")
        with pytest.raises(StoreUnavailable, match="503"):
            store.exists("k")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
