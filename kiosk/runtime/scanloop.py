"""The scan loop: decoded code -> dedupe -> credential -> decision -> durable record -> signal.

It runs on the thread that owns the screen (or the headless runner's thread).  Background
threads — camera, decoder, sync, GPIO buttons — only put events on ``events``; :meth:`step`
takes them off, acts, and returns what happened as typed items (``kiosk.runtime.events``), so
every decision, record and light change happens in one place, in order.

The one rule that matters most: a check-in is committed to the store (``synchronous=FULL``)
*before* the lights say pass.  If it cannot be recorded, the person gets ``check`` with the
reason ``not_recorded`` and the lights show a fault.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hardware.signals import OUTPUTS, Pattern
from kiosk.domain.declaration import Declaration
from kiosk.domain.declaration import credential as declared_credential
from kiosk.domain.model import DIRECTIONS, Credential, Decision, Kind, Outcome
from kiosk.domain.policy import Override
from kiosk.errors import KioskError
from kiosk.runtime.capture import CameraStatus, Decoded, StreamEnded
from kiosk.runtime.events import (
    ButtonPress,
    CodeClaimed,
    Declared,
    DeviceStatus,
    Health,
    LoopInput,
    LoopOutput,
    Scanned,
    ScanResult,
)
from kiosk.runtime.ports import (
    CheckInStore,
    DecisionMaker,
    DocumentState,
    FrameSource,
    Lights,
    SyncLink,
)
from kiosk.runtime.scanner import DeviceState
from offline_queue.clock import Sampled
from offline_queue.disk import DiskWatch
from offline_queue.records import CheckIn
from offline_queue.sync import SyncStatus

log = logging.getLogger(__name__)

SYNCED_FLAG = Path("/run/systemd/timesync/synchronized")
DISK_CHECK_SECONDS = 30.0
CLOCK_CHECK_SECONDS = 10.0  # the NTP flag file is looked at no more often than this


def _log_failure(what: str) -> None:
    """An unexpected error while a payload was in hand: its message or traceback could quote
    personal data, so only the exception's type goes above DEBUG."""
    error = sys.exc_info()[1]
    log.error("%s (%s); details at DEBUG", what, type(error).__name__)
    log.debug("%s", what, exc_info=True)


def _minutes(age: timedelta | None) -> timedelta | None:
    """Ages are shown in minutes; rounding keeps Health equal from one frame to the next."""
    return None if age is None else timedelta(minutes=age // timedelta(minutes=1))


def clock_synced() -> bool:
    """systemd-timesyncd creates this flag file once NTP has set the clock in this boot."""
    return SYNCED_FLAG.exists()


PATTERNS = {Outcome.PASS: Pattern.PASS, Outcome.CHECK: Pattern.CHECK, Outcome.STOP: Pattern.STOP}


class ScanLoop:
    """The kiosk's decisions, in order.  Collaborators are injected (``kiosk.runtime.build``
    makes the real ones; see ``kiosk.runtime.ports`` for their shapes)."""

    def __init__(
        self,
        *,
        store: CheckInStore,
        checker: DecisionMaker,
        recognise: Callable[[bytes | str], Credential],
        signals: Lights | None = None,
        pipeline: FrameSource | None = None,
        scanner: DeviceState | None = None,
        events: queue.Queue[LoopInput] | None = None,
        sync: SyncLink | None = None,
        direction: str = "in",
        dedupe_seconds: float = 3.0,
        result_seconds: float = 4.0,
        keep_fields: Iterable[str] = ("name", "id", "birth_year"),
        accepted_kinds: Iterable[str] = (),
        manual_entry: Callable[[str], Credential] | None = None,
        disk_path: str | os.PathLike[str] | None = None,
        disk_warn_bytes: int = 0,
        is_clock_synced: Callable[[], bool] = clock_synced,
        documents: DocumentState | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        _check_direction(direction)
        self.store = store
        self.checker = checker
        self.recognise = recognise
        self.signals = signals
        self.pipeline = pipeline
        self.scanner = scanner
        self.events: queue.Queue[LoopInput] = events if events is not None else queue.Queue()
        self.sync = sync
        self._direction = direction
        self.dedupe_seconds = dedupe_seconds
        self.result_seconds = result_seconds
        self._keep_fields = tuple(keep_fields)
        self._accepted_kinds = tuple(accepted_kinds)
        self._manual = manual_entry
        # Free space is looked at every DISK_CHECK_SECONDS on the loop's clock, not each frame.
        self._disk = (DiskWatch(disk_path, low_below=disk_warn_bytes, every=DISK_CHECK_SECONDS,
                                monotonic=clock) if disk_path is not None else None)
        self.clock = clock
        self.now = now
        self._is_clock_synced = Sampled(lambda: bool(is_clock_synced()), CLOCK_CHECK_SECONDS,
                                        clock)
        self.documents = documents
        self._seen: dict[bytes, float] = {}
        self._seen_key = os.urandom(32)
        self._results: deque[ScanResult] = deque(maxlen=50)
        self._watchers: list[Callable[[ScanResult], None]] = []
        self._idle_at: float | None = None
        self._pattern = Pattern.IDLE
        self._lent = False  # the self-test drives the lights; patterns are remembered only
        # A store that could not be opened says why from the start
        # (kiosk.runtime.build.UnavailableStore).
        self._store_message: str | None = getattr(store, "unavailable", None)
        self._sync_status: SyncStatus | None = None
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

    def step(self, timeout: float = 0.0, *,
             claim: Callable[[Decoded], bool] | None = None) -> list[LoopOutput]:
        """Handle every pending event; wait up to ``timeout`` s for the first one.

        ``claim(code)`` (the screen's) takes a decoded code for itself: it comes back as
        :class:`CodeClaimed` instead of being decided and recorded.  A :class:`Health` item
        is added whenever health changed since the last one.
        """
        out: list[LoopOutput] = []
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            event = None
        while event is not None:
            out.extend(self._handle(event, claim))
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        self._tick(out)
        return out

    # Complexity over 10 on purpose: one flat case per input type.
    def _handle(self, event: LoopInput,  # noqa: C901
                claim: Callable[[Decoded], bool] | None) -> list[LoopOutput]:
        try:
            match event:
                case Decoded():
                    if isinstance(event, Scanned):
                        return self._scanned(event, claim)
                    if claim is not None and claim(event):
                        return [CodeClaimed(event)]
                    if self._duplicate(event.raw):
                        return []
                    return [self.process(event.raw, frame_ns=event.frame_ns)]
                case CameraStatus() | DeviceStatus():
                    return []  # read from the devices in _tick's health check
                case StreamEnded():
                    self.ended = True
                    return []
                case ButtonPress():
                    return self._button(event)
                case Declared():
                    return [self.declare(event.declaration)]
                case SyncStatus():
                    self._sync_status = event
                    return []
            log.warning("scan loop: ignoring unknown event %r", type(event).__name__)
        except Exception:
            # The watchdog decides about restarts; one bad event must not end the loop.
            _log_failure(f"scan loop: handling {type(event).__name__} failed")
            self._show(Pattern.FAULT)
        return []

    def _scanned(self, event: Scanned,
                 claim: Callable[[Decoded], bool] | None) -> list[LoopOutput]:
        """A code from the dedicated scanner: the camera's path, recorded with its source.
        A line the scanner could not deliver whole is "not recognised", never a payload."""
        if event.problem is not None:
            # Keyed apart from the codes: no credential starts with a NUL byte.
            if self._duplicate(b"\0rejected:" + event.problem.encode()):
                return []
            credential = Credential(Kind.UNKNOWN, problems=(event.problem,))
            return [self._decide_and_record(credential, source=event.source,
                                            frame_ns=event.frame_ns)]
        if claim is not None and claim(event):
            return [CodeClaimed(event)]
        if self._duplicate(event.raw):
            return []
        return [self.process(event.raw, source=event.source, frame_ns=event.frame_ns)]

    def _tick(self, out: list[LoopOutput]) -> None:
        now = self.clock()
        health = self.health()
        if health != self._health:
            self._health = health
            out.append(health)
        with self._lock:
            if self._idle_at is not None and now < self._idle_at:
                return  # a result's pattern plays out, fault or not
            # The result's time is over (_show clears _idle_at), or none was showing: the
            # lights show the kiosk's state.  A fault that began during a pass used to leave
            # the green light on until the fault cleared.
            want = Pattern.FAULT if health.fault else Pattern.IDLE
            if self._idle_at is not None or self._pattern is not want:
                self._show(want)

    def _duplicate(self, raw: bytes) -> bool:
        """The same code seen again within the window of its last sighting is the same scan."""
        now = self.clock()
        # Keep no payload in memory, nor a hash anyone could recompute: keyed, the key made
        # at start and never written (docs/privacy.md).
        key = hashlib.blake2b(raw, digest_size=16, key=self._seen_key).digest()
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
                           frame_ns: int | None = None, override: Override | None = None,
                           original: ScanResult | None = None, officer: str = "") -> ScanResult:
        at = self.now()
        direction = original.direction if original is not None else self._direction
        if override is not None:
            decision = override.decision
        else:
            try:
                decision = self.checker.decide(credential, at=at, direction=direction)
            except Exception:
                _log_failure(f"deciding about a {credential.kind} failed")
                decision = Decision(Outcome.CHECK, ("internal_error",))
        checkin_id = None
        if credential.kind.is_person:
            fields = (override.record_fields(original.checkin_id)
                      if override is not None and original is not None
                      and original.checkin_id is not None else {})
            checkin_id, decision = self._record(
                credential, decision, original.source if original is not None else source,
                fields, direction, officer or (override.officer if override is not None else ""))
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
        for watcher in self._watchers:
            try:
                watcher(result)
            except Exception:  # an observer's fault is not the person's
                _log_failure("a result watcher failed")
        return result

    def watch(self, watcher: Callable[[ScanResult], None]) -> None:
        """Call ``watcher`` with every result, on the loop's thread, once recorded and signalled
        (benches and the checkpoint-day harness observe the kiosk this way)."""
        self._watchers.append(watcher)

    def _record(self, credential: Credential, decision: Decision, source: str,
                override: Mapping[str, str], direction: str,
                officer: str = "") -> tuple[str | None, Decision]:
        keep = self.keep_fields
        display = {k: v for k, v in credential.display.items() if k in keep}
        # Who made an override or a declaration: an officer id (kiosk.domain.officers), not
        # the citizen's data, so kept whatever keep_fields says, in a field of its own.
        entry = CheckIn(
            direction=direction,
            kind=str(credential.kind),
            person_key=credential.person_key,
            display=display,
            decision=str(decision.outcome),
            reasons=tuple(decision.reasons),
            source=source,
            officer=officer or None,
            **override,
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

    def declare(self, declaration: Declaration) -> ScanResult:
        """A person an officer declared on the form: decided by the policy like a code,
        recorded with source ``declared`` and the officer's id."""
        return self._decide_and_record(declared_credential(declaration), source="declared",
                                       officer=declaration.officer)

    def override(self, checkin_id: str, outcome: Outcome | str, reason: str,
                 officer: str = "") -> ScanResult:
        """Replace a decision; recorded as a new check-in that names the original.

        The same passage with a new decision: the officer may have switched the direction
        since (the next person goes the other way), which must not turn an entry into an exit.
        """
        original = next((r for r in reversed(self._results) if r.checkin_id == checkin_id), None)
        if original is None:
            raise KioskError(
                f"check-in {checkin_id!r} is not among the last {self._results.maxlen} decisions "
                "on this kiosk; only recent decisions can be overridden here"
            )
        decision = Override(original.decision, Outcome(outcome), reason, officer)
        return self._decide_and_record(original.credential, source="override",
                                       override=decision, original=original)

    def _button(self, event: ButtonPress) -> list[LoopOutput]:
        if event.name == "direction":
            self.set_direction("out" if self._direction == "in" else "in")
        elif event.name == "confirm":
            last = next((r for r in reversed(self._results) if r.checkin_id), None)
            if (last is not None and last.checkin_id is not None
                    and last.decision.outcome is Outcome.CHECK):
                return [self.override(last.checkin_id, Outcome.PASS, "officer confirmed")]
        return [event]

    def post_button(self, name: str) -> None:
        """For gpiozero's callback thread: queue a button press for the loop."""
        self.events.put(ButtonPress(name))

    # -- the lights, lent to the self-test -----------------------------------------------------

    def lend_signals(self) -> Lights | None:
        """Hand the real lights to the self-test; until :meth:`return_signals` the loop's own
        pattern changes are remembered, not shown, so a fault blink or the end of a result
        never switches a light under the officer's eyes.  All lights go off first."""
        with self._lock:
            if self.signals is None or self._lent:
                return self.signals
            self._lent = True
            try:
                self.signals.show(Pattern.IDLE)
            except Exception:  # noqa: BLE001 - the self-test reports a broken pin itself
                log.exception("switching the lights off for the self-test failed")
            return self.signals

    def return_signals(self) -> None:
        """The self-test is over: show what the loop's state calls for now.  A result's
        pattern is never replayed (its beep and gate pulse are long over)."""
        with self._lock:
            if not self._lent:
                return
            self._lent = False
            fault = self._pattern is Pattern.FAULT or (self._health is not None
                                                       and self._health.fault)
            self._show(Pattern.FAULT if fault else Pattern.IDLE)

    @property
    def signals_lent(self) -> bool:
        return self._lent

    # -- state for the screen ------------------------------------------------------------------

    @property
    def direction(self) -> str:
        return self._direction

    def set_direction(self, direction: str) -> None:
        _check_direction(direction)
        if direction != self._direction:
            log.info("direction set to %s", direction)
        self._direction = direction

    def latest_frame(self) -> Any:
        frame = self.pipeline.latest_frame() if self.pipeline is not None else None
        return frame.image if frame is not None else None

    def counts_today(self) -> dict[str, int]:
        return self.store.counts_today()

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.store.recent(limit)

    def lights(self) -> dict[str, bool]:
        if self.signals is None:
            return dict.fromkeys(OUTPUTS, False)
        return self.signals.state()

    def health(self) -> Health:
        """Health now (the screen gets it from :meth:`step` when it changes)."""
        sync = self._sync_status
        if sync is None and self.sync is not None:
            sync = self.sync.status()
        pipeline = self.pipeline
        return Health(
            camera_ok=pipeline.ok if pipeline is not None else True,
            camera_message=pipeline.message if pipeline is not None else None,
            store_ok=self._store_message is None,
            store_message=self._store_message,
            disk_low=self._disk.low() if self._disk is not None else False,
            online=sync.online if sync is not None else None,
            backlog=sync.backlog if sync is not None else 0,
            last_sync=sync.last_success if sync is not None else None,
            reprovision_needed=bool(sync.reprovision_needed) if sync is not None else False,
            clock_synced=self._is_clock_synced(),
            trust_list_age=_minutes(self._trust_list_age()),
            documents=self._documents(),
            undelivered=sync.undeliverable if sync is not None else 0,
            document_errors=self._document_errors(sync),
            key_unconfirmed=bool(sync.key_warning) if sync is not None else False,
            scanner_configured=self.scanner is not None,
            scanner_ok=self.scanner.ok if self.scanner is not None else True,
            scanner_message=self.scanner.message if self.scanner is not None else None,
        )

    def _trust_list_age(self) -> timedelta | None:
        if self.documents is None:
            return None
        try:
            return self.documents.trust_list_age()
        except Exception as e:  # the screen's status must not stop the loop
            log.warning("trust list age unavailable: %s", type(e).__name__)
            return None

    def _document_errors(self, sync: SyncStatus | None) -> tuple[str, ...]:
        """Documents not in force: refused by sync, or stored but not applicable."""
        names = {name for name, _why in sync.document_errors} if sync is not None else set()
        try:
            if self.documents is not None:
                names.update(str(name) for name in self.documents.document_errors())
        except Exception as e:  # the screen's status must not stop the loop
            log.warning("document errors unavailable: %s", type(e).__name__)
        return tuple(sorted(names))

    def _documents(self) -> tuple[tuple[str, datetime | None], ...]:
        if self.documents is None:
            return ()
        try:
            return tuple((str(name), when)
                         for name, when in self.documents.document_times().items())
        except Exception as e:  # the screen's status must not stop the loop
            log.warning("document times unavailable: %s", type(e).__name__)
            return ()

    def _show(self, pattern: Pattern, result_for: float | None = None) -> None:
        with self._lock:
            self._pattern = pattern
            self._idle_at = self.clock() + result_for if result_for is not None else None
            if self.signals is not None and not self._lent:
                try:
                    self.signals.show(pattern)
                except Exception:
                    log.exception("setting the lights to %s failed", pattern)


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise KioskError(f"direction {direction!r} must be one of {', '.join(DIRECTIONS)}")
