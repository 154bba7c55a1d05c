"""The scan loop: decoded code -> dedupe -> credential -> decision -> durable record -> signal.

It runs on the thread that owns the screen (or the headless runner's thread).  Background
threads — camera, decoder, sync, GPIO buttons — only put events on ``events``; :meth:`step`
takes them off and acts, so every decision, record and light change happens in one place,
in order.

The one rule that matters most: a check-in is committed to the store (``synchronous=FULL``)
*before* the lights say pass.  If it cannot be recorded, the person gets ``check`` with the
reason ``not_recorded`` and the lights show a fault.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hardware.signals import Pattern
from kiosk.domain.model import Credential, Decision, Kind, Outcome
from kiosk.errors import KioskError
from kiosk.runtime.capture import CameraStatus, Decoded, StreamEnded
from offline_queue.records import CheckIn
from offline_queue.sync import SyncStatus

log = logging.getLogger(__name__)

SYNCED_FLAG = Path("/run/systemd/timesync/synchronized")
DIRECTIONS = ("in", "out")
DISK_CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class ScanResult:
    """One processed code, manual entry or override."""

    at: datetime
    credential: Credential
    decision: Decision
    checkin_id: str | None  # None when nothing was recorded (venue / unrecognised codes)
    direction: str
    source: str  # "scan" | "manual" | "override"
    frame_ns: int | None = None  # when the camera captured the code (monotonic)
    signalled_ns: int | None = None  # when the lights were set (monotonic)


@dataclass(frozen=True)
class Health:
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

    @property
    def fault(self) -> bool:
        """Something that stops the kiosk doing its job: the lights blink amber."""
        return not self.camera_ok or not self.store_ok


@dataclass(frozen=True)
class ButtonPress:
    """An officer button was pressed (the UI opens its panel on 'officer')."""

    name: str


def _log_failure(what: str) -> None:
    """An unexpected error while a payload was in hand: its message or traceback could quote
    personal data, so only the exception's type goes above DEBUG."""
    error = sys.exc_info()[1]
    log.error("%s (%s); details at DEBUG", what, type(error).__name__)
    log.debug("%s", what, exc_info=True)


def _minutes(age: timedelta | None) -> timedelta | None:
    """Ages are shown in minutes; rounding keeps Health equal from one frame to the next."""
    return None if age is None else timedelta(minutes=age // timedelta(minutes=1))


def undelivered(sync: Any) -> int:
    """Check-ins that sync cannot deliver as things stand (SyncStatus fields, when present)."""
    return sum(int(getattr(sync, name, 0) or 0) for name in ("dead_letter", "held", "forbidden"))


def document_errors(sync: Any) -> tuple[str, ...]:
    """Names of the documents sync says it could not apply (a mapping, names or pairs)."""
    errors = getattr(sync, "document_errors", None) or ()
    names = [e[0] if isinstance(e, tuple | list) else e for e in errors]
    return tuple(sorted(str(n) for n in names))


def clock_synced() -> bool:
    """systemd-timesyncd creates this flag file once NTP has set the clock in this boot."""
    return SYNCED_FLAG.exists()


PATTERNS = {Outcome.PASS: Pattern.PASS, Outcome.CHECK: Pattern.CHECK, Outcome.STOP: Pattern.STOP}


class ScanLoop:
    """The kiosk's decisions in order.  Collaborators are injected; ``kiosk.runtime.build`` makes
    them."""

    def __init__(
        self,
        *,
        store: Any,
        checker: Any,
        recognise: Callable[[bytes | str], Credential],
        signals: Any = None,
        pipeline: Any = None,
        events: queue.Queue[Any] | None = None,
        sync: Any = None,
        direction: str = "in",
        dedupe_seconds: float = 3.0,
        result_seconds: float = 4.0,
        keep_fields: Iterable[str] = ("name", "id", "birth_year"),
        accepted_kinds: Iterable[str] = (),
        manual_entry: Callable[[str], Credential] | None = None,
        disk_path: str | os.PathLike[str] | None = None,
        disk_warn_bytes: int = 200 * 1024 * 1024,
        is_clock_synced: Callable[[], bool] = clock_synced,
        trust_list_age: Callable[[], timedelta | None] = lambda: None,
        document_times: Callable[[], Mapping[str, datetime | None]] = lambda: {},
        stored_document_errors: Callable[[], Mapping[str, str]] = lambda: {},
    ) -> None:
        if direction not in DIRECTIONS:
            raise KioskError(f"direction {direction!r} must be 'in' or 'out'")
        self.store = store
        self.checker = checker
        self.recognise = recognise
        self.signals = signals
        self.pipeline = pipeline
        self.events: queue.Queue[Any] = events if events is not None else queue.Queue()
        self.sync = sync
        self._direction = direction
        self.dedupe_seconds = dedupe_seconds
        self.result_seconds = result_seconds
        self._keep_fields = tuple(keep_fields)
        self._accepted_kinds = tuple(accepted_kinds)
        self._manual = manual_entry
        self._disk_path = disk_path
        self._disk_warn_bytes = disk_warn_bytes
        self._is_clock_synced = is_clock_synced
        self._trust_list_age = trust_list_age
        self._document_times = document_times
        self._stored_document_errors = stored_document_errors
        self._seen: dict[bytes, float] = {}
        self._results: deque[ScanResult] = deque(maxlen=50)
        self._idle_at: float | None = None
        self._pattern = Pattern.IDLE
        # A store that could not be opened says why from the start
        # (kiosk.runtime.build.UnavailableStore).
        self._store_message: str | None = getattr(store, "unavailable", None)
        self._disk_low = False
        self._disk_checked = float("-inf")
        self._sync_status: Any = None
        self._health: Health | None = None
        self.ended = False
        self._lock = threading.RLock()

    # A synced policy changes what may be kept and shown at once, not after a restart: a checker
    # with a policy (kiosk.runtime.checker.LiveChecker) is asked at each use; the arguments are
    # for others.
    @property
    def keep_fields(self) -> tuple[str, ...]:
        policy = getattr(self.checker, "policy", None)
        return tuple(policy.keep_fields) if policy is not None else self._keep_fields

    @property
    def accepted_kinds(self) -> tuple[str, ...]:
        policy = getattr(self.checker, "policy", None)
        return tuple(policy.accepted_kinds) if policy is not None else self._accepted_kinds

    # -- the loop ------------------------------------------------------------------------------

    def step(self, timeout: float = 0.0) -> list[Any]:
        """Handle every pending event; wait up to ``timeout`` s for the first one."""
        out: list[Any] = []
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            event = None
        while event is not None:
            out.extend(self._handle(event))
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        self._tick(out)
        return out

    def _handle(self, event: Any) -> list[Any]:
        try:
            if isinstance(event, Decoded):
                if self._duplicate(event.raw):
                    return []
                return [self.process(event.raw, frame_ns=event.frame_ns)]
            if isinstance(event, CameraStatus):
                return []  # read from the pipeline in _tick's health check
            if isinstance(event, StreamEnded):
                self.ended = True
                return []
            if isinstance(event, ButtonPress):
                return self._button(event)
            if isinstance(event, SyncStatus):
                self._sync_status = event
                return []
            log.warning("scan loop: ignoring unknown event %r", type(event).__name__)
        except Exception:
            # The watchdog decides about restarts; one bad event must not end the loop.
            _log_failure(f"scan loop: handling {type(event).__name__} failed")
            self._show(Pattern.FAULT)
        return []

    def _tick(self, out: list[Any]) -> None:
        now = time.monotonic()
        health = self.health()
        if health != self._health:
            self._health = health
            out.append(health)
        with self._lock:
            if health.fault:
                if self._idle_at is None and self._pattern is not Pattern.FAULT:
                    self._show(Pattern.FAULT)
            elif self._idle_at is not None and now >= self._idle_at:
                self._idle_at = None
                self._show(Pattern.IDLE)
            elif self._idle_at is None and self._pattern is Pattern.FAULT:
                self._show(Pattern.IDLE)

    def _duplicate(self, raw: bytes) -> bool:
        """The same code seen again within the window of its last sighting is the same scan."""
        now = time.monotonic()
        key = hashlib.blake2b(raw, digest_size=16).digest()  # keep no payload in memory
        last = self._seen.get(key)
        self._seen[key] = now
        if len(self._seen) > 256:
            cutoff = now - self.dedupe_seconds
            self._seen = {k: t for k, t in self._seen.items() if t >= cutoff}
        return last is not None and now - last <= self.dedupe_seconds

    # -- decisions -----------------------------------------------------------------------------

    def process(self, payload: bytes | str, *, source: str = "scan",
                frame_ns: int | None = None) -> ScanResult:
        """Decide about one payload, record it durably, then signal.  Never raises."""
        try:
            credential = self.recognise(payload)
        except Exception:  # the parsers promise not to raise; if one does, the person waits
            _log_failure("recognising a payload failed")
            credential = Credential(Kind.UNKNOWN, problems=("parser_error",))
        return self._decide_and_record(credential, source=source, frame_ns=frame_ns)

    def _decide_and_record(self, credential: Credential, *, source: str,
                           frame_ns: int | None = None, override: dict | None = None,
                           decision: Decision | None = None,
                           record_source: str | None = None,
                           direction: str | None = None) -> ScanResult:
        at = datetime.now(UTC)
        direction = direction or self._direction
        if decision is None:
            try:
                decision = self.checker.decide(credential, at=at)
            except Exception:
                _log_failure(f"deciding about a {credential.kind} failed")
                decision = Decision(Outcome.CHECK, ("internal_error",))
        checkin_id = None
        if credential.kind.is_person:
            checkin_id, decision = self._record(credential, decision, record_source or source,
                                                override, direction)
        result = ScanResult(at, credential, decision, checkin_id, direction, source,
                            frame_ns=frame_ns)
        self._show(PATTERNS[decision.outcome], result_for=self.result_seconds)
        result = replace(result, signalled_ns=time.monotonic_ns())
        self._results.append(result)
        reasons = ",".join(decision.reasons) or "ok"
        # No personal data: the journal gets the same four fields as structured ones.
        log.info("check-in %s: %s %s (%s)", checkin_id or "-", credential.kind,
                 decision.outcome, reasons,
                 extra={"checkin_id": checkin_id or "", "kind": str(credential.kind),
                        "decision": str(decision.outcome), "reasons": reasons})
        if checkin_id and self.sync is not None:
            self.sync.poke()
        return result

    def _record(self, credential: Credential, decision: Decision, source: str,
                override: dict | None, direction: str) -> tuple[str | None, Decision]:
        keep = self.keep_fields
        display = {k: v for k, v in credential.display.items() if k in keep}
        entry = CheckIn(
            direction=direction,
            kind=str(credential.kind),
            person_key=credential.person_key,
            display=display,
            decision=str(decision.outcome),
            reasons=tuple(decision.reasons),
            source=source,
            **(override or {}),
        )
        try:
            checkin_id = self.store.record(entry)
        except Exception as e:
            # Not durable, so never a pass: an officer must take the person's details by hand.
            log.error("check-in could not be recorded: %s", e)
            self._store_message = str(e) or type(e).__name__
            return None, Decision(Outcome.CHECK, (*decision.reasons, "not_recorded"))
        self._store_message = None
        return checkin_id, decision

    def manual_entry(self, number: str) -> ScanResult:
        """An officer typed a CCCD number for someone with no QR; validated like a scan."""
        number = number.strip()
        credential = self._manual(number) if self._manual else self.recognise(number)
        return self._decide_and_record(credential, source="manual")

    def override(self, checkin_id: str, outcome: Outcome | str, reason: str) -> ScanResult:
        """Replace a decision; recorded as a new check-in that names the original."""
        outcome = Outcome(outcome)
        reason = reason.strip()
        if not reason:
            raise KioskError("an override needs a reason; type why you changed the decision")
        original = next((r for r in reversed(self._results) if r.checkin_id == checkin_id), None)
        if original is None:
            raise KioskError(
                f"check-in {checkin_id!r} is not among the last {self._results.maxlen} decisions "
                "on this kiosk; only recent decisions can be overridden here"
            )
        override = {"override_of": checkin_id,
                    "original_decision": str(original.decision.outcome),
                    "override_reason": reason}
        decision = Decision(outcome, ("officer_override",))
        # The same passage with a new decision: the officer may have switched the direction
        # since (the next person goes the other way), which must not turn an entry into an exit.
        return self._decide_and_record(original.credential, source="override",
                                       override=override, decision=decision,
                                       record_source=original.source,
                                       direction=original.direction)

    def _button(self, event: ButtonPress) -> list[Any]:
        if event.name == "direction":
            self.set_direction("out" if self._direction == "in" else "in")
            return [event]
        if event.name == "confirm":
            last = next((r for r in reversed(self._results) if r.checkin_id), None)
            if last is not None and last.decision.outcome is Outcome.CHECK:
                return [self.override(last.checkin_id, Outcome.PASS, "officer confirmed")]
            return [event]
        return [event]

    def post_button(self, name: str) -> None:
        """For gpiozero's callback thread: queue a button press for the loop."""
        self.events.put(ButtonPress(name))

    # -- state for the screen ------------------------------------------------------------------

    @property
    def direction(self) -> str:
        return self._direction

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise KioskError(f"direction {direction!r} must be 'in' or 'out'")
        if direction != self._direction:
            log.info("direction set to %s", direction)
        self._direction = direction

    def latest_frame(self) -> Any:
        frame = self.pipeline.latest_frame() if self.pipeline is not None else None
        return frame.image if frame is not None else None

    def counts_today(self) -> dict[str, int]:
        return self.store.counts_today()

    def recent(self, limit: int = 10) -> list[dict]:
        return self.store.recent(limit)

    def lights(self) -> dict[str, bool]:
        if self.signals is None:
            return {"red": False, "amber": False, "green": False, "buzzer": False, "gate": False}
        return self.signals.state()

    def health(self) -> Health:
        now = time.monotonic()
        if self._disk_path is not None and now - self._disk_checked >= DISK_CHECK_SECONDS:
            self._disk_checked = now
            try:
                free = shutil.disk_usage(self._disk_path).free
                low = free < self._disk_warn_bytes
                if low and not self._disk_low:
                    log.warning("disk nearly full: %d MiB free at %s", free // 2**20,
                                self._disk_path)
                self._disk_low = low
            except OSError as e:
                log.warning("free disk space of %s unknown: %s", self._disk_path, e)
        sync = self._sync_status
        if sync is None and self.sync is not None:
            sync = self.sync.status()
        pipeline = self.pipeline
        return Health(
            camera_ok=pipeline.ok if pipeline is not None else True,
            camera_message=pipeline.message if pipeline is not None else None,
            store_ok=self._store_message is None,
            store_message=self._store_message,
            disk_low=self._disk_low,
            online=sync.online if sync is not None else None,
            backlog=sync.backlog if sync is not None else 0,
            last_sync=sync.last_success if sync is not None else None,
            reprovision_needed=bool(sync.reprovision_needed) if sync is not None else False,
            clock_synced=self._is_clock_synced(),
            trust_list_age=_minutes(self._trust_list_age()),
            documents=self._documents(),
            undelivered=undelivered(sync) if sync is not None else 0,
            document_errors=self._document_errors(sync),
        )

    def _document_errors(self, sync: Any) -> tuple[str, ...]:
        """Documents not in force: refused by sync, or stored but not applicable."""
        names = set(document_errors(sync)) if sync is not None else set()
        try:
            names.update(str(name) for name in self._stored_document_errors())
        except Exception as e:  # the screen's status must not stop the loop
            log.warning("document errors unavailable: %s", type(e).__name__)
        return tuple(sorted(names))

    def _documents(self) -> tuple[tuple[str, datetime | None], ...]:
        try:
            return tuple((str(name), when) for name, when in self._document_times().items())
        except Exception as e:  # the screen's status must not stop the loop
            log.warning("document times unavailable: %s", type(e).__name__)
            return ()

    def _show(self, pattern: Pattern, result_for: float | None = None) -> None:
        with self._lock:
            self._pattern = pattern
            self._idle_at = time.monotonic() + result_for if result_for is not None else None
            if self.signals is not None:
                try:
                    self.signals.show(pattern)
                except Exception:
                    log.exception("setting the lights to %s failed", pattern)
