"""Dedicated 2D scanners behind one small interface, chosen by a spec string.

``serial:/dev/ttyACM0[,baud=N]``    USB CDC-ACM ("USB COM") mode through pyserial: the code's
                                    exact bytes, each code ended by CR and/or LF
``hid:/dev/input/by-id/...-event-kbd``  keyboard-wedge mode through evdev, the device grabbed

Every scanner's ``read()`` returns a :class:`Line` (the code's bytes, or a rejection saying
why it cannot be used) or None when nothing ended in time, and raises :class:`ScannerError`
when the device is gone (the kiosk reopens it with backoff).  Each backend imports its
library lazily, so importing this package costs nothing; both share one read loop
(``reader.FramedScanner``: framing, timeouts, unplug).  docs/scanner.md has the setup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hardware.errors import ScannerError
from hardware.scanner.lines import MAX_LINE, OVERLONG, UNTERMINATED, Line, LineFramer

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
FORMS = "'serial:/dev/ttyACM0[,baud=N]' or 'hid:/dev/input/by-id/...-event-kbd'"


class Scanner(Protocol):
    """What the kiosk needs from a scanner."""

    spec: str

    def read(self, timeout: float = 1.0) -> Line | None:
        """The next line, or None if none ended within ``timeout`` seconds."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ScannerSpec:
    backend: str  # "serial" | "hid"
    device: str
    baud: int = 9600

    @classmethod
    def parse(cls, spec: str) -> ScannerSpec:
        backend, _, rest = spec.partition(":")
        device, *opts = rest.split(",")
        if backend not in ("serial", "hid"):
            raise ScannerError(f"scanner spec {spec!r} is not recognised; use {FORMS}")
        if not device.startswith("/"):
            raise ScannerError(
                f"scanner spec {spec!r}: {backend} needs a device path like "
                f"{'/dev/ttyACM0' if backend == 'serial' else '/dev/input/by-id/...-event-kbd'}"
                f", got {device!r}")
        baud = 9600
        for opt in opts:
            key, _, value = opt.partition("=")
            if backend == "serial" and key == "baud":
                if not value.isdigit() or int(value) not in BAUD_RATES:
                    raise ScannerError(
                        f"scanner spec {spec!r}: baud={value!r} is not one of "
                        f"{', '.join(map(str, BAUD_RATES))}")
                baud = int(value)
            else:
                valid = "baud=N" if backend == "serial" else "none"
                raise ScannerError(
                    f"scanner spec {spec!r}: unknown option {opt!r} (valid: {valid})")
        return cls(backend, device, baud)


def open_scanner(spec: str) -> Scanner:
    """Open the scanner a spec string names; raises ScannerError saying what to check."""
    parsed = ScannerSpec.parse(spec)
    if parsed.backend == "serial":
        from hardware.scanner.serialport import SerialScanner

        return SerialScanner(parsed.device, baud=parsed.baud, spec=spec)
    from hardware.scanner.keyboard import HidScanner

    return HidScanner(parsed.device, spec=spec)


__all__ = ["BAUD_RATES", "MAX_LINE", "OVERLONG", "UNTERMINATED", "Line", "LineFramer",
           "Scanner", "ScannerError", "ScannerSpec", "open_scanner"]
