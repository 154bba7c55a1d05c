"""Text that reaches a technician's terminal: escaped, never raw control characters.

Values from a USB stick, a server or a log can hold ANSI escapes, C1 controls or bidi
overrides that rewrite or hide what the terminal shows.  Everything ``config check`` and
``status`` print goes through :func:`printable` (text) or :func:`printable_json` (JSON).
"""

from __future__ import annotations

import json
from typing import Any


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, keep: str = "\n") -> str:
    """``text`` with every non-printable character (controls, bidi, format) as a \\x/\\u escape;
    the characters in ``keep`` (newlines by default) stay as they are."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable_json(data: Any, **kw: Any) -> str:
    """``json.dumps`` keeping Vietnamese readable but escaping every non-printable character
    (json.dumps with ensure_ascii=False leaves DEL, C1 controls and bidi overrides raw)."""
    text = json.dumps(data, ensure_ascii=False, **kw)
    # Outside strings json.dumps writes only printable characters, spaces and newlines.
    return "".join(c if c.isprintable() or c in "\n " else _json_escape(c) for c in text)
