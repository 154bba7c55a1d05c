"""Text from outside, made safe for where it is shown: one rule for every sink.

A server's error, a scanned code, a file name or a field on a USB stick may carry newlines
that forge a second log line, ANSI escapes that rewrite a terminal, or bidi overrides and
other format characters that make a line read differently than it is.  Whatever the sink
(a log line, a terminal, the database, the screen), the unsafe characters are the same:
those :meth:`str.isprintable` rejects — C0 and C1 controls, DEL, line and paragraph
separators, format characters (bidi, zero-width), unassigned and private-use code points and
spaces other than U+0020.  Letters of every script, Vietnamese included, are safe.

The sinks differ only in what they put in an unsafe character's place: an escape a reader
can decode (:func:`escaped`, for logs and terminals) or a visible replacement mark
(:func:`replaced`, for text drawn on the screen).  Standard library only, so every layer,
the queue and the central included, may use it.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
REPLACEMENT = "\ufffd"


def is_safe(char: str) -> bool:
    """Whether one character may be shown as it is."""
    return char.isprintable()


def escape(char: str) -> str:
    """One unsafe character as an escape: ``\\n``, ``\\r``, ``\\t``, else ``\\xNN``,
    ``\\uNNNN`` or ``\\UNNNNNNNN``."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escaped(text: str, *, keep: str = "", limit: int | None = None) -> str:
    """``text`` with each unsafe character (except those in ``keep``) escaped; with
    ``limit``, only its first ``limit`` characters, then ``…``."""
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c in keep else escape(c) for c in text)
    return text + "…" if cut else text


def replaced(text: str, *, mark: str = REPLACEMENT) -> str:
    """``text`` with each unsafe character replaced by ``mark``: for text drawn where an
    escape would only confuse the reader (a name on the kiosk's screen)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else mark for c in text)
