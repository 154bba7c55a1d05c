"""Capped exponential backoff for loops that retry for ever: the camera, the decoder, sync.

The kiosk never gives up on its camera or its server; it waits longer after each failure in
a row, up to a cap, and starts again from the first delay after a success.  With
``jitter=True`` each wait is drawn uniformly below that ceiling ("full jitter"), so kiosks
that lost the same server together do not come back together.

It lives here, the lowest package both users may import (``kiosk.runtime.capture`` and
``offline_queue.sync``); it is small enough that a retry library (``backoff`` pulls in
``asyncio``, ``tenacity`` wraps a call rather than a supervising loop) would cost more
than it saves: see docs/offline-queue.md.
"""

from __future__ import annotations

import random


class Backoff:
    """The wait after each failure in a row: ``first``, then doubling, never above ``cap``.

    Call :meth:`failed` after a failure for the time to wait, :meth:`reset` after a
    success.  Not thread-safe: each retrying loop owns one.
    """

    def __init__(self, *, first: float, cap: float, jitter: bool = False,
                 rng: random.Random | None = None) -> None:
        if not (first > 0 and cap > 0):
            raise ValueError(f"backoff first={first!r}, cap={cap!r}: use seconds above 0 "
                             "(a cap below first caps the first wait too)")
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.failures = 0

    def __repr__(self) -> str:
        return (f"Backoff(first={self.first!r}, cap={self.cap!r}, jitter={self.jitter!r}, "
                f"failures={self.failures})")

    def ceiling(self) -> float:
        """The longest wait for the failures so far (0 before the first)."""
        if self.failures == 0:
            return 0.0
        # The exponent is bounded: past 2**62 every ceiling is the cap anyway.
        return min(self.cap, self.first * 2.0 ** min(self.failures - 1, 62))

    def failed(self) -> float:
        """Count one more failure; the seconds to wait before trying again."""
        self.failures += 1
        ceiling = self.ceiling()
        return self._rng.uniform(0, ceiling) if self.jitter else ceiling

    def reset(self) -> None:
        """A success: the next failure waits ``first`` again."""
        self.failures = 0
