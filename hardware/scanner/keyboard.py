"""A 2D scanner in keyboard-wedge (USB HID keyboard) mode, read through evdev.

The scanner "types" each code as key presses on a US keyboard and ends it with Enter.  The
kiosk grabs the input device (``EVIOCGRAB``), so those key presses reach only the kiosk:
never the screen's text fields, never the PIN pad's hot keys.

A keyboard can only type what its layout has keys for: printable ASCII.  A character
outside it (the ``ữ`` of ``Nữ`` on a CCCD) is sent by scanners as something else — an
Alt+keypad sequence, a dead key, or nothing — and what arrives is not the code.  Any such
key makes the whole line rejected (``scanner_untypeable_key``), never passed on with a
letter missing.  docs/scanner.md says which codes need serial mode.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterable
from typing import Protocol

from hardware.errors import ScannerError
from hardware.scanner.lines import Line, LineFramer
from hardware.scanner.reader import FramedScanner

log = logging.getLogger(__name__)

UNTYPEABLE = "scanner_untypeable_key"

# evdev's constants, written out so the decoder needs no evdev (and runs off Linux).
# Values from linux/input-event-codes.h; tests check them against evdev.ecodes.
EV_KEY = 1
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_CAPSLOCK, KEY_NUMLOCK = 58, 69
# Modifiers that make a key something other than its character (Ctrl+J, Alt+0250...).
KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT = 29, 97, 56, 100
KEY_LEFTMETA, KEY_RIGHTMETA = 125, 126
CHORD_KEYS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT,
                        KEY_LEFTMETA, KEY_RIGHTMETA})
SCROLLLOCK = 70  # toggles nothing we use; harmless


def _row(codes: Iterable[int], plain: str, shifted: str) -> dict[int, tuple[str, str]]:
    return {code: (p, s) for code, p, s in zip(codes, plain, shifted, strict=True)}


# A US keyboard: key code -> (character, character with Shift).
US_KEYS: dict[int, tuple[str, str]] = {
    **_row(range(2, 12), "1234567890", "!@#$%^&*()"),  # KEY_1 .. KEY_0
    12: ("-", "_"), 13: ("=", "+"),  # KEY_MINUS, KEY_EQUAL
    **_row(range(16, 26), "qwertyuiop", "QWERTYUIOP"),  # KEY_Q .. KEY_P
    26: ("[", "{"), 27: ("]", "}"),  # KEY_LEFTBRACE, KEY_RIGHTBRACE
    **_row(range(30, 39), "asdfghjkl", "ASDFGHJKL"),  # KEY_A .. KEY_L
    39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),  # KEY_SEMICOLON, KEY_APOSTROPHE, KEY_GRAVE
    43: ("\\", "|"),  # KEY_BACKSLASH
    **_row(range(44, 51), "zxcvbnm", "ZXCVBNM"),  # KEY_Z .. KEY_M
    51: (",", "<"), 52: (".", ">"), 53: ("/", "?"),  # KEY_COMMA, KEY_DOT, KEY_SLASH
    57: (" ", " "), 15: ("\t", "\t"),  # KEY_SPACE, KEY_TAB
    # The keypad: some scanners send digits there ("numeric keypad" emulation).
    **_row((82, 79, 80, 81, 75, 76, 77, 71, 72, 73), "0123456789", "0123456789"),
    55: ("*", "*"), 74: ("-", "-"), 78: ("+", "+"), 83: (".", "."), 98: ("/", "/"),
}
LETTERS = frozenset(code for code, (plain, _) in US_KEYS.items() if plain.isalpha())
NO_CHARACTER = frozenset({KEY_CAPSLOCK, KEY_NUMLOCK, SCROLLLOCK})


class KeyDecoder:
    """Key events (type, code, value) -> typed text, honouring Shift and Caps Lock.

    ``feed`` returns the characters one event types ("" for most), ``"\\n"`` for Enter, or
    None for a key that types nothing a US layout can say (an unknown key, a Ctrl/Alt chord):
    the caller rejects the line.  Releases (value 0) and auto-repeats (value 2) type nothing.
    """

    def __init__(self) -> None:
        self.shift: set[int] = set()
        self.chord: set[int] = set()
        self.caps = False
        self.unknown: int | None = None  # the last key that typed nothing known (for logs)

    def feed(self, ev_type: int, code: int, value: int) -> str | None:
        if ev_type != EV_KEY:
            return ""  # EV_SYN, EV_MSC scan codes, LEDs: not keys
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            (self.shift.add if value else self.shift.discard)(code)
            return ""
        if code in CHORD_KEYS:
            (self.chord.add if value else self.chord.discard)(code)
            return ""
        if value != 1:
            return ""
        if code == KEY_CAPSLOCK:
            self.caps = not self.caps
            return ""
        if code in NO_CHARACTER:
            return ""
        if code in (KEY_ENTER, KEY_KPENTER):
            return "\n"
        pair = US_KEYS.get(code)
        if pair is None or self.chord:
            self.unknown = code
            return None
        upper = bool(self.shift) != (self.caps and code in LETTERS)
        return pair[1] if upper else pair[0]


class KeyEvent(Protocol):
    """What the decoder reads of an ``evdev.InputEvent``."""

    @property
    def type(self) -> int: ...
    @property
    def code(self) -> int: ...
    @property
    def value(self) -> int: ...


class InputDevice(Protocol):
    """What :class:`HidScanner` uses of ``evdev.InputDevice``."""

    def fileno(self) -> int: ...
    def read(self) -> Iterable[KeyEvent]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


def key_lines(decoder: KeyDecoder, framer: LineFramer,
              events: Iterable[KeyEvent]) -> list[Line]:
    """Feed evdev events (anything with ``type``, ``code``, ``value``) through the decoder
    into the framer; the lines they complete."""
    out: list[Line] = []
    for event in events:
        typed = decoder.feed(event.type, event.code, event.value)
        if typed is None:
            framer.taint(UNTYPEABLE)
        elif typed:
            out.extend(framer.feed(typed.encode("ascii")))
    return out


class HidScanner(FramedScanner[InputDevice]):
    """Lines from a keyboard-mode scanner, its keys grabbed away from everything else."""

    unit = "characters"

    def __init__(self, path: str, *, spec: str | None = None,
                 device: InputDevice | None = None, framer: LineFramer | None = None) -> None:
        spec = spec or f"hid:{path}"
        opened = device or _open_device(path, spec)
        try:
            # Grabbed, the keys reach no one else: not the screen, not the PIN pad.
            opened.grab()
        except OSError as e:
            opened.close()
            raise ScannerError(
                f"scanner {spec!r} cannot be grabbed ({e}); another program holds it "
                "(a second kiosk, or a desktop session's input handler)") from e
        super().__init__(spec, opened, framer)
        self._decoder = KeyDecoder()

    def _take(self, device: InputDevice, wait: float) -> list[Line]:
        try:
            readable, _, _ = select.select([device.fileno()], [], [], wait)
            events = list(device.read()) if readable else []
        except BlockingIOError:
            events = []
        lines = key_lines(self._decoder, self._framer, events)
        if self._decoder.unknown is not None:
            log.warning("scanner %s typed key %d, which no US-keyboard character matches: "
                        "line rejected (serial mode reads every character; docs/scanner.md)",
                        self.spec, self._decoder.unknown)
            self._decoder.unknown = None
        return lines

    def _release(self, device: InputDevice) -> None:
        try:
            device.ungrab()
        except OSError:  # already gone (unplugged): nothing left to release
            pass
        device.close()


def _open_device(path: str, spec: str) -> InputDevice:
    try:
        import evdev
    except ImportError as e:
        raise ScannerError(
            f"scanner {spec!r} needs python-evdev (Linux only): pip install evdev "
            "(or apt install python3-evdev)") from e
    try:
        device = evdev.InputDevice(path)
    except OSError as e:
        raise ScannerError(
            f"scanner {spec!r}: {path} cannot be opened ({e}); is it plugged in, and is the "
            "kiosk user in the 'input' group?") from e
    keys = device.capabilities().get(evdev.ecodes.EV_KEY, [])
    if KEY_ENTER not in keys:
        device.close()
        raise ScannerError(
            f"scanner {spec!r}: {path} is not a keyboard (it has no Enter key); use the "
            "scanner's '-event-kbd' entry in /dev/input/by-id/")
    return device
