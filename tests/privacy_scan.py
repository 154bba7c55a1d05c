"""Search files for full identifiers: "an SD card taken from a kiosk reveals no document
number" (issue 14, docs/privacy.md), as a check any test or scenario can call.

    from tests.privacy_scan import assert_no_identifiers
    assert_no_identifiers([state_dir, log_file, bundle], ["001185012345", "URN:UVCI:01:..."])

Every byte of every file is searched (folders recursively; a SQLite file's ``-wal`` and
``-shm`` beside it are added; a tar archive, gzipped or not, is searched member by member
as well as whole), for each identifier in its common spellings: as given, upper and lower
case, digits only, and digits in groups of 3 and of 4 separated by spaces, dashes or dots,
each in UTF-8 and UTF-16-LE (SQLite may store text as UTF-16).
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# A spelling shorter than this is not searched: it would match by chance (a year, a count).
MIN_LENGTH = 6


@dataclass(frozen=True)
class Hit:
    """One identifier found: in which file (``archive!member`` inside a tar), which
    spelling, at which byte."""

    where: str
    identifier: str
    spelling: str
    offset: int

    def __str__(self) -> str:
        return f"{self.where}: {self.identifier!r} as {self.spelling!r} at byte {self.offset}"


def spellings(identifier: str) -> set[str]:
    """The ways ``identifier`` may be written (see the module text)."""
    text = identifier.strip()
    found = {text, text.upper(), text.lower()}
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) >= MIN_LENGTH:
        found.add(digits)
        for size in (3, 4):
            groups = [digits[i:i + size] for i in range(0, len(digits), size)]
            for sep in (" ", "-", "."):
                found.add(sep.join(groups))
    return {s for s in found if len(s) >= MIN_LENGTH}


def _files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() \
            else [path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")]
        for file in candidates:
            if file.is_file() and file not in seen:
                seen.add(file)
                yield file


def _blobs(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The bytes of a file, and of its members if it is a (gzipped) tar archive."""
    yield name, data
    raw = data
    if data[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError):
            return
        yield f"{name}!gunzip", raw
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive.getmembers():
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    yield from _blobs(f"{name}!{member.name}", handle.read())
    except tarfile.TarError:
        return


def find_identifiers(paths: Iterable[str | os.PathLike[str]],
                     identifiers: Iterable[str]) -> list[Hit]:
    """Every place one of ``identifiers`` occurs in the files under ``paths``."""
    needles = [(identifier, spelling, encoded)
               for identifier in dict.fromkeys(identifiers)
               for spelling in sorted(spellings(identifier))
               for encoded in (spelling.encode("utf-8"), spelling.encode("utf-16-le"))]
    hits = []
    for file in _files(paths):
        for where, data in _blobs(str(file), file.read_bytes()):
            for identifier, spelling, encoded in needles:
                offset = data.find(encoded)
                if offset >= 0:
                    hits.append(Hit(where, identifier, spelling, offset))
    return hits


def assert_no_identifiers(paths: Iterable[str | os.PathLike[str]],
                          identifiers: Iterable[str]) -> None:
    """AssertionError listing every full identifier found under ``paths``."""
    identifiers = list(identifiers)
    assert identifiers, "no identifiers to look for: the check would prove nothing"
    files = list(_files(paths))
    assert files, f"no files under {list(map(str, paths))!r}: the check would prove nothing"
    hits = find_identifiers(files, identifiers)
    assert not hits, "full identifiers at rest:\n" + "\n".join(map(str, hits[:50]))
