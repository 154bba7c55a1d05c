"""One log record, one line: a formatter that escapes control characters (issue 9 #14).

Text from outside (a server's error, a scanned code, a file name) may carry newlines that
forge a second log line, ANSI escapes that rewrite a technician's terminal, or bidi
overrides that make a line read differently than it is.  The formatter escapes them in
the final text, traceback included, and keeps its own layout; letters of any script
(Vietnamese names) stay as they are.
"""

from __future__ import annotations

import logging

from offline_queue.untrusted import escaped


def escape_controls(text: str) -> str:
    """``text`` with control, line-separator, bidi and other unsafe characters written as
    escapes (the one rule of :mod:`offline_queue.untrusted`)."""
    return escaped(text)


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose every record is one line with no control
    characters: the message, exception and stack text are escaped after formatting."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


def install(fmt: str) -> None:
    """Give every handler of the root logger a :class:`SafeFormatter` of ``fmt``."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt))
