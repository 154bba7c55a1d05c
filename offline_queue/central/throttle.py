"""Wrong-token throttling per client address, in bounded memory.

Each address has a budget of wrong tokens (device, admin or enrolment) per window; past
it, every request from that address that needs a token is answered 429 with
``Retry-After`` until the window ends, before the token is even looked at (so the answer
says nothing about whether a guess was right).  A kiosk with a stale token asks every few
minutes and never comes near the budget; a guesser is held to ``limit`` guesses a window.

Behind a reverse proxy every request comes from the proxy's address: then the budget is
shared by all clients (docs/trust.md says how to size it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

LIMIT = 20  # wrong tokens an address may send in a window


class Throttle:
    """``blocked(address)`` -> seconds to wait or None; ``failed(address)`` after a wrong
    token.  At most ``max_addresses`` are remembered (the least recently failing go first)."""

    def __init__(self, *, limit: int = LIMIT, window_s: float = 60.0,
                 max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0 or max_addresses < 1:
            raise ValueError(f"throttle limit={limit!r}, window_s={window_s!r}, "
                             f"max_addresses={max_addresses!r}: all must be positive")
        self.limit, self.window_s, self.max_addresses = limit, window_s, max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        # address -> (window start, wrong tokens in it)
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.refused = 0

    def __len__(self) -> int:
        return len(self._failures)

    def blocked(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None if it may now."""
        now = self._clock()
        with self._lock:
            entry = self._failures.get(address)
            if entry is None:
                return None
            start, count = entry
            if now - start >= self.window_s:
                del self._failures[address]
                return None
            if count < self.limit:
                return None
            self.refused += 1
            return int(self.window_s - (now - start)) + 1

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            start, count = self._failures.pop(address, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            self._failures[address] = (start, count + 1)  # now the most recent
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
