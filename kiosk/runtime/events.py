"""The typed seam between the scan loop and whoever drives it (the screen, or headless).

Everything crosses it as one of the frozen dataclasses below, on one path each way:

* **in**: background threads (camera and decoder, scanner, sync, GPIO buttons) put a
  :data:`LoopInput`
  on the loop's one queue (``ScanLoop.events``); nothing else touches that queue;
* **out**: :meth:`kiosk.runtime.scanloop.ScanLoop.step`, called by the thread that owns the
  screen, returns the :data:`LoopOutput` items the step produced, in order.  The screen reads
  health only from the :class:`Health` items it is given (sent whenever health changes).

A screen that wants the codes the camera reads (the officer panel's provisioning and self-test
screens) passes ``claim=`` to ``step``; a claimed code comes back as :class:`CodeClaimed`
instead of being decided and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kiosk.domain.declaration import Declaration
from kiosk.domain.model import Credential, Decision
from kiosk.runtime.capture import CameraStatus, Decoded, StreamEnded
from offline_queue.sync import SyncStatus


@dataclass(frozen=True)
class Scanned(Decoded):
    """A code read by a device other than the camera (the dedicated 2D scanner).

    The same event as the camera's, so it goes through the same dedupe -> decision ->
    record -> lights path; ``source`` is what the check-in records.  ``problem`` is set when
    the device delivered something that cannot be a code (a line too long, a key no
    character matches): the person is told "not recognised" and nothing is recorded.
    """

    source: str = "scanner"
    problem: str | None = None


@dataclass(frozen=True)
class DeviceStatus:
    """A device beside the camera (``source``: "scanner") came or went; like CameraStatus,
    it wakes the loop, which reads the device's state for :class:`Health`."""

    source: str
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class ButtonPress:
    """An officer button was pressed (GPIO callback thread -> loop -> screen)."""

    name: str  # "confirm" | "direction" | "officer" | "dismiss"


@dataclass(frozen=True)
class Declared:
    """A person an officer declared on the kiosk's form (no code, or no document), already
    checked field by field (:func:`kiosk.domain.declaration.check`): decided by the policy
    and recorded with source ``declared`` and the officer's id, like a code."""

    declaration: Declaration


@dataclass(frozen=True)
class ScanResult:
    """One processed code, manual entry or override."""

    at: datetime
    credential: Credential
    decision: Decision
    checkin_id: str | None  # None when nothing was recorded (venue / unrecognised codes)
    direction: str
    source: str  # "scan" | "scanner" | "manual" | "override" | "declared"
    frame_ns: int | None = None  # when the camera captured the code (monotonic)
    signalled_ns: int | None = None  # when the lights were set (monotonic)

    @property
    def recorded(self) -> bool:
        return self.checkin_id is not None


@dataclass(frozen=True)
class Health:
    """What the kiosk can and cannot do right now; the screen's fault and status strip."""

    camera_ok: bool
    camera_message: str | None
    store_ok: bool
    store_message: str | None
    disk_low: bool
    online: bool | None  # None = sync not configured
    backlog: int
    last_sync: datetime | None
    reprovision_needed: bool
    clock_synced: bool
    trust_list_age: timedelta | None
    # When each synced document (policy, watchlist, trust list) was last fetched or confirmed
    # unchanged by the central; None = never.  Empty when the kiosk was not told.
    documents: tuple[tuple[str, datetime | None], ...] = ()
    undelivered: int = 0  # rows the central will not take (dead letters, refused/held rows)
    document_errors: tuple[str, ...] = ()  # documents the central sent that were not applied
    # The central's key was pinned on trust (no fingerprint at enrolment): documents are
    # checked against a key nobody confirmed (docs/trust.md).
    key_unconfirmed: bool = False
    # The dedicated scanner: configured at all (the status strip shows it only then), and
    # its state (ok, no message when there is none).
    scanner_configured: bool = False
    scanner_ok: bool = True
    scanner_message: str | None = None

    @property
    def fault(self) -> bool:
        """Something that stops the kiosk doing its job: the lights blink amber.  A
        configured scanner that is unplugged is one: the post counts on it."""
        return not self.camera_ok or not self.store_ok or not self.scanner_ok


@dataclass(frozen=True)
class CodeClaimed:
    """A code the screen claimed (``step(claim=...)``): not decided, not recorded."""

    code: Decoded


#: What background threads post to the loop.
LoopInput = (Decoded | CameraStatus | DeviceStatus | StreamEnded | ButtonPress | SyncStatus
             | Declared)
#: What one ``ScanLoop.step`` hands to the screen, in order.
LoopOutput = ScanResult | Health | ButtonPress | CodeClaimed

__all__ = ["ButtonPress", "CameraStatus", "CodeClaimed", "Declared", "Decoded", "DeviceStatus",
           "Health",
           "LoopInput", "LoopOutput", "ScanResult", "Scanned", "StreamEnded", "SyncStatus"]
