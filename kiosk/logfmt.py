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

from offline_queue.untrusted import escaped

# Full identifiers never reach a log file, whatever the level (issue 14, docs/privacy.md):
# a DEBUG line or a traceback may quote a payload, so the formatter masks what looks like
# one.  ID, insurance, QID and phone numbers (nine digits or more) keep their last three;
# a UVCI, an EU DCC and a passport number are replaced.
_IDENTIFIERS: tuple[tuple[re.Pattern[str], str | object], ...] = (
    (re.compile(r"HC1:\S+"), "HC1:<masked>"),
    (re.compile(r"(?i)URN:UVCI:[^\s\"',;|]+"), "URN:UVCI:<masked>"),
    (re.compile(r"\b01[:/][A-Z]{2}[:/][A-Z0-9][A-Z0-9/:#]{7,}"), "<masked uvci>"),
    (re.compile(r"\b[A-Z]\d{7,8}\b"), "<masked passport>"),
    (re.compile(r"\d{6,}(\d{3})"), lambda m: "*" * (len(m.group(0)) - 3) + m.group(1)),
)


# A key's fingerprint or id, a digest: 16 or more hex digits, one of them a letter, standing
# alone.  About one SHA-256 fingerprint in four has a run of nine decimal digits, which the
# last rule above took for a number: the central's "created the signing key ... fingerprint"
# line, which a technician compares with a kiosk's, came out partly starred.
_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?=[0-9]*[a-fA-F])(?:[0-9a-f]{16,}|[0-9A-F]{16,})"
                     r"(?![0-9A-Za-z])")


def mask_identifiers(text: str) -> str:
    """``text`` with every full identifier it seems to hold masked (see above); digests
    (``_DIGEST``) are kept whole."""
    kept = _DIGEST.split(text)
    digests = _DIGEST.findall(text)
    out = []
    for i, part in enumerate(kept):
        for pattern, repl in _IDENTIFIERS:
            part = pattern.sub(repl, part)  # type: ignore[arg-type]
        out.append(part)
        if i < len(digests):
            out.append(digests[i])
    return "".join(out)


def escape_controls(text: str) -> str:
    """``text`` with control, line-separator, bidi and other unsafe characters written as
    escapes (the one rule of :mod:`offline_queue.untrusted`)."""
    return escaped(text)


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose every record is one line with no control
    characters and no full identifier: the message, exception and stack text are escaped
    and masked (:func:`mask_identifiers`) after formatting."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_identifiers(escape_controls(super().format(record)))


def install(fmt: str) -> None:
    """Give every handler of the root logger a :class:`SafeFormatter` of ``fmt``."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt))
