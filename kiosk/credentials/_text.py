"""Turn whatever the QR decoder delivered into clean NFC text."""

from __future__ import annotations

import unicodedata

# A QR code holds at most 2 953 bytes (7 089 digits); anything longer did not come from
# one, and bounding the input bounds the work of every parser below.
MAX_PAYLOAD = 8192

BOM = "\ufeff"


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
