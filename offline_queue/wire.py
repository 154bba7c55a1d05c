"""The check-in as it travels to the central platform, shared by the client and the server.

The content hash covers everything the kiosk recorded and never changes: ``corrected_at``
is left out because the kiosk may fill it in after a first send attempt (the clock was
corrected), and that must not turn an honest resend into a conflict.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from offline_queue.records import DECISIONS, DIRECTIONS, KINDS, SOURCES

MAX_BATCH = 1000

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
}
_CHOICES = {"direction": DIRECTIONS, "kind": KINDS, "decision": DECISIONS, "source": SOURCES}


def from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The wire form of a ``checkins`` row of the kiosk database."""
    return {
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


def content_hash(item: dict[str, Any]) -> str:
    content = {k: v for k, v in item.items() if k not in ("corrected_at", "time_source")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def validation_errors(item: Any) -> list[str]:
    """Why the server must refuse ``item``; empty when it is a valid check-in."""
    if not isinstance(item, dict):
        return [f"a check-in must be a JSON object, got {type(item).__name__}"]
    errors = []
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        errors.append(f"unknown fields {unknown!r}")
    for name, (types, required) in _FIELDS.items():
        if name not in item:
            if required:
                errors.append(f"missing field {name!r}")
            continue
        value = item[name]
        # bool is an int in Python: keep monotonic_ns from accepting true/false.
        if not isinstance(value, types) or (name == "monotonic_ns" and isinstance(value, bool)):
            errors.append(f"{name} has type {type(value).__name__}, value {value!r}")
        elif name in _CHOICES and value not in _CHOICES[name]:
            errors.append(f"{name} is {value!r}; use one of {', '.join(_CHOICES[name])}")
    for name in ("id", "override_of"):
        value = item.get(name)
        if isinstance(value, str):
            try:
                uuid.UUID(value)
            except ValueError:
                errors.append(f"{name} is {value!r}, not a UUID")
    return errors
