"""The dedicated 2D scanner's device layer: specs, line framing, serial on a pty, key decoding.

A pty pair (``os.openpty``) stands in for the USB CDC-ACM port: pyserial opens its slave side
exactly as it opens /dev/ttyACM0, and closing the master is what an unplug looks like to the
reader (the read fails).  Keyboard mode is tested with recorded key-event sequences built
from evdev's own constants; a real /dev/uinput device is used only where one can be made.
"""

from __future__ import annotations

import os
import threading
import tracemalloc
import tty
from types import SimpleNamespace

import pytest

from hardware.errors import HardwareError, ScannerError
from hardware.scanner import (
    MAX_LINE,
    OVERLONG,
    UNTERMINATED,
    Line,
    LineFramer,
    ScannerSpec,
    open_scanner,
)
from hardware.scanner.keyboard import UNTYPEABLE, HidScanner, KeyDecoder, key_lines

CCCD = ("001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
        "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021")


class Pty:
    """One end of a virtual serial cable: write to ``master``; the scanner opens ``path``."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # as a CDC-ACM port: no echo, no CR/LF translation
        self.path = os.ttyname(slave)
        os.close(slave)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def unplug(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def pty():
    p = Pty()
    yield p
    p.unplug()


# -- specs ---------------------------------------------------------------------------------


def test_specs_parse():
    assert ScannerSpec.parse("serial:/dev/ttyACM0") == ScannerSpec("serial", "/dev/ttyACM0", 9600)
    assert ScannerSpec.parse("serial:/dev/ttyUSB1,baud=115200").baud == 115200
    assert ScannerSpec.parse("hid:/dev/input/by-id/usb-X-event-kbd").backend == "hid"


@pytest.mark.parametrize("spec, says", [
    ("usb", "is not recognised; use 'serial:/dev/ttyACM0[,baud=N]'"),
    ("serial:ttyACM0", "needs a device path like /dev/ttyACM0, got 'ttyACM0'"),
    ("serial:", "needs a device path"),
    ("serial:/dev/ttyACM0,baud=9601", "baud='9601' is not one of 1200, 2400"),
    ("serial:/dev/ttyACM0,parity=E", "unknown option 'parity=E' (valid: baud=N)"),
    ("hid:/dev/input/event3,baud=9600", "unknown option 'baud=9600' (valid: none)"),
])
def test_a_bad_spec_names_the_value_and_the_forms(spec, says):
    with pytest.raises(ScannerError) as e:
        ScannerSpec.parse(spec)
    assert repr(spec) in str(e.value) and says in str(e.value)
    assert isinstance(e.value, HardwareError) and isinstance(e.value, OSError)


def test_a_scanner_that_is_not_plugged_in_says_what_to_check(tmp_path):
    with pytest.raises(ScannerError, match=r"cannot be opened .*plugged in.*'dialout' group"):
        open_scanner(f"serial:{tmp_path / 'ttyACM0'}")


# -- line framing --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        return self.ns


def test_lines_end_at_cr_lf_or_both_and_blank_lines_are_nothing():
    framer = LineFramer()
    lines = framer.feed(b"one\rtwo\nthree\r\n\r\n\nfo")
    assert [line.raw for line in lines] == [b"one", b"two", b"three"]
    (four,) = framer.feed(b"ur\r")
    assert four == Line(b"four", four.t_ns) and framer.feed(b"") == []


def test_a_line_split_across_reads_and_a_crlf_split_across_reads():
    framer = LineFramer()
    assert framer.feed(b"00118501") == []
    assert [x.raw for x in framer.feed(b"2345\r")] == [b"001185012345"]
    assert framer.feed(b"\n") == []  # the LF of that CR LF: not an empty line


def test_utf8_bytes_are_passed_on_exactly():
    raw = CCCD.encode()
    (line,) = LineFramer().feed(raw + b"\r\n")
    assert line.raw == raw and not line.rejected


def test_an_overlong_line_is_one_rejection_and_the_next_line_is_read():
    framer = LineFramer(max_bytes=100)
    out = framer.feed(b"x" * 60) + framer.feed(b"y" * 60)
    assert out == [] and framer.pending == 0  # nothing kept past the limit
    out = framer.feed(b"zzz\rnext\r")
    assert [(x.raw, x.problem) for x in out] == [(b"", OVERLONG), (b"next", None)]


def test_a_line_without_an_end_is_rejected_after_the_gap_and_not_joined_to_the_next():
    clock = Clock()
    framer = LineFramer(gap_seconds=1.0, clock_ns=clock)
    assert framer.feed(b"001185012345|half") == []
    clock.ns += 500_000_000
    assert framer.expire() is None
    clock.ns += 600_000_000
    stale = framer.expire()
    assert stale is not None and stale.problem == UNTERMINATED and stale.raw == b""
    assert [x.raw for x in framer.feed(b"whole\r")] == [b"whole"]


def test_bytes_after_a_long_pause_start_a_new_line():
    clock = Clock()
    framer = LineFramer(gap_seconds=1.0, clock_ns=clock)
    framer.feed(b"stale")
    clock.ns += 2_000_000_000
    out = framer.feed(b"fresh\r")
    assert [(x.raw, x.problem) for x in out] == [(b"", UNTERMINATED), (b"fresh", None)]


def test_a_megabyte_without_a_terminator_holds_no_more_than_one_line():
    framer = LineFramer()
    chunk = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") * 16
    tracemalloc.start()
    try:
        for _ in range(2**20 // len(chunk)):
            assert framer.feed(chunk) == []
            assert framer.pending <= MAX_LINE
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_LINE, f"framing 1 MiB peaked at {peak} bytes"
    (line,) = framer.feed(b"\n")
    assert line.problem == OVERLONG


# -- serial (pyserial on a pty) ------------------------------------------------------------


def test_serial_reads_exact_utf8_lines(pty):
    with open_scanner(f"serial:{pty.path}") as scanner:
        pty.send(CCCD.encode() + b"\r\n" + b"HC1:6BF+70790T9WJWG.FKY*4GO0.O1CV2\r")
        first, second = scanner.read(2.0), scanner.read(2.0)
        assert first is not None and first.raw.decode("utf-8") == CCCD
        assert second is not None and second.raw == b"HC1:6BF+70790T9WJWG.FKY*4GO0.O1CV2"
        assert scanner.read(0.2) is None


def test_serial_binary_bytes_and_garbage_are_lines_like_any_other(pty):
    # What they mean is the parsers' business ("not recognised"); the device layer neither
    # crashes nor changes a byte.
    garbage = bytes(b for b in range(256) if b not in (10, 13))
    with open_scanner(f"serial:{pty.path}") as scanner:
        pty.send(garbage + b"\r")
        line = scanner.read(2.0)
        assert line is not None and line.raw == garbage


def test_serial_a_megabyte_line_is_rejected_with_bounded_memory_then_reads_on(pty):
    with open_scanner(f"serial:{pty.path}") as scanner:
        writer = threading.Thread(target=pty.send, args=(b"A" * 2**20 + b"\r\nok\r",))
        tracemalloc.start()
        try:
            writer.start()
            first = scanner.read(30.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        writer.join(10)
        assert first is not None and first.problem == OVERLONG and first.raw == b""
        assert peak < 8 * MAX_LINE, f"reading 1 MiB peaked at {peak} bytes"
        second = scanner.read(2.0)
        assert second is not None and second.raw == b"ok"


# Unplugged mid-line (both backends): tests/test_scanner_reader.py.


def test_serial_port_is_exclusive(pty):
    with open_scanner(f"serial:{pty.path}"), pytest.raises(ScannerError,
                                                           match="cannot be opened"):
        open_scanner(f"serial:{pty.path}")


# -- keyboard mode: the key decoder on recorded sequences ----------------------------------

ecodes = pytest.importorskip("evdev.ecodes", reason="python-evdev is Linux-only")
EV_KEY, EV_SYN, EV_MSC = ecodes.EV_KEY, ecodes.EV_SYN, ecodes.EV_MSC


def ev(ev_type, code, value):
    return SimpleNamespace(type=ev_type, code=code, value=value)


def press(name, *, shift=False):
    """What a scanner sends for one key: MSC scan code, key down, SYN, key up, SYN."""
    code = ecodes.ecodes[name]
    seq = [ev(EV_KEY, ecodes.KEY_LEFTSHIFT, 1), ev(EV_SYN, 0, 0)] if shift else []
    seq += [ev(EV_MSC, ecodes.MSC_SCAN, 0x70004), ev(EV_KEY, code, 1), ev(EV_SYN, 0, 0),
            ev(EV_KEY, code, 0), ev(EV_SYN, 0, 0)]
    if shift:
        seq += [ev(EV_KEY, ecodes.KEY_LEFTSHIFT, 0), ev(EV_SYN, 0, 0)]
    return seq


LETTERS = "abcdefghijklmnopqrstuvwxyz"
US = {**{c: (f"KEY_{c.upper()}", c.isupper()) for c in LETTERS + LETTERS.upper()},
      **{d: (f"KEY_{d}", False) for d in "0123456789"},
      "|": ("KEY_BACKSLASH", True), "-": ("KEY_MINUS", False), ":": ("KEY_SEMICOLON", True),
      " ": ("KEY_SPACE", False), "*": ("KEY_8", True), "+": ("KEY_EQUAL", True),
      ".": ("KEY_DOT", False), "/": ("KEY_SLASH", False), "$": ("KEY_4", True),
      "%": ("KEY_5", True), "<": ("KEY_COMMA", True), "\n": ("KEY_ENTER", False)}


def typed(text):
    """The key events a keyboard-mode scanner (US layout) sends for ``text``."""
    return [e for ch in text for e in press(US[ch][0], shift=US[ch][1])]


def decode(events, framer=None):
    return key_lines(KeyDecoder(), framer or LineFramer(), events)


def test_our_key_constants_are_the_kernels():
    from hardware.scanner import keyboard

    for name in ("EV_KEY", "KEY_ENTER", "KEY_KPENTER", "KEY_LEFTSHIFT", "KEY_RIGHTSHIFT",
                 "KEY_CAPSLOCK", "KEY_NUMLOCK", "KEY_LEFTCTRL", "KEY_RIGHTCTRL", "KEY_LEFTALT",
                 "KEY_RIGHTALT", "KEY_LEFTMETA", "KEY_RIGHTMETA"):
        assert getattr(keyboard, name) == ecodes.ecodes[name], name
    for ch, (name, shift) in US.items():
        if ch != "\n":
            assert keyboard.US_KEYS[ecodes.ecodes[name]][int(shift)] == ch, (ch, name)
    for digit in "0123456789":
        assert keyboard.US_KEYS[ecodes.ecodes[f"KEY_KP{digit}"]][0] == digit


def test_a_pc_covid_code_typed_with_shift_comes_out_exactly():
    payload = ("******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|"
               "1<GD4790*******<0912******")
    (line,) = decode(typed(payload + "\n"))
    assert line.raw.decode() == payload and not line.rejected


def test_an_eu_dcc_prefix_and_base45_alphabet_type_exactly():
    payload = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH"
    (line,) = decode(typed(payload + "\n"))
    assert line.raw.decode() == payload


def test_right_shift_caps_lock_and_keypad_digits():
    k = ecodes.ecodes
    events = [ev(EV_KEY, k["KEY_RIGHTSHIFT"], 1), *press("KEY_A"),
              ev(EV_KEY, k["KEY_RIGHTSHIFT"], 0),
              *press("KEY_CAPSLOCK"), *press("KEY_B"), *press("KEY_B", shift=True),
              *press("KEY_1"), *press("KEY_CAPSLOCK"), *press("KEY_C"),
              *press("KEY_KP4"), *press("KEY_KP2"), *press("KEY_KPENTER")]
    (line,) = decode(events)
    assert line.raw == b"ABb1c42"


def test_releases_and_autorepeat_type_nothing():
    k = ecodes.ecodes
    events = [ev(EV_KEY, k["KEY_X"], 1), ev(EV_KEY, k["KEY_X"], 2), ev(EV_KEY, k["KEY_X"], 2),
              ev(EV_KEY, k["KEY_X"], 0), *press("KEY_ENTER")]
    (line,) = decode(events)
    assert line.raw == b"x"


@pytest.mark.parametrize("intruder", [
    pytest.param(press("KEY_F5"), id="unknown key"),
    pytest.param([ev(EV_KEY, ecodes.KEY_LEFTALT, 1), *press("KEY_KP2"), *press("KEY_KP5"),
                  *press("KEY_KP0"), ev(EV_KEY, ecodes.KEY_LEFTALT, 0)], id="alt+keypad ú"),
    pytest.param([ev(EV_KEY, ecodes.KEY_LEFTCTRL, 1), *press("KEY_J"),
                  ev(EV_KEY, ecodes.KEY_LEFTCTRL, 0)], id="ctrl chord"),
    pytest.param(press("KEY_BACKSPACE"), id="backspace"),
])
def test_a_key_no_character_matches_rejects_the_whole_line_and_only_that_line(intruder):
    # "Nữ" typed by a scanner in keyboard mode: N, then something that is not ữ.
    events = typed("001185012345|N") + intruder + typed("|x\n") + typed("next\n")
    first, second = decode(events)
    assert (first.raw, first.problem) == (b"", UNTYPEABLE)
    assert (second.raw, second.problem) == (b"next", None)


def test_a_modifier_released_is_not_held_for_the_next_line():
    k = ecodes.ecodes
    events = [ev(EV_KEY, k["KEY_LEFTSHIFT"], 1), ev(EV_KEY, k["KEY_LEFTSHIFT"], 0),
              *typed("abc\n")]
    (line,) = decode(events)
    assert line.raw == b"abc"


# -- keyboard mode: the reader, grabbed --------------------------------------------------


class RecordedKeyboard:
    """An input device replaying recorded events through a real pipe (for ``select``)."""

    def __init__(self, events):
        self._r, self._w = os.pipe()
        self.events = list(events)
        self.grabbed = self.closed = False
        os.write(self._w, b"x")

    def fileno(self):
        return self._r

    def read(self):
        if not self.events:
            raise BlockingIOError
        batch, self.events = self.events[:7], self.events[7:]
        return iter(batch)

    def grab(self):
        self.grabbed = True

    def ungrab(self):
        self.grabbed = False

    def close(self):
        if not self.closed:
            os.close(self._r)
            os.close(self._w)
        self.closed = True


def test_hid_reader_grabs_reads_lines_and_releases_on_close():
    device = RecordedKeyboard(typed("ABC-123\n") + typed("x|y\n"))
    with HidScanner("/dev/input/event-test", device=device) as scanner:
        assert device.grabbed
        assert scanner.read(1.0).raw == b"ABC-123"
        assert scanner.read(1.0).raw == b"x|y"
        assert scanner.read(0.2) is None
    assert not device.grabbed and device.closed


def test_hid_device_held_by_another_program_is_a_clear_error():
    class Busy(RecordedKeyboard):
        def grab(self):
            raise OSError(16, "Device or resource busy")

    device = Busy([])
    with pytest.raises(ScannerError, match="cannot be grabbed .*another program"):
        HidScanner("/dev/input/event-test", device=device)
    assert device.closed


def _uinput_reason() -> str | None:
    if not os.path.exists("/dev/uinput"):
        return "no /dev/uinput here (needs the uinput module; a Pi or a VM with it)"
    if not os.access("/dev/uinput", os.W_OK):
        return "/dev/uinput is not writable (needs root or the 'input' group with a rule)"
    return None


@pytest.mark.skipif(_uinput_reason() is not None, reason=_uinput_reason() or "")
def test_hid_on_a_real_virtual_keyboard_is_grabbed_and_decoded():
    import time

    import evdev

    keys = sorted({ecodes.ecodes[name] for name, _ in US.values()} | {ecodes.KEY_LEFTSHIFT})
    with evdev.UInput({EV_KEY: keys}, name="checkpoint-kiosk test scanner") as ui:
        time.sleep(0.3)  # udev makes the node
        with open_scanner(f"hid:{ui.device.path}") as scanner:
            for e in typed("Ab|9\n"):
                if e.type == EV_KEY:
                    ui.write(EV_KEY, e.code, e.value)
                    ui.syn()
            line = scanner.read(2.0)
            assert line is not None and line.raw == b"Ab|9"
