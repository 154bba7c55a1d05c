"""Schema 1.x of the EU DCC certificate JSON, checked by hand.

Covers what a verifier relies on: the required members and their types, the
patterns of names and dates, and exactly one of ``v`` / ``t`` / ``r`` holding one
entry.  A hand check of this small document spares the Pi the ``jsonschema``
dependency and its start-up cost; see docs/credentials.md.
"""

from __future__ import annotations

import re
from typing import Any

VERSION = re.compile(r"1\.\d+\.\d+")
TRANSLITERATED = re.compile(r"[A-Z<]*")
DOB = re.compile(r"((19|20)\d\d(-\d\d){0,2})?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")

ENTRY_TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
# member -> (required?, kind) per entry type
_STR, _INT, _DATE, _DATETIME = "string", "integer", "date", "date-time"
ENTRY_MEMBERS: dict[str, dict[str, tuple[bool, str]]] = {
    "v": {
        "tg": (True, _STR), "vp": (True, _STR), "mp": (True, _STR), "ma": (True, _STR),
        "dn": (True, _INT), "sd": (True, _INT), "dt": (True, _DATE),
        "co": (True, _STR), "is": (True, _STR), "ci": (True, _STR),
    },
    "t": {
        "tg": (True, _STR), "tt": (True, _STR), "nm": (False, _STR), "ma": (False, _STR),
        "sc": (True, _DATETIME), "tr": (True, _STR), "tc": (False, _STR),
        "co": (True, _STR), "is": (True, _STR), "ci": (True, _STR),
    },
    "r": {
        "tg": (True, _STR), "fr": (True, _DATE), "df": (True, _DATE), "du": (True, _DATE),
        "co": (True, _STR), "is": (True, _STR), "ci": (True, _STR),
    },
}  # fmt: skip


def validate(hcert: Any) -> list[str]:
    """Return the schema violations of a certificate JSON (empty when valid)."""
    if not isinstance(hcert, dict):
        return [f"certificate is a {type(hcert).__name__}, not an object"]
    errors: list[str] = []
    ver = hcert.get("ver")
    if not (isinstance(ver, str) and VERSION.fullmatch(ver)):
        errors.append(f"ver {ver!r} is not a 1.x schema version")
    errors += _name_errors(hcert.get("nam"))
    dob = hcert.get("dob")
    if not (isinstance(dob, str) and DOB.fullmatch(dob)):
        errors.append(f"dob {dob!r} is not YYYY[-MM[-DD]] in 1900-2099")
    present = [k for k in ENTRY_TYPES if k in hcert]
    if len(present) != 1:
        errors.append(f"exactly one of v, t, r must be present, found {present!r}")
    for key in present:
        entries = hcert[key]
        if not (isinstance(entries, list) and len(entries) == 1):
            errors.append(f"{key} must be an array holding exactly one entry")
            continue
        errors += _validate_entry(key, entries[0])
    return errors


def _name_errors(nam: Any) -> list[str]:
    if not isinstance(nam, dict):
        return ["nam is missing or not an object"]
    errors = []
    fnt = nam.get("fnt")
    if not (isinstance(fnt, str) and len(fnt) <= 80 and TRANSLITERATED.fullmatch(fnt)):
        errors.append(f"nam.fnt {fnt!r} is missing or not A-Z< (max 80)")
    gnt = nam.get("gnt")
    if gnt is not None and not (
        isinstance(gnt, str) and len(gnt) <= 80 and TRANSLITERATED.fullmatch(gnt)
    ):
        errors.append(f"nam.gnt {gnt!r} is not A-Z< (max 80)")
    for key in ("fn", "gn"):
        value = nam.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= 80):
            errors.append(f"nam.{key} is not a string of at most 80 characters")
    return errors


def _validate_entry(key: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{key}[0] is not an object"]
    errors = []
    for member, (required, kind) in ENTRY_MEMBERS[key].items():
        if member not in entry:
            if required:
                errors.append(f"{key}[0].{member} is missing")
            continue
        value = entry[member]
        ok = {
            _STR: lambda v: isinstance(v, str) and len(v) <= 80,
            _INT: lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 9,
            _DATE: lambda v: isinstance(v, str) and DATE.match(v) is not None,
            _DATETIME: lambda v: isinstance(v, str) and DATETIME.fullmatch(v) is not None,
        }[kind](value)
        if not ok:
            errors.append(f"{key}[0].{member} {value!r} is not a valid {kind}")
    return errors
