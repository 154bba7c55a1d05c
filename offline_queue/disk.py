"""Free disk space where the check-ins live: the one check every report uses.

``queue stats``, ``status``, ``selftest`` and the scan loop's health all call
:func:`disk_space` with the kiosk's one threshold (``store.disk_warn_mb``), so they cannot
disagree about "disk low".  The check never raises: a folder whose file system cannot be
read is reported as unknown (``free_bytes`` None, ``error`` set), never as low or fine.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from offline_queue.clock import Sampled

log = logging.getLogger(__name__)

MiB = 2**20


@dataclass(frozen=True)
class DiskSpace:
    """What :func:`disk_space` found on the file system holding ``path``."""

    path: str  # the folder measured: the one asked for, or its nearest existing parent
    low_below: int
    free_bytes: int | None
    total_bytes: int | None
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.free_bytes is not None

    @property
    def low(self) -> bool:
        """Fewer than ``low_below`` bytes free; False while the free space is unknown."""
        return self.free_bytes is not None and self.free_bytes < self.low_below


def disk_space(path: str | os.PathLike[str], *, low_below: int) -> DiskSpace:
    """Free space of the file system holding ``path`` and whether it is below ``low_below``.

    A folder not created yet (a kiosk before its first check-in) is measured at its nearest
    existing parent, which is where it will be created.
    """
    if low_below < 0:
        raise ValueError(f"low_below is {low_below!r} bytes; use 0 or more")
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError as e:
        return DiskSpace(str(folder), low_below, None, None,
                         error=f"free space of {str(folder)!r} unknown: {e.strerror or e}")
    return DiskSpace(str(folder), low_below, usage.free, usage.total)


class DiskWatch:
    """:func:`disk_space` at most every ``every`` seconds, for a loop that asks each frame.

    It logs once when the disk becomes low and once when its free space cannot be read,
    not at every check.
    """

    def __init__(self, path: str | os.PathLike[str], *, low_below: int, every: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.low_below = low_below
        self._sampled = Sampled(self._measure, every, monotonic)

    @property
    def every(self) -> float:
        return self._sampled.seconds

    def check(self) -> DiskSpace:
        """The latest measurement (taken now if the last one is ``every`` seconds old)."""
        return self._sampled()

    def _measure(self) -> DiskSpace:
        space = disk_space(self.path, low_below=self.low_below)
        before = self._sampled.last
        if space.low and not (before is not None and before.low):
            log.warning("disk nearly full: %d MiB free at %s (warning below %d MiB)",
                        (space.free_bytes or 0) // MiB, space.path, self.low_below // MiB)
        if space.error and not (before is not None and before.error):
            log.warning("%s", space.error)
        if not space.known and before is not None and before.known:
            # An unreadable moment does not undo what the last reading showed.
            space = DiskSpace(space.path, space.low_below, before.free_bytes,
                              before.total_bytes, error=space.error)
        return space

    def low(self) -> bool:
        return self.check().low
