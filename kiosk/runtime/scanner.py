"""The dedicated scanner's thread: lines in, :class:`Scanned` events out.

Like the camera thread (``kiosk.runtime.capture``): the scanner is opened, read and, when
it fails or is unplugged, closed and reopened with capped exponential backoff; its state
goes to the loop as a :class:`DeviceStatus` event and is shown as a fault until it is back.
It never kills the process.  A replugged scanner is picked up at the next attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from hardware.scanner import Line, Scanner
from kiosk.errors import HardwareError
from kiosk.runtime.events import DeviceStatus, Scanned
from offline_queue.backoff import Backoff

log = logging.getLogger(__name__)

POLL = 0.2  # seconds a read waits before the thread re-checks that it should stop
SOURCE = "scanner"


class DeviceState(Protocol):
    """What the scan loop reads from a device for Health."""

    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str | None: ...


class EventSink(Protocol):
    def put(self, item: Scanned | DeviceStatus, /) -> None: ...


class ScannerFeed:
    """Runs the scanner's reading thread; events go to ``events``."""

    def __init__(self, *, open_scanner: Callable[[], Scanner], events: EventSink, spec: str,
                 retry_initial: float = 0.5, retry_max: float = 5.0) -> None:
        self._open = open_scanner
        self._events = events
        self.spec = spec
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ok = False
        self._message: str | None = "starting"
        self.lines = 0  # lines posted (codes and rejections)
        self.rejected = 0  # of which rejected: too long, no line end, untypeable key
        self.opened = 0  # times the scanner was opened (1 + replugs)
        self.heartbeat = time.monotonic()

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def message(self) -> str | None:
        return self._message

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kiosk-scanner", daemon=True)
            self._thread.start()

    def alive(self, *, max_age: float = 10.0) -> bool:
        """The thread turned within ``max_age`` seconds (the watchdog may ask this)."""
        return (self._thread is not None and self._thread.is_alive()
                and time.monotonic() - self.heartbeat < max_age)

    def _set(self, ok: bool, message: str | None) -> None:
        if ok != self._ok or message != self._message:
            self._ok, self._message = ok, message
            self._events.put(DeviceStatus(SOURCE, ok, message))

    def _run(self) -> None:
        retry = Backoff(first=self.retry_initial, cap=self.retry_max)
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                scanner = self._open()
            except HardwareError as e:
                self._stop.wait(self._failed(e, retry.failed()))
                continue
            retry.reset()
            self.opened += 1
            log.info("scanner %s open", self.spec)
            self._set(True, None)
            try:
                self._read(scanner)
            except HardwareError as e:
                delay = self._failed(e, retry.failed())
            except Exception as e:  # a driver returning garbage must not end the thread
                log.exception("scanner %s failed unexpectedly", self.spec)
                delay = self._failed(e, retry.failed())
            else:
                delay = 0.0  # reading ends only on stop
            finally:
                try:
                    scanner.close()
                except Exception:
                    log.exception("closing the scanner failed")
            self._stop.wait(delay)

    def _read(self, scanner: Scanner) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            line = scanner.read(timeout=POLL)
            if line is not None:
                self._post(line)

    def _post(self, line: Line) -> None:
        self.lines += 1
        if line.problem is not None:
            self.rejected += 1
            # The reason code only: never the bytes (they may be a person's data).
            log.warning("scanner %s: line not recognised (%s)", self.spec, line.problem)
        self._events.put(Scanned(
            raw=line.raw,
            text=line.raw.decode("utf-8", "replace"),
            position=(),
            frame_ns=line.t_ns,
            decoded_ns=time.monotonic_ns(),
            source=SOURCE,
            problem=line.problem,
        ))

    def _failed(self, error: Exception, delay: float) -> float:
        """Show and log the fault once per message; returns the wait before reopening."""
        message = str(error) or type(error).__name__
        if self._ok or self._message != message:
            log.error("scanner lost: %s (retrying every %.1f s at most %.0f s)", message,
                      delay, self.retry_max)
        self._set(False, message)
        return delay

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
            if thread.is_alive():
                log.error("thread %s did not stop within 5 s", thread.name)

    def __enter__(self) -> ScannerFeed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
