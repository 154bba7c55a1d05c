"""People under quarantine orders (F0/F1) whom the checkpoint must stop.

The document holds a memory-hard hash (Argon2id) of each identity number, never the number:
``{"version": 2, "issued_at": ISO8601, "expires_at": ISO8601, "salt": hex,
"kdf": {"name": "argon2id", "version": 19, "time_cost": 1, "memory_kib": 12288,
"parallelism": 1}, "entries": [{"h": hex(argon2id(number, salt)), "until": "YYYY-MM-DD"}]}``.
An entry applies through its ``until`` date inclusive (Vietnam local date).

Why Argon2id and these costs: a 12-digit CCCD number whose province and birth year are known
has about a million candidates, so salted SHA-256 fell in half a second. One Argon2id hash
costs ~5 ms here, so reversing an entry costs >= 1 CPU-hour even then, while a scan carrying
four numbers still matches in ~20 ms (docs/privacy.md has the threat model and figures,
bench/watchlist_kdf.py measures them). The salt is per list: a per-entry salt would make
every scan hash every entry.

The hash is over the normalised number alone, not its type: the same CCCD number is the
person's identification number on the CCCD card, in PC-Covid / VNeID and on paper forms, so
one entry must stop every code that carries it (docs/credentials.md, "Identifiers").
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw

from kiosk.domain.credentials.identifiers import normalize, type_of
from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

# Quarantine orders are dated in Vietnam (UTC+7 all year, no daylight saving).
VIETNAM = timezone(timedelta(hours=7), "ICT")
VERSION = 2
HASH_BYTES = 32
MIN_SALT_BYTES = 16
# A scan hashes each distinct number it carries (a PC-Covid code: up to four). More than
# this comes only from a hostile code; the rest are not matched and the scan stays fast.
MAX_NUMBERS_PER_SCAN = 8


@dataclass(frozen=True)
class KdfParams:
    """The Argon2id costs a watchlist document was made with (its ``kdf`` member)."""

    name: str = "argon2id"
    version: int = 19  # Argon2 1.3 (0x13), the one RFC 9106 specifies
    time_cost: int = 1
    memory_kib: int = 12 * 1024
    parallelism: int = 1

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_KDF = KdfParams()
# What a kiosk accepts. The floor keeps one reversal >= 1 CPU-hour for a million candidates
# (docs/privacy.md); the ceiling keeps a scan fast and a hostile list from taking the RAM.
MIN_MEMORY_KIB = DEFAULT_KDF.memory_kib
MAX_WORK_KIB = 32 * 1024  # time_cost x memory_kib
MAX_TIME_COST = 4


def read_kdf(doc: Mapping[str, object], name: str = "watchlist") -> KdfParams:
    """The ``kdf`` member of the ``name`` document (the watchlist, the status list), checked;
    ConfigError names the field and shows the value."""
    raw = doc.get("kdf")
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}.kdf is {raw!r}, expected an object with the Argon2id "
                          f"costs, e.g. {json.dumps(DEFAULT_KDF.as_json())}")
    unknown = sorted(set(raw) - set(DEFAULT_KDF.as_json()))
    if unknown:
        raise ConfigError(f"{name}.kdf has unknown member(s) {unknown!r}; this kiosk reads "
                          f"{sorted(DEFAULT_KDF.as_json())}")
    fixed = {"name": "argon2id", "version": 19, "parallelism": 1}
    for key, want in fixed.items():
        if raw.get(key) != want:
            raise ConfigError(f"{name}.kdf.{key} is {raw.get(key)!r}; this kiosk computes "
                              f"only {key} {want!r}")
    for key in ("time_cost", "memory_kib"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}.kdf.{key} is {value!r}, expected a positive integer")
    params = KdfParams(time_cost=raw["time_cost"], memory_kib=raw["memory_kib"])
    if params.memory_kib < MIN_MEMORY_KIB:
        raise ConfigError(
            f"{name}.kdf.memory_kib is {params.memory_kib!r}: too weak, a list made with it "
            f"could be reversed in under an hour; the minimum is {MIN_MEMORY_KIB} "
            "(rebuild the list with checkpoint-kiosk watchlist build)")
    work = params.time_cost * params.memory_kib
    if params.time_cost > MAX_TIME_COST or work > MAX_WORK_KIB:
        raise ConfigError(
            f"{name}.kdf time_cost {params.time_cost!r} x memory_kib {params.memory_kib!r} "
            f"is too costly for a kiosk (at most time_cost {MAX_TIME_COST} and "
            f"{MAX_WORK_KIB} KiB-passes): every scan would wait for it")
    return params


def derive(number: str, salt: bytes, kdf: KdfParams = DEFAULT_KDF) -> str:
    """The hex Argon2id hash of a normalised identity number, as a watchlist entry holds it."""
    return hash_secret_raw(
        normalize(number).encode("utf-8"),
        salt,
        time_cost=kdf.time_cost,
        memory_cost=kdf.memory_kib,
        parallelism=kdf.parallelism,
        hash_len=HASH_BYTES,
        type=Type.ID,
        version=kdf.version,
    ).hex()


def json_object(data: bytes | str, name: str) -> dict[str, object]:
    """A down-synced document's JSON object (the watchlist, status, risk levels, officers);
    :class:`ConfigError` names the document when it is not JSON or not an object."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{name} is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{name} is a JSON {type(doc).__name__}, expected an object")
    return doc


def local_date(at: datetime) -> date:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(VIETNAM).date()


class Watchlist:
    """Argon2id hashes of identity numbers with end dates; a match hashes each number once."""

    def __init__(
        self,
        *,
        salt: bytes,
        entries: dict[str, date],
        issued_at: datetime,
        expires_at: datetime,
        kdf: KdfParams = DEFAULT_KDF,
    ) -> None:
        self.salt = salt
        self.kdf = kdf
        self._entries = entries
        self.issued_at = issued_at
        self.expires_at = expires_at

    def __len__(self) -> int:
        return len(self._entries)

    def digest(self, number: str) -> str:
        return derive(number, self.salt, self.kdf)

    def matches(self, person_key: str | None, *, at: datetime) -> bool:
        """True when ``person_key`` is under an order that has not ended at ``at``."""
        return self.matches_any([person_key] if person_key else [], at=at)

    def matches_any(self, numbers: Iterable[str], *, at: datetime) -> bool:
        """True when any of ``numbers`` is under an order that has not ended at ``at``."""
        today = local_date(at)
        # Distinct normalised numbers in a stable order (callers pass sets), so the cap
        # below always keeps the same ones.
        distinct = sorted({normalize(n) for n in numbers if n})
        if len(distinct) > MAX_NUMBERS_PER_SCAN:
            log.warning("a code carries %d numbers; matching the first %d",
                        len(distinct), MAX_NUMBERS_PER_SCAN)
        for number in distinct[:MAX_NUMBERS_PER_SCAN]:
            until = self._entries.get(self.digest(number))
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
        doc = json_object(data, "watchlist")
        _check_version(doc.get("version"))
        issued_at = _timestamp(doc, "issued_at")
        expires_at = _timestamp(doc, "expires_at")
        if expires_at < issued_at:
            raise ConfigError(
                f"watchlist.expires_at {doc['expires_at']!r} is before issued_at "
                f"{doc['issued_at']!r}; a list that expired when issued stops nobody"
            )
        salt = _salt(doc.get("salt"))
        kdf = read_kdf(doc)
        entries = _entries(doc.get("entries"))
        return cls(salt=salt, entries=entries, issued_at=issued_at, expires_at=expires_at,
                   kdf=kdf)

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
        kdf: KdfParams = DEFAULT_KDF,
    ) -> bytes:
        """The JSON document for ``(person_key, until)`` pairs (central server and tests).

        Costs one Argon2id hash per entry (~5 ms here): 10 000 entries take about a minute.
        """
        salt = secrets.token_bytes(MIN_SALT_BYTES) if salt is None else salt
        issued_at = issued_at or datetime.now(UTC)
        expires_at = expires_at or issued_at + valid_for
        doc = {
            "version": VERSION,
            "issued_at": issued_at.isoformat(),
            "expires_at": expires_at.isoformat(),
            "salt": salt.hex(),
            "kdf": kdf.as_json(),
            "entries": [
                {"h": derive(key, salt, kdf), "until": until.isoformat()}
                for key, until in keys_with_until
            ],
        }
        return json.dumps(doc).encode()


def _check_version(version: object) -> None:
    if version == VERSION:
        return
    if version == 1:
        # Refused, not read during a transition: its salted SHA-256 entries give up their
        # numbers in seconds, and a list lasts a day (docs/privacy.md, "Old lists").
        raise ConfigError(
            "watchlist.version is 1 (salted SHA-256: its numbers can be recovered in seconds); "
            f"this kiosk reads version {VERSION} only. The province must rebuild the list with "
            "'checkpoint-kiosk watchlist build' and publish it again")
    raise ConfigError(f"watchlist.version is {version!r}; this kiosk reads version {VERSION}")


def _salt(value: object) -> bytes:
    try:
        if not isinstance(value, str):
            raise TypeError(f"a {type(value).__name__}")
        salt = bytes.fromhex(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"watchlist.salt {value!r} is not a hex string; it must be the hex of the salt bytes"
        ) from e
    if len(salt) < MIN_SALT_BYTES:
        raise ConfigError(f"watchlist.salt is {len(salt)} byte(s); it must be at least "
                          f"{MIN_SALT_BYTES} random bytes, new for every list")
    return salt


def _entries(raw_entries: object) -> dict[str, date]:
    if not isinstance(raw_entries, list):
        raise ConfigError(f"watchlist.entries is {raw_entries!r}, expected an array")
    entries: dict[str, date] = {}
    for i, entry in enumerate(raw_entries):
        try:
            digest = str(entry["h"]).lower()
            # A hash of the wrong length can never match anyone: a silent hole.
            if len(bytes.fromhex(digest)) != HASH_BYTES:
                raise ValueError("not a 32-byte hash")
            until = date.fromisoformat(entry["until"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"watchlist.entries[{i}] is {entry!r}; expected "
                '{"h": "<hex of the 32-byte Argon2id hash>", "until": "YYYY-MM-DD"}'
            ) from e
        # The same person under two orders: the later end date wins.
        entries[digest] = max(until, entries.get(digest, until))
    return entries


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


def _timestamp(doc: Mapping[str, object], key: str) -> datetime:
    value = doc.get(key)
    problem = f"watchlist.{key} is {value!r}, expected an ISO 8601 time"
    if not isinstance(value, str):
        raise ConfigError(problem)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise ConfigError(problem) from e
    return at if at.tzinfo else at.replace(tzinfo=UTC)
