"""A 2D scanner in USB CDC-ACM ("USB COM", "virtual serial") mode, through pyserial.

In this mode the scanner sends the code's bytes exactly as the code holds them (UTF-8 for
the CCCD's Vietnamese name), followed by its suffix (CR, LF or CR LF), with no keyboard
layout in between.  The port is opened exclusively (a second reader would steal bytes).
A USB unplug makes the read fail (EIO, or "ready but no data"): that is a
:class:`ScannerError`, and the line in progress is dropped, never passed on half.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from hardware.errors import ScannerError
from hardware.scanner.lines import Line, LineFramer

log = logging.getLogger(__name__)

POLL = 0.1  # seconds one read waits, so read(timeout) returns on time and close() is prompt
CHUNK = 4096  # bytes taken per read: memory stays bounded whatever the scanner sends


class SerialScanner:
    """Lines from a serial (CDC-ACM) scanner; ``read`` raises ScannerError when it is gone."""

    def __init__(self, device: str, *, baud: int = 9600, spec: str | None = None,
                 framer: LineFramer | None = None) -> None:
        self.spec = spec or f"serial:{device}"
        self.device = device
        try:
            import serial
        except ImportError as e:
            raise ScannerError(
                f"scanner {self.spec!r} needs pyserial: pip install pyserial "
                "(or apt install python3-serial)") from e
        self._serial_error: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
        try:
            # exclusive: flock the port so a second kiosk or a terminal program cannot
            # read half of the bytes.
            self._port: Any = serial.Serial(device, baudrate=baud, timeout=POLL,
                                            exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise ScannerError(
                f"scanner {self.spec!r}: {device} cannot be opened ({_reason(e)}); is it "
                "plugged in and in USB COM (CDC) mode, and is the kiosk user in the "
                "'dialout' group?") from e
        self._framer = framer or LineFramer()
        self._ready: deque[Line] = deque()

    def read(self, timeout: float = 1.0) -> Line | None:
        """The next line, or None if none ended within ``timeout`` seconds."""
        if self._port is None:
            raise ScannerError(f"scanner {self.spec!r} is closed")
        deadline = time.monotonic() + timeout
        while not self._ready:
            data = self._read_chunk()
            if data:
                self._ready.extend(self._framer.feed(data))
            else:
                stale = self._framer.expire()
                if stale is not None:
                    self._ready.append(stale)
                elif time.monotonic() >= deadline:
                    return None
        return self._ready.popleft()

    def _read_chunk(self) -> bytes:
        try:
            first = self._port.read(1)  # waits up to POLL for the first byte
            if not first:
                return b""
            more = self._port.in_waiting
            return first + (self._port.read(min(more, CHUNK)) if more else b"")
        except self._serial_error as e:
            dropped = self._framer.drop()
            if dropped:
                log.info("scanner %s: %d bytes of an unfinished line dropped", self.spec,
                         dropped)
            raise ScannerError(
                f"scanner {self.spec!r} stopped answering ({_reason(e)}); unplugged?") from e

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except OSError:  # a port whose device vanished may fail to close cleanly
                log.debug("closing %s failed", self.spec, exc_info=True)
            finally:
                self._port = None

    def __enter__(self) -> SerialScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(error: BaseException) -> str:
    """pyserial wraps OSError text as '[Errno 2] could not open port ...: [Errno 2] ...'."""
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]
