"""What the scan loop hands to the store, and the client-made ids that make resends safe.

This module also owns the check-in vocabulary (directions, kinds, decisions, sources): the
one definition the kiosk's domain, the queue, the wire format and the central all import.
It is the lowest module every one of them may import (``offline_queue`` imports nothing
from ``kiosk``), so it stays a leaf: the standard library only (a contract in
pyproject.toml).  docs/api.yaml repeats the lists for other implementers; a test keeps it
equal to these.
"""

from __future__ import annotations

import enum
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


class Direction(enum.StrEnum):
    """Which way a person passes the checkpoint (a kiosk faces one way at a time)."""

    IN = "in"
    OUT = "out"


class Kind(enum.StrEnum):
    """Families of QR payloads a checkpoint camera sees (``../shared/reference/payloads.md``)."""

    CCCD = "cccd"
    PC_COVID = "pc_covid"
    BHYT = "bhyt"
    EU_DCC = "eu_dcc"
    VENUE = "venue"
    UNKNOWN = "unknown"

    @property
    def is_person(self) -> bool:
        return self not in (Kind.VENUE, Kind.UNKNOWN)


class Outcome(enum.StrEnum):
    """What the checkpoint tells the person, recorded as a check-in's ``decision``: go
    through, wait for an officer, or stop."""

    PASS = "pass"
    CHECK = "check"
    STOP = "stop"


# The same vocabularies as plain strings, for validation messages and JSON.
DIRECTIONS: tuple[str, ...] = tuple(d.value for d in Direction)
KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
PERSON_KINDS: tuple[str, ...] = tuple(k.value for k in Kind if k.is_person)
DECISIONS: tuple[str, ...] = tuple(o.value for o in Outcome)
# How a check-in's code reached the kiosk: the camera, an officer's typing, the
# dedicated 2D scanner beside the camera, or an officer's declaration form for a person
# with no code or no document (kiosk.domain.declaration).  No schema constraint holds these
# (the column is free text), so a new one needs no migration; a central that predates one
# refuses it.
SOURCES = ("scan", "manual", "scanner", "declared")

# Who made an override or recorded a declaration: an officer's id from the officers document
# (kiosk.domain.officers checks the document's ids with this), printable and short.
OFFICER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def check_officer(value: object, what: str = "officer") -> str:
    """``value`` if it is an officer id (ASCII letters and digits, then ``.``, ``_`` or ``-``,
    1-32 characters); ValueError naming ``what`` otherwise."""
    if not isinstance(value, str) or not OFFICER_ID.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"{what} is {shown}; an officer id is 1-32 ASCII letters, digits, "
                         "'.', '_' or '-', starting with a letter or digit (the id in the "
                         "officers document)")
    return value


# Delivery states of a row.  ``rejected`` is the dead letter (the server refused the
# content); ``conflict`` means the server already holds this id with other content.
STATES = ("pending", "in_flight", "sent", "rejected", "conflict")


@dataclass(frozen=True)
class CheckIn:
    """One check-in as the scan loop decided it; the store adds ids, times and state."""

    direction: str
    kind: str
    person_key: str | None
    display: Mapping[str, str] = field(default_factory=dict)
    decision: str = "check"
    reasons: tuple[str, ...] = ()
    source: str = "scan"
    override_of: str | None = None
    original_decision: str | None = None
    override_reason: str | None = None
    # The officer who made the override or recorded the declaration (None: nobody did).
    officer: str | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("direction", self.direction, DIRECTIONS),
            ("kind", self.kind, KINDS),
            ("decision", self.decision, DECISIONS),
            ("source", self.source, SOURCES),
        ):
            if value not in choices:
                raise ValueError(f"CheckIn.{name} is {value!r}; use one of {', '.join(choices)}")
        if self.original_decision is not None and self.original_decision not in DECISIONS:
            raise ValueError(
                f"CheckIn.original_decision is {self.original_decision!r}; "
                f"use one of {', '.join(DECISIONS)} or None"
            )
        if self.override_of is not None:
            check_uuid(self.override_of, "CheckIn.override_of")
        if self.officer is not None:
            check_officer(self.officer, "CheckIn.officer")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.display.items()):
            raise ValueError(f"CheckIn.display must map str to str, got {dict(self.display)!r}")
        # Accept any iterable of strings but store an immutable tuple.
        object.__setattr__(self, "reasons", tuple(self.reasons))


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{what} is {value!r}, not a UUID") from e


class UUIDv7Factory:
    """UUIDv7 (RFC 9562 §5.7) that never goes backwards within this process.

    Python 3.11 has no ``uuid.uuid7``.  Within one millisecond, or when the wall clock
    steps back, the previous value is incremented (RFC 9562 §6.2 method 2 style) so ids
    made in one run sort in creation order.  Across boots with a wrong clock they may
    not, so the store keeps its own sequence for creation order.
    """

    def __init__(self, time_ns: Callable[[], int] = time.time_ns) -> None:
        self._time_ns = time_ns
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        ms = self._time_ns() // 1_000_000
        rand = int.from_bytes(os.urandom(10), "big")
        rand_a = rand >> 68 & 0xFFF  # 12 bits
        rand_b = rand & ((1 << 62) - 1)  # 62 bits
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
        with self._lock:
            if value <= self._last:
                value = _bump(self._last)
            self._last = value
        return str(uuid.UUID(int=value))


def _bump(value: int) -> int:
    """The next v7 value after ``value``, keeping the version and variant bits."""
    rand_b = value & ((1 << 62) - 1)
    rand_a = value >> 64 & 0xFFF
    ms = value >> 80
    if rand_b < (1 << 62) - 1:
        rand_b += 1
    elif rand_a < 0xFFF:
        rand_a, rand_b = rand_a + 1, 0
    else:
        ms, rand_a, rand_b = ms + 1, 0, 0
    return ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b


uuid7 = UUIDv7Factory()
