"""What the national platforms know about a person, offline: the *status* document, and the
commune *risk levels* document.

Status: ``{"version": 1, "issued_at": ISO8601, "expires_at": ISO8601, "salt": hex,
"kdf": {...}, "records": [{"h": [hex, ...], <facts>}]}``.  ``h`` lists the hashes of every
identity number of one person (CCCD, QID, BHYT, passport…), made exactly as the
watchlist makes them (Argon2id with the document's salt and ``kdf`` costs,
:func:`person_digest`), so a stolen copy costs as much to reverse as the watchlist
(docs/privacy.md) and the kiosk finds the record by any number the code carries.
The facts (each optional, at least one present):

* ``declared_at`` (ISO 8601 time) and ``declared_until`` (date): the movement declaration;
* ``from``: the commune code (5 digits) the person declared coming from;
* ``doses`` (0..9) and ``last_dose`` (date, required when ``doses`` > 0);
* ``test``: the last *negative* test, ``{"type": "pcr" | "rapid_antigen", "at": ISO8601}``;
* ``recovered_since`` (date);
* ``birth_year``: for the age exemptions when the code shows no birth date.

Risk levels: ``{"version": 1, "issued_at", "expires_at", "levels": {"00001": 3, ...},
"default_level": null | 1..4}``: the level (1 low … 4 very high, as provinces classified
communes) of each commune code; ``default_level`` is the level of a commune not listed (null:
unknown, an officer checks).

Every record is validated field by field with the same function the builder uses on its CSV /
JSON import (:func:`parse_facts`), so a nonsense value is refused naming the field and the value,
whether it comes from a spreadsheet or over the network.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from kiosk.domain.credentials.identifiers import normalize, type_of
from kiosk.domain.watchlist import (
    DEFAULT_KDF,
    HASH_BYTES,
    MIN_SALT_BYTES,
    VIETNAM,
    KdfParams,
    derive,
    json_object,
    local_date,
    read_kdf,
)
from kiosk.errors import ConfigError

VERSION = 1
TEST_TYPES = ("pcr", "rapid_antigen")
RISK_LEVELS = (1, 2, 3, 4)
COMMUNE = re.compile(r"\d{5}")
# Nothing about COVID-19 is dated before these: an earlier value is a typing mistake.
FIRST_VACCINE = date(2020, 12, 1)
FIRST_CASE = date(2019, 12, 1)
# A time a little ahead of the document (a clock off by minutes) is taken; a day is not.
AHEAD = timedelta(days=1)
MAX_RECORDS = 2_000_000
FACT_KEYS = ("declared_at", "declared_until", "from", "doses", "last_dose", "test",
             "recovered_since", "birth_year")


def person_digest(salt: bytes, number: str, kdf: KdfParams = DEFAULT_KDF) -> str:
    """The hash of one identity number: the watchlist's (``watchlist.derive``), so a change
    of KDF there applies here too.  Every status hash goes through this one function."""
    return derive(number, salt, kdf)


_DIGEST_HEX = 2 * HASH_BYTES


@dataclass(frozen=True)
class HealthStatus:
    """One person's facts from the national platforms (all optional)."""

    declared_at: datetime | None = None
    declared_until: date | None = None
    origin: str | None = None  # commune code
    doses: int = 0
    last_dose: date | None = None
    test_type: str | None = None
    tested_at: datetime | None = None
    recovered_since: date | None = None
    birth_year: int | None = None

    @property
    def declared(self) -> bool:
        return self.declared_at is not None or self.declared_until is not None

    def merge(self, other: HealthStatus) -> HealthStatus:
        """The same person's two records (found by two numbers): the newest of each fact."""
        out = self
        if other.declared and (not self.declared or _later(
                other.declared_at, self.declared_at, other.declared_until, self.declared_until)):
            out = replace(out, declared_at=other.declared_at, declared_until=other.declared_until,
                          origin=other.origin or self.origin)
        if (other.doses, other.last_dose or date.min) > (self.doses, self.last_dose or date.min):
            out = replace(out, doses=other.doses, last_dose=other.last_dose)
        if other.tested_at is not None and (self.tested_at is None
                                            or other.tested_at > self.tested_at):
            out = replace(out, test_type=other.test_type, tested_at=other.tested_at)
        if other.recovered_since is not None and (self.recovered_since is None
                                                  or other.recovered_since > self.recovered_since):
            out = replace(out, recovered_since=other.recovered_since)
        if out.birth_year is None:
            out = replace(out, birth_year=other.birth_year)
        return out

    def masked(self) -> dict[str, Any]:
        """What the decision shows: coarse enough for a screen the queue can see (months,
        not days; the test's day; the risk level, not the commune)."""
        out: dict[str, Any] = {}
        if self.declared_at is not None:
            out["declared_on"] = local_date(self.declared_at).isoformat()
        if self.declared_until is not None:
            out["declared_until"] = self.declared_until.isoformat()
        if self.doses:
            out["doses"] = self.doses
            out["last_dose_month"] = self.last_dose.isoformat()[:7] if self.last_dose else None
        if self.tested_at is not None:
            out["negative_test"] = f"{self.test_type} {local_date(self.tested_at).isoformat()}"
        if self.recovered_since is not None:
            out["recovered_month"] = self.recovered_since.isoformat()[:7]
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.declared_at is not None:
            out["declared_at"] = self.declared_at.isoformat()
        if self.declared_until is not None:
            out["declared_until"] = self.declared_until.isoformat()
        if self.origin is not None:
            out["from"] = self.origin
        if self.doses:
            out["doses"] = self.doses
            if self.last_dose is not None:
                out["last_dose"] = self.last_dose.isoformat()
        if self.tested_at is not None:
            out["test"] = {"type": self.test_type, "at": self.tested_at.isoformat()}
        if self.recovered_since is not None:
            out["recovered_since"] = self.recovered_since.isoformat()
        if self.birth_year is not None:
            out["birth_year"] = self.birth_year
        return out


def _later(at_a: datetime | None, at_b: datetime | None,
           until_a: date | None, until_b: date | None) -> bool:
    if at_a is not None and at_b is not None:
        return at_a > at_b
    return (until_a or date.min) > (until_b or date.min)


# -- one validator for every record, from a spreadsheet or over the network ----------------


def parse_facts(raw: Mapping[str, object], *, where: str, now: datetime,
                naive: tzinfo = UTC) -> HealthStatus:
    """The facts of one record; :class:`ConfigError` naming ``where.<field>`` and the value.

    ``now`` is the time nothing may be after (by more than a day): the document's issue time,
    or the build's.  ``naive`` is the zone of a time written without one (the builder's
    import: Vietnam time; a document always carries offsets).
    """
    r = _Fields(raw, where, now, naive)
    unknown = [k for k in raw if k not in FACT_KEYS]
    if unknown:
        raise ConfigError(f"{r.name(unknown[0])} is not a status field; valid fields: "
                          f"{', '.join(FACT_KEYS)}")
    declared_at = r.moment("declared_at", raw.get("declared_at"))
    declared_until = r.day("declared_until", FIRST_CASE, latest=date.max)
    if declared_at and declared_until and declared_until < local_date(declared_at):
        raise r.bad("declared_until", f"a date not before declared_at "
                                      f"({local_date(declared_at).isoformat()})")
    origin = raw.get("from") or None
    if origin is not None and not (isinstance(origin, str) and COMMUNE.fullmatch(origin)):
        raise r.bad("from", "a commune code of 5 digits, e.g. '00004'")
    doses = r.whole("doses", 0, 9) or 0
    last_dose = r.day("last_dose", FIRST_VACCINE)
    if doses and last_dose is None:
        raise ConfigError(f"{r.name('last_dose')} is missing; a record with doses = {doses} "
                          "needs the date of the last dose")
    if last_dose is not None and not doses:
        raise ConfigError(f"{r.name('doses')} is {raw.get('doses')!r} but last_dose is "
                          f"{raw['last_dose']!r}; give the number of doses")
    test_type, tested_at = r.test()
    birth_year = r.whole("birth_year", 1900, local_date(now).year, "(not in the future)")
    facts = HealthStatus(declared_at, declared_until, origin, doses, last_dose, test_type,
                         tested_at, r.day("recovered_since", FIRST_CASE), birth_year)
    if not (facts.declared or facts.doses or facts.tested_at or facts.recovered_since):
        raise ConfigError(f"{where or 'the record'} has no facts; give at least one of "
                          "declared_at, declared_until, doses, test, recovered_since")
    return facts


class _Fields:
    """Reads one record's fields, each refused with its name and value."""

    def __init__(self, raw: Mapping[str, object], where: str, now: datetime,
                 naive: tzinfo) -> None:
        self.raw, self.where, self.now, self.naive = raw, where, now, naive
        self.today = local_date(now)

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def bad(self, key: str, expected: str, value: object = None) -> ConfigError:
        shown = self.raw.get(key) if value is None else value
        return ConfigError(f"{self.name(key)} is {shown!r}; expected {expected}")

    def day(self, key: str, earliest: date, latest: date | None = None) -> date | None:
        value = self.raw.get(key)
        if value in (None, ""):
            return None
        latest = latest or self.today + AHEAD
        try:
            d = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            d = None
        if d is None:
            raise self.bad(key, "a date YYYY-MM-DD")
        if not earliest <= d <= latest:
            raise self.bad(key, f"a date from {earliest.isoformat()} to {self.today.isoformat()}")
        return d

    def moment(self, key: str, value: object) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            at = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            at = None
        if at is None:
            raise self.bad(key, "an ISO 8601 time such as 2022-06-01T08:30:00+07:00", value)
        at = at if at.tzinfo else at.replace(tzinfo=self.naive)
        if local_date(at) < FIRST_CASE or at > self.now + AHEAD:
            raise self.bad(key, f"a time from {FIRST_CASE.isoformat()} to now "
                                f"({self.now.isoformat(timespec='minutes')})", value)
        return at

    def whole(self, key: str, lo: int, hi: int, note: str = "") -> int | None:
        value = self.raw.get(key)
        if value in (None, ""):
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.bad(key, f"a whole number {lo}..{hi} {note}".rstrip())
        return value

    def test(self) -> tuple[str | None, datetime | None]:
        test = self.raw.get("test")
        if test in (None, "", {}):
            return None, None
        if not isinstance(test, Mapping) or set(test) - {"type", "at"}:
            raise self.bad("test", '{"type": "pcr" | "rapid_antigen", "at": ISO 8601 time}')
        if test.get("type") not in TEST_TYPES:
            raise ConfigError(f"{self.name('test.type')} is {test.get('type')!r}; choose one "
                              f"of {', '.join(TEST_TYPES)}")
        at = self.moment("test.at", test.get("at"))
        if at is None:
            raise ConfigError(f"{self.name('test.at')} is missing; give the time of the test")
        return test["type"], at


# -- the status document -------------------------------------------------------------------


class StatusList:
    """Salted hashes of identity numbers → a person's facts; ``lookup`` is a dict lookup."""

    def __init__(self, *, salt: bytes, records: dict[str, HealthStatus], issued_at: datetime,
                 expires_at: datetime, people: int | None = None,
                 kdf: KdfParams = DEFAULT_KDF) -> None:
        self.salt = salt
        self.kdf = kdf
        self._records = records
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.people = len(records) if people is None else people

    def __len__(self) -> int:
        return self.people

    def lookup(self, numbers: Iterable[str]) -> HealthStatus | None:
        """The facts of whoever holds any of ``numbers`` (merged when several records match)."""
        found: HealthStatus | None = None
        seen: set[int] = set()
        for number in numbers:
            if not number:
                continue
            record = self._records.get(person_digest(self.salt, number, self.kdf))
            if record is None or id(record) in seen:
                continue
            seen.add(id(record))
            found = record if found is None else found.merge(record)
        return found

    def is_stale(self, at: datetime) -> bool:
        return _aware(at) > self.expires_at

    @classmethod
    def from_json(cls, data: bytes | str) -> StatusList:
        """Parse and validate the document; :class:`ConfigError` names the bad member."""
        doc = _object(data, "status")
        issued_at, expires_at = _times(doc, "status")
        salt = _salt(doc, "status")
        kdf = read_kdf(doc, "status")
        raw = doc.get("records")
        if not isinstance(raw, list):
            raise ConfigError(f"status.records is {_short(raw)}, expected an array")
        if len(raw) > MAX_RECORDS:
            raise ConfigError(f"status.records holds {len(raw)} records; at most {MAX_RECORDS}")
        extra = set(doc) - {"version", "issued_at", "expires_at", "salt", "kdf", "records"}
        if extra:
            raise ConfigError(f"status.{sorted(extra)[0]} is not a member of a status document")
        records: dict[str, HealthStatus] = {}
        for i, entry in enumerate(raw):
            where = f"status.records[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} is {_short(entry)}, expected an object")
            digests = entry.get("h")
            if (not isinstance(digests, list) or not digests
                    or not all(_is_digest(d) for d in digests)):
                raise ConfigError(f"{where}.h is {_short(digests)}; expected a list of "
                                  f"{_DIGEST_HEX}-hex-digit hashes of the person's numbers")
            facts = parse_facts({k: v for k, v in entry.items() if k != "h"}, where=where,
                                now=issued_at)
            for digest in digests:
                key = digest.lower()
                if key in records:
                    facts = records[key].merge(facts)
            for digest in digests:
                records[digest.lower()] = facts
        return cls(salt=salt, records=records, issued_at=issued_at, expires_at=expires_at,
                   people=len(raw), kdf=kdf)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> StatusList:
        return cls.from_json(_read(path, "status document"))

    @staticmethod
    def build(people: Iterable[tuple[Iterable[str], HealthStatus]], salt: bytes | None = None,
              *, issued_at: datetime | None = None, expires_at: datetime | None = None,
              valid_for: timedelta = timedelta(days=1)) -> bytes:
        """The JSON document for ``(numbers, facts)`` of each person (builder, central, tests)."""
        salt = secrets.token_bytes(16) if salt is None else salt
        issued_at = issued_at or datetime.now(UTC)
        expires_at = expires_at or issued_at + valid_for
        records = [{"h": sorted({person_digest(salt, n) for n in numbers}), **facts.to_json()}
                   for numbers, facts in people]
        return json.dumps({"version": VERSION, "issued_at": issued_at.isoformat(),
                           "expires_at": expires_at.isoformat(), "salt": salt.hex(),
                           "kdf": DEFAULT_KDF.as_json(), "records": records},
                          separators=(",", ":")).encode()


# -- the builder's import -------------------------------------------------------------------


@dataclass(frozen=True)
class BadRow:
    """A row of an import that cannot go into the document."""

    row: int
    why: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.why}"


IMPORT_COLUMNS = ("ids", "declared_at", "declared_until", "from", "doses", "last_dose",
                  "test_type", "tested_at", "recovered_since", "birth_year")


def read_import(text: str, *, fmt: str, now: datetime
                ) -> tuple[list[tuple[list[str], HealthStatus]], list[BadRow]]:
    """People from a CSV (header ``ids,declared_at,…``) or JSON (array of objects) import.

    ``ids`` holds every identity number of the person (CSV: separated by spaces or ``;``;
    JSON: a list).  Times without a zone are Vietnam time.  Every bad row is returned with the
    field named and its value shown, so one run lists them all.
    """
    rows: list[tuple[int, Mapping[str, Any]]]
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as e:
            return [], [BadRow(0, f"not valid JSON: {e}")]
        if not isinstance(data, list):
            return [], [BadRow(0, f"a JSON {type(data).__name__}; expected an array of objects")]
        rows = [(i, r) for i, r in enumerate(data, start=1)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in IMPORT_COLUMNS]
        if unknown or "ids" not in header:
            return [], [BadRow(1, f"column {(unknown or ['ids'])[0]!r} "
                                  f"{'is unknown' if unknown else 'is missing'}; columns: "
                                  f"{', '.join(IMPORT_COLUMNS)}")]
        rows = [(i, r) for i, r in enumerate(reader, start=2)]
    people: list[tuple[list[str], HealthStatus]] = []
    bad: list[BadRow] = []
    for number, row in rows:
        try:
            people.append(_import_row(row, now))
        except ConfigError as e:
            bad.append(BadRow(number, str(e)))
    return people, bad


def _import_row(row: object, now: datetime) -> tuple[list[str], HealthStatus]:
    if not isinstance(row, Mapping):
        raise ConfigError(f"is {_short(row)}, expected an object")
    unknown = [k for k in row if k not in IMPORT_COLUMNS]
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not a column; columns: {', '.join(IMPORT_COLUMNS)}")
    raw_ids = row.get("ids")
    if isinstance(raw_ids, str):
        raw_ids = raw_ids.replace(";", " ").split()
    if not isinstance(raw_ids, list) or not raw_ids:
        raise ConfigError(f"ids is {_short(row.get('ids'))}; give the person's identity "
                          "numbers (CCCD, QID, BHYT, passport…)")
    numbers = []
    for value in raw_ids:
        number = normalize(str(value))
        if type_of(number) is None:
            raise ConfigError(f"ids has {str(value)[:40]!r}, which is not a full identity "
                              "number (a masked or mistyped number identifies nobody)")
        numbers.append(number)
    facts: dict[str, Any] = {k: v for k, v in row.items()
                             if k in FACT_KEYS and v not in (None, "")}
    test_type, tested_at = row.get("test_type"), row.get("tested_at")
    if test_type not in (None, "") or tested_at not in (None, ""):
        facts["test"] = {"type": test_type, "at": tested_at}
    return numbers, parse_facts(facts, where="", now=now, naive=VIETNAM)


# -- commune risk levels -------------------------------------------------------------------


class RiskLevels:
    """Commune code → risk level (1..4), with the level of a commune not listed."""

    def __init__(self, *, levels: dict[str, int], default_level: int | None,
                 issued_at: datetime, expires_at: datetime) -> None:
        self._levels = levels
        self.default_level = default_level
        self.issued_at = issued_at
        self.expires_at = expires_at

    def __len__(self) -> int:
        return len(self._levels)

    def level_of(self, commune: str | None) -> int | None:
        if not commune:
            return None
        return self._levels.get(commune, self.default_level)

    def is_stale(self, at: datetime) -> bool:
        return _aware(at) > self.expires_at

    @classmethod
    def from_json(cls, data: bytes | str) -> RiskLevels:
        doc = _object(data, "risk_levels")
        issued_at, expires_at = _times(doc, "risk_levels")
        extra = set(doc) - {"version", "issued_at", "expires_at", "levels", "default_level"}
        if extra:
            raise ConfigError(f"risk_levels.{sorted(extra)[0]} is not a member of a risk "
                              "levels document")
        raw = doc.get("levels")
        if not isinstance(raw, dict):
            raise ConfigError(f"risk_levels.levels is {_short(raw)}, expected an object of "
                              'commune code → level, e.g. {"00004": 3}')
        levels: dict[str, int] = {}
        for code, level in raw.items():
            if not COMMUNE.fullmatch(code):
                raise ConfigError(f"risk_levels.levels has the key {code!r}; a commune code "
                                  "is 5 digits, e.g. '00004'")
            if isinstance(level, bool) or level not in RISK_LEVELS:
                raise ConfigError(f"risk_levels.levels[{code!r}] is {level!r}; expected a "
                                  "level 1..4")
            levels[code] = level
        default = doc.get("default_level")
        if default is not None and (isinstance(default, bool) or default not in RISK_LEVELS):
            raise ConfigError(f"risk_levels.default_level is {default!r}; expected null "
                              "(a commune not listed is unknown) or a level 1..4")
        return cls(levels=levels, default_level=default, issued_at=issued_at,
                   expires_at=expires_at)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RiskLevels:
        return cls.from_json(_read(path, "risk levels document"))

    @staticmethod
    def build(levels: Mapping[str, int], *, default_level: int | None = None,
              issued_at: datetime | None = None, expires_at: datetime | None = None,
              valid_for: timedelta = timedelta(days=1)) -> bytes:
        issued_at = issued_at or datetime.now(UTC)
        expires_at = expires_at or issued_at + valid_for
        return json.dumps({"version": VERSION, "issued_at": issued_at.isoformat(),
                           "expires_at": expires_at.isoformat(), "levels": dict(levels),
                           "default_level": default_level}).encode()


def read_levels(text: str) -> tuple[dict[str, int], list[BadRow]]:
    """``commune,level`` rows (a header line is allowed) for ``status-doc risk-levels``."""
    levels: dict[str, int] = {}
    bad: list[BadRow] = []
    for i, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#") or (i == 1 and cells[0] == "commune"):
            continue
        if len(cells) != 2 or not COMMUNE.fullmatch(cells[0]):
            bad.append(BadRow(i, f"{','.join(cells)[:60]!r}; expected a 5-digit commune code "
                                 "and a level, e.g. 00004,3"))
        elif cells[1] not in ("1", "2", "3", "4"):
            bad.append(BadRow(i, f"level {cells[1][:20]!r} of commune {cells[0]}; expected 1..4"))
        else:
            levels[cells[0]] = int(cells[1])
    return levels, bad


# -- shared parsing ------------------------------------------------------------------------


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the {what} {os.fspath(path)!r}: {e.strerror}") from e


_SPACE = re.compile(r"[ \t\n\r]*")


def json_object_in_steps(data: bytes | str, name: str) -> dict[str, Any]:
    """:func:`kiosk.domain.watchlist.json_object`, with each element of an array member
    decoded on its own (``json``'s own decoder, one call an element): a document of 200,000
    records never holds the interpreter lock in one call for half a second, so the scan
    loop keeps its frame rate while a worker thread applies it (docs/policy.md, "A large
    status document").  The same value as ``json.loads``, the same errors."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _members(text, json.JSONDecoder())
    except _NotAnObject:
        return json_object(data, name)  # its message names what the document is instead
    except IndexError:
        raise ConfigError(f"{name} is not valid JSON: it ends before its object does") \
            from None
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{name} is not valid JSON: {e}") from None


def _skip(text: str, i: int) -> int:
    """The index after JSON whitespace from ``i``."""
    space = _SPACE.match(text, i)
    assert space is not None  # the pattern matches the empty string
    return space.end()


class _NotAnObject(ValueError):
    pass


def _members(text: str, decoder: json.JSONDecoder) -> dict[str, Any]:
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        raise _NotAnObject
    out: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text[i] == "}":
        return _ended(text, i, out)
    while True:
        if text[i] != '"':
            raise ValueError(f"expected a member name at character {i}")
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] != ":":
            raise ValueError(f"expected ':' at character {i}")
        i = _skip(text, i + 1)
        value, i = (_elements(text, i, decoder) if text[i] == "["
                    else decoder.raw_decode(text, i))
        out[key] = value
        i = _skip(text, i)
        if text[i] == "}":
            return _ended(text, i, out)
        if text[i] != ",":
            raise ValueError(f"expected ',' or '}}' at character {i}")
        i = _skip(text, i + 1)


def _elements(text: str, i: int, decoder: json.JSONDecoder) -> tuple[list[Any], int]:
    out: list[Any] = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return out, i + 1
    while True:
        value, i = decoder.raw_decode(text, i)
        out.append(value)
        i = _skip(text, i)
        if text[i] == "]":
            return out, i + 1
        if text[i] != ",":
            raise ValueError(f"expected ',' or ']' at character {i}")
        i = _skip(text, i + 1)


def _ended(text: str, i: int, out: dict[str, Any]) -> dict[str, Any]:
    if _skip(text, i + 1) != len(text):
        raise ValueError(f"extra data at character {i + 1}")
    return out


def _object(data: bytes | str, name: str) -> dict[str, Any]:
    doc = json_object_in_steps(data, name) if name == "status" else json_object(data, name)
    if doc.get("version") != VERSION:
        raise ConfigError(f"{name}.version is {doc.get('version')!r}; this kiosk reads "
                          f"version {VERSION}")
    return doc


def _times(doc: Mapping[str, object], name: str) -> tuple[datetime, datetime]:
    out = []
    for key in ("issued_at", "expires_at"):
        value = doc.get(key)
        try:
            at = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise ConfigError(f"{name}.{key} is {_short(value)}; expected an ISO 8601 time "
                              "with its offset, e.g. 2022-06-01T00:00:00+07:00")
        out.append(at)
    if out[1] < out[0]:
        raise ConfigError(f"{name}.expires_at {doc['expires_at']!r} is before issued_at "
                          f"{doc['issued_at']!r}")
    return out[0], out[1]


def _salt(doc: Mapping[str, object], name: str) -> bytes:
    value = doc.get("salt")
    try:
        salt = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        salt = b""
    if len(salt) < MIN_SALT_BYTES:
        raise ConfigError(f"{name}.salt is {_short(doc.get('salt'))}; expected the hex of at "
                          f"least {MIN_SALT_BYTES} random bytes")
    return salt


def _is_digest(value: object) -> bool:
    if not isinstance(value, str) or len(value) != _DIGEST_HEX:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
