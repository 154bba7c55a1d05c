"""Builds the kiosk from its configuration and runs it, with a screen or headless.

This is the one place where concrete devices, the store and the sync worker are made; every
other module takes them as arguments.  Lifetimes are owned by one ``ExitStack``: whatever was
opened is closed in reverse order, on a normal exit, on SIGTERM and on an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.camera import CameraSpec
from hardware.qr import open_decoder
from hardware.scanner import ScannerSpec
from hardware.signals import Buttons, Signals, make_pin_factory
from kiosk import USER_AGENT, __version__
from kiosk.config import Config
from kiosk.domain.credentials import from_cccd_number, recognise
from kiosk.domain.documents import VALIDATORS
from kiosk.errors import CameraError, ConfigError, HardwareError, StoreError
from kiosk.logfmt import install as install_safe_formatter
from kiosk.runtime.capture import CapturePipeline
from kiosk.runtime.checker import LiveChecker
from kiosk.runtime.events import Health, LoopInput
from kiosk.runtime.ports import DecisionMaker, FrameSource, KioskStore, Lights
from kiosk.runtime.scanloop import ScanLoop
from kiosk.runtime.scanner import ScannerFeed
from offline_queue.records import CheckIn
from offline_queue.store import Store
from offline_queue.sync import SyncWorker

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """The running kiosk's pieces, for the runners, the screen and the watchdog."""

    loop: ScanLoop
    store: KioskStore
    checker: DecisionMaker
    pipeline: FrameSource | None
    signals: Lights | None
    sync: SyncWorker | None
    scanner: ScannerFeed | None = None


@dataclass(frozen=True)
class Supplied:
    """Parts made by the caller (a test, a bench, the demo) instead of those ``cfg`` names.

    Everything else is still built from the configuration, in the same order and with the same
    wiring as on the appliance, so a test's kiosk differs from the real one only where it says.
    ``pipeline`` is called with the loop's event queue (a feed posts its codes there).
    ``sync_options`` and ``loop_options`` are extra ``SyncWorker`` and ``ScanLoop`` keywords
    (the demo's fast sync, a test's clock).  Supplied parts are not closed by ``build``'s stack:
    whoever made them closes them.
    """

    store: KioskStore | None = None
    checker: DecisionMaker | None = None
    signals: Lights | None = None
    pipeline: Callable[[queue.Queue[LoopInput]], FrameSource] | None = None
    sync_options: Mapping[str, Any] = field(default_factory=dict)
    loop_options: Mapping[str, Any] = field(default_factory=dict)


def device_token(cfg: Config) -> str | None:
    """The device token written by provisioning, or None when the device is not enrolled."""
    path = Path(cfg.sync.token_file)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(
            f"sync.token_file {str(path)!r} cannot be read: {e}; it must be readable by the "
            "kiosk user (mode 0600, owned by it)"
        ) from e
    return token or None


def configured_camera(cfg: Config) -> Any:
    """Open the camera the ``[camera]`` table describes."""
    from hardware.camera import open_camera

    c = cfg.camera
    return open_camera(c.spec, width=c.width, height=c.height, crop=c.crop,
                       autofocus=c.autofocus, exposure=c.exposure, focus_range=c.focus_range)


class UnavailableStore:
    """Stands in for a database that cannot be opened: every record attempt fails loudly."""

    def __init__(self, message: str) -> None:
        self.unavailable = message

    def record(self, entry: CheckIn) -> str:
        raise StoreError(self.unavailable)

    def counts_today(self, **_: object) -> dict[str, int]:
        return dict.fromkeys(("in", "out", "pass", "check", "stop", "total"), 0)

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return []

    def document(self, name: str) -> None:
        return None

    def close(self) -> None:
        pass


def build(cfg: Config, stack: contextlib.ExitStack, *, with_camera: bool = True,
          parts: Supplied | None = None) -> Parts:
    """Open everything the configuration names (or take it from ``parts``); register each
    part it opened with ``stack`` for closing; start the camera and sync threads."""
    supplied = parts or Supplied()
    events: queue.Queue[LoopInput] = queue.Queue()
    store = supplied.store if supplied.store is not None else open_store(cfg, stack)
    checker = supplied.checker
    if checker is None:
        # Documents are applied on its own thread, never on the loop's (a large status
        # document takes seconds to parse).
        live = LiveChecker(cfg, store).start()
        stack.callback(live.close)
        checker = live
    pin_factory = None
    signals = supplied.signals
    if signals is None and cfg.signals.enabled:
        pin_factory = make_pin_factory(cfg.signals.pin_factory)
        signals = open_signals(cfg, stack, pin_factory)
    sync = open_sync(cfg, stack, events, supplied.sync_options)
    pipeline: FrameSource | None = None
    if supplied.pipeline is not None:
        pipeline = supplied.pipeline(events)
    elif with_camera:
        pipeline = open_pipeline(cfg, stack, events)
    scanner = open_scanner(cfg, stack, events) if cfg.scanner.spec else None
    documents = {"documents": checker} if isinstance(checker, LiveChecker) else {}
    loop = ScanLoop(
        store=store,
        checker=checker,
        recognise=recognise,
        signals=signals,
        pipeline=pipeline,
        scanner=scanner,
        events=events,
        sync=sync,
        direction=cfg.device.direction,
        dedupe_seconds=cfg.decoder.dedupe_seconds,
        result_seconds=cfg.ui.result_seconds,
        # keep_fields and accepted_kinds: the loop reads them from checker.policy at each use
        manual_entry=from_cccd_number,
        disk_path=Path(cfg.store.path).parent,
        disk_warn_bytes=cfg.store.disk_warn_mb * 2**20,
        **{**documents, **supplied.loop_options},
    )
    if cfg.signals.enabled:
        open_buttons(cfg, stack, loop, pin_factory)
    if isinstance(pipeline, CapturePipeline):
        pipeline.start()
    if scanner is not None:
        scanner.start()
    if sync is not None:
        sync.start()
    return Parts(loop, store, checker, pipeline, signals, sync, scanner)


def open_store(cfg: Config, stack: contextlib.ExitStack) -> KioskStore:
    """The check-in database, or a stand-in that refuses every record and says why."""
    try:
        return stack.enter_context(Store(
            cfg.store.path,
            device_id=cfg.device.id or "unprovisioned",
            checkpoint_id=cfg.device.checkpoint_id or "unprovisioned",
            retention_days=cfg.store.retention_days,
            app_version=__version__,
        ))
    except StoreError as e:
        # The kiosk still comes up, shows the fault and sends everyone to an officer: a
        # restart loop under systemd would leave the queue with a dark screen instead.
        log.error("check-ins cannot be recorded: %s", e)
        return UnavailableStore(str(e))


def configured_signals(cfg: Config, pin_factory: Any) -> Signals:
    """Open the lights, buzzer, gate and lamp the ``[signals]`` table names."""
    s = cfg.signals
    return Signals(red=s.red, amber=s.amber, green=s.green, buzzer=s.buzzer, gate=s.gate,
                   gate_pulse_seconds=s.gate_pulse_seconds, lamp=s.lamp,
                   pin_factory=pin_factory)


def open_signals(cfg: Config, stack: contextlib.ExitStack, pin_factory: Any) -> Signals:
    return stack.enter_context(configured_signals(cfg, pin_factory))


def open_buttons(cfg: Config, stack: contextlib.ExitStack, loop: ScanLoop,
                 pin_factory: Any) -> None:
    s = cfg.signals
    buttons = {"confirm": s.confirm_button, "direction": s.direction_button,
               "officer": s.officer_button}
    if any(pin is not None for pin in buttons.values()):
        if pin_factory is None:
            pin_factory = make_pin_factory(s.pin_factory)
        stack.enter_context(Buttons(buttons, on_press=loop.post_button, pin_factory=pin_factory))


def open_sync(cfg: Config, stack: contextlib.ExitStack, events: queue.Queue[LoopInput],
              options: Mapping[str, Any]) -> SyncWorker | None:
    """The sync worker when a server is configured (it posts its status to ``events``)."""
    if not cfg.sync.server_url:
        return None
    try:
        sync = SyncWorker(
            db_path=cfg.store.path,
            server_url=cfg.sync.server_url,
            token=device_token(cfg),
            ca_bundle=cfg.sync.ca_bundle or None,
            on_status=events.put,
            connect_timeout=min(5.0, cfg.sync.timeout_seconds),
            read_timeout=cfg.sync.timeout_seconds,
            retention_days=cfg.store.retention_days,
            # A fixed token file resumes delivery without a restart, and a document is
            # stored only when this kiosk can apply it.
            token_file=cfg.sync.token_file,
            validators=VALIDATORS,
            central_key=cfg.sync.central_key or None,  # documents signed by it only
            user_agent=USER_AGENT,
            **options,
        )
    except ValueError as e:  # the client's own checks (a missing CA bundle file)
        raise ConfigError(f"[sync]: {e}") from None
    stack.callback(sync.close)
    return sync


def open_pipeline(cfg: Config, stack: contextlib.ExitStack,
                  events: queue.Queue[LoopInput]) -> CapturePipeline:
    """The camera and decoder threads (started by ``build`` once the loop exists)."""
    try:
        CameraSpec.parse(cfg.camera.spec)  # a typo stops start-up; a missing device is retried
    except CameraError as e:
        raise ConfigError(f"camera.spec: {e}") from None
    pipeline = CapturePipeline(
        open_camera=lambda: configured_camera(cfg),
        # The camera's frames are a stream: "auto" becomes the stream decoder there.
        open_decoder=lambda: open_decoder(cfg.decoder.backend, stream=True),
        events=events,
        retry_max=cfg.camera.retry_max_seconds,
    )
    stack.callback(pipeline.close)
    return pipeline


def open_scanner(cfg: Config, stack: contextlib.ExitStack,
                 events: queue.Queue[LoopInput]) -> ScannerFeed:
    """The dedicated scanner's thread (started by ``build`` once the loop exists)."""
    from hardware.scanner import open_scanner as open_device

    spec = cfg.scanner.spec
    try:
        ScannerSpec.parse(spec)  # a typo stops start-up; a scanner not plugged in is retried
    except HardwareError as e:
        raise ConfigError(f"scanner.spec: {e}") from None
    feed = ScannerFeed(open_scanner=lambda: open_device(spec), events=events, spec=spec,
                       retry_max=cfg.scanner.retry_max_seconds)
    stack.callback(feed.close)
    return feed


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM/SIGINT, so the loop can finish its turn and close cleanly."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_headless(parts: Parts, stop: threading.Event, *, max_seconds: float | None = None,
                 on_tick: Callable[[], None] = lambda: None) -> int:
    """The scan loop with no screen: lights, buzzer and records only.  Returns the exit code."""
    deadline = time.monotonic() + max_seconds if max_seconds else None
    loop = parts.loop
    while not stop.is_set():
        for event in loop.step(timeout=0.1):
            if isinstance(event, Health) and event.fault:
                log.warning("kiosk fault: camera=%s store=%s scanner=%s",
                            event.camera_message, event.store_message, event.scanner_message)
        on_tick()
        if loop.ended:
            log.info("replay finished")
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            log.info("--max-seconds reached")
            return 0
    return 0


def setup_logging(level: str) -> None:
    """Log to stderr (the journal under systemd, which adds its own timestamps)."""
    fmt = ("%(levelname)s %(name)s: %(message)s" if os.environ.get("INVOCATION_ID")
           else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.basicConfig(level=getattr(logging, level), format=fmt, force=True)
    install_safe_formatter(fmt)  # one record, one line: external text cannot forge lines
    logging.captureWarnings(True)  # gpiozero's pin-factory fallbacks become one log line each
