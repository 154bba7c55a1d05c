"""The read loop both scanner backends share (hardware/scanner/reader.py), run through each.

Every test runs twice: on the serial backend (pyserial on a pty, as tests/test_scanner.py)
and on the keyboard backend (a live fake input device whose key events are typed from the
backend's own US map, so the read loop is tested rather than the key decoder).  What they
must both do: join a line cut across reads, reject a line that never ends without joining
it to the next, reject an oversize line and read on, return on time, and, when the device
is unplugged mid-line, drop the half line (logging only its length) and raise; the device
plugged back reads the next line whole.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hardware.errors import ScannerError
from hardware.scanner import OVERLONG, UNTERMINATED, LineFramer
from hardware.scanner.keyboard import (
    EV_KEY,
    KEY_ENTER,
    KEY_LEFTSHIFT,
    US_KEYS,
    HidScanner,
)
from hardware.scanner.reader import FramedScanner
from hardware.scanner.serialport import SerialScanner
from tests.test_scanner import Pty

GAP = 0.3  # the framer's gap in these tests: a line unended this long is rejected
MAX = 64  # the framer's largest line in these tests


def framer() -> LineFramer:
    return LineFramer(max_bytes=MAX, gap_seconds=GAP)


@dataclass(frozen=True)
class Key:
    type: int
    code: int
    value: int


KEYS = {plain: (code, False) for code, (plain, _) in US_KEYS.items()}
KEYS.update({shifted: (code, True) for code, (plain, shifted) in US_KEYS.items()
             if shifted not in KEYS})


def keys_for(data: bytes) -> Iterator[Key]:
    """What a keyboard-mode scanner sends for ``data`` (CR/LF is Enter)."""
    for ch in data.decode("ascii"):
        if ch in "\r\n":
            code, shift = KEY_ENTER, False
        else:
            code, shift = KEYS[ch]
        if shift:
            yield Key(EV_KEY, KEY_LEFTSHIFT, 1)
        yield Key(EV_KEY, code, 1)
        yield Key(EV_KEY, code, 0)
        if shift:
            yield Key(EV_KEY, KEY_LEFTSHIFT, 0)


class Keyboard:
    """A plugged-in keyboard-mode scanner: a real pipe wakes ``select``; unplugged, the
    read fails with ENODEV as evdev's does."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.events: deque[Key] = deque()
        self.plugged = True
        self.closed = False

    def send(self, data: bytes) -> None:
        self.events.extend(keys_for(data))
        os.write(self._w, b"x")

    def unplug(self) -> None:
        self.plugged = False
        os.write(self._w, b"x")

    def fileno(self) -> int:
        return self._r

    def read(self) -> Iterator[Key]:
        if not self.plugged:
            raise OSError(19, "No such device")
        try:
            os.read(self._r, 4096)
        except BlockingIOError:
            pass
        if not self.events:
            raise BlockingIOError
        batch = list(self.events)
        self.events.clear()
        return iter(batch)

    def grab(self) -> None:
        pass

    def ungrab(self) -> None:
        if not self.plugged:
            raise OSError(19, "No such device")

    def close(self) -> None:
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
            self.closed = True


class SerialRig:
    """A serial scanner that can be unplugged and plugged in again."""

    unit = "bytes"

    def __init__(self) -> None:
        self.pty = Pty()

    def open(self) -> FramedScanner:
        return SerialScanner(self.pty.path, framer=framer())

    def send(self, data: bytes) -> None:
        self.pty.send(data)

    def unplug(self) -> None:
        self.pty.unplug()

    def plug(self) -> None:
        self.pty = Pty()

    def close(self) -> None:
        self.pty.unplug()


class KeyboardRig:
    unit = "characters"

    def __init__(self) -> None:
        self.device = Keyboard()

    def open(self) -> FramedScanner:
        return HidScanner("/dev/input/event-test", device=self.device, framer=framer())

    def send(self, data: bytes) -> None:
        self.device.send(data)

    def unplug(self) -> None:
        self.device.unplug()

    def plug(self) -> None:
        self.device = Keyboard()

    def close(self) -> None:
        self.device.close()


@pytest.fixture(params=[SerialRig, KeyboardRig], ids=["serial", "keyboard"])
def rig(request):
    r = request.param()
    yield r
    r.close()


def test_a_line_cut_across_reads_is_one_line(rig):
    with rig.open() as scanner:
        rig.send(b"HC1:6BF+70790")
        assert scanner.read(0.1) is None  # half a line is not a line
        rig.send(b"T9WJWG.FKY\r\nnext\r")
        first, second = scanner.read(2.0), scanner.read(2.0)
        assert first is not None and first.raw == b"HC1:6BF+70790T9WJWG.FKY"
        assert second is not None and second.raw == b"next"


def test_a_line_that_never_ends_is_rejected_on_its_own_and_not_joined_to_the_next(rig):
    with rig.open() as scanner:
        rig.send(b"001185012345|Tran")
        started = time.monotonic()
        line = scanner.read(5.0)  # nothing more arrives: the loop itself notices the gap
        assert line is not None and line.problem == UNTERMINATED and line.raw == b""
        assert GAP <= time.monotonic() - started < GAP + 1.0
        rig.send(b"ok\r")
        line = scanner.read(2.0)
        assert line is not None and line.raw == b"ok"


def test_an_oversize_line_is_one_rejection_then_the_next_line_is_read(rig):
    with rig.open() as scanner:
        rig.send(b"A" * (3 * MAX) + b"\r\nok\r\n")
        first, second = scanner.read(2.0), scanner.read(2.0)
        assert first is not None and first.problem == OVERLONG and first.raw == b""
        assert second is not None and second.raw == b"ok"
        assert scanner.read(0.1) is None


def test_read_returns_none_on_time_when_nothing_comes(rig):
    with rig.open() as scanner:
        started = time.monotonic()
        assert scanner.read(0.25) is None
        assert 0.2 <= time.monotonic() - started < 0.6


def test_unplugged_mid_line_drops_the_half_line_and_plugged_back_reads_whole_lines(
        rig, caplog):
    caplog.set_level(logging.INFO, logger="hardware.scanner")
    scanner = rig.open()
    try:
        rig.send(b"001185012345|Tr")
        assert scanner.read(0.1) is None
        rig.unplug()
        with pytest.raises(ScannerError, match="stopped answering .*unplugged"):
            while True:
                scanner.read(0.5)
    finally:
        scanner.close()
    scanner.close()  # a second close does nothing
    with pytest.raises(ScannerError, match="is closed"):
        scanner.read(0.1)
    assert f"15 {rig.unit} of an unfinished line dropped" in caplog.text
    assert "Tr" not in caplog.text and "001185012345" not in caplog.text

    rig.plug()
    with rig.open() as scanner:
        rig.send(b"ang\r\n001185012345|Ngoc\r\n")
        first, second = scanner.read(2.0), scanner.read(2.0)
        # The half line went with the old device: nothing of it is joined to what follows.
        assert first is not None and first.raw == b"ang"
        assert second is not None and second.raw == b"001185012345|Ngoc"
