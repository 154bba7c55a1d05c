"""The values that flow through the scan loop: a recognised credential and a decision.

Plain frozen dataclasses with no behaviour beyond JSON conversion, shared by the
credential parsers, the policy, the store and the screen.  The vocabulary of a check-in
(:class:`Kind`, :class:`Direction`, :class:`Outcome`) is the queue's and the wire's too:
it is defined once, in ``offline_queue.records``, and re-exported here for the kiosk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The domain's one import from below the kiosk (a named exception in pyproject.toml).
from offline_queue.records import (
    DECISIONS,
    DIRECTIONS,
    KINDS,
    OFFICER_ID,
    PERSON_KINDS,
    Direction,
    Kind,
    Outcome,
)

__all__ = ["DECISIONS", "DIRECTIONS", "KINDS", "OFFICER_ID", "PERSON_KINDS", "Credential",
           "Decision",
           "Direction", "Kind", "Outcome"]


@dataclass(frozen=True)
class Credential:
    """A parsed QR payload.

    ``person_key`` is the stable identity (QID, CCCD number, UVCI, insurance number) or
    None for codes that are not a person.  ``display`` holds masked, NFC strings safe to
    show to the queue; ``fields`` the parsed values (dates as ISO 8601 strings);
    ``checks`` what was verified offline (True/False, None = not reached).
    ``problems`` are reason codes found while parsing (e.g. ``cccd_birth_year_mismatch``).
    ``identifiers`` every full identity number the code carries, as normalised
    ``(type, number)`` pairs (``("cccd", "001185012345")``, ``("cmnd", …)``, ``("qid", …)``,
    ``("bhyt", …)``, ``("bhxh", …)``, ``("passport", …)``, ``("uvci", …)``): the watchlist
    checks them all, so a person cannot pass by showing another of their codes.
    ``evidence`` is what a later offline verification needs (for ``eu_dcc``: the
    COSE message); it is opaque, never shown, stored or compared.
    """

    kind: Kind
    person_key: str | None = None
    display: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool | None] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    identifiers: frozenset[tuple[str, str]] = frozenset()
    evidence: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Decision:
    """The checkpoint's answer with machine-readable reason codes.

    ``found`` is what the status document holds about the person, masked, for the screen
    (``kiosk.domain.status.HealthStatus.masked``); None when no rule read it.  It is shown,
    never recorded, and not part of what makes two decisions the same.
    """

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    found: dict[str, Any] | None = field(default=None, compare=False)
