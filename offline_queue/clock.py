"""Where a check-in's time comes from: wall clock, monotonic clock, boot id, NTP state.

A Pi without an RTC restarts its clock at the last saved time after a power cut and
may never reach NTP at a border post, so every row keeps the monotonic reading and the
boot id that let the time be corrected later (``../shared/reference/platform.md``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
SYNCED_FLAG_PATH = Path("/run/systemd/timesync/synchronized")


def _read_boot_id() -> str:
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except OSError:
        # Not Linux (a laptop demo): a per-process id still separates "this run" from
        # earlier ones, which is all the correction needs.
        return f"process-{uuid.uuid4()}"


T = TypeVar("T")


class Sampled(Generic[T]):
    """The value of ``read()``, asked again at most every ``seconds`` of ``monotonic``: for a
    loop that wants a slow fact (the NTP flag, the free disk space) at every turn."""

    def __init__(self, read: Callable[[], T], seconds: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read, self.seconds, self._monotonic = read, seconds, monotonic
        self._at = float("-inf")
        self._value: T | None = None

    @property
    def last(self) -> T | None:
        """The value read last (None before the first read)."""
        return self._value

    def __call__(self) -> T:
        now = self._monotonic()
        if self._value is None or now - self._at >= self.seconds:
            self._at = now
            self._value = self._read()
        return self._value


class Clock:
    """The time sources of one boot; every part is injectable for tests."""

    def __init__(
        self,
        *,
        wall: Callable[[], datetime] | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        synced: Callable[[], bool] | None = None,
        boot_id: str | None = None,
    ) -> None:
        self._wall = wall or (lambda: datetime.now(UTC))
        self.monotonic_ns = monotonic_ns
        self._synced = synced or SYNCED_FLAG_PATH.exists
        self.boot_id = boot_id if boot_id is not None else _read_boot_id()

    def now(self) -> datetime:
        """Wall time, always timezone-aware UTC."""
        value = self._wall()
        if value.tzinfo is None:
            raise ValueError(f"Clock wall function returned a naive datetime {value!r}; use UTC")
        return value.astimezone(UTC)

    def synced(self) -> bool:
        """True once NTP (systemd-timesyncd) has set the clock in this boot."""
        return bool(self._synced())

    def __repr__(self) -> str:
        return f"Clock(boot_id={self.boot_id!r})"


TIME_SOURCES = ("ntp", "central", "none")


@dataclass(frozen=True)
class Anchor:
    """A boot's link between the monotonic clock and true time (``boot_clock`` table).

    ``true_time`` was the true time when the monotonic clock read ``mono_ns``; the
    monotonic clock is never stepped, so any reading of the same boot maps to true time.
    ``offset_s`` is true minus wall time at the measurement (for people and logs).
    """

    boot_id: str
    source: str  # 'ntp' or 'central'
    true_time: datetime
    mono_ns: int
    offset_s: float
    uncertainty_s: float
    measured_at: datetime  # the device's wall time at the measurement

    def true_at(self, mono_ns: int) -> datetime:
        return self.true_time + timedelta(microseconds=(mono_ns - self.mono_ns) // 1000)


def iso(value: datetime) -> str:
    """UTC ISO 8601 with microseconds and a Z: sorts as text in SQLite."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
