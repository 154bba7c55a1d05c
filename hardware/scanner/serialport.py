"""A 2D scanner in USB CDC-ACM ("USB COM", "virtual serial") mode, through pyserial.

In this mode the scanner sends the code's bytes exactly as the code holds them (UTF-8 for
the CCCD's Vietnamese name), followed by its suffix (CR, LF or CR LF), with no keyboard
layout in between.  The port is opened exclusively (a second reader would steal bytes).
A USB unplug makes the read fail (EIO, or "ready but no data"): that is a
:class:`ScannerError`, and the line in progress is dropped, never passed on half.
"""

from __future__ import annotations

import logging
from typing import Protocol

from hardware.errors import ScannerError
from hardware.scanner.lines import Line, LineFramer
from hardware.scanner.reader import POLL, FramedScanner, reason

log = logging.getLogger(__name__)

CHUNK = 4096  # bytes taken per read: memory stays bounded whatever the scanner sends


class Port(Protocol):
    """What :class:`SerialScanner` uses of ``serial.Serial``."""

    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1, /) -> bytes: ...
    def close(self) -> None: ...


class SerialScanner(FramedScanner[Port]):
    """Lines from a serial (CDC-ACM) scanner; ``read`` raises ScannerError when it is gone."""

    def __init__(self, device: str, *, baud: int = 9600, spec: str | None = None,
                 framer: LineFramer | None = None) -> None:
        spec = spec or f"serial:{device}"
        self.device = device
        try:
            import serial
        except ImportError as e:
            raise ScannerError(
                f"scanner {spec!r} needs pyserial: pip install pyserial "
                "(or apt install python3-serial)") from e
        try:
            # exclusive: flock the port so a second kiosk or a terminal program cannot
            # read half of the bytes.  Each read waits at most POLL for its first byte.
            port = serial.Serial(device, baudrate=baud, timeout=POLL, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise ScannerError(
                f"scanner {spec!r}: {device} cannot be opened ({reason(e)}); is it "
                "plugged in and in USB COM (CDC) mode, and is the kiosk user in the "
                "'dialout' group?") from e
        super().__init__(spec, port, framer)

    def _take(self, device: Port, wait: float) -> list[Line]:
        # The port's own timeout (POLL) bounds the wait: changing it per read would
        # reprogram the tty each time.
        first = device.read(1)
        if not first:
            return []
        more = device.in_waiting
        return self._framer.feed(first + (device.read(min(more, CHUNK)) if more else b""))

    def _release(self, device: Port) -> None:
        try:
            device.close()
        except OSError:  # a port whose device vanished may fail to close cleanly
            log.debug("closing %s failed", self.spec, exc_info=True)
