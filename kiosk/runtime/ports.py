"""What the scan loop needs from its collaborators, as structural types.

:func:`kiosk.runtime.build.build` gives it the real ones (``offline_queue.store.Store``, the
live policy checker, ``hardware.signals.Signals``, the capture pipeline, the sync worker);
tests and benches may give any object of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from hardware.camera import Frame
from hardware.signals import Pattern
from kiosk.domain.model import Credential, Decision
from offline_queue.documents import Document
from offline_queue.records import CheckIn
from offline_queue.sync import SyncStatus


class CheckInStore(Protocol):
    """The durable record: ``record`` returns only once the check-in is committed."""

    def record(self, entry: CheckIn) -> str: ...
    def counts_today(self) -> dict[str, int]: ...
    def recent(self, limit: int = 10) -> list[dict[str, Any]]: ...


class DecisionMaker(Protocol):
    """Decides about a credential (``kiosk.runtime.checker.LiveChecker`` or a plain Checker)."""

    def decide(self, credential: Credential, *, at: datetime,
               direction: str = "in") -> Decision: ...


class StoredDocuments(Protocol):
    """Where the sync worker keeps the down-synced documents (``offline_queue.store.Store``)."""

    def document(self, name: str) -> Document | None: ...


class KioskStore(CheckInStore, StoredDocuments, Protocol):
    """The kiosk's one database: check-ins for the loop, documents for the checker."""


class DocumentState(Protocol):
    """The down-synced documents in force, for the status strip
    (``kiosk.runtime.checker.LiveChecker``)."""

    def trust_list_age(self) -> timedelta | None: ...
    def document_times(self) -> Mapping[str, datetime | None]: ...
    def document_errors(self) -> Mapping[str, str]: ...


class Lights(Protocol):
    """Signal lights, buzzer and gate (``hardware.signals.Signals``)."""

    def show(self, pattern: Pattern) -> None: ...
    def state(self) -> dict[str, bool]: ...


class FrameSource(Protocol):
    """The camera side (``kiosk.runtime.capture.CapturePipeline``): health, the preview, and
    what the systemd watchdog asks (``kiosk.ops.notify``)."""

    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str | None: ...
    @property
    def frames(self) -> int:
        """Frames delivered so far (the kiosk is up once the first one arrived)."""
        ...

    def latest_frame(self) -> Frame | None: ...
    def alive(self, *, max_age: float) -> bool:
        """Its threads turned within ``max_age`` seconds."""
        ...


class SyncLink(Protocol):
    """The sync worker: woken after each record, asked for its status."""

    def poke(self) -> None: ...
    def status(self) -> SyncStatus: ...
