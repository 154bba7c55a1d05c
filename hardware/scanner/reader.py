"""The read loop every scanner backend shares: input in, framed lines out, unplug an error.

A backend says only how to wait for its input and turn it into lines (:meth:`_take`: bytes
from a serial port, key events from a keyboard) and how to let its device go
(:meth:`_release`).  :class:`FramedScanner` owns what must not differ between them: lines
are handed on one at a time and in order; a line begun and never ended is rejected after
the framer's gap, even while nothing else arrives; ``read`` returns None on time; a device
that fails (unplugged) drops its half line, logs only its length, and raises
:class:`ScannerError`; a closed scanner says so.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import ClassVar, Generic, Self, TypeVar

from hardware.errors import ScannerError
from hardware.scanner.lines import Line, LineFramer

log = logging.getLogger(__name__)

POLL = 0.1  # the longest one wait for input lasts, so read(timeout) returns on time
Device = TypeVar("Device")


class FramedScanner(ABC, Generic[Device]):
    """A scanner whose input goes through a :class:`LineFramer`; ``read`` is the loop."""

    #: What the framer counts, for the log line of a dropped half line.
    unit: ClassVar[str] = "bytes"

    def __init__(self, spec: str, device: Device, framer: LineFramer | None) -> None:
        self.spec = spec
        self._device: Device | None = device
        self._framer = framer or LineFramer()
        self._ready: deque[Line] = deque()

    @abstractmethod
    def _take(self, device: Device, wait: float) -> list[Line]:
        """Wait up to about ``wait`` seconds for input; the lines it completes (maybe none).
        Raises OSError (pyserial's SerialException is one) when the device has gone."""

    @abstractmethod
    def _release(self, device: Device) -> None:
        """Let the device go (close it); called once."""

    def read(self, timeout: float = 1.0) -> Line | None:
        """The next line, or None if none ended within ``timeout`` seconds."""
        device = self._device
        if device is None:
            raise ScannerError(f"scanner {self.spec!r} is closed")
        deadline = time.monotonic() + timeout
        while not self._ready:
            wait = max(0.0, min(POLL, deadline - time.monotonic()))
            try:
                self._ready.extend(self._take(device, wait))
            except OSError as e:  # EIO, ENODEV: unplugged
                raise self._lost(e) from e
            if not self._ready:
                stale = self._framer.expire()
                if stale is not None:
                    self._ready.append(stale)
                elif time.monotonic() >= deadline:
                    return None
        return self._ready.popleft()

    def _lost(self, error: BaseException) -> ScannerError:
        # The half line is never passed on, and never logged: it may be a person's data.
        dropped = self._framer.drop()
        if dropped:
            log.info("scanner %s: %d %s of an unfinished line dropped", self.spec, dropped,
                     self.unit)
        return ScannerError(f"scanner {self.spec!r} stopped answering ({reason(error)}); "
                            "unplugged?")

    def close(self) -> None:
        """Let the device go; a second close does nothing."""
        device, self._device = self._device, None
        if device is not None:
            self._release(device)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reason(error: BaseException) -> str:
    """An error's first line, bounded (pyserial repeats the OS error: '[Errno 2] could not
    open port ...: [Errno 2] ...')."""
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]
