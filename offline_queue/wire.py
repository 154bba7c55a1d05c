"""The check-in as it travels to the central platform, shared by the client and the server.

The content hash covers everything the kiosk recorded and never changes: ``corrected_at``
and ``time_source`` are left out because the kiosk may fill them in after a first send
attempt (the clock was corrected), and that must not turn an honest resend into a conflict.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict, cast

from offline_queue.records import DECISIONS, DIRECTIONS, KINDS, OFFICER_ID, SOURCES
from offline_queue.sealing import MAX_SEALED

MAX_BATCH = 1000
# Optional header of a check-in post: the rows the kiosk holds besides this batch (digits
# only; the central's fleet page shows which kiosks are behind).
BACKLOG_HEADER = "X-Kiosk-Backlog"

# Time sources the kiosk names for ``corrected_at`` (how its clock was set right), worst
# first: a later correction from a better source replaces an earlier one on the server.
TIME_SOURCES = ("none", "central", "ntp")

# Bounds on every field: a check-in is a few hundred bytes; anything far larger is an
# attack or a bug, and would otherwise be stored, reported and echoed back.
MAX_TEXT = 256  # ids, versions, person key
MAX_OVERRIDE_REASON = 1000
MAX_DISPLAY_FIELDS = 16
MAX_DISPLAY_KEY = 40
MAX_DISPLAY_VALUE = 256
MAX_REASONS = 32
MAX_REASON = 64
MAX_MONOTONIC_NS = 2**63 - 1  # SQLite's INTEGER
# A corrected time comes from NTP or the central's clock, so it lies between the
# project's first deployment and (allowing for skew between the central's nodes) a
# day after the row was received.  A device time is kept whatever it says (a Pi
# without an RTC may start in 1970) and only used as the event time when plausible.
EARLIEST_TIME = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)



class _Recorded(TypedDict):
    """The fields of a check-in the kiosk always sends (see :class:`CheckIn`)."""

    id: str
    device_id: str
    checkpoint_id: str
    direction: str
    kind: str
    person_key: str | None
    display: dict[str, str]
    decision: str
    reasons: list[str]
    source: str
    override_of: str | None
    original_decision: str | None
    override_reason: str | None
    recorded_at: str
    monotonic_ns: int
    boot_id: str
    clock_synced: bool
    app_version: str


class CheckIn(_Recorded, total=False):
    """One check-in on the wire (``POST /v1/checkins``): what :func:`from_row` sends and
    what :func:`parse` lets into the central.  ``_FIELDS`` below checks the same fields
    (a test holds the two together).  The time correction may be missing (older kiosks)."""

    corrected_at: str | None
    time_source: str | None
    sealed: str | None  # the identity sealed to the central's key (offline_queue.sealing)
    officer: str | None  # who made an override or recorded a declaration (not a citizen's)


Status = Literal["accepted", "duplicate", "conflict", "forbidden", "rejected", "unopened"]


class _Answer(TypedDict):
    id: str | None  # the check-in's id; None when the item had no usable one
    status: Status


class RowResult(_Answer, total=False):
    """The central's answer for one check-in of a batch (``results`` of the post)."""

    errors: list[str]


# field -> (types allowed, required)
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "id": ((str,), True),
    "device_id": ((str,), True),
    "checkpoint_id": ((str,), True),
    "direction": ((str,), True),
    "kind": ((str,), True),
    "person_key": ((str, type(None)), True),
    "display": ((dict,), True),
    "decision": ((str,), True),
    "reasons": ((list,), True),
    "source": ((str,), True),
    "override_of": ((str, type(None)), True),
    "original_decision": ((str, type(None)), True),
    "override_reason": ((str, type(None)), True),
    "recorded_at": ((str,), True),
    "monotonic_ns": ((int,), True),
    "boot_id": ((str,), True),
    "clock_synced": ((bool,), True),
    "corrected_at": ((str, type(None)), False),
    "time_source": ((str, type(None)), False),
    "app_version": ((str,), True),
    # The identity (person_key, an override reason with a digit) sealed to the central's
    # key (offline_queue.sealing); person_key is null then.  The central opens it on ingest.
    "sealed": ((str, type(None)), False),
    # Left out when nobody made the row (so a row recorded before the field has the same
    # content hash when it is sent again).
    "officer": ((str, type(None)), False),
}
_CHOICES = {"direction": DIRECTIONS, "kind": KINDS, "decision": DECISIONS, "source": SOURCES,
            "original_decision": DECISIONS, "time_source": TIME_SOURCES}
_MAX_LENGTH = {"override_reason": MAX_OVERRIDE_REASON, "recorded_at": 64, "corrected_at": 64,
               "sealed": MAX_SEALED, "officer": 32}
# Filled in or improved by the kiosk after the first send; never part of the content.
_NOT_CONTENT = frozenset({"corrected_at", "time_source"})


def from_row(row: Mapping[str, Any]) -> CheckIn:
    """The wire form of a ``checkins`` row of the kiosk database (its own, trusted)."""
    item: CheckIn = {
        "id": row["id"],
        "device_id": row["device_id"],
        "checkpoint_id": row["checkpoint_id"],
        "direction": row["direction"],
        "kind": row["kind"],
        "person_key": row["person_key"],
        "display": json.loads(row["display"]),
        "decision": row["decision"],
        "reasons": json.loads(row["reasons"]),
        "source": row["source"],
        "override_of": row["override_of"],
        "original_decision": row["original_decision"],
        "override_reason": row["override_reason"],
        "recorded_at": row["wall_time"],
        "monotonic_ns": row["mono_ns"],
        "boot_id": row["boot_id"],
        "clock_synced": bool(row["clock_synced"]),
        "corrected_at": row["corrected_time"],
        # How corrected_at was found: 'ntp', 'central' (the central's clock) or 'none'.
        "time_source": row["time_source"],
        "app_version": row["app_version"],
    }
    if row.get("officer"):  # absent otherwise: a row of before hashes as it did
        item["officer"] = row["officer"]
    if row.get("sealed") is not None:  # absent otherwise: a central of before knows no such field
        item["sealed"] = row["sealed"]
    return item


def content_hash(item: CheckIn) -> str:
    content = {k: v for k, v in item.items() if k not in _NOT_CONTENT}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error texts never echo a huge value."""
    if isinstance(value, (dict, list)) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def parse_time(value: str) -> datetime | None:
    """An ISO-8601 date-time with a time zone, as UTC; None if it is not one."""
    if len(value) > 64 or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted out of range by the offset
        return None


def plausible(when: datetime, received: datetime) -> bool:
    """True if ``when`` may be a real check-in time for a row received at ``received``."""
    return EARLIEST_TIME <= when <= received + FUTURE_SLACK


def _display_errors(display: dict[object, object]) -> list[str]:
    if len(display) > MAX_DISPLAY_FIELDS:
        return [f"display has {len(display)} fields; at most {MAX_DISPLAY_FIELDS}"]
    errors = []
    for key, value in display.items():
        if not isinstance(value, str):
            errors.append(f"display[{short_repr(key)}] has type {type(value).__name__}, "
                          f"value {short_repr(value)}; each value must be a string")
        elif len(value) > MAX_DISPLAY_VALUE:
            errors.append(f"display[{short_repr(key)}] is {len(value)} characters long; "
                          f"at most {MAX_DISPLAY_VALUE}")
        if len(str(key)) > MAX_DISPLAY_KEY:  # JSON object keys are always strings
            errors.append(f"display key {short_repr(key)} is {len(str(key))} characters long; "
                          f"at most {MAX_DISPLAY_KEY}")
    return errors


def _reasons_errors(reasons: list[object]) -> list[str]:
    if len(reasons) > MAX_REASONS:
        return [f"reasons has {len(reasons)} items; at most {MAX_REASONS}"]
    errors = []
    for i, reason in enumerate(reasons):
        if not isinstance(reason, str):
            errors.append(f"reasons[{i}] has type {type(reason).__name__}, value "
                          f"{short_repr(reason)}; each reason must be a string code")
        elif len(reason) > MAX_REASON:
            errors.append(f"reasons[{i}] is {len(reason)} characters long; at most {MAX_REASON}")
    return errors


def _time_errors(item: Mapping[object, object], now: datetime) -> list[str]:
    errors = []
    for name in ("recorded_at", "corrected_at"):
        value = item.get(name)
        if not isinstance(value, str):
            continue
        when = parse_time(value)
        if when is None:
            errors.append(f"{name} is {short_repr(value)}; use an ISO-8601 date-time with a "
                          "time zone, e.g. '2021-09-20T08:15:00.000000Z'")
        elif name == "corrected_at" and not plausible(when, now):
            errors.append(f"{name} is {short_repr(value)}; a corrected time must lie between "
                          f"{EARLIEST_TIME:%Y-%m-%d} and a day after the server's time")
    return errors


def parse(item: object, *, now: datetime | None = None) -> CheckIn | list[str]:
    """``item`` (untrusted JSON) as a check-in, or why the server must refuse it."""
    errors = validation_errors(item, now=now)
    # validation_errors() checked every field of CheckIn, its type and its bounds.
    return errors if errors else cast(CheckIn, item)


def validation_errors(item: object, *, now: datetime | None = None) -> list[str]:
    """Why the server must refuse ``item`` (received at ``now``); empty when it is valid."""
    if not isinstance(item, dict):
        return [f"a check-in must be a JSON object, got {type(item).__name__}"]
    now = now or datetime.now(UTC)
    errors = []
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        errors.append(f"unknown fields {short_repr(unknown[:5])}")
    for name, (types, required) in _FIELDS.items():
        if name in item:
            errors.extend(_field_errors(name, item[name], types))
        elif required:
            errors.append(f"missing field {name!r}")
    errors.extend(_uuid_errors(item))
    errors.extend(_time_errors(item, now))
    if item.get("sealed") is not None and item.get("person_key") is not None:
        errors.append("person_key is given in clear beside a sealed identity; send one or "
                      "the other (person_key null when sealed)")
    return errors


def _field_errors(name: str, value: object, types: tuple[type, ...]) -> list[str]:
    """What is wrong with field ``name``'s own value (the first problem found)."""
    # bool is an int in Python: keep monotonic_ns from accepting true/false.
    if not isinstance(value, types) or (name == "monotonic_ns" and isinstance(value, bool)):
        return [f"{name} has type {type(value).__name__}, value {short_repr(value)}"]
    if isinstance(value, str) and len(value) > _MAX_LENGTH.get(name, MAX_TEXT):
        return [f"{name} is {len(value)} characters long; at most "
                f"{_MAX_LENGTH.get(name, MAX_TEXT)}"]
    if name in _CHOICES and value is not None and value not in _CHOICES[name]:
        return [f"{name} is {short_repr(value)}; use one of {', '.join(_CHOICES[name])}"]
    if name == "monotonic_ns" and isinstance(value, int) and not 0 <= value <= MAX_MONOTONIC_NS:
        return [f"monotonic_ns is {short_repr(value)}; use 0 to {MAX_MONOTONIC_NS}"]
    if name == "display" and isinstance(value, dict):
        return _display_errors(value)
    if name == "reasons" and isinstance(value, list):
        return _reasons_errors(value)
    if name == "officer" and isinstance(value, str) and not OFFICER_ID.fullmatch(value):
        return [f"officer is {short_repr(value)}; an officer id is 1-32 ASCII letters, "
                "digits, '.', '_' or '-', starting with a letter or digit"]
    return []


# A UUID as kiosks write it (lower-case hex, hyphens 8-4-4-4-12): valid, and already its
# canonical spelling (``str(uuid.UUID(text)) == text``), so neither needs a UUID object.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(text: str) -> str:
    """``text`` (a valid UUID) in its one spelling, lower-case with hyphens."""
    return text if _CANONICAL_UUID.fullmatch(text) else str(uuid.UUID(text))


def _uuid_errors(item: Mapping[object, object]) -> list[str]:
    errors = []
    for name in ("id", "override_of"):
        value = item.get(name)
        if isinstance(value, str) and len(value) <= MAX_TEXT \
                and not _CANONICAL_UUID.fullmatch(value):
            try:
                uuid.UUID(value)
            except ValueError:
                errors.append(f"{name} is {value!r}, not a UUID")
    return errors
