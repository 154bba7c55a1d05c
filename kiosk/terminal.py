"""Text that reaches a technician's terminal: escaped, never raw control characters.

Values from a USB stick, a server or a log can hold ANSI escapes, C1 controls or bidi
overrides that rewrite or hide what the terminal shows.  Everything ``config check`` and
``status`` print goes through :func:`printable` (text) or :func:`printable_json` (JSON).
"""

from __future__ import annotations

import json
from typing import Any

from offline_queue.untrusted import escaped, is_safe


def printable(text: str, *, keep: str = "\n") -> str:
    """``text`` with every unsafe character (controls, bidi, format; the rule is
    :mod:`offline_queue.untrusted`'s) as an escape; those in ``keep`` (newlines by default)
    stay as they are."""
    return escaped(text, keep=keep)


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
    return "".join(c if is_safe(c) or c in "\n " else _json_escape(c) for c in text)
