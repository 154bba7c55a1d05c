"""The kiosk screen: a fullscreen pygame UI driven by the scan loop.

``run_ui`` owns the main thread: each frame it calls ``loop.step()``, draws the current
screen and calls ``on_tick`` (the watchdog).  pygame is imported only when the UI runs.
The loop and the screen meet at one typed seam (``kiosk.runtime.events``); the screen's
state machine is ``kiosk.ui.app.KioskApp`` over the states of ``kiosk.ui.machine``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.config import UiSettings
    from kiosk.runtime.scanloop import ScanLoop
    from kiosk.ui.app import KioskApp
    from kiosk.ui.appliance import Appliance

def run_ui(
    loop: ScanLoop,
    *,
    settings: UiSettings,
    stop: threading.Event,
    show_lights: bool = False,
    camera_crop: float = 1.0,
    on_tick: Callable[[], None] = lambda: None,
    appliance: Appliance | None = None,
    on_start: Callable[[KioskApp], None] | None = None,
) -> bool:
    """Open the display and run the kiosk screen until ``stop`` is set (see ``kiosk.ui.app``).

    ``appliance`` enables the officer panel's provisioning and self-test entries; it returns
    (exit status 0) after a provisioning QR was enrolled, so systemd restarts the kiosk; the
    result is False then (a restart asked for by the screen), True when ``stop`` ended it.
    ``on_start`` is handed the screen's machine before the first frame (an observer in the
    same process, like the checkpoint-day harness's).
    """
    from kiosk.ui.app import run_ui as _run

    return _run(loop, settings=settings, stop=stop, on_tick=on_tick, appliance=appliance,
                show_lights=show_lights, camera_crop=camera_crop, on_start=on_start)


__all__ = ["run_ui"]
