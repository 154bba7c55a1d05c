"""What the screen needs from the scan loop (``kiosk.runtime.scanloop``), as structural types.

The UI depends on these shapes, not on the module, so it can be built and tested while
the scan loop evolves; ``kiosk.runtime.scanloop.ScanLoop`` satisfies them.  The officer panel's
appliance screens also use two attributes when present: ``events`` (the queue decoded codes
arrive on; they are taken off it while provision or self-test is open) and ``signals``
(swapped for ``kiosk.ui.appliance.HeldSignals`` while the self-test drives the pins).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from kiosk.domain.model import Credential, Decision, Outcome


class ScanResultLike(Protocol):
    at: datetime
    credential: Credential
    decision: Decision
    checkin_id: str | None
    direction: str
    source: str


class HealthLike(Protocol):
    camera_ok: bool
    camera_message: str | None
    store_ok: bool
    store_message: str | None
    disk_low: bool
    online: bool | None
    backlog: int
    last_sync: datetime | None
    reprovision_needed: bool
    clock_synced: bool
    trust_list_age: timedelta | None
    # Newer fields, read with getattr defaults so an older loop still draws:
    # documents: tuple[tuple[str, datetime | None], ...]; undelivered: int;
    # document_errors: tuple[str, ...]


@runtime_checkable
class ScanLoopLike(Protocol):
    accepted_kinds: tuple[str, ...]

    @property
    def direction(self) -> str: ...

    def step(self) -> list[Any]: ...
    def latest_frame(self) -> Any: ...
    def manual_entry(self, number: str) -> Any: ...
    def override(self, checkin_id: str, outcome: Outcome, reason: str) -> Any: ...
    def set_direction(self, direction: str) -> None: ...
    def counts_today(self) -> dict[str, int]: ...
    def recent(self, limit: int = 10) -> list[dict]: ...
    def health(self) -> Any: ...
    def lights(self) -> dict[str, bool]: ...


def is_health(item: object) -> bool:
    """True for a Health report (step() also returns ScanResults and ButtonPresses)."""
    return hasattr(item, "camera_ok") and not hasattr(item, "decision")
