"""One log record, one line: a formatter that escapes control characters (issue 9 #14).

Text from outside (a server's error, a scanned code, a file name) may carry newlines that
forge a second log line, ANSI escapes that rewrite a technician's terminal, or bidi
overrides that make a line read differently than it is.  The formatter escapes them in
the final text, traceback included, and keeps its own layout; letters of any script
(Vietnamese names) stay as they are.
"""

from __future__ import annotations

import logging
import re

# C0 controls, DEL and C1 controls; the line and paragraph separators; the bidi
# embeddings/overrides/isolates and marks (U+061C, U+200E-F, U+202A-E, U+2066-9).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control, line-separator and bidi characters written as escapes."""
    return _UNSAFE.sub(_escape, text)


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose every record is one line with no control
    characters: the message, exception and stack text are escaped after formatting."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


def install(fmt: str) -> None:
    """Give every handler of the root logger a :class:`SafeFormatter` of ``fmt``."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt))
