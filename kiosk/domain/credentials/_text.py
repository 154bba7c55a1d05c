"""Turn whatever the QR decoder delivered into clean NFC text."""

from __future__ import annotations

import unicodedata

# A QR code holds at most 2 953 bytes (7 089 digits); anything longer did not come from
# one, and bounding the input bounds the work of every parser below.
MAX_PAYLOAD = 8192

BOM = "\ufeff"
# The longest name a checkpoint must take: the EU DCC schema's limit for a name part, well
# above any Vietnamese full name (about 40 characters) and the 39 of a passport's MRZ.  A
# longer "name" is an attack on the screen or the store, not a person.
MAX_NAME = 80
# Addresses and the other free-text fields: a full Vietnamese address (house, hamlet, ward,
# district, province) is under 150 characters.
MAX_TEXT = 256
# Control (Cc), format (Cf: bidi controls, zero-width and invisible characters, a stray BOM),
# surrogate, private-use and unassigned characters: none belongs in a name or an address, and
# each can hide, reorder or forge what an officer reads on the screen or in a log.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Unicode space separators (Zs).  ``str.strip()`` also strips C0 separators (U+001C-001F)
# and U+0085, which would hide a control character at the edge of a field instead of
# reporting it.
SPACES = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
REPLACEMENT = "\ufffd"  # what a decoder left for bytes it could not read


def is_unsafe(char: str) -> bool:
    return char == REPLACEMENT or unicodedata.category(char) in UNSAFE_CATEGORIES


def clean(value: str, *, limit: int = MAX_TEXT) -> tuple[str, tuple[str, ...]]:
    """``value`` safe to show and store, and the problems found (``text_unsafe``,
    ``text_too_long``).

    An unsafe character becomes a space, so words it joined stay apart (a NUL between names
    must not make the given names one "family name" that masking leaves visible); whitespace
    is collapsed and the text cut to ``limit``.
    """
    problems: list[str] = []
    if any(is_unsafe(c) for c in value):
        problems.append("text_unsafe")
        value = "".join(" " if is_unsafe(c) else c for c in value)
    value = " ".join(value.split())
    if len(value) > limit:
        problems.append("text_too_long")
        value = value[:limit].rstrip()
    return value, tuple(problems)


def to_text(payload: bytes | str) -> str:
    """Decode, drop a BOM and surrounding whitespace (CR/LF from readers), normalise to NFC."""
    if isinstance(payload, bytes | bytearray | memoryview):
        raw = bytes(payload)
        # Invalid UTF-8 happens (zbar guessing a CJK charset); keep what can be read
        # rather than refusing the code outright.
        text = raw.decode("utf-8", errors="replace")
    else:
        text = str(payload)
    text = text.strip().lstrip(BOM).strip()
    return unicodedata.normalize("NFC", text)


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)
