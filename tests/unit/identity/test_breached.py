"""The breached-password check reads a Pwned Passwords mirror (range files) and fails closed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from identity.breached import CANNOT_CHECK, PwnedPasswordsMirror
from identity.errors import BreachCorpusUnavailable

LEAKED = "Tr0ub4dor&3-leaked"


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


def write_mirror(
    folder: Path, counts: Mapping[str, int], unseen: Iterable[str] = (), extra: int = 40
) -> Path:
    """A mirror holding `counts` (password: times seen), with the two end files, the range
    files of the `unseen` passwords (without them), and in each range written `extra` lines of
    other digests, as a real range file has (sorted, CRLF)."""
    folder.mkdir(parents=True, exist_ok=True)
    ranges: dict[str, list[str]] = {"00000": [], "FFFFF": []}
    for password in unseen:
        ranges.setdefault(sha1(password)[:5], [])
    for password, count in counts.items():
        digest = sha1(password)
        ranges.setdefault(digest[:5], []).append(f"{digest[5:]}:{count}")
    for prefix, lines in ranges.items():
        for i in range(extra):
            lines.append(f"{sha1(f'{prefix}{i}')[5:]}:{i + 1}")
        (folder / f"{prefix}.txt").write_bytes("\r\n".join(sorted(lines)).encode() + b"\r\n")
    return folder


def test_a_password_in_the_corpus_is_seen_and_others_are_not(tmp_path: Path) -> None:
    mirror = PwnedPasswordsMirror(write_mirror(tmp_path / "pwned", {LEAKED: 3}))
    assert mirror.seen(LEAKED)
    # Its range file holds other digests: one of them must not make this password seen.
    unseen = "Unseen-Pass#91"
    write_mirror(tmp_path / "pwned", {}, unseen=[unseen])
    assert not mirror.seen(unseen)


def test_a_suffix_that_is_only_a_prefix_of_a_line_does_not_match(tmp_path: Path) -> None:
    folder = write_mirror(tmp_path / "pwned", {})
    digest = sha1(LEAKED)
    # A line whose first 35 digits differ only in the last: a startswith() check would pass.
    other = digest[5:-1] + ("0" if digest[-1] != "0" else "1")
    (folder / f"{digest[:5]}.txt").write_text(f"{other}:7\n")
    assert not PwnedPasswordsMirror(folder).seen(LEAKED)


def test_lower_case_lines_and_padding_lines_are_read_as_the_corpus_means_them(
    tmp_path: Path,
) -> None:
    folder = write_mirror(tmp_path / "pwned", {})
    digest = sha1(LEAKED)
    (folder / f"{digest[:5]}.txt").write_text(f"{digest[5:].lower()}:2\n")
    assert PwnedPasswordsMirror(folder).seen(LEAKED)
    # The range API pads its answers with lines counted 0: those were never seen.
    (folder / f"{digest[:5]}.txt").write_text(f"{digest[5:]}:0\n")
    assert not PwnedPasswordsMirror(folder).seen(LEAKED)


def test_a_missing_range_file_fails_closed(tmp_path: Path) -> None:
    mirror = PwnedPasswordsMirror(write_mirror(tmp_path / "pwned", {}))
    with pytest.raises(BreachCorpusUnavailable) as refused:
        mirror.seen(LEAKED)
    assert str(refused.value) == CANNOT_CHECK


@pytest.mark.parametrize("missing", ["00000.txt", "FFFFF.txt"])
def test_a_folder_without_both_end_files_is_not_a_mirror(tmp_path: Path, missing: str) -> None:
    folder = write_mirror(tmp_path / "pwned", {})
    (folder / missing).unlink()
    with pytest.raises(ValueError, match=f"not a Pwned Passwords mirror \\(no {missing}\\)"):
        PwnedPasswordsMirror(folder)
