"""People under quarantine orders (F0/F1) whom the checkpoint must stop.

The document holds salted SHA-256 hashes of identity numbers, never the numbers themselves:
``{"version": 1, "issued_at": ISO8601, "expires_at": ISO8601, "salt": hex,
"entries": [{"h": hex(sha256(salt + key)), "until": "YYYY-MM-DD"}]}``.
An entry applies through its ``until`` date inclusive (Vietnam local date).

The hash is over the normalised number alone, not its type: the same CCCD number is the
person's identification number on the CCCD card, in PC-Covid / VNeID and on paper forms, so
one entry must stop every code that carries it (docs/credentials.md, "Identifiers").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kiosk.domain.credentials.identifiers import normalize, type_of
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

# Quarantine orders are dated in Vietnam (UTC+7 all year, no daylight saving).
VIETNAM = timezone(timedelta(hours=7), "ICT")
VERSION = 1


def local_date(at: datetime) -> date:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(VIETNAM).date()


class Watchlist:
    """Salted hashes of person keys with end dates; ``matches`` is a dict lookup."""

    def __init__(
        self,
        *,
        salt: bytes,
        entries: dict[str, date],
        issued_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.salt = salt
        self._entries = entries
        self.issued_at = issued_at
        self.expires_at = expires_at

    def __len__(self) -> int:
        return len(self._entries)

    def digest(self, number: str) -> str:
        return _digest(self.salt, number)

    def matches(self, person_key: str | None, *, at: datetime) -> bool:
        """True when ``person_key`` is under an order that has not ended at ``at``."""
        return self.matches_any([person_key] if person_key else [], at=at)

    def matches_any(self, numbers: Iterable[str], *, at: datetime) -> bool:
        """True when any of ``numbers`` is under an order that has not ended at ``at``."""
        today = local_date(at)
        for number in numbers:
            until = self._entries.get(self.digest(number)) if number else None
            if until is not None and today <= until:
                return True
        return False

    def is_stale(self, at: datetime) -> bool:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at > self.expires_at

    @classmethod
    def from_json(cls, data: bytes | str) -> Watchlist:
        """Parse the document; raises :class:`ConfigError` naming the bad member."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"watchlist is not valid JSON: {e}") from e
        if not isinstance(doc, dict):
            raise ConfigError(f"watchlist is a JSON {type(doc).__name__}, expected an object")
        if doc.get("version") != VERSION:
            raise ConfigError(
                f"watchlist.version is {doc.get('version')!r}; this kiosk reads version {VERSION}"
            )
        issued_at = _timestamp(doc, "issued_at")
        expires_at = _timestamp(doc, "expires_at")
        if expires_at < issued_at:
            raise ConfigError(
                f"watchlist.expires_at {doc['expires_at']!r} is before issued_at "
                f"{doc['issued_at']!r}; a list that expired when issued stops nobody"
            )
        try:
            salt = bytes.fromhex(doc["salt"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"watchlist.salt {doc.get('salt')!r} is not a hex string; "
                "it must be the hex of the salt bytes"
            ) from e
        raw_entries = doc.get("entries")
        if not isinstance(raw_entries, list):
            raise ConfigError(f"watchlist.entries is {raw_entries!r}, expected an array")
        entries: dict[str, date] = {}
        for i, entry in enumerate(raw_entries):
            try:
                digest = str(entry["h"]).lower()
                # A digest of the wrong length can never match anyone: a silent hole.
                if len(bytes.fromhex(digest)) != hashlib.sha256().digest_size:
                    raise ValueError("not a SHA-256 digest")
                until = date.fromisoformat(entry["until"])
            except (KeyError, TypeError, ValueError) as e:
                raise ConfigError(
                    f"watchlist.entries[{i}] is {entry!r}; expected "
                    '{"h": "<hex sha256>", "until": "YYYY-MM-DD"}'
                ) from e
            # The same person under two orders: the later end date wins.
            entries[digest] = max(until, entries.get(digest, until))
        return cls(salt=salt, entries=entries, issued_at=issued_at, expires_at=expires_at)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Watchlist:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read the watchlist {str(path)!r}: {e.strerror}") from e
        try:
            return cls.from_json(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e

    @staticmethod
    def build(
        keys_with_until: Iterable[tuple[str, date]],
        salt: bytes | None = None,
        *,
        issued_at: datetime | None = None,
        expires_at: datetime | None = None,
        valid_for: timedelta = timedelta(days=1),
    ) -> bytes:
        """The JSON document for ``(person_key, until)`` pairs (central server and tests)."""
        salt = secrets.token_bytes(16) if salt is None else salt
        issued_at = issued_at or datetime.now(UTC)
        expires_at = expires_at or issued_at + valid_for
        doc: dict[str, Any] = {
            "version": VERSION,
            "issued_at": issued_at.isoformat(),
            "expires_at": expires_at.isoformat(),
            "salt": salt.hex(),
            "entries": [
                {"h": _digest(salt, key), "until": until.isoformat()}
                for key, until in keys_with_until
            ],
        }
        return json.dumps(doc).encode()


@dataclass(frozen=True)
class BadLine:
    """A line of a numbers file that is not a full identity number."""

    number: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.text!r} {self.why}"


SHAPES = ("CCCD 12 digits, CMND 9, BHXH 10, BHYT card 2 letters + 13 digits, QID 10-24 digits, "
          "passport 6-16 letters and digits, or a UVCI")


def read_numbers(text: str) -> tuple[list[tuple[str, str]], list[BadLine]]:
    """``(type, number)`` for each line of a numbers file, and the lines that are not numbers.

    One identity number a line; blank lines and lines starting with ``#`` are ignored.  A
    ``#`` later in a line is part of the number (a UVCI holds one), so there are no trailing
    comments.  Spaces inside a number are dropped (``0011 8501 2345``).
    """
    numbers: list[tuple[str, str]] = []
    bad: list[BadLine] = []
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        number = normalize(stripped)
        kind = type_of(number)
        if kind is None:
            why = ("is masked: a number with '*' identifies nobody" if "*" in number
                   else f"is not a full identity number ({SHAPES})")
            bad.append(BadLine(i, stripped[:80], why))
        else:
            numbers.append((kind, number))
    return numbers, bad


def _digest(salt: bytes, number: str) -> str:
    return hashlib.sha256(salt + normalize(number).encode("utf-8")).hexdigest()


def _timestamp(doc: dict[str, Any], key: str) -> datetime:
    value = doc.get(key)
    problem = f"watchlist.{key} is {value!r}, expected an ISO 8601 time"
    if not isinstance(value, str):
        raise ConfigError(problem)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise ConfigError(problem) from e
    return at if at.tzinfo else at.replace(tzinfo=UTC)
