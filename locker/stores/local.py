"""The embedded object store: a folder, one file per object, key segments as subfolders.

A write goes to a temporary file beside its target, is synced, then renamed over it: rename is
atomic, so a reader sees the old object or the whole new one, never part of one, and a crash
mid-write leaves only a temporary file, which no key can name (it starts with "."), so it is
never listed or served, and the orphan sweeper removes it once stale (`remove_scraps`).
Directories left empty by a delete are removed. (Should syncing the
folder fail after the rename, the put fails although the object is there: its database row is
never committed, so it is an orphan like any other, for the sweeper.)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

from locker.errors import ObjectMissing, StoreUnavailable
from locker.stores.protocol import ObjectStream, check_key, check_prefix, is_segment

READ_SIZE = 1024 * 1024
_TEMPORARY = ".tmp-"  # no key can name it (see protocol.py)

P = ParamSpec("P")
T = TypeVar("T")


class LocalStore:
    def __init__(self, root: Path, *, read_size: int = READ_SIZE) -> None:
        self._root = root
        self._read_size = read_size
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        file, temporary = self._create_temporary(path.parent, key)
        try:
            with file:
                written = 0
                for chunk in chunks:  # what the caller's iterator raises comes out unchanged
                    written += _io(key, file.write, chunk)
                _io(key, file.flush)
                _io(key, os.fsync, file.fileno())
            try:
                os.replace(temporary, path)
            except IsADirectoryError:
                raise ValueError(f"the key {key!r} names a folder of other objects") from None
            except OSError as error:
                raise StoreUnavailable(f"cannot store {key!r}: {error.strerror}") from error
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _io(key, _sync_directory, path.parent)
        return written

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            file = path.open("rb", buffering=0)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectMissing(f"no object {key!r}") from None
        except OSError as error:
            raise StoreUnavailable(f"cannot read {key!r}: {error.strerror}") from error
        return ObjectStream(self._blocks(file, key), file.close)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as error:
            raise StoreUnavailable(f"cannot delete {key!r}: {error.strerror}") from error
        self._remove_empty(path.parent)

    def exists(self, key: str) -> bool:
        return _io(key, self._path(key).is_file)

    def keys(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        folder, _, _ = prefix.rpartition("/")
        start = self._root.joinpath(*folder.split("/")) if folder else self._root
        for directory, subdirectories, files in os.walk(start):
            relative = Path(directory).relative_to(self._root).as_posix()
            base = "" if relative == "." else relative + "/"
            subdirectories[:] = [
                name
                for name in subdirectories
                if is_segment(name)
                and ((base + name + "/").startswith(prefix) or prefix.startswith(base + name + "/"))
            ]
            for name in files:
                if is_segment(name) and (base + name).startswith(prefix):
                    yield base + name

    def remove_scraps(self, prefix: str, before: datetime) -> int:
        """Remove temporary files under `prefix` last written before `before`: what a put
        killed mid-write left (a live put writes, so touches, its file all the while)."""
        check_prefix(prefix)
        removed = 0
        for directory, _subdirectories, files in os.walk(self._root):
            folder = Path(directory)
            relative = folder.relative_to(self._root).as_posix()
            base = "" if relative == "." else relative + "/"
            for name in files:
                if not name.startswith(_TEMPORARY) or not (base + name).startswith(prefix):
                    continue
                try:
                    if (folder / name).stat().st_mtime >= before.timestamp():
                        continue
                    (folder / name).unlink()
                except FileNotFoundError:  # renamed into place or removed meanwhile
                    continue
                except OSError as error:
                    raise StoreUnavailable(f"cannot remove {name!r}: {error.strerror}") from error
                removed += 1
                self._remove_empty(folder)
        return removed

    def _remove_empty(self, folder: Path) -> None:
        """Remove `folder` and its parents up to the root while they are empty."""
        for each in (folder, *folder.parents):
            if each == self._root or self._root not in each.parents:
                break
            try:
                each.rmdir()
            except OSError:  # not empty (or being filled by a put this very moment): keep it
                break

    def _path(self, key: str) -> Path:
        # check_key refuses "..", empty segments and a leading "/": the path stays under root.
        return self._root.joinpath(*check_key(key).split("/"))

    def _create_temporary(self, folder: Path, key: str) -> tuple[BinaryIO, Path]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(5):  # a delete may remove the (empty) folder between mkdir and open
            temporary = folder / f"{_TEMPORARY}{uuid.uuid4().hex}"
            try:
                _make_folders(folder)
                return os.fdopen(os.open(temporary, flags, 0o600), "wb"), temporary
            except FileNotFoundError:
                continue
            except (FileExistsError, NotADirectoryError):
                raise ValueError(f"the key {key!r} runs through another object") from None
            except OSError as error:
                raise StoreUnavailable(f"cannot store {key!r}: {error.strerror}") from error
        raise StoreUnavailable(f"cannot store {key!r}: its folder keeps disappearing")

    def _blocks(self, file: BinaryIO, key: str) -> Iterator[bytes]:
        while block := _io(key, file.read, self._read_size):
            yield block
        file.close()


def _io(key: str, operation: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a file operation, a failure of which means the store failed, not the caller."""
    try:
        return operation(*args, **kwargs)
    except OSError as error:
        raise StoreUnavailable(f"the store failed on {key!r}: {error.strerror}") from error


def _make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents, each synced into its parent: syncing a file
    and the folder it is renamed in does not make a new folder's own entry survive a power
    cut, and a lost folder would take a committed document with it."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        with contextlib.suppress(
            FileExistsError
        ):  # a put beside this one made it: sync all the same
            each.mkdir(mode=0o700)
        _sync_directory(each.parent)


def _sync_directory(folder: Path) -> None:
    """Make a rename in `folder` survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
