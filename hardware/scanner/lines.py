"""Cutting a scanner's byte stream into lines, with bounded memory whatever it sends.

A scanner ends each code with CR, LF or CR LF (its "suffix" setting).  What arrives is not
trusted: a line longer than any QR code can hold, a line that never ends, bytes of a wrong
baud rate.  :class:`LineFramer` keeps at most ``max_bytes`` of one line; a line it cannot
hand on whole is handed on as *rejected* (empty ``raw``, a ``problem`` code), so the kiosk
says "not recognised" once and the next scan starts clean.  Nothing is ever cut short and
passed on as if it were a code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

# The largest QR code (version 40, level L) holds 2953 bytes, or 7089 digits in numeric
# mode; a scanner line longer than this is not a QR code's content.
MAX_LINE = 8192
# A scanner sends one code in a few milliseconds (USB) or types it at a steady pace
# (keyboard mode, a few ms a key).  Bytes with no line end for this long are a scanner set
# to no suffix, or the first half of something that will never end.
GAP_SECONDS = 1.0

OVERLONG = "scanner_line_too_long"
UNTERMINATED = "scanner_no_line_end"

_EOL = re.compile(rb"[\r\n]+")


@dataclass(frozen=True)
class Line:
    """One line from a scanner: its exact bytes (no terminator), or a rejection."""

    raw: bytes  # b"" when rejected
    t_ns: int  # time.monotonic_ns() when the line ended
    problem: str | None = None  # why the line cannot be used; None for a line to decide on

    @property
    def rejected(self) -> bool:
        return self.problem is not None


class LineFramer:
    """Bytes in, :class:`Line` items out; holds at most ``max_bytes`` of a pending line."""

    def __init__(self, *, max_bytes: int = MAX_LINE, gap_seconds: float = GAP_SECONDS,
                 clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.max_bytes = max_bytes
        self.gap_ns = int(gap_seconds * 1e9)
        self._clock_ns = clock_ns
        self._buf = bytearray()
        self._problem: str | None = None
        self._started = False  # a line has begun (bytes, or a rejection in progress)
        self._last_ns = 0

    @property
    def pending(self) -> int:
        """Bytes of the unfinished line held now (bounded by ``max_bytes``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Line]:
        """Take the next bytes; return the lines they complete, in order."""
        now = self._clock_ns()
        out: list[Line] = []
        if data:
            stale = self.expire(now)
            if stale is not None:
                out.append(stale)
            self._last_ns = now
        pos = 0
        while pos < len(data):
            match = _EOL.search(data, pos)
            end = match.start() if match else len(data)
            if end > pos:
                self._append(data[pos:end])
            if match is None:
                break
            line = self._finish(now)
            if line is not None:
                out.append(line)
            pos = match.end()
        return out

    def taint(self, problem: str) -> None:
        """The current line cannot be used (an untypeable key, say): reject it when it ends."""
        if self._problem is None:
            self._problem = problem
        self._buf.clear()
        self._started = True
        self._last_ns = self._clock_ns()

    def expire(self, now_ns: int | None = None) -> Line | None:
        """A line begun more than ``gap_seconds`` ago with no end: rejected, and forgotten."""
        now = self._clock_ns() if now_ns is None else now_ns
        if self._started and now - self._last_ns >= self.gap_ns:
            problem = self._problem or UNTERMINATED
            self._reset()
            return Line(b"", now, problem)
        return None

    def drop(self) -> int:
        """Forget an unfinished line (the device went away mid-line); its length."""
        n = len(self._buf)
        self._reset()
        return n

    def _append(self, piece: bytes) -> None:
        self._started = True
        if self._problem is not None:
            return  # already rejected: discard up to the line end
        if len(self._buf) + len(piece) > self.max_bytes:
            self._problem = OVERLONG
            self._buf.clear()
            return
        self._buf += piece

    def _finish(self, now: int) -> Line | None:
        if not self._started:
            return None  # CR LF, or blank lines: no line at all
        line = (Line(b"", now, self._problem) if self._problem is not None
                else Line(bytes(self._buf), now))
        self._reset()
        return line

    def _reset(self) -> None:
        self._buf.clear()
        self._problem = None
        self._started = False
